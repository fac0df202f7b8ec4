//! Whatever a client sends, the model never panics, answers only well-formed frames and
//! closes the connection on bad framing ([protocol](pyxis_proto::protocol) §1); plus the
//! thread-safety the runners promise.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use pyxis_proto::rpc::{
    CreateRequest, PingRequest, ReadRequest, RegisterRequest, Request, StatRequest, WatchRequest,
    WriteRequest,
};
use pyxis_proto::{encode_request, FrameDecoder};
use pyxis_testkit::model::Output;

fn arb_request() -> impl Strategy<Value = Request> {
    let path = prop_oneof![
        Just("/".to_owned()),
        Just("/a".to_owned()),
        Just("/a/b".to_owned()),
        Just("/pyxis/session".to_owned()),
        "[/a-c_.]{0,6}",
    ];
    (
        prop::option::of(prop_oneof![Just(0u64), any::<u64>()]),
        prop::option::of(any::<u64>()),
        0u8..8,
        path,
        prop::collection::vec(any::<u8>(), 0..16),
        any::<i32>(),
        prop::option::of((any::<u32>(), any::<bool>())),
    )
        .prop_map(|(sid, xid, op, path, data, n, watch)| {
            let mut r = Request {
                sid,
                xid,
                ..Default::default()
            };
            let data = Bytes::from(data);
            match op {
                0 => r.register = Some(RegisterRequest { timeout: Some(n) }),
                1 => r.ping = Some(PingRequest {}),
                2 => {
                    r.create = Some(CreateRequest {
                        path: path.clone(),
                        flags: n & 1,
                        data: Some(data),
                    })
                }
                3 => {
                    r.write = Some(WriteRequest {
                        path: path.clone(),
                        data,
                    })
                }
                4 => r.read = Some(ReadRequest { path: path.clone() }),
                5 => r.stat = Some(StatRequest { path: path.clone() }),
                6 => r.delete = Some(pyxis_proto::rpc::DeleteRequest { path: path.clone() }),
                _ => {}
            }
            r.watch = watch.map(|(mask, recursive)| WatchRequest {
                path: Some(path),
                watch: Some(mask),
                recursive: Some(recursive),
            });
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_answers_are_frames(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut h = Harness::new(2);
        h.connect(0, C1);
        let sid = h.register(C1, 1000);
        for chunk in &chunks {
            h.model.handle_data(C1, chunk, h.now);
        }
        h.advance(Duration::from_millis(500));
        let _ = sid;
        let mut decoder = FrameDecoder::new();
        while let Some(out) = h.model.poll_output() {
            if let Output::Send { bytes, .. } = out {
                decoder.extend(&bytes);
                while decoder.next_response().map_err(|e| TestCaseError::fail(e.to_string()))?.is_some() {}
            }
        }
    }

    #[test]
    fn arbitrary_requests_on_a_cluster_never_panic(reqs in prop::collection::vec(arb_request(), 0..40), moves in prop::collection::vec(0usize..4, 0..4)) {
        let mut h = Harness::new(3);
        h.connect(0, C1);
        h.connect(1, C2);
        let sid = h.register(C1, 400);
        for (i, mut req) in reqs.into_iter().enumerate() {
            if i % 3 == 0 { req.sid = Some(sid); }
            let conn = if i % 2 == 0 { C1 } else { C2 };
            h.send_bytes(conn, &encode_request(&req));
            if let Some(&m) = moves.get(i % 8) {
                if i % 7 == 3 {
                    let _ = h.model.move_leader(m, h.now);
                }
            }
            h.advance(Duration::from_millis(37));
        }
        h.advance(Duration::from_secs(2));
        prop_assert!(h.closed.is_empty(), "well-formed requests never close a connection");
    }
}

#[test]
fn runners_and_model_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<pyxis_testkit::TestCluster>();
    send_sync::<pyxis_testkit::TestServer>();
    send::<pyxis_testkit::model::ClusterModel>();
}
