//! The recipes of `pyxis-recipes` inside a simulation.
//!
//! Owns: [`recipes_in_simulation`], the [`pyxis_recipes::Runtime`] that runs the
//! recipes' background tasks on the turmoil host that starts them and gives them the
//! simulation's clock. Must never read the system clock nor start a thread.

use std::rc::Rc;
use std::time::Instant;

use pyxis_recipes::{BoxFuture, Runtime, RuntimeGuard, Spawned};
use tokio::task::AbortHandle;

use crate::clock;

/// Makes the recipes ([`pyxis_recipes::Lock`], `Election`, `TreeCache`, ...) made on the
/// calling thread run inside the simulation until the guard is dropped: their
/// background tasks run on the turmoil host (or client) that makes the recipe, and
/// their leases, timers and deadlines use the simulated clock. Without it they run on
/// their own executor thread on real time, and a run does not replay.
///
/// Call it on the thread that runs the simulation, before `Sim::run` or the first
/// `Sim::step` (turmoil runs every host on that thread).
///
/// ```
/// use std::time::Duration;
/// use pyxis_recipes::Lock;
/// use pyxis_turmoil::{connect, recipes_in_simulation, Cluster};
///
/// let _recipes = recipes_in_simulation();
/// let mut sim = turmoil::Builder::new()
///     .simulation_duration(Duration::from_secs(120))
///     .build();
/// let cluster = Cluster::add(&mut sim, 1);
/// let addrs = cluster.addrs();
/// sim.client("app", async move {
///     let client = connect(addrs, pyxis_tokio::Options::new().seed(3)).await?;
///     let guard = Lock::new(&client, "/locks/report").acquire(Duration::from_secs(5)).await?;
///     tokio::time::sleep(Duration::from_secs(60)).await; // virtual: the lease is renewed
///     // Held, and known to be until a virtual instant ahead.
///     assert!(guard.held_until().is_some_and(|until| until > pyxis_turmoil::now()));
///     guard.release().await?;
///     Ok(())
/// });
/// sim.run().unwrap();
/// ```
pub fn recipes_in_simulation() -> RuntimeGuard {
    pyxis_recipes::use_runtime_on_this_thread(Rc::new(Simulated))
}

/// The simulation's clock and the current host's tokio runtime.
struct Simulated;

impl Runtime for Simulated {
    fn now(&self) -> Instant {
        clock::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        Box::pin(tokio::time::sleep(
            deadline.saturating_duration_since(clock::now()),
        ))
    }

    fn spawn(&self, task: BoxFuture) -> Box<dyn Spawned> {
        // Outside any host (a recipe dropped while turmoil tears a host down) there is
        // nowhere to run: the task is dropped, as the host's own tasks are.
        let handle = tokio::runtime::Handle::try_current()
            .ok()
            .map(|runtime| runtime.spawn(task).abort_handle());
        Box::new(HostTask(handle))
    }
}

/// A recipe task on a host's runtime: aborted when dropped, unless detached.
#[derive(Debug)]
struct HostTask(Option<AbortHandle>);

impl Spawned for HostTask {
    fn detach(mut self: Box<Self>) {
        self.0 = None;
    }
}

impl Drop for HostTask {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}
