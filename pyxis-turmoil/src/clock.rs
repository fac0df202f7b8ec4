//! The simulation's clock as `std::time::Instant`s.
//!
//! Owns: [`now`], the one instant every client and the cluster model of this crate read.
//! Must never advance by itself: it moves only with turmoil's virtual time.

use std::sync::OnceLock;
use std::time::Instant;

/// The instant that stands for the start of every simulation in this process. Only
/// differences between instants matter to the client and the model, so the value it
/// happens to have does not change a run.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The simulated time: a fixed instant plus turmoil's `sim_elapsed()`, the same on every
/// host at the same moment of the simulation (hosts run one after the other in one
/// thread, so there is no skew between them).
///
/// Outside a running host or client (for instance between two `Sim::step`s) turmoil has
/// no current time and this returns the fixed instant itself.
pub fn now() -> Instant {
    epoch() + turmoil::sim_elapsed().unwrap_or_default()
}

/// How far `instant` is from the start of the simulation (for logs and traces).
pub fn since_start(instant: Instant) -> std::time::Duration {
    instant.saturating_duration_since(epoch())
}
