//! Finding the leader: which address to try next and how long to wait before trying.
//!
//! Owns: the configured address list and the position in it (the start is drawn from the
//! seed), the backoff attempt counter with full jitter, and the redirect rules of
//! [protocol](pyxis_proto::protocol) §7 (follow a kNotLeader's address, but fall back to the list, with backoff,
//! on a redirect to the same server, an unparsable address, or more than
//! [`MAX_REDIRECTS_IN_ROW`] redirects without a session). Must never open connections,
//! read a clock or use a global RNG: it returns (address, delay) pairs and the caller
//! schedules them on the instants it is given.

use std::time::Duration;

use crate::config::Backoff;

/// Redirects followed in a row, without a session in between, before falling back to the
/// list with backoff (guards against two servers naming each other).
pub(crate) const MAX_REDIRECTS_IN_ROW: u32 = 3;

/// Largest delay before following a redirect (spreads clients a little; never zero-cost
/// loops because redirects are capped).
pub(crate) const REDIRECT_DELAY_MAX: Duration = Duration::from_millis(10);

/// The next connection attempt: where and after how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// `host:port` to connect to.
    pub addr: String,
    /// How long to wait before connecting.
    pub delay: Duration,
}

/// Address rotation, backoff and redirect accounting.
#[derive(Debug)]
pub(crate) struct Discovery {
    addrs: Vec<String>,
    next_index: usize,
    attempt: u32,
    redirects_in_row: u32,
    backoff: Backoff,
}

fn jitter(rng: &mut fastrand::Rng, cap: Duration) -> Duration {
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(0..=nanos))
}

impl Discovery {
    /// Starts at a seeded-random position in `addrs` (which must not be empty; the config
    /// check guarantees it).
    pub(crate) fn new(addrs: Vec<String>, backoff: Backoff, rng: &mut fastrand::Rng) -> Self {
        let next_index = rng.usize(0..addrs.len().max(1));
        Discovery {
            addrs,
            next_index,
            attempt: 0,
            redirects_in_row: 0,
            backoff,
        }
    }

    fn next_listed(&mut self) -> String {
        let len = self.addrs.len().max(1);
        let addr = self
            .addrs
            .get(self.next_index % len)
            .cloned()
            .unwrap_or_default();
        self.next_index = (self.next_index + 1) % len;
        addr
    }

    /// The first attempt: the seeded-random start address, at once.
    pub(crate) fn first(&mut self) -> Attempt {
        Attempt {
            addr: self.next_listed(),
            delay: Duration::ZERO,
        }
    }

    /// After a failed attempt or a lost connection: the next list address after a
    /// backoff delay drawn uniformly from `[0, cap(attempt)]`.
    pub(crate) fn after_failure(&mut self, rng: &mut fastrand::Rng) -> Attempt {
        let delay = jitter(rng, self.backoff.cap(self.attempt));
        self.attempt = self.attempt.saturating_add(1);
        self.redirects_in_row = 0;
        Attempt {
            addr: self.next_listed(),
            delay,
        }
    }

    /// After a kNotLeader from `current` naming `leader`: go there after a short delay,
    /// unless the redirect is useless (none, to `current` itself) or one of too many in a
    /// row, in which case this is a failure.
    pub(crate) fn after_redirect(
        &mut self,
        current: &str,
        leader: Option<&str>,
        rng: &mut fastrand::Rng,
    ) -> Attempt {
        match leader {
            Some(leader) if leader != current && self.redirects_in_row < MAX_REDIRECTS_IN_ROW => {
                self.redirects_in_row += 1;
                Attempt {
                    addr: leader.to_owned(),
                    delay: jitter(rng, REDIRECT_DELAY_MAX),
                }
            }
            _ => self.after_failure(rng),
        }
    }

    /// Whether every listed address has failed in turn since the session was last
    /// healthy (as many failures as addresses).
    pub(crate) fn tried_every_address(&self) -> bool {
        usize::try_from(self.attempt).unwrap_or(usize::MAX) >= self.addrs.len()
    }

    /// Failures in a row since the session was last healthy.
    pub(crate) fn failures(&self) -> u32 {
        self.attempt
    }

    /// The session proved healthy (a ping answered without error): the backoff and the
    /// redirect count start over. Not at Register: a server that accepts Register but
    /// then fails every request (or redirects) would otherwise be retried in a tight loop.
    pub(crate) fn on_healthy(&mut self) {
        self.attempt = 0;
        self.redirects_in_row = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc(n: usize) -> (Discovery, fastrand::Rng) {
        let mut rng = fastrand::Rng::with_seed(7);
        let addrs = (0..n).map(|i| format!("s{i}:1")).collect();
        (Discovery::new(addrs, Backoff::default(), &mut rng), rng)
    }

    #[test]
    fn failures_rotate_with_growing_bounded_delay() {
        let (mut d, mut rng) = disc(3);
        let first = d.first();
        let mut seen = vec![first.addr];
        for i in 0..20u32 {
            let a = d.after_failure(&mut rng);
            assert!(a.delay <= Backoff::default().cap(i));
            seen.push(a.addr);
        }
        assert_eq!(seen[0], seen[3]);
        assert_ne!(seen[0], seen[1]);
    }

    #[test]
    fn redirect_rules() {
        let (mut d, mut rng) = disc(2);
        let a = d.after_redirect("s0:1", Some("leader:1"), &mut rng);
        assert_eq!(a.addr, "leader:1");
        assert!(a.delay <= REDIRECT_DELAY_MAX);
        // To itself: back to the list.
        let b = d.after_redirect("leader:1", Some("leader:1"), &mut rng);
        assert!(b.addr.starts_with('s'));
        // Too many in a row.
        for _ in 0..MAX_REDIRECTS_IN_ROW {
            assert_eq!(d.after_redirect("x:1", Some("y:1"), &mut rng).addr, "y:1");
        }
        assert!(d
            .after_redirect("x:1", Some("y:1"), &mut rng)
            .addr
            .starts_with('s'));
        assert!(d
            .after_redirect("x:1", None, &mut rng)
            .addr
            .starts_with('s'));
    }
}
