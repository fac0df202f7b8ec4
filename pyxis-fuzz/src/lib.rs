//! # pyxis-fuzz: fuzz target bodies
//!
//! Owns the bodies of the cargo-fuzz targets in `fuzz/` as plain functions, so that a
//! stable `cargo test` runs them over the seed corpus too (`tests/corpus.rs`). Each body
//! takes the fuzzer's raw bytes and panics only when an invariant of the code under test
//! is broken. Must never hide a failure (no `catch_unwind`) and never do I/O.
//!
//! ```
//! // A valid ping-answer frame and some garbage: neither may panic.
//! pyxis_fuzz::frame_decoder(&[0, 0, 0, 10, b'p', b'y', b'x', b'i', 8, 7, 8, 0x35, 1, 0xda]);
//! pyxis_fuzz::frame_decoder(b"\xff\xff\xff\xffgarbage");
//! ```

mod client_input;
mod frame_decoder;
pub mod golden;
mod server_input;

pub use client_input::{
    client_input, client_script, Answer, AnswerData, ClientScript, ClientStep, InputTurns, Xid,
};
pub use frame_decoder::{frame_decoder, FrameInput, Piece};
pub use server_input::{
    server_input, server_script, FuzzRequest, ReqOp, ServerScript, ServerStep, Sid,
};
