//! The public vocabulary of the client core: configuration, operations, replies, nodes,
//! watch and session events, identifiers and the I/O instructions for adapters.
//!
//! Owns: plain data types and their `Display`s. Must never hold protocol logic.

use bytes::Bytes;
use std::fmt;

use crate::error::Error;

/// Identifies one submitted operation; returned by `Client::submit` and echoed in
/// [`Event::Completed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies one application watch; returned by `Client::watch` (or with a read that
/// arms one) and echoed in [`Event::Watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(pub u64);

/// Identifies one connection the core asked the adapter to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Whether a created node outlives its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CreateMode {
    /// Lives until deleted.
    #[default]
    Persistent,
    /// Deleted when the session that created it ends.
    Ephemeral,
}

/// A set of watch event types: a bit mask with the protocol's values ([protocol](pyxis_proto::protocol) §2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventMask(pub u32);

/// Whether a watch fires once or keeps delivering until dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WatchMode {
    /// Delivered once, then spent (the protocol's native watch).
    #[default]
    OneShot,
    /// Re-armed by the core after each event until `Client::unwatch`.
    Persistent,
}

/// What an application watch listens for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchSpec {
    /// The watched path.
    pub path: String,
    /// Event types of interest.
    pub mask: EventMask,
    /// Also match events on descendants ([protocol](pyxis_proto::protocol) §6).
    pub recursive: bool,
    /// One-shot or persistent.
    pub mode: WatchMode,
}

/// An operation an application submits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Create a node (no recursive create).
    Create {
        /// Path of the new node.
        path: String,
        /// Initial data (`None` sends no data field).
        data: Option<Bytes>,
        /// Persistent or ephemeral.
        mode: CreateMode,
    },
    /// Delete a node without children.
    Delete {
        /// Path of the node.
        path: String,
    },
    /// Replace a node's data (its version grows by one).
    Write {
        /// Path of the node.
        path: String,
        /// New data.
        data: Bytes,
    },
    /// Read a node (data, children, flags, version, owner), optionally arming a watch.
    Read {
        /// Path of the node.
        path: String,
        /// Keep `_`-prefixed children (`None`: the config's default).
        show_hidden: Option<bool>,
        /// A watch armed in the same request.
        watch: Option<WatchSpec>,
    },
    /// Like `Read`, but a missing node is `Reply::Exists(None)`, not an error; a watch
    /// armed on a missing node waits for its creation.
    Exists {
        /// Path of the node.
        path: String,
        /// A watch armed in the same request.
        watch: Option<WatchSpec>,
    },
    /// End the session (its ephemeral nodes are deleted) but keep the client usable:
    /// the next operation registers a new session.
    Unregister,
}

/// A node as read from the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The node's path.
    pub path: String,
    /// Its data.
    pub data: Bytes,
    /// Child names (bare names, not paths), sorted.
    pub children: Vec<String>,
    /// Raw flags (`flags & 1` = ephemeral).
    pub flags: u32,
    /// Grows by one on each write, from 0.
    pub version: u64,
    /// The session that created it (for an ephemeral node, its owner).
    pub owner: u64,
}

/// A successful operation's result.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// Create, delete, write, unregister succeeded.
    Done,
    /// Read: the node. When the read armed a watch, `watch` names it.
    Node {
        /// The node read.
        node: Node,
        /// The watch armed with this read, if any.
        watch: Option<WatchId>,
    },
    /// Exists: the node or `None`. When the call armed a watch, `watch` names it.
    Exists {
        /// The node, if it exists.
        node: Option<Node>,
        /// The watch armed with this call, if any.
        watch: Option<WatchId>,
    },
}

/// A watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// The node was created.
    Create,
    /// The node was deleted.
    Delete,
    /// The node's data was written.
    Modify,
    /// A child was created or deleted.
    Children,
    /// A bit pattern outside the known types, kept as received.
    Other(u32),
}

/// A watch fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The node the event is about.
    pub path: String,
    /// What happened.
    pub kind: EventType,
    /// `true` when the core inferred the event by comparing state after a reconnect
    /// (the server's own event was lost with the connection or the leader change).
    pub inferred: bool,
    /// `true` on the watch's last event: nothing more comes for it (a one-shot watch's
    /// one event). The core decides this; callers never re-derive it from the spec.
    pub last: bool,
}

/// The session's state changes, each reported once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A session is up on a connection to the leader.
    Connected {
        /// The session id.
        sid: u64,
    },
    /// The connection to the leader was lost; the core is reconnecting with the same sid.
    Disconnected,
    /// The old session is gone (ephemeral nodes deleted, server-side watches dropped);
    /// reported after the `Connected` of the new session. The operations submitted
    /// before it that were not sent in the old session complete with
    /// `Error::SessionExpired`: none is carried into the new session.
    Expired {
        /// The session that expired.
        old_sid: u64,
    },
    /// Every watch was registered with the server again, at once: after a session came
    /// up (a new one, or one resumed on a new connection; after its `Connected` and
    /// `Expired`), or on the same connection when the server may have dropped every
    /// watch (a held ping released early, as a leadership change back to this node does,
    /// or a late wake-up after a pause). Events the server raised meanwhile are lost.
    /// The core compares a fresh look at each node its watches hold a baseline of (the
    /// watched nodes, and below a recursive watch the nodes its events and looks named)
    /// with what it saw last, and reports the differences as inferred events; a change
    /// to any other node below a recursive watch cannot be inferred. Anything that
    /// mirrors more than that (a subtree cache, a directory's data) re-reads it on this
    /// event. Emitted once per re-registration, only when there are watches.
    WatchesRearmed,
    /// `close` could not confirm that every session the client made has ended: no
    /// server answered its Unregister with ok or kSessionExpired within
    /// `close_timeout`, or a Register without sid (in flight at `close`, or earlier
    /// within the server's largest session timeout) got no answer that names its
    /// session or says none was made (kAgain: it may have committed; its connection
    /// broke). Such a session and its ephemeral nodes may live on until the server
    /// expires it (at most its session timeout). Emitted just before `Closed`.
    CloseUnconfirmed {
        /// The session that may still be alive; `None` when the one known was ended
        /// (or none was known) and only a session whose id never reached the client
        /// may live.
        sid: Option<u64>,
    },
    /// The client is closed; nothing follows.
    Closed,
}

/// Why the core asked to be woken up (see `Client::poll_timeout_reason`): each deadline
/// the core keeps, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimerReason {
    /// The oldest incomplete operation's deadline (`request_timeout`).
    RequestDeadline,
    /// A backoff or redirect delay before the next connect ends.
    Backoff,
    /// A connect must have succeeded by then (`connect_timeout`).
    Connect,
    /// The Register must have been answered by then (`connect_timeout`).
    Register,
    /// A connection that answered kNotLeader or kAgain must have answered the other
    /// writes in flight by then (`ping_grace`).
    Drain,
    /// `close` ends by then, confirmed or not (`close_timeout`).
    Close,
    /// The next ping, paced, is due.
    PingDue,
    /// The held ping's liveness bound (session timeout + `ping_grace`): a probe follows.
    PingLiveness,
    /// The liveness probe's bound (`ping_grace`): unanswered, the connection is dead.
    PingProbe,
}

/// What the core reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An operation completed, exactly once.
    Completed {
        /// Which operation.
        id: RequestId,
        /// Its result.
        result: Result<Reply, Error>,
    },
    /// A watch fired. A one-shot watch gets at most one, marked `last`, and is then spent.
    Watch {
        /// Which watch.
        id: WatchId,
        /// The event.
        event: WatchEvent,
    },
    /// A watch ended without firing: the client closed (`Error::Closed`), its path is
    /// invalid, or the server refused its registration with a final error. Nothing more
    /// comes for it. (A session expiry does not end watches: the core re-registers them
    /// on the new session and reports what changed; `Client::unwatch` emits nothing.)
    WatchEnded {
        /// Which watch.
        id: WatchId,
        /// Why.
        reason: Error,
    },
    /// The session changed state.
    Session(SessionEvent),
}

/// An instruction to the adapter about connections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoAction {
    /// Open a TCP connection to `addr` and report it with `handle_connected` (or
    /// `handle_closed` if it fails).
    Connect {
        /// The id to report it under.
        conn: ConnId,
        /// `host:port`.
        addr: String,
    },
    /// Close this connection; no `handle_closed` is needed for it.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Bytes to write on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The connection.
    pub conn: ConnId,
    /// Whole frames, possibly several.
    pub data: Bytes,
}

impl fmt::Display for CreateMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CreateMode::Persistent => "persistent",
            CreateMode::Ephemeral => "ephemeral",
        })
    }
}

impl EventMask {
    /// Node created.
    pub const CREATE: EventMask = EventMask(pyxis_proto::event_type::CREATE);
    /// Node deleted.
    pub const DELETE: EventMask = EventMask(pyxis_proto::event_type::DELETE);
    /// Node data written.
    pub const MODIFY: EventMask = EventMask(pyxis_proto::event_type::MODIFY);
    /// A child created or deleted.
    pub const CHILDREN: EventMask = EventMask(pyxis_proto::event_type::CHILDREN);
    /// Every event type (the Go client's 0xFF).
    pub const ALL: EventMask = EventMask(pyxis_proto::event_type::ALL);

    /// Whether any bit of `other` is set here.
    pub fn intersects(self, other: EventMask) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: EventMask) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for EventMask {
    type Output = EventMask;
    fn bitor(self, rhs: EventMask) -> EventMask {
        EventMask(self.0 | rhs.0)
    }
}

impl fmt::Display for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 7] = [
            (0x01, "create"),
            (0x02, "delete"),
            (0x04, "modify"),
            (0x08, "children"),
            (0x10, "connected"),
            (0x20, "disconnected"),
            (0x40, "session-expired"),
        ];
        let mut first = true;
        let mut rest = self.0;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !bit;
            }
        }
        if rest != 0 || first {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventMask({self})")
    }
}

/// Where the session stands, as seen by [`Client::state`](crate::Client::state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Looking for the leader: waiting out a backoff or opening a connection.
    Connecting,
    /// Connected; Register sent, answer awaited.
    Registering,
    /// A session is up: requests flow and the ping runs.
    Connected,
    /// No session and none wanted (after `Op::Unregister`); the next operation or watch
    /// registers a new one.
    Idle,
    /// `close` was called; waiting for the Unregister answer.
    Closing,
    /// Closed; nothing more is emitted.
    Closed,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Connecting => "connecting",
            SessionState::Registering => "registering",
            SessionState::Connected => "connected",
            SessionState::Idle => "idle",
            SessionState::Closing => "closing",
            SessionState::Closed => "closed",
        })
    }
}

impl EventType {
    /// The event type of a wire `WatchEvent.type` value.
    pub fn from_bits(bits: u32) -> EventType {
        match bits {
            pyxis_proto::event_type::CREATE => EventType::Create,
            pyxis_proto::event_type::DELETE => EventType::Delete,
            pyxis_proto::event_type::MODIFY => EventType::Modify,
            pyxis_proto::event_type::CHILDREN => EventType::Children,
            other => EventType::Other(other),
        }
    }

    /// The mask bit(s) of this type.
    pub fn mask(self) -> EventMask {
        EventMask(match self {
            EventType::Create => pyxis_proto::event_type::CREATE,
            EventType::Delete => pyxis_proto::event_type::DELETE,
            EventType::Modify => pyxis_proto::event_type::MODIFY,
            EventType::Children => pyxis_proto::event_type::CHILDREN,
            EventType::Other(bits) => bits,
        })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventType::Create => f.write_str("create"),
            EventType::Delete => f.write_str("delete"),
            EventType::Modify => f.write_str("modify"),
            EventType::Children => f.write_str("children"),
            EventType::Other(bits) => write!(f, "{bits:#x}"),
        }
    }
}

impl fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.path)?;
        if self.inferred {
            f.write_str(" (inferred)")?;
        }
        Ok(())
    }
}

impl fmt::Display for SessionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEvent::Connected { sid } => write!(f, "connected (session {sid:#x})"),
            SessionEvent::Disconnected => f.write_str("disconnected"),
            SessionEvent::Expired { old_sid } => write!(f, "session {old_sid:#x} expired"),
            SessionEvent::WatchesRearmed => {
                f.write_str("every watch registered again (re-read what the watches cover)")
            }
            SessionEvent::CloseUnconfirmed { sid: Some(sid) } => {
                write!(
                    f,
                    "close not confirmed: session {sid:#x} may live until it expires"
                )
            }
            SessionEvent::CloseUnconfirmed { sid: None } => f.write_str(
                "close not confirmed: a session whose id never arrived may live until it expires",
            ),
            SessionEvent::Closed => f.write_str("closed"),
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (version {}, {}, owner {:#x}, {} bytes, {} children)",
            self.path,
            self.version,
            if self.is_ephemeral() {
                CreateMode::Ephemeral
            } else {
                CreateMode::Persistent
            },
            self.owner,
            self.data.len(),
            self.children.len()
        )
    }
}

impl Node {
    /// Whether the node is ephemeral (`flags & 1`).
    pub fn is_ephemeral(&self) -> bool {
        self.flags & 1 != 0
    }
}

impl Op {
    /// The path the operation is about (`None` for `Unregister`).
    pub fn path(&self) -> Option<&str> {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path }
            | Op::Write { path, .. }
            | Op::Read { path, .. }
            | Op::Exists { path, .. } => Some(path),
            Op::Unregister => None,
        }
    }

    /// Whether the operation changes state on the server (create, delete, write,
    /// unregister): such an operation is never retried once sent, and reads submitted
    /// after it wait for its answer.
    pub fn is_write(&self) -> bool {
        crate::requests::OpKind::of(self).is_write()
    }
}

impl WatchSpec {
    /// A one-shot, non-recursive watch on `path` for the types in `mask`.
    pub fn new(path: impl Into<String>, mask: EventMask) -> WatchSpec {
        WatchSpec {
            path: path.into(),
            mask,
            recursive: false,
            mode: WatchMode::OneShot,
        }
    }
}
