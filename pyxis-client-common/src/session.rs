//! The session's state changes as applications see them: the core's events plus the two
//! signals an application acts on when the connection is lost, `Suspended` (the session
//! is probably alive and being resumed) and `Lost` (disconnected for longer than the
//! session timeout: the server has probably expired it).
//!
//! Owns: [`SessionEvent`] and the [`Suspension`] clock that decides when a suspension
//! becomes `Lost`. Must never read a clock (the driver passes `now`) or decide anything
//! about the protocol: the core reports connection loss, sessions and expiry.

use std::time::{Duration, Instant};

/// The session's state changes, each reported once, in order.
///
/// A typical life: `Connected`, then on a connection loss `Suspended` and either
/// `Connected` (same sid: the session was resumed) or, after the session timeout,
/// `Lost` and later `Connected` (new sid) followed by `Expired`; finally `Closed`. With
/// watches, each `Connected` (and `Expired`) is followed by `WatchesRearmed`, which also
/// comes alone when the watches were registered again on the same connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A session is up on a connection to the leader (a new one, or the same one
    /// resumed after `Suspended`).
    Connected {
        /// The session id.
        sid: u64,
    },
    /// The connection to the leader was lost; the client is reconnecting to resume the
    /// same session. Its ephemeral nodes and watches live on for now, but nothing this
    /// client holds (a lock, a leadership) should be acted on until `Connected`.
    Suspended,
    /// The connection has been lost for longer than the session timeout: the server has
    /// most likely expired the session and deleted its ephemeral nodes (as Curator's
    /// `LOST`). Give up what rests on them. The client keeps reconnecting; `Expired`
    /// confirms the expiry once a server is reached.
    Lost,
    /// The old session is gone (ephemeral nodes deleted, server-side watches dropped);
    /// reported after the `Connected` of the new session, unless
    /// `Options::close_on_expiry` is set: then the client closes (`Closed` follows).
    Expired {
        /// The session that expired.
        old_sid: u64,
    },
    /// Every watch was registered with the server again: after `Connected` (and
    /// `Expired`), or on the same connection when the server may have dropped every
    /// watch (a held ping released early, as a leadership change back to the connected
    /// node does, or a pause of the process). Events raised meanwhile are lost: what the
    /// client could compare comes as inferred watch events, but below a recursive watch
    /// a change to a node no event or look named cannot be inferred. A view of more than
    /// the watched nodes (a subtree, a directory's data) re-reads on this event.
    WatchesRearmed,
    /// The client is closed; the stream ends after this event.
    Closed,
}

impl std::fmt::Display for SessionEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEvent::Connected { sid } => write!(f, "connected (session {sid:#x})"),
            SessionEvent::Suspended => f.write_str("suspended (connection lost)"),
            SessionEvent::Lost => f.write_str("lost (disconnected past the session timeout)"),
            SessionEvent::Expired { old_sid } => write!(f, "session {old_sid:#x} expired"),
            SessionEvent::WatchesRearmed => f.write_str("every watch registered again"),
            SessionEvent::Closed => f.write_str("closed"),
        }
    }
}

/// When the connection was lost and whether that has been reported as `Lost`.
#[derive(Debug, Default)]
pub(crate) struct Suspension {
    since: Option<Instant>,
    lost: bool,
}

impl Suspension {
    /// The connection was lost at `now` (the first loss counts while already suspended).
    pub(crate) fn begin(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }

    /// A session is up again, or the client closed.
    pub(crate) fn end(&mut self) {
        *self = Suspension::default();
    }

    /// Since when the connection has been lost, if it is.
    pub(crate) fn since(&self) -> Option<Instant> {
        self.since
    }

    /// When the suspension turns into `Lost`, if it has not yet.
    pub(crate) fn deadline(&self, session_timeout: Duration) -> Option<Instant> {
        match self.since {
            Some(since) if !self.lost => since.checked_add(session_timeout),
            _ => None,
        }
    }

    /// Whether the suspension has just become `Lost` at `now` (`true` once).
    pub(crate) fn turns_lost(&mut self, now: Instant, session_timeout: Duration) -> bool {
        let due = self.deadline(session_timeout).is_some_and(|at| at <= now);
        self.lost |= due;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspension_turns_lost_once_after_the_session_timeout() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut s = Suspension::default();
        assert_eq!(s.deadline(timeout), None);
        s.begin(t0);
        s.begin(t0 + Duration::from_secs(1));
        assert_eq!(s.since(), Some(t0), "the first loss counts");
        assert!(!s.turns_lost(t0 + Duration::from_secs(4), timeout));
        assert!(s.turns_lost(t0 + timeout, timeout));
        assert!(!s.turns_lost(t0 + timeout * 2, timeout), "reported once");
        assert_eq!(s.deadline(timeout), None);
        s.end();
        assert_eq!(s.since(), None);
    }
}
