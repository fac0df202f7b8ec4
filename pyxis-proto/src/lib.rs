//! # pyxis-proto: the Pyxis wire layer
//!
//! This crate owns everything that is byte-exact about the Pyxis client protocol
//! ([protocol] §1, §2, §8): the protobuf messages of `pyxis.rpc` and
//! `pyxis.store`, the frame codec (`len | "pyxi" | payload | adler32`), the proto2 `required`
//! checks prost does not do by itself, the watch-event and node-flag values, and the path rules
//! and limits the server enforces.
//!
//! It must never do I/O, touch a clock, spawn, or panic on any input: bytes from the
//! network go through [`FrameDecoder`], which returns a typed [`FrameError`] for anything
//! malformed and never allocates more than its frame cap for one frame.
//!
//! ```
//! use pyxis_proto::{encode_request, FrameDecoder, rpc::{Request, PingRequest}};
//!
//! let ping = Request { sid: Some(7), xid: Some(1), ping: Some(PingRequest {}),
//! ..Default::default() }; let bytes = encode_request(&ping);
//! let mut decoder = FrameDecoder::new();
//! decoder.extend(&bytes);
//! assert_eq!(decoder.next_request().unwrap(), Some(ping));
//! assert_eq!(decoder.next_request().unwrap(), None); // wants more bytes
//! ```

mod frame;
pub mod limits;
mod messages;
// The protocol description, shipped with the crate (PROTOCOL.md) and cited by section
// (§1–§9) throughout the workspace's docs.
#[doc = include_str!("../PROTOCOL.md")]
pub mod protocol {}
mod required;

pub use frame::{
    adler32, decode_node, encode_frame, encode_request, encode_response, frame_payload,
    FrameDecoder, FrameError, CHECKSUM_LEN, DEFAULT_MAX_FRAME_LEN, HEADER_LEN, MIN_FRAME_LEN, TAG,
};
pub use messages::{event_type, node_flags, rpc, store, ErrorType};
pub use required::{decode_request, decode_response, DecodeError};
