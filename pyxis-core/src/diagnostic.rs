//! What the core decided, as data, for logs: redirects followed, backoff delays,
//! Registers sent, and the ping's verdicts (a release that re-registers every watch, a
//! late wake-up, a probe of a silent connection). The core has no logging; an adapter
//! drains [`Client::poll_diagnostic`](crate::Client::poll_diagnostic) and logs what it
//! likes. Watch events the core inferred are marked on the events themselves
//! (`WatchEvent::inferred`), and sessions established, lost and expired are
//! [`SessionEvent`](crate::SessionEvent)s.
//!
//! Owns: [`Diagnostic`] and the bounded queue the decisions are recorded in. Must never
//! decide anything or be read by the core: recording is output only, so the same inputs
//! give the same decisions whether or not anyone drains it. Nothing is recorded per
//! request: only connection attempts and the ping's rare verdicts.

use std::collections::VecDeque;
use std::time::Duration;

/// Decisions kept undrained at most; past it the oldest are dropped (a client whose
/// adapter never drains them stays bounded).
const BOUND: usize = 64;

/// One decision of the core, recorded for logs (drained with
/// [`Client::poll_diagnostic`](crate::Client::poll_diagnostic)); recording it changes
/// nothing the core does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnostic {
    /// `from` answered kNotLeader naming `to`: the next attempt is there, after `delay`.
    Redirect {
        /// The server that refused.
        from: String,
        /// The leader it named.
        to: String,
        /// The (short, jittered) delay before connecting.
        delay: Duration,
    },
    /// After a failure (see `Client::last_cause`), the next attempt is at `addr` after
    /// a backoff of `delay`; `attempt` counts the failures since the session was last
    /// healthy.
    Backoff {
        /// The next server tried.
        addr: String,
        /// The backoff delay drawn.
        delay: Duration,
        /// Failures in a row so far.
        attempt: u32,
    },
    /// A Register was sent to `addr`: resuming the session `resume`, or asking for a
    /// new one.
    Register {
        /// The server.
        addr: String,
        /// The session being resumed, if any.
        resume: Option<u64>,
    },
    /// A ping the server had held was answered early, or read long after any hold: the
    /// server may have dropped every watch (a leader change, perhaps back to this
    /// node), so every watch is registered again and its state compared.
    PingReleased {
        /// Early (a release); otherwise read long after any hold (`overdue`).
        early: bool,
    },
    /// An input came long after the deadline the core asked for (the process was paused
    /// or starved): every watch is registered again and its state compared.
    LateWake,
    /// The held ping passed its liveness bound with nothing read: a probe replaces it
    /// (unanswered within `ping_grace`, the connection is given up).
    PingProbe,
}

/// The bounded queue of decisions not yet drained.
#[derive(Debug, Default, Clone)]
pub(crate) struct Diagnostics {
    queue: VecDeque<Diagnostic>,
}

impl Diagnostics {
    /// Records a decision, dropping the oldest past [`BOUND`].
    pub(crate) fn push(&mut self, diagnostic: Diagnostic) {
        if self.queue.len() >= BOUND {
            self.queue.pop_front();
        }
        self.queue.push_back(diagnostic);
    }

    pub(crate) fn pop(&mut self) -> Option<Diagnostic> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undrained_queue_stays_bounded_keeping_the_newest() {
        let mut d = Diagnostics::default();
        for attempt in 0..1000 {
            d.push(Diagnostic::Backoff {
                addr: "a:1".into(),
                delay: Duration::ZERO,
                attempt,
            });
        }
        assert_eq!(d.queue.len(), BOUND);
        assert!(matches!(
            d.pop(),
            Some(Diagnostic::Backoff { attempt: 936, .. })
        ));
    }
}
