//! The errors an operation can complete with, split by who broke the rules: the caller
//! (bad path, closed client), the connection or peer (connection loss, timeout), and the
//! server's answer (not found, exists, ...).
//!
//! Owns: [`Error`] and the mapping from the wire's `ErrorType` codes. Must never decide
//! what to do about an error (retry, reconnect): that is the session and request modules'.

use std::fmt;

use pyxis_proto::limits::PathError;

use crate::cause::Cause;

/// Why an operation failed. Every variant is something a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- the server's answers ---
    /// The node (or, for create, its parent: see `path`) does not exist.
    #[error("node not found: {path}")]
    NotFound {
        /// The missing path as the server reported it (the parent's, for a create), or the
        /// requested path when the server gave none.
        path: String,
    },
    /// Create of a path that exists.
    #[error("node exists: {path}")]
    Exists {
        /// The path.
        path: String,
    },
    /// The server refused the arguments (delete with children, node too large, parent
    /// ephemeral, write under `/pyxis`, ...).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// The server's reason.
        reason: String,
    },
    /// The session is gone; the client has registered a new one (see
    /// `SessionEvent::Expired`). The operation was answered so, or belonged to the gone
    /// session and was not sent in it: it is never sent in the new session.
    #[error("session expired")]
    SessionExpired,
    /// No leader now, or leadership changed with the request in flight. For
    /// create/delete/write/unregister the outcome is unknown.
    #[error("no leader available{}", unknown_suffix(*outcome_unknown))]
    Again {
        /// The write may or may not have been applied.
        outcome_unknown: bool,
    },
    /// The server failed internally.
    #[error("server internal error: {reason}")]
    Internal {
        /// The server's reason.
        reason: String,
    },
    /// An error code this client does not know, kept as received.
    #[error("unknown server error code {code}: {reason}")]
    Unknown {
        /// The raw `ErrorType` value.
        code: i32,
        /// `err.data`, lossily decoded.
        reason: String,
    },

    // --- the connection ---
    /// The connection was lost with the request in flight. When `outcome_unknown`, a
    /// create/delete/write/unregister may have been applied; it was not retried.
    #[error("connection lost{}{}", unknown_suffix(*outcome_unknown), CauseSuffix(cause))]
    ConnectionLoss {
        /// The write may or may not have been applied.
        outcome_unknown: bool,
        /// Why the connection was lost, naming the server.
        cause: Option<Cause>,
    },
    /// The request deadline passed. When `outcome_unknown`, the request had been sent. An
    /// operation is never sent past its deadline, even when the process wakes from a
    /// pause to a new session before its timer fires.
    #[error("request timed out{}{}", unknown_suffix(*outcome_unknown), CauseSuffix(cause))]
    Timeout {
        /// The write may or may not have been applied.
        outcome_unknown: bool,
        /// While no session was up: the last reason none could be had (a refused
        /// connect, no leader known, ...), naming the server. `None` when a session was
        /// up (the server was slow to answer).
        cause: Option<Cause>,
    },
    /// No server could be reached and the client fails fast (`Config::fail_fast`):
    /// every listed server failed in turn, so the request failed at once instead of
    /// waiting for its deadline. Nothing was sent.
    #[error("no server reachable: {cause}")]
    Unreachable {
        /// The last failure, naming the server.
        cause: Cause,
    },
    /// The server sent something that breaks the protocol (e.g. a stat answer that is not
    /// a Node).
    #[error("protocol violation by the server: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },

    // --- the caller ---
    /// The path is malformed (checked before anything is sent).
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path given.
        path: String,
        /// Why it is invalid.
        reason: PathError,
    },
    /// The data is larger than the server accepts (1 MiB); nothing was sent.
    #[error("data of {len} bytes exceeds the node size limit of {max}")]
    DataTooLarge {
        /// The data's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The client is closed.
    #[error("client is closed")]
    Closed,
    /// The client could not be started: an invalid server list or option, or no
    /// runtime or thread to drive it (an adapter's `ConnectError`, as an `Error`).
    #[error("cannot start the client: {reason}")]
    Start {
        /// What was wrong.
        reason: String,
    },
}

/// How the errors whose outcome may be unknown say so.
fn unknown_suffix(outcome_unknown: bool) -> &'static str {
    if outcome_unknown {
        " with the request sent: it may have been applied"
    } else {
        ""
    }
}

/// How the errors that carry a [`Cause`] show it.
struct CauseSuffix<'a>(&'a Option<Cause>);

impl fmt::Display for CauseSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(cause) => write!(f, " ({cause})"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// The last reason no session could be had with a leader, naming the server, when
    /// this error came from it (a timeout while no session was up, a lost connection,
    /// an unreachable cluster).
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Error::Timeout { cause, .. } | Error::ConnectionLoss { cause, .. } => cause.as_ref(),
            Error::Unreachable { cause } => Some(cause),
            _ => None,
        }
    }

    /// Whether the operation may have been applied although it failed: a create,
    /// delete, write or unregister that was sent and then lost with the connection, the
    /// leader or the deadline. Such an operation is never retried by the client; read
    /// the node to learn what happened.
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            Error::Again { outcome_unknown }
            | Error::ConnectionLoss {
                outcome_unknown, ..
            }
            | Error::Timeout {
                outcome_unknown, ..
            } => *outcome_unknown,
            _ => false,
        }
    }

    /// Whether trying the same operation again may succeed: the failure came from the
    /// connection, the leader or the deadline, not from the request or the node. For a
    /// write whose [outcome is unknown](Self::is_outcome_unknown), check before retrying.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Again { .. }
                | Error::ConnectionLoss { .. }
                | Error::Timeout { .. }
                | Error::Unreachable { .. }
                | Error::SessionExpired
                | Error::Internal { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_explain_themselves_and_classify() {
        let sent = Error::Timeout {
            outcome_unknown: true,
            cause: None,
        };
        let unsent = Error::ConnectionLoss {
            outcome_unknown: false,
            cause: None,
        };
        assert_eq!(
            sent.to_string(),
            "request timed out with the request sent: it may have been applied"
        );
        assert_eq!(unsent.to_string(), "connection lost");
        assert!(sent.is_outcome_unknown() && sent.is_retryable());
        assert!(!unsent.is_outcome_unknown() && unsent.is_retryable());
        let exists = Error::Exists { path: "/a".into() };
        assert!(!exists.is_outcome_unknown() && !exists.is_retryable());
        assert!(!Error::Closed.is_retryable());
        let refused = Cause::new(
            "127.0.0.1:7000",
            crate::CauseKind::Io(crate::IoFailure::Refused),
        );
        let waited = Error::Timeout {
            outcome_unknown: false,
            cause: Some(refused.clone()),
        };
        assert_eq!(
            waited.to_string(),
            "request timed out (connection refused by 127.0.0.1:7000)"
        );
        assert_eq!(waited.cause(), Some(&refused));
        let fast = Error::Unreachable { cause: refused };
        assert_eq!(
            fast.to_string(),
            "no server reachable: connection refused by 127.0.0.1:7000"
        );
        assert!(fast.is_retryable() && !fast.is_outcome_unknown());
    }
}
