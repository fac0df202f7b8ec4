//! Model tests of framing, dispatch and error answers ([protocol](pyxis_proto::protocol) §1, §3,
//! §4).

mod common;

use std::time::Duration;

use common::*;
use prost::Message;
use pyxis_proto::rpc::{Request, Response};
use pyxis_proto::{encode_request, encode_response, store, ErrorType};

#[test]
fn bad_frames_close_the_connection_without_answer() {
    let closing = [
        "malformed_frame_bad_magic",
        "malformed_frame_tag_and_checksum",
        "malformed_frame_checksum",
        "malformed_frame_len_lt_8",
        "malformed_frame_len_huge",
        "malformed_pb_bad_wiretype",
        "malformed_pb_truncated_field",
        "malformed_req_missing_required",
    ];
    for (i, name) in closing.iter().enumerate() {
        let mut h = Harness::new(1);
        let conn = pyxis_testkit::model::ConnId(100 + i as u64);
        h.connect(0, conn);
        let sid = h.register(conn, 1000);
        h.send_bytes(conn, &golden_frame(name));
        h.advance(Duration::from_millis(10));
        assert_eq!(h.closed, vec![conn], "{name} must close the connection");
        assert!(h.take(conn).is_empty(), "{name} must not be answered");
        assert!(h.model.connections().is_empty());
        // The session itself is not tied to the connection.
        assert_eq!(h.model.sessions(), vec![sid]);
    }
}

#[test]
fn truncated_frame_waits_for_more() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.send_bytes(C1, &golden_frame("malformed_frame_truncated"));
    assert!(h.closed.is_empty());
    assert!(h.take(C1).is_empty());
}

#[test]
fn frames_split_across_reads_and_coalesced() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    let mut both = encode_request(&stat(sid, 1, "/")).to_vec();
    both.extend_from_slice(&encode_request(&read(sid, 2, "/")));
    for b in &both {
        h.send_bytes(C1, &[*b]);
    }
    let got = h.take(C1);
    assert_eq!(
        got.iter().map(|r| r.xid).collect::<Vec<_>>(),
        vec![Some(1), Some(2)]
    );
    // Two requests in one read.
    h.send_bytes(C1, &both);
    assert_eq!(h.take(C1).len(), 2);
}

#[test]
fn request_without_xid_is_answered_with_xid_zero() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    let req = Request {
        sid: Some(sid),
        ..Default::default()
    };
    h.send(C1, &req);
    let got = h.take(C1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].xid, Some(0));
    assert!(h.raw[&C1].ends_with(&golden_frame("rep_ok_xid0")));
}

#[test]
fn reads_overtake_pipelined_writes_and_writes_stay_in_order() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    let mut batch = encode_request(&create(sid, 10, "/p", 0, b"a")).to_vec();
    batch.extend_from_slice(&encode_request(&write(sid, 11, "/p", b"b")));
    batch.extend_from_slice(&encode_request(&read(sid, 12, "/p")));
    h.send_bytes(C1, &batch);
    h.advance(Duration::from_millis(20));
    let got = h.take(C1);
    assert_eq!(
        got.iter().map(|r| r.xid.unwrap()).collect::<Vec<_>>(),
        vec![12, 10, 11]
    );
    assert_err(&got[0], ErrorType::KNotFound, "/p");
    assert_ok(&got[1]);
    assert_ok(&got[2]);
    assert_eq!(h.model.node("/p").unwrap().data.as_ref(), b"b");
}

#[test]
fn register_answer_matches_the_golden_frame() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.send_bytes(C1, &golden_frame("req_register_new"));
    h.advance(Duration::from_millis(5));
    assert_eq!(h.raw[&C1], golden_frame("rep_register_ok"));
    assert_eq!(
        h.model.session_timeout(0x008b_cfe5_6800_0001),
        Some(Duration::from_millis(5000))
    );
}

#[test]
fn register_clamps_the_timeout() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let min = h.model.config().min_session_timeout;
    let max = h.model.config().max_session_timeout;
    let a = h.register(C1, 1);
    let b = h.register(C1, i32::MAX);
    let rsp = h.call(C1, &register(None, 9, None));
    let c = rsp.sid.unwrap();
    assert_eq!(h.model.session_timeout(a), Some(min));
    assert_eq!(h.model.session_timeout(b), Some(max));
    assert_eq!(h.model.session_timeout(c), Some(min));
    assert!(
        a != 0 && b > a && c > b,
        "ids are large, unique, increasing"
    );
}

#[test]
fn register_with_live_sid_keeps_it_and_unknown_sid_is_expired_without_data() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    let rsp = h.call(C1, &register(Some(sid), 2, Some(1000)));
    assert_ok(&rsp);
    assert_eq!(rsp.sid, Some(sid));
    let rsp = h.call(C1, &register(Some(sid + 1000), 3, Some(1000)));
    assert_eq!(
        rsp.err.as_ref().map(|e| e.r#type),
        Some(ErrorType::KSessionExpired as i32)
    );
    assert_eq!(rsp.err.as_ref().and_then(|e| e.data.clone()), None);
    // sid present with value 0.
    h.send_bytes(C1, &golden_frame("req_register_sid0"));
    h.advance(Duration::from_millis(5));
    let got = h.take(C1);
    assert_eq!(
        got[0].err.as_ref().map(|e| e.r#type),
        Some(ErrorType::KSessionExpired as i32)
    );
    assert_eq!(h.model.sessions(), vec![sid], "no new session is made");
}

#[test]
fn requests_with_a_dead_sid_are_session_expired() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.send_bytes(C1, &golden_frame("req_ping_sid0_xid0"));
    let got = h.take(C1);
    assert_err(&got[0], ErrorType::KSessionExpired, "session expired");
    for req in [
        stat(77, 1, "/"),
        create(77, 2, "/x", 0, b""),
        Request {
            xid: Some(3),
            ..Default::default()
        },
    ] {
        let rsp = h.call(C1, &req);
        assert_err(&rsp, ErrorType::KSessionExpired, "session expired");
    }
}

#[test]
fn dispatch_takes_the_first_operation_present() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    // create + read: the create wins (answered after the commit, empty).
    let mut req = create(sid, 5, "/d", 0, b"x");
    req.read = Some(pyxis_proto::rpc::ReadRequest { path: "/d".into() });
    h.send(C1, &req);
    assert!(h.take(C1).is_empty(), "a create waits for its commit");
    h.advance(Duration::from_millis(5));
    let got = h.take(C1);
    assert_eq!(got.len(), 1);
    assert_ok(&got[0]);
    assert_eq!(got[0].data, None);
    // read + stat: the read wins (raw data, not a Node).
    let mut req = read(sid, 6, "/d");
    req.stat = Some(pyxis_proto::rpc::StatRequest { path: "/d".into() });
    let rsp = h.call(C1, &req);
    assert_eq!(rsp.data.as_deref(), Some(&b"x"[..]));
    // register + create: the register wins.
    let mut req = register(Some(sid), 7, Some(1000));
    req.create = Some(pyxis_proto::rpc::CreateRequest {
        path: "/e".into(),
        flags: 0,
        data: None,
    });
    let rsp = h.call(C1, &req);
    assert_eq!(rsp.sid, Some(sid));
    assert!(h.model.node("/e").is_none());
}

#[test]
fn empty_request_is_answered_empty() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    let rsp = h.call(C1, &base(sid, 4));
    assert_eq!(
        rsp,
        Response {
            xid: Some(4),
            ..Default::default()
        }
    );
}

#[test]
fn stat_root_and_fresh_node_match_golden_frames() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.send_bytes(C1, &golden_frame("req_register_new"));
    h.advance(Duration::from_millis(5));
    let sid = h.take(C1)[0].sid.unwrap();
    h.raw.clear();
    h.send(C1, &stat(sid, 6, "/"));
    assert_eq!(h.raw[&C1], golden_frame("rep_stat_root"));
    h.call(C1, &create(sid, 1, "/pb", 0, b""));
    h.raw.clear();
    h.send(C1, &stat(sid, 4, "/pb"));
    assert_eq!(h.raw[&C1], golden_frame("rep_stat_fresh_node"));
    h.raw.clear();
    h.send(C1, &read(sid, 9, "/pb"));
    assert_eq!(h.raw[&C1], golden_frame("rep_read_empty"));
}

#[test]
fn stat_returns_a_serialized_node_and_read_raw_data() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    assert_ok(&h.call(C1, &create(sid, 1, "/n", 1, b"hello")));
    let rsp = h.call(C1, &stat(sid, 2, "/n"));
    let node = store::Node::decode(rsp.data.unwrap()).unwrap();
    assert_eq!(node.data.as_deref(), Some(&b"hello"[..]));
    assert_eq!(
        (node.flags, node.version, node.sid),
        (Some(1), Some(0), Some(sid))
    );
    let rsp = h.call(C1, &read(sid, 3, "/n"));
    assert_eq!(rsp.data.as_deref(), Some(&b"hello"[..]));
    assert_err(
        &h.call(C1, &stat(sid, 4, "/missing")),
        ErrorType::KNotFound,
        "/missing",
    );
    assert_err(
        &h.call(C1, &read(sid, 5, "/missing")),
        ErrorType::KNotFound,
        "/missing",
    );
}

#[test]
fn unregister_ends_the_session_and_answers_the_held_ping() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.connect(0, C2);
    let sid = h.register(C1, 5000);
    let watcher = h.register(C2, 5000);
    assert_ok(&h.call(C1, &create(sid, 1, "/e", 1, b"")));
    assert_ok(&h.call(C2, &watch(watcher, 1, "/e", 0xff, false)));
    h.send(C1, &ping(sid, 2));
    let rsp = h.call(C1, &unregister(sid, 3));
    assert_ok(&rsp);
    let got = h.take(C1);
    // The held ping was answered empty (before the unregister's own answer).
    assert!(got.is_empty() || got.iter().all(|r| r.xid == Some(2) && r.watch.is_none()));
    assert!(h.model.sessions() == vec![watcher]);
    assert!(h.model.node("/e").is_none());
    h.send(C2, &ping(watcher, 2));
    let got = h.take(C2);
    assert_eq!(
        got[0].watch.as_ref().map(|w| (w.path.as_str(), w.r#type)),
        Some(("/e", 2))
    );
    assert_err(
        &h.call(C1, &stat(sid, 4, "/")),
        ErrorType::KSessionExpired,
        "session expired",
    );
    let ops: Vec<_> = h
        .model
        .applied_ops()
        .map(|o| (o.sid, o.path.clone()))
        .collect();
    assert!(ops.contains(&(sid, "/e".to_owned())));
    let _ = encode_response(&Response::default());
}
