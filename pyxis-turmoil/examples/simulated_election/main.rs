//! A service that registers itself and elects a leader through Pyxis, run under
//! turmoil: three instances and a three-node Pyxis cluster as simulated hosts, the
//! leader's host cut off from the cluster, an instance crashed and restarted, a Pyxis
//! node crashed. Prints who leads when (virtual time) and checks that at most one
//! instance led at a time.
//!
//! ```sh
//! cargo run -p pyxis-turmoil --example simulated_election            # seed 1
//! cargo run -p pyxis-turmoil --example simulated_election -- 42      # another seed
//! cargo run -p pyxis-turmoil --example simulated_election -- 1 unsafe   # a 10 s lease: two leaders
//! ```
//!
//! The service itself is `service.rs`: it takes a `pyxis_tokio::Client` and knows nothing
//! of the simulation. The test `tests/election.rs` runs the same service under random
//! faults over many seeds.

mod service;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pyxis_tokio::Options;
use pyxis_turmoil::{connect, since_start, Cluster};
use service::{Instance, Report, SERVICES};

/// Prints every change of role and keeps it, to check the service's promise at the end.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<(Duration, String, bool)>>>);

impl Report for Log {
    fn leading(&self, name: &str, leading: bool) {
        let at = since_start(pyxis_turmoil::now());
        let what = if leading { "leads" } else { "steps down" };
        println!("{:>9.3}s  {name} {what}", at.as_secs_f64());
        self.0.borrow_mut().push((at, name.to_owned(), leading));
    }
}

impl Log {
    /// The instance acting as leader at the end, if exactly one does; fails if two ever
    /// acted at the same time.
    fn check(&self) -> Result<Option<String>, String> {
        let mut leading: Vec<String> = Vec::new();
        for (at, name, starts) in self.0.borrow().iter() {
            if *starts {
                if let Some(other) = leading.first() {
                    return Err(format!("{name} leads at {at:?} while {other} does"));
                }
                leading.push(name.clone());
            } else {
                leading.retain(|n| n != name);
            }
        }
        Ok(leading.pop())
    }

    /// `name` stopped acting when its host crashed.
    fn crashed(&self, name: &str, at: Duration) {
        let mut log = self.0.borrow_mut();
        let leads = log
            .iter()
            .rev()
            .find(|(_, n, _)| n == name)
            .is_some_and(|e| e.2);
        if leads {
            println!("{:>9.3}s  {name} crashed while leading", at.as_secs_f64());
            log.push((at, name.to_owned(), false));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed: u64 = std::env::args().nth(1).map_or(Ok(1), |s| s.parse())?;
    // A lease longer than the 5 s session: the cut-off leader leads on after the server
    // has expired its session and another instance has taken over.
    let unsafe_lease = std::env::args().nth(2).is_some_and(|a| a == "unsafe");
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(120))
        .tick_duration(Duration::from_millis(20))
        .build();
    let cluster = Cluster::add(&mut sim, 3);
    let log = Log::default();
    let names = ["svc-0", "svc-1", "svc-2"];
    for (i, name) in names.into_iter().enumerate() {
        let (addrs, log) = (cluster.addrs(), log.clone());
        sim.host(name, move || {
            let (addrs, log) = (addrs.clone(), log.clone());
            async move {
                let options = Options::new().seed(seed ^ (i as u64 + 1) << 32); // replayable
                let timeout = options.session_timeout;
                let client = connect(addrs, options).await?;
                let instance = Instance::new(name, client, timeout, log);
                if unsafe_lease {
                    instance.with_lease(Duration::from_secs(10)).run().await;
                } else {
                    instance.run().await;
                }
                Ok(())
            }
        });
    }

    let run_until = |sim: &mut turmoil::Sim<'_>, secs: u64| -> turmoil::Result {
        while sim.elapsed() < Duration::from_secs(secs) {
            sim.step()?;
        }
        Ok(())
    };
    run_until(&mut sim, 10)?;
    let leader = log.check()?.ok_or("nobody leads after 10 s")?;
    println!("--- partition {leader} from the Pyxis cluster for 15 s");
    cluster.partition(&sim, &leader);
    run_until(&mut sim, 25)?;
    cluster.repair(&sim, &leader);
    let victim = log.check()?.ok_or("nobody leads after the partition")?;
    println!("--- crash {victim}, and Pyxis node 0");
    log.crashed(&victim, sim.elapsed());
    sim.crash(victim.as_str());
    sim.crash(cluster.hosts()[0].as_str());
    run_until(&mut sim, 40)?;
    println!("--- restart {victim} and Pyxis node 0");
    sim.bounce(victim.as_str());
    sim.bounce(cluster.hosts()[0].as_str());
    run_until(&mut sim, 60)?;

    let leader = log.check()?.ok_or("nobody leads at the end")?;
    // Children come in creation order, as the original server lists them.
    let mut registered = cluster
        .node(SERVICES)
        .map(|n| n.children)
        .unwrap_or_default();
    registered.sort();
    println!("at 60 s: {leader} leads; registered: {registered:?}");
    if registered != names {
        return Err(format!("registrations did not come back: {registered:?}").into());
    }
    Ok(())
}
