//! Sessions: timeouts, expiry buckets, the held ping and pending watch events
//! ([protocol](pyxis_proto::protocol) §5).
//!
//! Owns: the per-session state and the arithmetic that maps a refresh time to the check
//! tick at which the session expires. Must never send anything or touch the node tree.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use pyxis_proto::rpc::WatchEvent;

use super::types::ConnId;

/// A ping the server holds (the long poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeldPing {
    pub(crate) conn: ConnId,
    pub(crate) xid: u64,
}

/// One live session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) timeout: Duration,
    /// The check tick at which the session expires unless refreshed.
    pub(crate) expiry_tick: u64,
    pub(crate) held_ping: Option<HeldPing>,
    /// Events waiting for a ping, keyed by (watched path, arrival order).
    pub(crate) pending: BTreeMap<(String, u64), WatchEvent>,
    /// Paths of the ephemeral nodes the session created. A node deleted by another
    /// session stays listed, as on the original server; at the session's end each listed
    /// path whose node it still owns is deleted.
    pub(crate) ephemerals: BTreeSet<String>,
    /// When the session was registered.
    pub(crate) joined: Instant,
    /// When a request last refreshed it.
    pub(crate) last_refresh: Instant,
}

/// Maps instants to check ticks: tick `k` is at `epoch + k * interval`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) epoch: Instant,
    pub(crate) interval: Duration,
}

impl Clock {
    /// The tick at which a session refreshed at `at` with timeout `timeout` expires: the
    /// expiry time rounded to the nearest tick.
    pub(crate) fn expiry_tick(&self, at: Instant, timeout: Duration) -> u64 {
        let elapsed = at.saturating_duration_since(self.epoch) + timeout;
        let interval = self.interval.as_nanos().max(1);
        let tick = (elapsed.as_nanos() + interval / 2) / interval;
        u64::try_from(tick).unwrap_or(u64::MAX)
    }

    /// The last tick at or before `now`.
    pub(crate) fn tick_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(elapsed / self.interval.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// The instant of tick `k`.
    pub(crate) fn instant_of(&self, tick: u64) -> Instant {
        let nanos = self.interval.as_nanos().saturating_mul(u128::from(tick));
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.epoch
            .checked_add(Duration::from_nanos(nanos))
            .unwrap_or(self.epoch)
    }
}

impl Session {
    pub(crate) fn new(timeout: Duration, expiry_tick: u64, at: Instant) -> Self {
        Self {
            joined: at,
            last_refresh: at,
            timeout,
            expiry_tick,
            held_ping: None,
            pending: BTreeMap::new(),
            ephemerals: BTreeSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_to_nearest_tick() {
        let epoch = Instant::now();
        let clock = Clock {
            epoch,
            interval: Duration::from_millis(100),
        };
        let t = Duration::from_millis(1000);
        assert_eq!(clock.expiry_tick(epoch, t), 10);
        assert_eq!(clock.expiry_tick(epoch + Duration::from_millis(40), t), 10);
        assert_eq!(clock.expiry_tick(epoch + Duration::from_millis(60), t), 11);
        assert_eq!(clock.tick_at(epoch + Duration::from_millis(199)), 1);
        assert_eq!(clock.instant_of(3), epoch + Duration::from_millis(300));
    }
}
