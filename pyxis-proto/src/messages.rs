//! The generated protobuf types and the protocol's named constants.
//!
//! Owns: the prost types for `pyxis.rpc` and `pyxis.store` (generated from `proto/*.proto`
//! into `src/generated/`, checked in and kept current by `tests/generated.rs`), the
//! watch-event bit values and the node flag values. Must never hold framing or validation
//! logic (see `frame` and `required`).

/// `pyxis.rpc`: the request and response messages of the client port.
///
/// proto2 `required` fields are plain fields here and are always encoded; decode through
/// [`crate::decode_request`] / [`crate::decode_response`] (or [`crate::FrameDecoder`]),
/// which refuse messages missing one.
#[allow(missing_docs, clippy::all)]
pub mod rpc {
    include!("generated/pyxis.rpc.rs");
}

/// `pyxis.store`: the stored node, returned serialized in a stat answer's `data`.
#[allow(missing_docs, clippy::all)]
pub mod store {
    include!("generated/pyxis.store.rs");
}

/// The private mirror of `pyxis.rpc` with every `required` relaxed to `optional`, used to
/// see which required fields a decoded message lacks.
#[allow(missing_docs, clippy::all, dead_code)]
pub(crate) mod wire {
    include!("generated/pyxis.wire.rpc.rs");
}

pub use rpc::ErrorType;

/// Watch event type bits (`WatchEvent.type`, `WatchRequest.watch`), [protocol](crate::protocol) §2.
pub mod event_type {
    /// The watched node was created.
    pub const CREATE: u32 = 0x01;
    /// The watched node was deleted.
    pub const DELETE: u32 = 0x02;
    /// The watched node's data was written.
    pub const MODIFY: u32 = 0x04;
    /// A child of the watched node was created or deleted.
    pub const CHILDREN: u32 = 0x08;
    /// Client-side: the session is connected (never raised by the server).
    pub const CONNECTED: u32 = 0x10;
    /// Client-side: the connection was lost (never raised by the server).
    pub const DISCONNECTED: u32 = 0x20;
    /// Client-side: the session expired (never raised by the server).
    pub const SESSION_EXPIRED: u32 = 0x40;
    /// Every bit, as the Go client sends it.
    pub const ALL: u32 = 0xFF;
    /// The bits the server raises on nodes.
    pub const NODE_EVENTS: u32 = CREATE | DELETE | MODIFY | CHILDREN;
}

/// Node flags (`CreateRequest.flags`, `Node.flags`), [protocol](crate::protocol) §2.
pub mod node_flags {
    /// A persistent node: lives until deleted.
    pub const PERSISTENT: i32 = 0;
    /// An ephemeral node: deleted when its owner session ends. Tested as `flags & 1`.
    pub const EPHEMERAL: i32 = 1;
}
