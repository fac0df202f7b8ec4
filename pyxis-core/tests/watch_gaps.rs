//! Watched changes that land where no server event can report them: between an event and
//! the re-arm that follows it, and across a leadership change that ends on the node the
//! client is still connected to. Found by the simulator (`pyxis-sim`, seeds 272 and 374).

mod support;

use pyxis_core::{Event, EventMask, EventType, WatchMode, WatchSpec};
use pyxis_proto::event_type;
use support::*;

fn watch_events(events: Vec<Event>) -> Vec<(EventType, bool)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Watch { event, .. } => Some((event.kind, event.inferred)),
            _ => None,
        })
        .collect()
}

fn persistent(path: &str) -> WatchSpec {
    WatchSpec {
        path: path.into(),
        mask: EventMask::ALL,
        recursive: false,
        mode: WatchMode::Persistent,
    }
}

/// A client with a session up and a persistent watch on `/a`, armed with a stat that saw
/// `version` and `children`; returns the peer, the connection and the held ping.
fn watching_a(version: u64, children: &[&str]) -> (Peer, pyxis_core::ConnId, Sent) {
    let (mut p, conn, ping) = up();
    p.client.watch(persistent("/a"), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, version, children, b""));
    assert!(
        watch_events(p.take_events()).is_empty(),
        "a first registration infers nothing"
    );
    (p, conn, ping)
}

#[test]
fn a_change_between_an_event_and_its_rearm_is_inferred() {
    for (version_at_rearm, expect_missed) in [(2, false), (3, true)] {
        let (mut p, conn, ping) = watching_a(1, &[]);
        // The write that took /a to version 2 fires the registration.
        p.answer(conn, event(ping.req.xid, "/a", "/a", event_type::MODIFY));
        assert_eq!(
            watch_events(p.take_events()),
            vec![(EventType::Modify, false)]
        );
        let rearm = p.take_non_ping();
        assert!(
            rearm.req.watch.is_some(),
            "the persistent watch is re-armed"
        );
        p.answer(conn, stat(rearm.req.xid, version_at_rearm, &[], b""));
        let inferred = watch_events(p.take_events());
        if expect_missed {
            assert_eq!(inferred, vec![(EventType::Modify, true)]);
        } else {
            assert!(inferred.is_empty(), "{inferred:?}");
        }
    }
}

#[test]
fn a_creation_followed_by_a_write_before_the_rearm_is_inferred() {
    let (mut p, conn, ping) = up();
    p.client.watch(persistent("/a"), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(
        conn,
        err(arm.req.xid, pyxis_proto::ErrorType::KNotFound, "/a"),
    );
    p.answer(conn, event(ping.req.xid, "/a", "/a", event_type::CREATE));
    assert_eq!(
        watch_events(p.take_events()),
        vec![(EventType::Create, false)]
    );
    let rearm = p.take_non_ping();
    p.answer(conn, stat(rearm.req.xid, 1, &["c"], b""));
    assert_eq!(
        watch_events(p.take_events()),
        vec![(EventType::Modify, true), (EventType::Children, true)]
    );
}

#[test]
fn an_early_empty_ping_answer_rearms_every_watch() {
    let (mut p, conn, ping) = watching_a(1, &[]);
    // The server lets go of the held ping long before the idle hold: leadership left
    // and came back to this node, dropping every watch, while /a was written.
    p.advance(ms(100));
    p.answer(conn, ok(ping.req.xid));
    let rearm = p.take_non_ping();
    assert!(rearm.req.watch.is_some() && rearm.req.stat.is_some());
    p.answer(conn, stat(rearm.req.xid, 2, &[], b""));
    assert_eq!(
        watch_events(p.take_events()),
        vec![(EventType::Modify, true)]
    );
}

#[test]
fn the_ping_released_by_an_unregister_in_flight_rearms_nothing() {
    let (mut p, conn, ping) = watching_a(1, &[]);
    p.client.submit(pyxis_core::Op::Unregister, p.now);
    p.drain();
    let unregister = p.take_non_ping();
    assert!(unregister.req.unregister.is_some());
    // Ending the session answers its held ping at once, empty: not a leader change,
    // and the next session registers every watch anyway.
    p.advance(ms(10));
    p.answer(conn, ok(ping.req.xid));
    assert!(
        p.sent.iter().all(|s| s.req.watch.is_none()),
        "no re-registration on the ending session: {:?}",
        p.sent
    );
}

/// The re-registration of /a the client sent, answered at version 2: the write missed
/// while the watch was dropped is inferred.
fn expect_rearm_and_inferred_modify(p: &mut Peer, conn: pyxis_core::ConnId) {
    let arms: Vec<Sent> = p
        .sent
        .iter()
        .filter(|s| s.req.watch.is_some())
        .cloned()
        .collect();
    assert_eq!(arms.len(), 1, "one re-registration: {:?}", p.sent);
    assert!(arms[0].req.stat.is_some());
    p.answer(conn, stat(arms[0].req.xid, 2, &[], b""));
    assert_eq!(
        watch_events(p.take_events()),
        vec![(EventType::Modify, true)]
    );
}

#[test]
fn a_late_wake_up_with_a_ping_answer_rearms_every_watch() {
    let (mut p, conn, ping) = watching_a(1, &[]);
    // The process was paused for 20 s, far past the ping's deadline (T + grace = 7 s):
    // meanwhile leadership left this node (releasing the ping) and came back, dropping
    // the watch, and /a was written. The first thing the core sees is the ping's answer,
    // which looks like an idle one by now.
    p.now += ms(20_000);
    p.answer(conn, ok(ping.req.xid));
    expect_rearm_and_inferred_modify(&mut p, conn);
}

#[test]
fn a_late_wake_up_with_a_timeout_rearms_every_watch() {
    let (mut p, conn, _ping) = watching_a(1, &[]);
    // Starved past every deadline: the timer fires 20 s late.
    p.now += ms(20_000);
    p.client.handle_timeout(p.now);
    p.drain();
    expect_rearm_and_inferred_modify(&mut p, conn);
    assert!(
        p.closes.is_empty(),
        "the connection is probed, not given up"
    );
}

#[test]
fn a_late_wake_up_with_a_timeout_then_the_ping_answer_rearms_every_watch_once() {
    // Sim seed 11725086164929: the timer and the ping's answer both waited through a
    // pause; the timer is handled first (a late wake-up: every watch re-registered),
    // then the answer, read before any answer to that re-registration. The server wrote
    // it before handling the re-registration, which therefore covers whatever it tells.
    // The watch's registration was answered a second after the ping was sent, so the
    // timer finds the ping's bound renewed by that answer: no probe replaces the ping.
    let (mut p, conn, ping) = up();
    p.advance(ms(1_000));
    p.client.watch(persistent("/a"), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 1, &[], b""));
    p.take_events();
    p.now += ms(6_600);
    p.client.handle_timeout(p.now);
    p.drain();
    assert_eq!(p.pings_outstanding(), 0, "not probed: {:?}", p.sent);
    p.answer(conn, ok(ping.req.xid));
    expect_rearm_and_inferred_modify(&mut p, conn);
    // Once an answer to it was read, a release is one the re-registration did not see.
    p.sent.retain(|s| s.req.watch.is_none());
    let held = p.take_ping();
    p.advance(ms(1_500));
    p.answer(conn, ok(held.req.xid));
    let arms = p.sent.iter().filter(|s| s.req.watch.is_some()).count();
    assert_eq!(arms, 1, "a release after the re-registration: {:?}", p.sent);
}

#[test]
fn a_wake_up_half_a_second_late_rearms_every_watch() {
    let (mut p, conn, _ping) = watching_a(1, &[]);
    let asked = p.client.poll_timeout().expect("a deadline");
    p.now = asked + ms(600);
    p.client.handle_timeout(p.now);
    p.drain();
    expect_rearm_and_inferred_modify(&mut p, conn);
}

#[test]
fn an_empty_answer_read_long_after_the_known_hold_rearms_every_watch() {
    let (mut p, conn, ping) = watching_a(1, &[]);
    // Read 6.5 s after the ping (and the last request): past the 5 s hold asked for by
    // more than a second, though before the ping's liveness deadline. The process may
    // have been paused through a release.
    p.advance(ms(6_500));
    assert!(p.sent.is_empty(), "no deadline passed yet");
    p.answer(conn, ok(ping.req.xid));
    expect_rearm_and_inferred_modify(&mut p, conn);
}

#[test]
fn a_timely_wake_up_rearms_nothing() {
    let (mut p, _conn, _ping) = watching_a(1, &[]);
    // The timer fires within half a second of the deadline asked for: an ordinary (if
    // slow) loop. The ping's liveness bound passed: a probe goes out, nothing else.
    let asked = p.client.poll_timeout().expect("a deadline");
    p.now = asked + ms(400);
    p.client.handle_timeout(p.now);
    p.drain();
    assert_eq!(p.pings_outstanding(), 1, "a probe");
    assert!(
        p.sent.iter().all(|s| s.req.watch.is_none()),
        "no re-registration: {:?}",
        p.sent
    );
}

#[test]
fn an_early_release_is_measured_from_the_last_request() {
    let (mut p, conn, ping) = watching_a(1, &[]);
    // A request 2.5 s into the ping's hold refreshes the session: the idle answer is
    // due about T - 1 s after it, so an empty answer 3.5 s after the ping (1 s after
    // the request) is a release.
    p.advance(ms(2_500));
    let id = p.client.submit(
        pyxis_core::Op::Exists {
            path: "/b".into(),
            watch: None,
        },
        p.now,
    );
    p.drain();
    let exists = p.take_non_ping();
    p.answer(
        conn,
        err(exists.req.xid, pyxis_proto::ErrorType::KNotFound, "/b"),
    );
    assert!(p.completion(id).is_some());
    p.advance(ms(1_000));
    p.answer(conn, ok(ping.req.xid));
    expect_rearm_and_inferred_modify(&mut p, conn);
}

#[test]
fn an_idle_empty_ping_answer_rearms_nothing() {
    let (mut p, conn, ping) = watching_a(1, &[]);
    // The usual answer to an idle ping, about T - 1 s after it was sent.
    p.advance(ms(4_000));
    p.answer(conn, ok(ping.req.xid));
    assert!(
        p.sent.iter().all(|s| s.req.watch.is_none()),
        "no re-registration: {:?}",
        p.sent
    );
}

#[test]
fn a_child_change_between_a_children_event_and_its_rearm_is_inferred() {
    // (children at the re-arm, whether a second change was missed); the baseline is ["x"]
    // and the event reported one change.
    let cases: [(&[&str], bool); 4] = [
        (&["x", "y"], false),
        (&[], false),
        (&["x"], true),
        (&["x", "y", "z"], true),
    ];
    for (children, expect_missed) in cases {
        let (mut p, conn, ping) = watching_a(0, &["x"]);
        p.answer(conn, event(ping.req.xid, "/a", "/a", event_type::CHILDREN));
        assert_eq!(
            watch_events(p.take_events()),
            vec![(EventType::Children, false)]
        );
        let rearm = p.take_non_ping();
        p.answer(conn, stat(rearm.req.xid, 0, children, b""));
        let inferred = watch_events(p.take_events());
        if expect_missed {
            assert_eq!(inferred, vec![(EventType::Children, true)], "{children:?}");
        } else {
            assert!(inferred.is_empty(), "{children:?}: {inferred:?}");
        }
    }
}

fn persistent_on(path: &str, mask: EventMask, recursive: bool) -> WatchSpec {
    WatchSpec {
        path: path.into(),
        mask,
        recursive,
        mode: WatchMode::Persistent,
    }
}

/// Drops the connection and reconnects (same session); returns the new connection and
/// the re-registrations sent on it.
fn reconnect(p: &mut Peer, conn: pyxis_core::ConnId) -> (pyxis_core::ConnId, Vec<Sent>) {
    p.close_conn(conn);
    p.advance(ms(2_000));
    let conn = p.connect_with_sid(SID);
    p.take_events();
    let arms = p
        .sent
        .iter()
        .filter(|s| s.req.watch.is_some())
        .cloned()
        .collect();
    p.sent.clear();
    (conn, arms)
}

#[test]
fn a_deletion_missed_while_disconnected_is_told_through_each_mask() {
    let (mut p, conn, _ping) = up();
    let modify = p
        .client
        .watch(persistent_on("/a", EventMask::MODIFY, false), p.now);
    let children = p
        .client
        .watch(persistent_on("/a", EventMask::CHILDREN, false), p.now);
    let delete = p
        .client
        .watch(persistent_on("/a", EventMask::DELETE, false), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 2, &["x"], b""));
    assert!(p.take_events().is_empty());
    // While disconnected, /a is written, its child removed, and /a deleted.
    let (conn, arms) = reconnect(&mut p, conn);
    assert_eq!(arms.len(), 1);
    p.answer(
        conn,
        err(arms[0].req.xid, pyxis_proto::ErrorType::KNotFound, "/a"),
    );
    let mut told = by_watch(&mut p);
    told.sort_by_key(|(id, _, _)| *id);
    assert_eq!(
        told,
        vec![
            (modify, EventType::Modify, true),
            (children, EventType::Children, true),
            (delete, EventType::Delete, true),
        ]
    );
}

#[test]
fn a_creation_missed_with_later_writes_and_children_infers_them_all() {
    let (mut p, conn, _ping) = up();
    p.client.watch(persistent("/a"), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(
        conn,
        err(arm.req.xid, pyxis_proto::ErrorType::KNotFound, "/a"),
    );
    // While disconnected, /a is created, written once and given a child.
    let (conn, arms) = reconnect(&mut p, conn);
    p.answer(conn, stat(arms[0].req.xid, 1, &["c"], b""));
    assert_eq!(
        watch_events(p.take_events()),
        vec![
            (EventType::Create, true),
            (EventType::Modify, true),
            (EventType::Children, true)
        ]
    );
}

#[test]
fn a_child_event_on_a_recursive_registration_stands_for_the_parents_children_event() {
    let (mut p, conn, ping) = up();
    p.client
        .watch(persistent_on("/a", EventMask::CREATE, true), p.now);
    let children = p
        .client
        .watch(persistent_on("/a", EventMask::CHILDREN, false), p.now);
    p.drain();
    let arm = p.take_non_ping();
    assert_eq!(arm.req.watch.as_ref().and_then(|w| w.recursive), Some(true));
    p.answer(conn, stat(arm.req.xid, 0, &[], b""));
    // Creating /a/b raises Create on /a/b, which spends the recursive registration on
    // /a: the server's Children event on /a that follows finds no registration.
    p.answer(conn, event(ping.req.xid, "/a", "/a/b", event_type::CREATE));
    let told: Vec<_> = p
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Watch { id, event } if id == children => Some((event.kind, event.inferred)),
            _ => None,
        })
        .collect();
    assert_eq!(told, vec![(EventType::Children, true)]);
    // The re-check of /a/b and the re-arm's stat show exactly that one child as it was
    // created: nothing more is inferred.
    let check = p.take_non_ping();
    assert_eq!(
        check.req.stat.as_ref().map(|s| s.path.as_str()),
        Some("/a/b")
    );
    p.answer(conn, stat(check.req.xid, 0, &[], b""));
    let rearm = p.take_non_ping();
    assert!(rearm.req.watch.is_some());
    p.answer(conn, stat(rearm.req.xid, 0, &["b"], b""));
    assert!(watch_events(p.take_events()).is_empty());
}

#[test]
fn a_deletion_of_a_node_whose_children_went_unreported_tells_children_watches() {
    let (mut p, conn, ping) = up();
    let children = p
        .client
        .watch(persistent_on("/a", EventMask::CHILDREN, false), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 0, &["x"], b""));
    // The registration fires with the deletion of /a itself: its child's deletion was
    // not seen (it would have fired first), so the children watch is told.
    p.answer(conn, event(ping.req.xid, "/a", "/a", event_type::DELETE));
    let told: Vec<_> = p
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Watch { id, event } if id == children => Some((event.kind, event.inferred)),
            _ => None,
        })
        .collect();
    assert_eq!(told, vec![(EventType::Children, true)]);
}

#[test]
fn a_one_shot_watch_gets_at_most_one_event_marked_last() {
    let (mut p, conn, _ping) = up();
    let once = p.client.watch(
        WatchSpec {
            path: "/a".into(),
            mask: EventMask(EventMask::MODIFY.0 | EventMask::CHILDREN.0),
            recursive: false,
            mode: WatchMode::OneShot,
        },
        p.now,
    );
    let always = p.client.watch(
        persistent_on(
            "/a",
            EventMask(EventMask::MODIFY.0 | EventMask::CHILDREN.0),
            false,
        ),
        p.now,
    );
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 2, &["x"], b""));
    // While disconnected, /a is deleted: its data and its child are gone, two changes
    // for a Modify|Children watch, but a one-shot watch hears of one.
    let (conn, arms) = reconnect(&mut p, conn);
    p.answer(
        conn,
        err(arms[0].req.xid, pyxis_proto::ErrorType::KNotFound, "/a"),
    );
    let told: Vec<_> = p
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Watch { id, event } => Some((id, event.kind, event.last)),
            _ => None,
        })
        .collect();
    assert_eq!(
        told.iter().filter(|(id, _, _)| *id == once).count(),
        1,
        "{told:?}"
    );
    assert!(told.contains(&(once, EventType::Modify, true)), "{told:?}");
    assert_eq!(
        told.iter()
            .filter(|(id, _, last)| *id == always && !*last)
            .count(),
        2,
        "the persistent watch hears both, neither is its last: {told:?}"
    );
}

/// A stat answer of a node created by session `owner`.
fn stat_by(xid: Option<u64>, version: u64, data: &[u8], owner: u64) -> pyxis_proto::rpc::Response {
    use prost::Message;
    let node = pyxis_proto::store::Node {
        data: Some(bytes::Bytes::copy_from_slice(data)),
        children: Vec::new(),
        flags: Some(0),
        version: Some(version),
        sid: Some(owner),
    };
    pyxis_proto::rpc::Response {
        xid,
        data: Some(bytes::Bytes::from(node.encode_to_vec())),
        ..Default::default()
    }
}

/// Every watch event as (watch, kind, inferred).
fn by_watch(p: &mut Peer) -> Vec<(pyxis_core::WatchId, EventType, bool)> {
    p.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Watch { id, event } => Some((id, event.kind, event.inferred)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_deletion_reported_by_the_server_is_told_to_a_watch_not_listening_for_delete() {
    // A Modify watch saw version 1; the node is deleted (the server reports it) and
    // created again at version 0. Its data changed, so the watch is told.
    let (mut p, conn, ping) = up();
    let modify = p
        .client
        .watch(persistent_on("/a", EventMask::MODIFY, false), p.now);
    let delete = p
        .client
        .watch(persistent_on("/a", EventMask::DELETE, false), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 1, &[], b"v1"));
    assert!(by_watch(&mut p).is_empty());
    p.answer(conn, event(ping.req.xid, "/a", "/a", event_type::DELETE));
    assert_eq!(
        by_watch(&mut p),
        vec![
            (modify, EventType::Modify, true),
            (delete, EventType::Delete, false)
        ]
    );
    let rearm = p.take_non_ping();
    p.answer(
        conn,
        err(rearm.req.xid, pyxis_proto::ErrorType::KNotFound, "/a"),
    );
    let ping = p.take_ping();
    p.answer(conn, event(ping.req.xid, "/a", "/a", event_type::CREATE));
    assert!(
        by_watch(&mut p).is_empty(),
        "a creation is nothing to either"
    );
    let rearm = p.take_non_ping();
    p.answer(conn, stat(rearm.req.xid, 0, &[], b"v0"));
    assert!(by_watch(&mut p).is_empty());
}

#[test]
fn a_node_recreated_while_disconnected_is_inferred_even_at_the_same_version() {
    // (what the re-registration's stat shows: version, data, owner); last seen was
    // version 1 with data "old" created by session 7.
    let cases: [(u64, &[u8], u64); 3] = [(1, b"new", 7), (1, b"old", 8), (0, b"old", 7)];
    for (version, data, owner) in cases {
        let (mut p, conn, _ping) = up();
        let modify = p
            .client
            .watch(persistent_on("/a", EventMask::MODIFY, false), p.now);
        let once = p.client.watch(
            WatchSpec {
                path: "/a".into(),
                mask: EventMask::MODIFY,
                recursive: false,
                mode: WatchMode::OneShot,
            },
            p.now,
        );
        let all = p.client.watch(persistent("/a"), p.now);
        p.drain();
        let arm = p.take_non_ping();
        p.answer(conn, stat_by(arm.req.xid, 1, b"old", 7));
        assert!(by_watch(&mut p).is_empty());
        // While disconnected /a is deleted, created again and (but for the last case)
        // written once.
        let (conn, arms) = reconnect(&mut p, conn);
        p.answer(conn, stat_by(arms[0].req.xid, version, data, owner));
        let mut got = by_watch(&mut p);
        got.sort_by_key(|(id, _, _)| *id);
        let mut want = vec![
            (modify, EventType::Modify, true),
            (once, EventType::Modify, true),
            (all, EventType::Delete, true),
            (all, EventType::Create, true),
        ];
        if version > 0 {
            want.push((all, EventType::Modify, true));
        }
        assert_eq!(got, want, "{version} {data:?} {owner}");
    }
}

/// Every watch event as (path, kind, inferred).
fn by_path(p: &mut Peer) -> Vec<(String, EventType, bool)> {
    p.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Watch { event, .. } => Some((event.path, event.kind, event.inferred)),
            _ => None,
        })
        .collect()
}

fn stat_path(s: &Sent) -> &str {
    s.req.stat.as_ref().map_or("", |s| s.path.as_str())
}

#[test]
fn a_recursive_watch_rechecks_what_it_has_seen_below_and_after_a_reconnect() {
    let (mut p, conn, ping) = up();
    p.client
        .watch(persistent_on("/a", EventMask::ALL, true), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 0, &[], b""));
    // /a/b is created: the event spends the registration.
    p.answer(conn, event(ping.req.xid, "/a", "/a/b", event_type::CREATE));
    let got = by_path(&mut p);
    assert_eq!(
        got,
        vec![
            ("/a/b".into(), EventType::Create, false),
            ("/a".into(), EventType::Children, true)
        ]
    );
    // The re-arm batch re-checks /a/b first: written once and given a child meanwhile.
    let check = p.take_non_ping();
    let rearm = p.take_non_ping();
    assert_eq!(
        (stat_path(&check), check.req.watch.is_none()),
        ("/a/b", true)
    );
    assert_eq!((stat_path(&rearm), rearm.req.watch.is_some()), ("/a", true));
    p.answer(conn, stat(check.req.xid, 1, &["c"], b""));
    p.answer(conn, stat(rearm.req.xid, 0, &["b"], b""));
    assert_eq!(
        by_path(&mut p),
        vec![
            ("/a/b".into(), EventType::Modify, true),
            ("/a/b".into(), EventType::Children, true),
            ("/a/b/c".into(), EventType::Create, true)
        ]
    );
    // While disconnected, /a/b/c and /a/b are deleted. The reconnect re-checks every
    // descendant seen, then re-arms /a.
    p.close_conn(conn);
    p.advance(ms(2_000));
    let conn = p.connect_with_sid(SID);
    p.take_events();
    let sent: Vec<Sent> = p.sent.drain(..).filter(|s| s.req.ping.is_none()).collect();
    let paths: Vec<(&str, bool)> = sent
        .iter()
        .map(|s| (stat_path(s), s.req.watch.is_some()))
        .collect();
    assert_eq!(
        paths,
        vec![("/a/b", false), ("/a/b/c", false), ("/a", true)]
    );
    p.answer(
        conn,
        err(sent[0].req.xid, pyxis_proto::ErrorType::KNotFound, "/a/b"),
    );
    p.answer(
        conn,
        err(sent[1].req.xid, pyxis_proto::ErrorType::KNotFound, "/a/b/c"),
    );
    p.answer(conn, stat(sent[2].req.xid, 0, &[], b""));
    assert_eq!(
        by_path(&mut p),
        vec![
            ("/a/b".into(), EventType::Delete, true),
            ("/a/b/c".into(), EventType::Delete, true),
            ("/a".into(), EventType::Children, true)
        ]
    );
}

/// A read of `/b` sent and answered now (it refreshes the session).
fn busy_read(p: &mut Peer, conn: pyxis_core::ConnId) {
    let id = p.client.submit(
        pyxis_core::Op::Exists {
            path: "/b".into(),
            watch: None,
        },
        p.now,
    );
    p.drain();
    let exists = p.take_non_ping();
    p.answer(
        conn,
        err(exists.req.xid, pyxis_proto::ErrorType::KNotFound, "/b"),
    );
    assert!(p.completion(id).is_some());
}

/// The held `ping` released (a leader change) at once: the re-registration of /a it
/// brings is answered unchanged; returns the next ping.
fn first_release(p: &mut Peer, conn: pyxis_core::ConnId, ping: Sent) -> Sent {
    p.answer(conn, ok(ping.req.xid));
    let rearm = p.take_non_ping();
    assert!(rearm.req.watch.is_some(), "first release: {rearm:?}");
    p.answer(conn, stat(rearm.req.xid, 1, &[], b""));
    assert!(watch_events(p.take_events()).is_empty());
    p.take_ping()
}

#[test]
fn a_second_release_of_a_held_ping_on_a_busy_session_rearms_every_watch() {
    // Found by the simulator (seed 458649684494): two leader changes in a row while the
    // session sends a request every 400 ms. Each releases the held ping a moment after a
    // request, so both answers are early by about the same time since the last refresh;
    // the second ping was held for seconds all the same, so it is no server that answers
    // at once, and a server holding pings for 150 ms would have answered it in the first
    // quiet 400 ms.
    let (mut p, conn, ping) = watching_a(1, &[]);
    p.advance(ms(1_000));
    busy_read(&mut p, conn);
    p.advance(ms(100));
    let ping = first_release(&mut p, conn, ping);
    for _ in 0..8 {
        p.advance(ms(400));
        busy_read(&mut p, conn);
    }
    p.advance(ms(150));
    // Leadership left and came back again, dropping the watch; /a was written meanwhile.
    p.answer(conn, ok(ping.req.xid));
    expect_rearm_and_inferred_modify(&mut p, conn);
}

#[test]
fn a_release_soon_after_a_release_with_a_request_between_rearms_every_watch() {
    // Found by the simulator (seed 458649692405): two leader changes half a second apart.
    // The second releases the re-sent ping within the pacing interval, but a request
    // sent meanwhile was answered first: the server held that ping, it does not answer
    // pings at once.
    let (mut p, conn, ping) = watching_a(1, &[]);
    p.advance(ms(1_000));
    let ping = first_release(&mut p, conn, ping);
    p.advance(ms(360));
    busy_read(&mut p, conn);
    p.advance(ms(90));
    p.answer(conn, ok(ping.req.xid));
    expect_rearm_and_inferred_modify(&mut p, conn);
}

#[test]
fn an_event_answer_read_long_after_the_known_hold_rearms_every_watch() {
    // Found by the simulator (seed 458649692532): the process was paused for 7 s with
    // an event for /b waiting unread on the connection; no ping was held meanwhile, so a
    // leader change dropped every watch without a release to tell of it.
    let (mut p, conn, ping) = watching_a(1, &[]);
    p.client.watch(persistent("/b"), p.now);
    p.drain();
    let arm_b = p.take_non_ping();
    p.answer(conn, stat(arm_b.req.xid, 0, &[], b""));
    assert!(watch_events(p.take_events()).is_empty());
    // Within the ping's liveness bound (T + grace), so no late wake-up is seen.
    p.now += ms(6_500);
    p.answer(conn, event(ping.req.xid, "/b", "/b", event_type::MODIFY));
    assert_eq!(
        watch_events(p.take_events()),
        vec![(EventType::Modify, false)]
    );
    let arm_a: Vec<Sent> = p
        .sent
        .iter()
        .filter(|s| s.req.watch.is_some() && s.req.stat.as_ref().is_some_and(|st| st.path == "/a"))
        .cloned()
        .collect();
    assert_eq!(arm_a.len(), 1, "/a re-registered: {:?}", p.sent);
    p.answer(conn, stat(arm_a[0].req.xid, 2, &[], b""));
    assert_eq!(
        watch_events(p.take_events()),
        vec![(EventType::Modify, true)]
    );
}

/// Every session event queued, leaving the other events.
fn take_session_events(p: &mut Peer) -> Vec<pyxis_core::SessionEvent> {
    let events = p.session_events();
    p.events.retain(|e| !matches!(e, Event::Session(_)));
    events
}

#[test]
fn a_change_below_a_recursive_watch_that_no_look_named_is_signalled_by_the_rearm() {
    use pyxis_core::SessionEvent;
    // A recursive watch on /tree, armed when /tree had one child, /tree/a: no event
    // and no look named /tree/a itself, so the watch holds no baseline of it.
    let (mut p, conn, ping) = up();
    p.client
        .watch(persistent_on("/tree", EventMask::ALL, true), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 0, &["a"], b""));
    assert!(
        p.take_events().is_empty(),
        "a first registration tells nothing"
    );
    // Leadership moves back to this node: the held ping is released early and every
    // watch dropped; /tree/a/y is created before the re-registration reaches the server.
    p.advance(ms(100));
    p.answer(conn, ok(ping.req.xid));
    let rearm = p.take_non_ping();
    assert_eq!(
        (stat_path(&rearm), rearm.req.watch.is_some()),
        ("/tree", true)
    );
    assert_eq!(
        take_session_events(&mut p),
        vec![SessionEvent::WatchesRearmed],
        "the application is told every watch was registered again"
    );
    // /tree itself is unchanged: the core cannot see the child /tree/a got (it is
    // unknowable to it), and infers nothing; the signal is what tells a mirror to re-read.
    p.answer(conn, stat(rearm.req.xid, 0, &["a"], b""));
    assert!(by_path(&mut p).is_empty());
}

#[test]
fn every_rearm_of_every_watch_is_signalled_once_whatever_its_cause() {
    use pyxis_core::SessionEvent;
    let (mut p, conn, ping) = watching_a(1, &[]);
    assert!(
        take_session_events(&mut p).is_empty(),
        "a watch added while up is registered alone, not with every watch"
    );
    // An early release of the held ping (a suspected leader change on this connection).
    p.advance(ms(100));
    p.answer(conn, ok(ping.req.xid));
    let rearm = p.take_non_ping();
    p.answer(conn, stat(rearm.req.xid, 1, &[], b""));
    assert_eq!(
        take_session_events(&mut p),
        vec![SessionEvent::WatchesRearmed]
    );
    // A late wake-up (the process was paused).
    p.now += ms(20_000);
    p.client.handle_timeout(p.now);
    p.drain();
    assert_eq!(
        take_session_events(&mut p),
        vec![SessionEvent::WatchesRearmed]
    );
    // A reconnect resuming the session: after its Connected.
    p.close_conn(conn);
    p.advance(ms(2_000));
    p.take_events();
    let _conn = p.connect_with_sid(SID);
    assert_eq!(
        take_session_events(&mut p),
        vec![
            SessionEvent::Connected { sid: SID },
            SessionEvent::WatchesRearmed
        ]
    );
}

#[test]
fn a_session_up_without_watches_signals_no_rearm() {
    let (mut p, _conn, _ping) = {
        let mut p = Peer::new(config(&["a:1"]));
        let conn = p.connect_with_sid(SID);
        let ping = p.take_ping();
        (p, conn, ping)
    };
    assert_eq!(
        take_session_events(&mut p),
        vec![pyxis_core::SessionEvent::Connected { sid: SID }]
    );
}
