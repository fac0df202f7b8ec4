//! The `frame_decoder` fuzz body: the incremental [`FrameDecoder`] under arbitrary bytes
//! and arbitrary chunking.
//!
//! Owns the invariants of the frame codec on hostile input. Must never accept a panic, an
//! unbounded buffer, or a decoded message that does not survive re-encoding.

use arbitrary::{Arbitrary, Unstructured};
use bytes::{BufMut, BytesMut};
use pyxis_proto::rpc::{Request, Response};
use pyxis_proto::{encode_request, encode_response, FrameDecoder, FrameError, HEADER_LEN, TAG};

/// One piece of a structured fuzz stream.
#[derive(Debug, Clone, Arbitrary)]
pub enum Piece {
    /// A payload framed correctly (right length, tag and Adler-32), so the fuzzer reaches
    /// the message decoders.
    Framed(Vec<u8>),
    /// Bytes appended as they are.
    Raw(Vec<u8>),
    /// A header announcing `len`, followed by the tag: exercises the length checks.
    Header(u32),
}

/// The structured reading of a fuzz input.
#[derive(Debug, Clone, Arbitrary)]
pub struct FrameInput {
    /// The decoder's cap (`None`: the 64 MiB default).
    pub max_frame_len: Option<u16>,
    /// Chunk sizes the stream is fed in (cycled; 0 is read as 1).
    pub chunks: Vec<u8>,
    /// The stream's content.
    pub pieces: Vec<Piece>,
}

impl FrameInput {
    /// The byte stream the pieces describe.
    pub fn stream(&self) -> Vec<u8> {
        let mut out = BytesMut::new();
        for piece in &self.pieces {
            match piece {
                Piece::Framed(payload) => pyxis_proto::frame_payload(payload, &mut out),
                Piece::Raw(bytes) => out.put_slice(bytes),
                Piece::Header(len) => {
                    out.put_u32(*len);
                    out.put_slice(&TAG);
                }
            }
        }
        out.to_vec()
    }

    fn decoder(&self) -> FrameDecoder {
        match self.max_frame_len {
            Some(cap) => FrameDecoder::with_max_frame_len(u32::from(cap)),
            None => FrameDecoder::new(),
        }
    }
}

/// Which side of the protocol a run decodes as.
#[derive(Debug, Clone, Copy)]
enum Side {
    Client,
    Server,
}

/// What a run produced: the re-encoded frames of every decoded message, then the error
/// that ended it (if any) and the bytes left waiting.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Vec<u8>>,
    error: Option<FrameError>,
    left: usize,
}

/// Drains every whole message from `d`, checking each survives re-encoding.
fn drain(d: &mut FrameDecoder, side: Side, out: &mut Outcome) {
    while out.error.is_none() {
        let step = match side {
            Side::Client => d.next_response().map(|m| m.map(|m| roundtrip_response(&m))),
            Side::Server => d.next_request().map(|m| m.map(|m| roundtrip_request(&m))),
        };
        match step {
            Ok(Some(frame)) => out.frames.push(frame),
            Ok(None) => break,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                out.error = Some(e);
            }
        }
    }
}

fn roundtrip_response(m: &Response) -> Vec<u8> {
    let frame = encode_response(m);
    let mut d = FrameDecoder::new();
    d.extend(&frame);
    assert_eq!(
        d.next_response().as_ref(),
        Ok(&Some(m.clone())),
        "re-encoded response"
    );
    frame.to_vec()
}

fn roundtrip_request(m: &Request) -> Vec<u8> {
    let frame = encode_request(m);
    let mut d = FrameDecoder::new();
    d.extend(&frame);
    assert_eq!(
        d.next_request().as_ref(),
        Ok(&Some(m.clone())),
        "re-encoded request"
    );
    frame.to_vec()
}

/// Decodes `stream` fed in `chunks`, checking the buffer bound after every step.
fn run(input: &FrameInput, stream: &[u8], chunks: &[u8], side: Side) -> Outcome {
    let mut d = input.decoder();
    let bound = HEADER_LEN + d.max_frame_len() as usize;
    let mut out = Outcome {
        frames: Vec::new(),
        error: None,
        left: 0,
    };
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = sizes
            .next()
            .map_or(rest.len(), |&s| usize::from(s.max(1)))
            .min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        d.extend(chunk);
        assert!(
            d.buffered() <= bound + chunk.len(),
            "buffer exceeds cap + chunk"
        );
        drain(&mut d, side, &mut out);
        assert!(
            d.buffered() <= bound,
            "buffer exceeds one frame after draining"
        );
    }
    drain(&mut d, side, &mut out);
    out.left = d.buffered();
    out
}

/// The `frame_decoder` fuzz body. Reads `data` twice: as a raw byte stream (one chunk,
/// and one byte at a time), and through `arbitrary` as a [`FrameInput`] whose framed
/// pieces carry correct checksums. Both sides (responses and requests) decode each
/// stream. Panics if an invariant breaks: a panic inside the decoder, a buffer beyond the
/// cap plus the latest chunk, a message that does not re-encode to itself, or an outcome
/// that depends on how the stream was chunked.
pub fn frame_decoder(data: &[u8]) {
    let raw = FrameInput {
        max_frame_len: None,
        chunks: Vec::new(),
        pieces: Vec::new(),
    };
    check(&raw, data);
    if let Ok(input) = FrameInput::arbitrary_take_rest(Unstructured::new(data)) {
        check(&input, &input.stream());
    }
}

fn check(input: &FrameInput, stream: &[u8]) {
    for side in [Side::Client, Side::Server] {
        let whole = run(input, stream, &[], side);
        let bytewise = run(input, stream, &[1], side);
        assert_eq!(whole, bytewise, "one-byte chunks changed the outcome");
        if !input.chunks.is_empty() {
            let chunked = run(input, stream, &input.chunks, side);
            assert_eq!(whole, chunked, "chunking changed the outcome");
        }
    }
}
