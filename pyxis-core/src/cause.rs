//! Why the client could not reach a leader lately: the last failed connect, redirect or
//! refusal, kept as data so that the errors callers get can say it ("connection refused
//! by 127.0.0.1:7000", "no leader known (127.0.0.1:7001 answered kAgain)").
//!
//! Owns: [`Cause`], [`CauseKind`], [`IoFailure`] and their wording. Must never decide
//! anything: the session module records a cause where it handles a fault (and forgets
//! it once a session is up); the adapter only says how a connection failed
//! ([`IoFailure`], through `Client::handle_failed`) and the core adds the address.

use std::fmt;
use std::sync::Arc;

/// How a connection failed or ended, as the adapter saw it (it maps its I/O errors to
/// this; the core knows no sockets).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoFailure {
    /// The peer refused the connection (nothing listens on the port).
    Refused,
    /// The address's host name did not resolve.
    Unresolved,
    /// The connect timed out.
    TimedOut,
    /// The peer closed or reset the connection.
    Closed,
    /// Another I/O error, as the system worded it.
    Other(String),
}

/// What went wrong with one server, without its address (see [`Cause`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CauseKind {
    /// The connection failed or ended, as the adapter reported.
    Io(IoFailure),
    /// The server answered kAgain: it knows no leader now.
    NoLeader,
    /// The server answered kNotLeader, naming the leader (a valid `host:port`) or none.
    NotLeader {
        /// The leader it named.
        leader: Option<String>,
    },
    /// The connect was not done within `connect_timeout`.
    ConnectTimeout,
    /// The session's Register was not answered within `connect_timeout`.
    RegisterTimeout,
    /// The server stopped answering (the ping's liveness bound passed, or a refused
    /// server's other answers did not come).
    Silent,
    /// The server sent bytes that break the protocol.
    Malformed,
}

/// The last reason the client could not get or keep a session with a leader, naming the
/// server: carried by `Error::Timeout`, `Error::ConnectionLoss` and
/// `Error::Unreachable`. Cheap to clone (shared).
#[derive(Clone, PartialEq, Eq)]
pub struct Cause(Arc<(String, CauseKind)>);

impl Cause {
    /// `kind` at the server `addr`.
    pub fn new(addr: impl Into<String>, kind: CauseKind) -> Cause {
        Cause(Arc::new((addr.into(), kind)))
    }

    /// The server (`host:port`) it happened with.
    pub fn addr(&self) -> &str {
        &self.0 .0
    }

    /// What happened.
    pub fn kind(&self) -> &CauseKind {
        &self.0 .1
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.addr();
        match self.kind() {
            CauseKind::Io(IoFailure::Refused) => write!(f, "connection refused by {addr}"),
            CauseKind::Io(IoFailure::Unresolved) => write!(f, "name did not resolve: {addr}"),
            CauseKind::Io(IoFailure::TimedOut) | CauseKind::ConnectTimeout => {
                write!(f, "connecting to {addr} timed out")
            }
            CauseKind::Io(IoFailure::Closed) => write!(f, "connection closed by {addr}"),
            CauseKind::Io(IoFailure::Other(what)) => write!(f, "connection to {addr}: {what}"),
            CauseKind::NoLeader => write!(f, "no leader known ({addr} answered kAgain)"),
            CauseKind::NotLeader {
                leader: Some(leader),
            } => write!(f, "{addr} is not the leader (it named {leader})"),
            CauseKind::NotLeader { leader: None } => {
                write!(
                    f,
                    "no leader known ({addr} is not the leader and named none)"
                )
            }
            CauseKind::RegisterTimeout => write!(
                f,
                "{addr} accepts connections but opened no session (Register unanswered)"
            ),
            CauseKind::Silent => write!(f, "{addr} stopped answering"),
            CauseKind::Malformed => write!(f, "{addr} sent bytes that break the protocol"),
        }
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cause").field(&self.to_string()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_the_server_and_what_happened() {
        let refused = Cause::new("127.0.0.1:7000", CauseKind::Io(IoFailure::Refused));
        assert_eq!(refused.to_string(), "connection refused by 127.0.0.1:7000");
        let again = Cause::new("10.0.0.2:7000", CauseKind::NoLeader);
        assert_eq!(
            again.to_string(),
            "no leader known (10.0.0.2:7000 answered kAgain)"
        );
        let unresolved = Cause::new("nowhere:7000", CauseKind::Io(IoFailure::Unresolved));
        assert_eq!(unresolved.to_string(), "name did not resolve: nowhere:7000");
        assert_eq!(refused.clone(), refused);
        assert_ne!(refused, again);
    }
}
