//! The frame codec ([protocol](crate::protocol) §1).
//!
//! Owns: `len | "pyxi" | payload | adler32(tag + payload)` framing in both directions and
//! the incremental [`FrameDecoder`]. Must never interpret payloads beyond handing them to
//! the message decoders, never allocate for a frame longer than its cap, never panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::required::{decode_request, decode_response, DecodeError};
use crate::rpc::{Request, Response};

/// The frame tag, ASCII `pyxi`.
pub const TAG: [u8; 4] = *b"pyxi";
/// Most bytes the decoder reserves ahead of received data for an incomplete frame.
const MAX_PREALLOC: usize = 1024 * 1024;
/// Payloads up to this size are decoded in place (their `bytes` fields copied); larger
/// ones are split off as shared `Bytes` so big data is never copied twice.
const SMALL_PAYLOAD: usize = 1024;
/// Bytes of the big-endian length prefix.
pub const HEADER_LEN: usize = 4;
/// Bytes of the Adler-32 trailer.
pub const CHECKSUM_LEN: usize = 4;
/// Smallest legal `len` (tag + checksum, empty payload).
pub const MIN_FRAME_LEN: u32 = (TAG.len() + CHECKSUM_LEN) as u32;
/// Default cap on `len`, the original server's (64 MiB).
pub const DEFAULT_MAX_FRAME_LEN: u32 = 64 * 1024 * 1024;

/// Why bytes from a peer are not a valid frame. Any of these means the connection is
/// broken: close it (and, for a client, reconnect).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// `len` is below the minimum of 8 (tag + checksum).
    #[error("frame length {len} is below the minimum of {MIN_FRAME_LEN}")]
    TooShort {
        /// The announced length.
        len: u32,
    },
    /// `len` is above the decoder's cap; nothing was allocated for it.
    #[error("frame length {len} exceeds the cap of {max} bytes")]
    TooLong {
        /// The announced length.
        len: u32,
        /// The decoder's cap.
        max: u32,
    },
    /// The tag is not `pyxi`.
    #[error("bad frame tag {found:?}, expected \"pyxi\"")]
    BadTag {
        /// The four bytes found where the tag belongs.
        found: [u8; 4],
    },
    /// The Adler-32 trailer does not match tag + payload.
    #[error("bad frame checksum: computed {expected:#010x}, frame says {actual:#010x}")]
    BadChecksum {
        /// The checksum computed over the received tag and payload.
        expected: u32,
        /// The checksum the frame carried.
        actual: u32,
    },
    /// The payload is not a valid message.
    #[error("undecodable payload: {0}")]
    BadPayload(#[from] DecodeError),
}

/// The frame checksum: Adler-32 (RFC 1950) of `data`, SIMD-accelerated where the CPU
/// allows. A frame's trailer is this over its tag and payload.
///
/// ```
/// assert_eq!(pyxis_proto::adler32(b"Wikipedia"), 0x11E6_0398);
/// ```
pub fn adler32(data: &[u8]) -> u32 {
    simd_adler32::adler32(&data)
}

/// A small payload decoded where it lies. Its `bytes` fields are copied with one
/// allocation each (`Bytes::copy_from_slice`): `&[u8]`'s own `copy_to_bytes` goes through
/// a growable buffer and costs about twice as many instructions for the same copy.
pub(crate) struct InPlace<'a>(pub(crate) &'a [u8]);

impl Buf for InPlace<'_> {
    fn remaining(&self) -> usize {
        self.0.len()
    }

    fn chunk(&self) -> &[u8] {
        self.0
    }

    fn advance(&mut self, cnt: usize) {
        self.0.advance(cnt);
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        // Past the end is a decoder bug, never network data (prost checks every length
        // against `remaining` first); like `&[u8]`, take what there is rather than panic.
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        Bytes::copy_from_slice(taken)
    }
}

/// Decodes a stat answer's `data` (a serialized `pyxis.store.Node`) by the frame
/// decoder's rule: data of a small frame (up to 1 KiB) is copied, which costs less than
/// sharing it (a clone of `Bytes` made from a copy allocates to become shared); larger
/// data shares the answer's memory.
///
/// # Errors
///
/// The bytes are not a valid `Node`.
///
/// ```
/// use bytes::Bytes;
/// use prost::Message;
/// use pyxis_proto::{decode_node, store::Node};
///
/// let node = Node { data: Some(Bytes::from_static(b"v")), version: Some(2), ..Default::default() };
/// let data = Bytes::from(node.encode_to_vec());
/// assert_eq!(decode_node(&data), Ok(node));
/// ```
pub fn decode_node(data: &Bytes) -> Result<crate::store::Node, prost::DecodeError> {
    if data.len() <= SMALL_PAYLOAD {
        crate::store::Node::decode(InPlace(data))
    } else {
        crate::store::Node::decode(data.clone())
    }
}

/// Appends one frame carrying `msg` to `dst`.
///
/// Required fields of the `pyxis.rpc` types are always emitted, even when empty.
pub fn encode_frame(msg: &impl Message, dst: &mut BytesMut) {
    frame_with(dst, msg.encoded_len(), |dst| msg.encode_raw(dst));
}

/// Appends one frame carrying `payload` as it is (already encoded, or deliberately not a
/// valid message) with the right length, tag and Adler-32: for tests and fuzzers that
/// must get past the checksum.
///
/// ```
/// use bytes::BytesMut;
/// use pyxis_proto::{frame_payload, FrameDecoder};
///
/// let mut frame = BytesMut::new();
/// frame_payload(b"\x08\x07", &mut frame);
/// let mut decoder = FrameDecoder::new();
/// decoder.extend(&frame);
/// assert_eq!(decoder.next_payload().unwrap().as_deref(), Some(&b"\x08\x07"[..]));
/// ```
pub fn frame_payload(payload: &[u8], dst: &mut BytesMut) {
    frame_with(dst, payload.len(), |dst| dst.put_slice(payload));
}

/// Appends `len | tag | body | adler32(tag + body)`, the body written by `write_body`
/// (which must write exactly `body_len` bytes).
fn frame_with(dst: &mut BytesMut, body_len: usize, write_body: impl FnOnce(&mut BytesMut)) {
    let len = TAG.len() + body_len + CHECKSUM_LEN;
    dst.reserve(HEADER_LEN + len);
    // A message of 4 GiB cannot be framed; saturate so the peer refuses it as too long.
    dst.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    let start = dst.len();
    dst.put_slice(&TAG);
    write_body(dst);
    let sum = adler32(&dst[start..]);
    dst.put_u32(sum);
}

/// Encodes one request as a complete frame.
pub fn encode_request(req: &Request) -> Bytes {
    let mut buf = BytesMut::new();
    encode_frame(req, &mut buf);
    buf.freeze()
}

/// Encodes one response as a complete frame.
pub fn encode_response(rsp: &Response) -> Bytes {
    let mut buf = BytesMut::new();
    encode_frame(rsp, &mut buf);
    buf.freeze()
}

/// An incremental frame decoder: feed it bytes in chunks of any size with
/// [`extend`](Self::extend), then take whole messages out until it answers `Ok(None)`.
///
/// The length prefix is checked against the cap as soon as its 4 bytes are here, before
/// anything is reserved for the frame, so a frame announcing 4 GiB costs nothing, and at
/// most 1 MiB is reserved ahead of the bytes actually received. After an
/// error the decoder is poisoned: every later call returns the same error (the stream has
/// lost its framing and the connection must be closed).
///
/// ```
/// use pyxis_proto::{encode_response, FrameDecoder, rpc::Response};
///
/// let frame = encode_response(&Response { xid: Some(3), ..Default::default() });
/// let mut decoder = FrameDecoder::new();
/// for byte in frame.iter() {
///     decoder.extend(&[*byte]); // one byte at a time is fine
/// }
/// assert_eq!(decoder.next_response().unwrap().unwrap().xid, Some(3));
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame_len: u32,
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the default 64 MiB cap.
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A decoder refusing frames whose `len` exceeds `max_frame_len`.
    pub fn with_max_frame_len(max_frame_len: u32) -> Self {
        Self {
            buf: BytesMut::new(),
            max_frame_len: max_frame_len.max(MIN_FRAME_LEN),
            failed: None,
        }
    }

    /// The cap on `len`.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// Bytes received but not yet taken out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets buffered bytes and any error: for a new connection.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.failed = None;
    }

    /// Appends received bytes. Nothing is checked until a `next_*` call.
    pub fn extend(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Takes the next whole frame's payload (tag and checksum verified), or `Ok(None)` if
    /// more bytes are needed.
    pub fn next_payload(&mut self) -> Result<Option<Bytes>, FrameError> {
        Ok(self
            .checked_frame_len()?
            .map(|total| self.split_payload(total)))
    }

    /// Takes the next whole frame as a [`Request`] (the server side of the codec).
    pub fn next_request(&mut self) -> Result<Option<Request>, FrameError> {
        self.next_message(|p| decode_request(p), decode_request)
    }

    /// Takes the next whole frame as a [`Response`] (the client side of the codec).
    pub fn next_response(&mut self) -> Result<Option<Response>, FrameError> {
        self.next_message(|p| decode_response(p), decode_response)
    }

    fn next_message<M>(
        &mut self,
        decode_small: fn(InPlace<'_>) -> Result<M, DecodeError>,
        decode_large: fn(Bytes) -> Result<M, DecodeError>,
    ) -> Result<Option<M>, FrameError> {
        let Some(total) = self.checked_frame_len()? else {
            return Ok(None);
        };
        let payload = HEADER_LEN + TAG.len()..total - CHECKSUM_LEN;
        let decoded = if payload.len() <= SMALL_PAYLOAD {
            // Decode in place and copy the (small) `bytes` fields: cheaper than turning the
            // buffer into shared `Bytes`, which costs an allocation and atomic counts.
            let decoded = decode_small(InPlace(&self.buf[payload]));
            self.buf.advance(total);
            decoded
        } else {
            decode_large(self.split_payload(total))
        };
        decoded
            .map(Some)
            .map_err(|e| self.fail(FrameError::BadPayload(e)))
    }

    fn fail(&mut self, err: FrameError) -> FrameError {
        self.buf = BytesMut::new();
        self.failed = Some(err.clone());
        err
    }

    /// The length (header included) of the whole, checked frame at the front of the
    /// buffer, `None` if more bytes are needed; poisons the decoder on an error.
    fn checked_frame_len(&mut self) -> Result<Option<usize>, FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.try_checked_frame_len().map_err(|e| self.fail(e))
    }

    fn try_checked_frame_len(&mut self) -> Result<Option<usize>, FrameError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if len < MIN_FRAME_LEN {
            return Err(FrameError::TooShort { len });
        }
        if len > self.max_frame_len {
            return Err(FrameError::TooLong {
                len,
                max: self.max_frame_len,
            });
        }
        // `len` fits in usize on every platform this crate builds for (checked by the cap).
        let total = HEADER_LEN + len as usize;
        if self.buf.len() < total {
            // Make room for the rest of the frame, but never more than MAX_PREALLOC ahead of
            // what has arrived: 4 bytes announcing 64 MiB must not cost 64 MiB.
            self.buf.reserve((total - self.buf.len()).min(MAX_PREALLOC));
            return Ok(None);
        }
        let body = &self.buf[HEADER_LEN..total];
        let (checked, trailer) = body.split_at(body.len() - CHECKSUM_LEN);
        let actual = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let expected = adler32(checked);
        // Like the original server's codec: checksum first, then the tag.
        if expected != actual {
            return Err(FrameError::BadChecksum { expected, actual });
        }
        if checked[..TAG.len()] != TAG {
            let found = [checked[0], checked[1], checked[2], checked[3]];
            return Err(FrameError::BadTag { found });
        }
        Ok(Some(total))
    }

    /// Splits a checked frame of `total` bytes off the buffer and returns its payload.
    fn split_payload(&mut self, total: usize) -> Bytes {
        let mut frame = self.buf.split_to(total).freeze();
        frame.advance(HEADER_LEN + TAG.len());
        frame.truncate(frame.len() - CHECKSUM_LEN);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_length_is_refused_before_allocation() {
        let mut d = FrameDecoder::new();
        d.extend(&[0xff, 0xff, 0xff, 0xff, b'p']);
        assert_eq!(
            d.next_payload(),
            Err(FrameError::TooLong {
                len: u32::MAX,
                max: DEFAULT_MAX_FRAME_LEN
            })
        );
        assert!(d.buf.capacity() < 1024);
        // Poisoned: the same error again, and further bytes are ignored.
        d.extend(&[0; 64]);
        assert_eq!(d.buffered(), 0);
        assert!(matches!(d.next_payload(), Err(FrameError::TooLong { .. })));
        d.reset();
        assert_eq!(d.next_payload(), Ok(None));
    }

    #[test]
    fn reserve_is_bounded_by_the_cap() {
        let mut d = FrameDecoder::with_max_frame_len(100);
        d.extend(&[0, 0, 0, 101]);
        assert!(matches!(
            d.next_payload(),
            Err(FrameError::TooLong { len: 101, max: 100 })
        ));
    }

    #[test]
    fn announced_length_reserves_at_most_one_mib_ahead() {
        let mut d = FrameDecoder::new();
        d.extend(&[0x03, 0xff, 0xff, 0xff, b'p']);
        assert_eq!(d.next_payload(), Ok(None));
        assert!(d.buf.capacity() <= MAX_PREALLOC + HEADER_LEN + 1);
    }

    #[test]
    fn node_data_decodes_alike_copied_or_shared() {
        use crate::store::Node;
        for size in [0, 64, SMALL_PAYLOAD, 4 * SMALL_PAYLOAD] {
            let node = Node {
                data: Some(Bytes::from(vec![7u8; size])),
                children: vec!["a".into()],
                version: Some(3),
                ..Default::default()
            };
            let data = Bytes::from(node.encode_to_vec());
            assert_eq!(decode_node(&data), Ok(node), "{size} bytes of data");
        }
        let cut = Bytes::from_static(&[0x0a, 0x05, b'x']);
        assert!(decode_node(&cut).is_err(), "a field longer than the data");
    }

    #[test]
    fn empty_payload_frame() {
        let mut d = FrameDecoder::new();
        d.extend(&encode_request(&Request::default()));
        assert_eq!(d.next_request(), Ok(Some(Request::default())));
    }
}
