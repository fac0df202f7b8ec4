//! The public values the model takes and gives: connection ids, outputs, node snapshots,
//! the applied-operation history and control errors.
//!
//! Owns: plain data types. Must never hold behaviour beyond small conversions.

use bytes::Bytes;
use std::time::Instant;

/// A connection, named by the caller (the runner or a simulator). Unique per model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl From<u64> for ConnId {
    fn from(id: u64) -> Self {
        ConnId(id)
    }
}

/// Something the model wants done on a connection, drained with
/// [`ClusterModel::poll_output`](crate::model::ClusterModel::poll_output).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Write these bytes (whole frames, or injected garbage) to the connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The bytes to write.
        bytes: Bytes,
    },
    /// Close the connection (bad frame from the client, or its node was killed). The
    /// model has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// A node as a stat would show it, for test oracles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSnapshot {
    /// The node's data.
    pub data: Bytes,
    /// Child names (bare), in the order the server lists them: creation order, a deleted
    /// child's place taken by the last one; `/` lists `pyxis` first.
    pub children: Vec<String>,
    /// Flags: 0 persistent, 1 ephemeral.
    pub flags: u32,
    /// Starts at 0, +1 per write.
    pub version: u64,
    /// The creating session (the owner, for an ephemeral node); `None` for `/` and `/pyxis`.
    pub owner: Option<u64>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The client unregistered it.
    Unregistered,
    /// It was not refreshed in time, or a test expired it.
    Expired,
}

/// What an applied (committed) operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppliedKind {
    /// A node was created.
    Create {
        /// The stored flags.
        flags: u32,
        /// The stored data.
        data: Bytes,
    },
    /// A node was deleted by a client's Delete.
    Delete,
    /// A node's data was replaced.
    Write {
        /// The new data.
        data: Bytes,
        /// The new version.
        version: u64,
    },
    /// A session was opened (path is empty).
    SessionOpened {
        /// The clamped timeout.
        timeout_ms: u64,
        /// The connection its Register came on.
        conn: ConnId,
    },
    /// A session ended (path is empty).
    SessionClosed {
        /// Why.
        reason: SessionEnd,
    },
    /// A node was deleted because the session that created it ended: its ephemeral
    /// nodes and, as on the original server, a node it created again at the path of one
    /// of its ephemeral nodes that another session had deleted.
    EphemeralDeleted,
}

/// One entry of the applied-operation history, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedOp {
    /// Position in the history (from 1, never reused).
    pub seq: u64,
    /// The session that sent it (the owner, for an ephemeral deletion).
    pub sid: u64,
    /// The request's xid, for client operations.
    pub xid: Option<u64>,
    /// The path (empty for session operations).
    pub path: String,
    /// What happened.
    pub kind: AppliedKind,
    /// Whether the client was told it succeeded (false for a write applied while
    /// leadership was lost, answered kAgain, and for server-side deletions).
    pub acknowledged: bool,
    /// When it was applied.
    pub at: Instant,
}

/// A control the model refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No node has this index.
    #[error("no node {0}")]
    NoSuchNode(usize),
    /// The node is killed.
    #[error("node {0} is down")]
    NodeDown(usize),
}
