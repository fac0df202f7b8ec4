//! What can make a `pyxis` command fail, and the exit code each failure maps to.
//!
//! Owns: [`CliError`], [`ExitStatus`] and the mapping between them (documented in
//! [`crate::EXIT_CODES_HELP`]). Must never print or exit by itself: `main` reports the
//! error on stderr and exits with [`CliError::exit_status`].

use std::process::ExitCode;

use pyxis_core::Error as PyxisError;

/// The documented exit codes of `pyxis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// 0: success.
    Success,
    /// 1: any other failure (server internal error, including a write to a read-only
    /// `/pyxis` node; protocol violation, local I/O).
    Failure,
    /// 2: the command line was malformed (reported by the argument parser).
    Usage,
    /// 3: the node (or a create's parent) does not exist.
    NotFound,
    /// 4: the node already exists.
    Exists,
    /// 5: the request was refused: bad path, data too large, node has children, parent
    /// ephemeral, create or delete under `/pyxis` (a write to a read-only `/pyxis` node
    /// is a server internal error: [`ExitStatus::Failure`]).
    InvalidArgument,
    /// 6: the cluster could not be reached or did not answer in time (connection refused
    /// or lost, timeout, no leader, session expired).
    Connection,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::NotFound => 3,
            ExitStatus::Exists => 4,
            ExitStatus::InvalidArgument => 5,
            ExitStatus::Connection => 6,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// An operation on `path` failed with the client's error.
    #[error("{op} {path}: {source}")]
    Request {
        /// The operation (`get`, `create`, ...).
        op: &'static str,
        /// The path it was about.
        path: String,
        /// The client's error.
        source: PyxisError,
    },
    /// No session could be opened with the cluster: none within `--timeout`, or every
    /// server failed in turn (a one-shot command gives up then).
    #[error("no session with the cluster at {addrs} (gave up after {}): {reason}", humantime::format_duration(*.waited))]
    Connect {
        /// The server list tried.
        addrs: String,
        /// How long the command waited (whole milliseconds).
        waited: std::time::Duration,
        /// Why, as far as the command can tell (e.g. "connection refused by
        /// 127.0.0.1:7000").
        reason: String,
    },
    /// Standard output was closed by its reader (`pyxis ls / | head -1`): the command
    /// ends quietly, with exit code 0.
    #[error("standard output closed")]
    StdoutClosed,
    /// The command line was valid but its values are not (e.g. a bad benchmark mix).
    #[error("{0}")]
    Usage(String),
    /// Reading stdin or writing stdout failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A watch ended early (the client closed or the session could not be kept).
    #[error("watch on {path} ended: {reason}")]
    WatchEnded {
        /// The watched path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A recipe (`lock`, `elect`) on `path` failed for a reason of its own (a lock lost
    /// while its command ran, a wait that ran out).
    #[error("{op} {path}: {reason}")]
    Recipe {
        /// The command.
        op: &'static str,
        /// The lock's or election's node.
        path: String,
        /// Why.
        reason: String,
    },
    /// The command `pyxis lock` ran ended with this exit code (128 + signal if killed),
    /// which `pyxis` exits with, quietly.
    #[error("the command exited with code {0}")]
    Exit(u8),
    /// The local test cluster could not start.
    #[error("cannot start the dev cluster: {0}")]
    Dev(String),
    /// A benchmark could not run to its end.
    #[error("benchmark: {0}")]
    Bench(String),
}

impl CliError {
    /// Wraps a client error from `op` on `path`.
    pub fn request(op: &'static str, path: &str, source: PyxisError) -> CliError {
        CliError::Request {
            op,
            path: path.to_owned(),
            source,
        }
    }

    /// What the user may do about this failure, printed after it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Connect { .. } => Some(
                "run pyxis dev for a local cluster, or point PYXIS_ADDRS (or --addrs) at your servers",
            ),
            _ => None,
        }
    }

    /// The exit status this failure is reported with.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CliError::StdoutClosed => ExitStatus::Success,
            CliError::Request { source, .. } => status_of(source),
            CliError::Connect { .. } | CliError::WatchEnded { .. } | CliError::Recipe { .. } => {
                ExitStatus::Connection
            }
            CliError::Exit(_) => ExitStatus::Failure,
            CliError::Usage(_) => ExitStatus::Usage,
            CliError::Io(_) | CliError::Dev(_) | CliError::Bench(_) => ExitStatus::Failure,
        }
    }
}

/// The exit status of a client error.
pub fn status_of(error: &PyxisError) -> ExitStatus {
    match error {
        PyxisError::NotFound { .. } => ExitStatus::NotFound,
        PyxisError::Exists { .. } => ExitStatus::Exists,
        PyxisError::InvalidArgument { .. }
        | PyxisError::InvalidPath { .. }
        | PyxisError::DataTooLarge { .. } => ExitStatus::InvalidArgument,
        PyxisError::SessionExpired
        | PyxisError::Again { .. }
        | PyxisError::ConnectionLoss { .. }
        | PyxisError::Timeout { .. }
        | PyxisError::Unreachable { .. }
        | PyxisError::Closed => ExitStatus::Connection,
        _ => ExitStatus::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_distinct_documented_codes() {
        let cases = [
            (PyxisError::NotFound { path: "/a".into() }, 3),
            (PyxisError::Exists { path: "/a".into() }, 4),
            (
                PyxisError::InvalidArgument {
                    reason: "has children".into(),
                },
                5,
            ),
            (PyxisError::DataTooLarge { len: 2, max: 1 }, 5),
            (
                PyxisError::Timeout {
                    outcome_unknown: false,
                    cause: None,
                },
                6,
            ),
            (
                PyxisError::Again {
                    outcome_unknown: true,
                },
                6,
            ),
            (
                PyxisError::Internal {
                    reason: "boom".into(),
                },
                1,
            ),
        ];
        for (error, code) in cases {
            let cli = CliError::request("get", "/a", error.clone());
            assert_eq!(cli.exit_status().code(), code, "{error}");
        }
        let help = crate::EXIT_CODES_HELP;
        for code in 0..=6 {
            assert!(
                help.contains(&format!("  {code}  ")),
                "code {code} documented"
            );
        }
    }
}
