//! Model tests of cluster semantics: followers, no-leader windows, leadership moves,
//! kill and restart ([protocol](pyxis_proto::protocol) §3, §4, §5, §6, §9).

mod common;

use std::time::Duration;

use common::*;
use pyxis_proto::{event_type, ErrorType};
use pyxis_testkit::model::{ControlError, InFlightOnMove, ModelConfig};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn followers_answer_not_leader_with_the_leader_address() {
    let mut h = Harness::new(3);
    h.connect(1, C1);
    h.model.set_node_addr(0, "10.0.0.1:7000").unwrap();
    for req in [register(None, 1, Some(5000)), ping(5, 2), stat(5, 3, "/")] {
        let rsp = h.call(C1, &req);
        assert_err(&rsp, ErrorType::KNotLeader, "10.0.0.1:7000");
    }
    assert!(h.model.sessions().is_empty());
}

#[test]
fn no_leader_window_answers_again_everywhere_then_recovers() {
    let mut h = Harness::new(3);
    h.connect(0, C1);
    h.connect(2, C2);
    let sid = h.register(C1, 60_000);
    h.model.start_election_gap(ms(500), h.now);
    assert_eq!(h.model.leader(), None);
    assert_err(
        &h.call(C1, &stat(sid, 1, "/")),
        ErrorType::KAgain,
        "try again",
    );
    assert_err(
        &h.call(C2, &stat(sid, 2, "/")),
        ErrorType::KAgain,
        "try again",
    );
    h.advance(ms(600));
    assert_eq!(h.model.leader(), Some(0));
    assert_ok(&h.call(C1, &stat(sid, 3, "/")));
}

#[test]
fn leader_move_answers_held_pings_drops_watches_and_keeps_sessions() {
    let mut h = Harness::new(3);
    h.connect(0, C1);
    let sid = h.register(C1, 60_000);
    assert_ok(&h.call(C1, &create(sid, 1, "/e", 1, b"")));
    assert_ok(&h.call(C1, &watch(sid, 2, "/e", event_type::ALL, false)));
    h.send(C1, &ping(sid, 3));
    h.model.move_leader(1, h.now).unwrap();
    h.drain();
    let got = h.take(C1);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].xid, got[0].watch.is_none()), (Some(3), true));
    assert!(!h.model.has_watch(sid, "/e"));
    // The old leader now redirects; the new one knows the session and its nodes.
    assert_err(
        &h.call(C1, &stat(sid, 4, "/")),
        ErrorType::KNotLeader,
        "127.0.0.1:7001",
    );
    h.connect(1, C2);
    let rsp = h.call(C2, &register(Some(sid), 5, Some(60_000)));
    assert_eq!(rsp.sid, Some(sid));
    assert_eq!(h.model.node("/e").unwrap().owner, Some(sid));
}

#[test]
fn leader_move_restarts_every_session_timer() {
    let mut h = Harness::new(2);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    h.advance(ms(800));
    h.model.move_leader(1, h.now).unwrap();
    h.advance(ms(800));
    assert_eq!(
        h.model.sessions(),
        vec![sid],
        "the timer restarted with a full T at the move"
    );
    h.advance(ms(400));
    assert!(h.model.sessions().is_empty());
}

#[test]
fn in_flight_writes_fail_with_again_on_a_move() {
    for fate in [InFlightOnMove::Drop, InFlightOnMove::Apply] {
        let mut config = ModelConfig::fast();
        config.commit_delay = ms(100);
        config.in_flight_on_move = fate;
        let mut h = Harness::with_config(config, 2);
        h.connect(0, C1);
        let sid = h.register(C1, 60_000);
        h.send(C1, &create(sid, 1, "/w", 0, b""));
        h.advance(ms(10));
        assert!(h.take(C1).is_empty());
        assert_eq!(h.model.in_flight_writes(), 1);
        h.model.move_leader(1, h.now).unwrap();
        h.drain();
        let got = h.take(C1);
        assert_err(&got[0], ErrorType::KAgain, "net error, try again");
        let applied = h.model.node("/w").is_some();
        assert_eq!(applied, fate == InFlightOnMove::Apply);
        let op = h.model.applied_ops().find(|o| o.path == "/w");
        assert_eq!(op.map(|o| o.acknowledged), applied.then_some(false));
    }
}

#[test]
fn in_flight_writes_applied_on_a_move_release_held_pings_and_raise_no_event() {
    // Applied in the next leader's term: the watches the change dropped never see them,
    // so the held ping of a session watching the path is released empty (telling the
    // client of the change), not answered with the write's event.
    let mut config = ModelConfig::fast();
    config.commit_delay = ms(100);
    config.in_flight_on_move = InFlightOnMove::Apply;
    let mut h = Harness::with_config(config, 2);
    h.connect(0, C1);
    h.connect(0, C2);
    let watcher = h.register(C1, 60_000);
    assert_ok(&h.call(C1, &watch(watcher, 2, "/w", event_type::CREATE, false)));
    h.send(C1, &ping(watcher, 3));
    let writer = h.register(C2, 60_000);
    h.send(C2, &create(writer, 2, "/w", 0, b""));
    h.advance(ms(10));
    assert!(h.take(C1).is_empty(), "the ping is held");
    h.model.move_leader(0, h.now).unwrap();
    h.drain();
    let got = h.take(C1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].xid, Some(3));
    assert_eq!(
        got[0].watch, None,
        "released empty, not with the create's event"
    );
    assert_err(&h.take(C2)[0], ErrorType::KAgain, "net error, try again");
    assert!(h.model.node("/w").is_some());
}

#[test]
fn killing_the_leader_closes_its_connections_and_elects_another_after_the_gap() {
    let mut h = Harness::new(3);
    h.connect(0, C1);
    h.connect(1, C2);
    let sid = h.register(C1, 60_000);
    h.model.kill_node(0, h.now).unwrap();
    h.drain();
    assert_eq!(h.closed, vec![C1]);
    assert_err(
        &h.call(C2, &stat(sid, 1, "/")),
        ErrorType::KAgain,
        "try again",
    );
    h.advance(h.model.config().election_gap + ms(10));
    assert_eq!(h.model.leader(), Some(1));
    assert_ok(&h.call(C2, &stat(sid, 2, "/")));
    // A killed node refuses connections until restarted.
    h.connect(0, C3);
    assert_eq!(h.closed, vec![C1, C3]);
    assert_eq!(
        h.model.move_leader(0, h.now),
        Err(ControlError::NodeDown(0))
    );
    h.model.restart_node(0, h.now).unwrap();
    h.connect(0, C3);
    assert_err(
        &h.call(C3, &stat(sid, 3, "/")),
        ErrorType::KNotLeader,
        "127.0.0.1:7001",
    );
    assert_eq!(
        h.model.kill_node(9, h.now),
        Err(ControlError::NoSuchNode(9))
    );
}

/// Known difference: after the original's leader dies, the followers name it (kNotLeader
/// with its address) for 1–2 s, then answer kAgain until a new leader is elected.
#[test]
fn killed_leader_is_named_by_the_followers_for_a_while_then_again_until_the_election() {
    let config = ModelConfig::fast().with_dead_leader_redirects(ms(1500), ms(2500));
    let mut h = Harness::with_config(config, 3);
    h.connect(0, C1);
    h.connect(1, C2);
    let sid = h.register(C1, 60_000);
    h.model.kill_node(0, h.now).unwrap();
    h.drain();
    assert_err(
        &h.call(C2, &stat(sid, 1, "/")),
        ErrorType::KNotLeader,
        "127.0.0.1:7000",
    );
    h.advance(ms(1400));
    assert_err(
        &h.call(C2, &stat(sid, 2, "/")),
        ErrorType::KNotLeader,
        "127.0.0.1:7000",
    );
    h.advance(ms(200));
    assert_err(
        &h.call(C2, &stat(sid, 3, "/")),
        ErrorType::KAgain,
        "try again",
    );
    h.advance(ms(1000));
    assert_eq!(h.model.leader(), Some(1));
    assert_ok(&h.call(C2, &stat(sid, 4, "/")));
    // Killing the new leader starts the sequence again, naming it.
    h.model.kill_node(1, h.now).unwrap();
    h.connect(2, C3);
    assert_err(
        &h.call(C3, &stat(sid, 5, "/")),
        ErrorType::KNotLeader,
        "127.0.0.1:7001",
    );
}

#[test]
fn single_node_kill_and_restart_keeps_the_state() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 60_000);
    assert_ok(&h.call(C1, &create(sid, 1, "/keep", 0, b"x")));
    h.model.kill_node(0, h.now).unwrap();
    h.advance(ms(1000));
    assert_eq!(h.model.leader(), None);
    h.model.restart_node(0, h.now).unwrap();
    h.connect(0, C2);
    assert_eq!(
        h.call(C2, &read(sid, 2, "/keep")).data.as_deref(),
        Some(&b"x"[..])
    );
}

#[test]
fn extra_commit_delay_and_dropped_answers() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 60_000);
    h.model.set_extra_commit_delay(ms(200));
    h.send(C1, &create(sid, 1, "/slow", 0, b""));
    h.advance(ms(100));
    assert!(h.take(C1).is_empty());
    h.advance(ms(150));
    assert_eq!(h.take(C1).len(), 1);
    h.model.set_drop_answers(true);
    h.send(C1, &stat(sid, 2, "/slow"));
    h.advance(ms(10));
    assert!(h.take(C1).is_empty());
    h.model.set_drop_answers(false);
    assert_ok(&h.call(C1, &stat(sid, 3, "/slow")));
}

#[test]
fn garbage_is_sent_on_every_connection_of_a_node() {
    let mut h = Harness::new(2);
    h.connect(0, C1);
    h.connect(0, C2);
    h.connect(1, C3);
    h.model
        .inject_garbage(0, bytes::Bytes::from_static(b"\xff\xff\xff\xffjunk"))
        .unwrap();
    let mut got = Vec::new();
    while let Some(o) = h.model.poll_output() {
        got.push(o);
    }
    assert_eq!(got.len(), 2);
}

#[test]
fn same_inputs_give_the_same_outputs() {
    fn run() -> Vec<u8> {
        let mut h = Harness::new(3);
        h.connect(0, C1);
        let sid = h.register(C1, 300);
        h.send(C1, &create(sid, 1, "/a", 1, b"x"));
        h.send(C1, &watch(sid, 2, "/a", 0xff, true));
        h.send(C1, &ping(sid, 3));
        h.send(C1, &write(sid, 4, "/a", b"y"));
        h.advance(ms(2000));
        h.raw.remove(&C1).unwrap_or_default()
    }
    let a = run();
    assert!(!a.is_empty());
    assert_eq!(a, run());
}

#[test]
fn real_defaults_follow_protocol_section_9() {
    let c = ModelConfig::real_defaults();
    assert_eq!(c.min_session_timeout, ms(5_000));
    assert_eq!(c.max_session_timeout, ms(120_000));
    assert_eq!(c.check_interval, ms(1_000));
    assert_eq!(c.max_frame_len, 64 * 1024 * 1024);
    let mut h = Harness::with_config(c, 1);
    h.connect(0, C1);
    let sid = h.register(C1, 1);
    assert_eq!(h.model.session_timeout(sid), Some(ms(5_000)));
}
