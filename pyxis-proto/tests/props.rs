//! Property tests of the frame codec: encode→decode identity for arbitrary messages,
//! chunking independence of the incremental decoder, and no panic / bounded buffering on
//! arbitrary garbage.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use pyxis_proto::rpc::{
    CreateRequest, DeleteRequest, Error, PingRequest, ReadRequest, RegisterRequest, Request,
    Response, StatRequest, UnRegisterRequest, WatchEvent, WatchRequest, WriteRequest,
};
use pyxis_proto::{encode_frame, encode_request, encode_response, FrameDecoder, FrameError};

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()]
}

fn blob() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        vec(any::<u8>(), 0..64).prop_map(Bytes::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "/[a-z_/]{0,12}", any::<String>()]
}

fn request() -> impl Strategy<Value = Request> {
    let header = (option::of(id()), option::of(id()));
    let sessions = (
        option::of(option::of(any::<i32>()).prop_map(|timeout| RegisterRequest { timeout })),
        option::of(Just(UnRegisterRequest {})),
        option::of(Just(PingRequest {})),
    );
    let ops = (
        option::of(
            (text(), any::<i32>(), option::of(blob()))
                .prop_map(|(path, flags, data)| CreateRequest { path, flags, data }),
        ),
        option::of(text().prop_map(|path| DeleteRequest { path })),
        option::of((text(), blob()).prop_map(|(path, data)| WriteRequest { path, data })),
        option::of(text().prop_map(|path| ReadRequest { path })),
        option::of(text().prop_map(|path| StatRequest { path })),
        option::of(
            (
                option::of(text()),
                option::of(any::<u32>()),
                option::of(any::<bool>()),
            )
                .prop_map(|(path, watch, recursive)| WatchRequest {
                    path,
                    watch,
                    recursive,
                }),
        ),
    );
    (header, sessions, ops).prop_map(
        |((sid, xid), (register, unregister, ping), (create, delete, write, read, stat, watch))| {
            Request {
                sid,
                xid,
                register,
                unregister,
                ping,
                create,
                delete,
                write,
                read,
                stat,
                watch,
            }
        },
    )
}

fn response() -> impl Strategy<Value = Response> {
    (
        option::of(id()),
        option::of(
            (any::<i32>(), option::of(blob())).prop_map(|(r#type, data)| Error { r#type, data }),
        ),
        option::of(blob()),
        option::of((text(), any::<u32>()).prop_map(|(path, r#type)| WatchEvent { path, r#type })),
        option::of(id()),
        option::of(text()),
    )
        .prop_map(|(xid, err, data, watch, sid, path)| Response {
            xid,
            err,
            data,
            watch,
            sid,
            path,
        })
}

/// Feeds `stream` to a fresh decoder in chunks ending at `cuts` (positions taken modulo
/// the stream length), collecting every response.
fn decode_in_chunks(stream: &[u8], cuts: &[usize]) -> Vec<Response> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| c % (stream.len() + 1))
        .chain([0, stream.len()])
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    for w in points.windows(2) {
        d.extend(&stream[w[0]..w[1]]);
        while let Some(m) = d.next_response().expect("valid stream") {
            out.push(m);
        }
    }
    assert_eq!(d.buffered(), 0);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn request_roundtrips(req in request()) {
        let mut d = FrameDecoder::new();
        d.extend(&encode_request(&req));
        prop_assert_eq!(d.next_request(), Ok(Some(req)));
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn response_roundtrips(rsp in response()) {
        let mut d = FrameDecoder::new();
        d.extend(&encode_response(&rsp));
        prop_assert_eq!(d.next_response(), Ok(Some(rsp)));
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn chunking_does_not_change_the_messages(
        msgs in vec(response(), 1..6),
        cuts in vec(any::<usize>(), 0..24),
    ) {
        let mut stream = BytesMut::new();
        for m in &msgs {
            encode_frame(m, &mut stream);
        }
        prop_assert_eq!(&decode_in_chunks(&stream, &[]), &msgs);
        prop_assert_eq!(&decode_in_chunks(&stream, &cuts), &msgs);
        let every_byte: Vec<usize> = (0..stream.len()).collect();
        prop_assert_eq!(&decode_in_chunks(&stream, &every_byte), &msgs);
    }

    #[test]
    fn garbage_never_panics_and_stays_bounded(
        chunks in vec(vec(any::<u8>(), 0..300), 0..20),
        cap in 8u32..512,
    ) {
        let mut d = FrameDecoder::with_max_frame_len(cap);
        for (i, chunk) in chunks.iter().enumerate() {
            d.extend(chunk);
            // Bytes never pile up beyond one frame (header + cap) plus the latest chunk.
            prop_assert!(d.buffered() <= 4 + cap as usize + chunk.len());
            // Alternate the server and client views of the same stream.
            loop {
                let step = if i % 2 == 0 {
                    d.next_response().map(|m| m.is_some())
                } else {
                    d.next_request().map(|m| m.is_some())
                };
                match step {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        check_error(&e, cap)?;
                        break;
                    }
                }
            }
            prop_assert!(d.buffered() <= 4 + cap as usize);
        }
    }
}

fn check_error(e: &FrameError, cap: u32) -> Result<(), TestCaseError> {
    if let FrameError::TooLong { len, max } = e {
        prop_assert_eq!(*max, cap);
        prop_assert!(*len > cap);
    }
    // The error renders without panicking.
    prop_assert!(!e.to_string().is_empty());
    Ok(())
}
