//! Model tests of sessions and the held ping ([protocol](pyxis_proto::protocol) §5).

mod common;

use std::time::Duration;

use common::*;
use pyxis_proto::{event_type, ErrorType};
use pyxis_testkit::model::{AppliedKind, ModelConfig, SessionEnd};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Steps 1 ms at a time until the session is gone; returns how long after `from` it took.
fn time_to_expiry(h: &mut Harness, sid: u64, limit: Duration) -> Duration {
    let from = h.now;
    while h.model.sessions().contains(&sid) {
        assert!(
            h.now - from < limit,
            "session {sid} did not expire within {limit:?}"
        );
        h.advance(ms(1));
    }
    h.now - from
}

#[test]
fn session_expires_about_t_after_the_last_refresh_rounded_to_the_interval() {
    // Like the original (T = 5 s expired 5.8-5.9 s after the refresh): the expiry time
    // rounded to the interval, then one more check tick.
    let mut h = Harness::new(1); // interval 50 ms
    h.connect(0, C1);
    for offset in [0u64, 10, 24, 26, 49] {
        h.advance(ms(offset));
        let sid = h.register(C1, 1000);
        h.send(C1, &base(sid, 1)); // refresh, answered at once
        let took = time_to_expiry(&mut h, sid, ms(2000));
        assert!(
            took >= ms(1000 + 50 - 25 - 6) && took <= ms(1000 + 50 + 50),
            "expired after {took:?}"
        );
    }
}

#[test]
fn session_ids_are_the_wall_clock_base_plus_a_counter() {
    let t = Duration::from_millis(1_700_000_000_123);
    let mut h = Harness::with_config(ModelConfig::fast().with_wall_clock(t), 1);
    h.connect(0, C1);
    let a = h.register(C1, 1000);
    let b = h.register(C1, 1000);
    assert_eq!(
        (a, b),
        ((1_700_000_000_123 << 16) + 1, (1_700_000_000_123 << 16) + 2)
    );
    // A model started a millisecond later (a restart) is above every id of this one.
    let mut later = Harness::with_config(ModelConfig::fast().with_wall_clock(t + ms(1)), 1);
    later.connect(0, C1);
    assert!(later.register(C1, 1000) > b + 60_000);
}

#[test]
fn every_request_but_unregister_refreshes() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 300);
    for i in 0..20u64 {
        h.advance(ms(100));
        let req = match i % 4 {
            0 => stat(sid, i, "/"),
            1 => base(sid, i),
            2 => watch(sid, i, "/w", 1, false),
            _ => create(sid, i, &format!("/n{i}"), 0, b""),
        };
        h.send(C1, &req);
    }
    assert_eq!(
        h.model.sessions(),
        vec![sid],
        "2 s of traffic kept a 300 ms session alive"
    );
    let took = time_to_expiry(&mut h, sid, ms(1000));
    assert!(took >= ms(250) && took <= ms(360), "expired after {took:?}");
}

#[test]
fn re_register_does_not_refresh() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 400);
    let start = h.now;
    for i in 0..10u64 {
        h.advance(ms(30));
        h.send(C1, &register(Some(sid), 100 + i, Some(400)));
        if !h.model.sessions().contains(&sid) {
            break;
        }
    }
    let _ = time_to_expiry(&mut h, sid, ms(1000));
    assert!(
        h.now - start <= ms(460),
        "re-register kept the session alive"
    );
}

#[test]
fn held_ping_is_answered_empty_about_t_minus_interval_after_refresh() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 1000);
    h.send(C1, &ping(sid, 7));
    let sent = h.now;
    assert!(h.model.holds_ping(sid));
    let answer = loop {
        h.advance(ms(1));
        if let Some(r) = h.take(C1).pop() {
            break r;
        }
        assert!(h.now - sent < ms(1500), "ping never answered");
    };
    let held = h.now - sent;
    assert_eq!(answer.xid, Some(7));
    assert_eq!(answer.watch, None);
    assert!(
        held >= ms(1000 - 50 - 30) && held <= ms(1000),
        "held {held:?}"
    );
    // The client pings again as soon as a ping is answered: the session lives on.
    let mut answers = 0;
    h.send(C1, &ping(sid, 8));
    for step in 0..300u64 {
        h.advance(ms(10));
        if !h.take(C1).is_empty() {
            answers += 1;
            h.send(C1, &ping(sid, 100 + step));
        }
    }
    assert_eq!(h.model.sessions(), vec![sid]);
    assert_eq!(answers, 3, "answered about every T - interval over 3 s");
}

#[test]
fn a_new_ping_replaces_the_held_one_which_is_answered_empty_at_once() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.connect(0, C2);
    let sid = h.register(C1, 5000);
    h.send(C1, &ping(sid, 1));
    assert!(h.take(C1).is_empty());
    // Sessions are not tied to connections: the next ping comes on C2.
    h.send(C2, &ping(sid, 2));
    let got = h.take(C1);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].xid, got[0].watch.is_none()), (Some(1), true));
    assert!(h.take(C2).is_empty());
    assert!(h.model.holds_ping(sid));
}

#[test]
fn pending_events_go_one_per_ping_ordered_by_watched_path() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 5000);
    for (i, p) in ["/c", "/a", "/b"].iter().enumerate() {
        assert_ok(&h.call(C1, &create(sid, 10 + i as u64, p, 0, b"")));
        assert_ok(&h.call(C1, &watch(sid, 20 + i as u64, p, event_type::MODIFY, false)));
    }
    // Changes happen in the order c, a, b while no ping is held.
    for (i, p) in ["/c", "/a", "/b"].iter().enumerate() {
        assert_ok(&h.call(C1, &write(sid, 30 + i as u64, p, b"v")));
    }
    let mut seen = Vec::new();
    for x in 0..3u64 {
        h.send(C1, &ping(sid, 40 + x));
        let got = h.take(C1);
        assert_eq!(got.len(), 1, "one event per ping answer");
        let w = got[0].watch.clone().unwrap();
        assert_eq!(got[0].path.as_deref(), Some(w.path.as_str()));
        assert_eq!(w.r#type, event_type::MODIFY);
        seen.push(w.path);
    }
    assert_eq!(seen, vec!["/a", "/b", "/c"]);
    h.send(C1, &ping(sid, 50));
    assert!(h.take(C1).is_empty(), "nothing pending: held");
}

#[test]
fn held_ping_is_answered_when_an_event_arrives() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.connect(0, C2);
    let watcher = h.register(C1, 5000);
    let writer = h.register(C2, 5000);
    assert_err(
        &h.call(C1, &stat(watcher, 1, "/later")),
        ErrorType::KNotFound,
        "/later",
    );
    h.send(C1, &ping(watcher, 2));
    assert!(h.take(C1).is_empty());
    assert_ok(&h.call(C2, &create(writer, 3, "/x", 0, b"")));
    assert!(h.take(C1).is_empty(), "no watch, no answer");
    assert_ok(&h.call(C1, &watch(watcher, 4, "/x", event_type::DELETE, false)));
    assert_ok(&h.call(C2, &delete(writer, 5, "/x")));
    let got = h.take(C1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].xid, Some(2));
    assert_eq!(
        got[0].watch.as_ref().map(|w| w.r#type),
        Some(event_type::DELETE)
    );
}

#[test]
fn expiry_deletes_ephemeral_nodes_with_their_events() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.connect(0, C2);
    let owner = h.register(C1, 300);
    let watcher = h.register(C2, 60_000);
    assert_ok(&h.call(C2, &create(watcher, 1, "/svc", 0, b"")));
    assert_ok(&h.call(C1, &create(owner, 1, "/svc/eph", 1, b"me")));
    assert_ok(&h.call(
        C2,
        &watch(watcher, 2, "/svc/eph", event_type::DELETE, false),
    ));
    assert_ok(&h.call(C2, &watch(watcher, 3, "/svc", event_type::CHILDREN, false)));
    let _ = time_to_expiry(&mut h, owner, ms(1000));
    assert!(h.model.node("/svc/eph").is_none());
    assert!(h.model.node("/svc").unwrap().children.is_empty());
    let mut events = Vec::new();
    for x in 0..2u64 {
        h.send(C2, &ping(watcher, 10 + x));
        let got = h.take(C2);
        let w = got[0].watch.clone().unwrap();
        events.push((got[0].path.clone().unwrap(), w.path, w.r#type));
    }
    assert_eq!(
        events,
        vec![
            ("/svc".into(), "/svc".into(), event_type::CHILDREN),
            ("/svc/eph".into(), "/svc/eph".into(), event_type::DELETE)
        ]
    );
    assert_err(
        &h.call(C1, &ping(owner, 9)),
        ErrorType::KSessionExpired,
        "session expired",
    );
    let kinds: Vec<AppliedKind> = h.model.applied_ops().map(|o| o.kind.clone()).collect();
    assert!(kinds.contains(&AppliedKind::SessionClosed {
        reason: SessionEnd::Expired
    }));
    assert!(kinds.contains(&AppliedKind::EphemeralDeleted));
}

#[test]
fn expire_session_control_ends_it_now() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 60_000);
    assert_ok(&h.call(C1, &create(sid, 1, "/e", 1, b"")));
    assert!(h.model.expire_session(sid, h.now));
    assert!(!h.model.expire_session(sid, h.now));
    assert!(h.model.node("/e").is_none());
    assert!(h.model.sessions().is_empty());
}

#[test]
fn an_event_handed_to_a_ping_on_a_dead_connection_is_lost() {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    h.connect(0, C2);
    let sid = h.register(C1, 5000);
    let other = h.register(C2, 5000);
    assert_ok(&h.call(C1, &watch(sid, 1, "/z", event_type::CREATE, false)));
    h.send(C1, &ping(sid, 2));
    h.model.handle_close(C1, h.now);
    assert_ok(&h.call(C2, &create(other, 3, "/z", 0, b"")));
    h.connect(0, C3);
    h.send(C3, &ping(sid, 4));
    assert!(
        h.take(C3).is_empty(),
        "the event went to the dead connection's ping"
    );
}

#[test]
fn sids_are_large_and_never_zero() {
    let mut h = Harness::with_config(ModelConfig::fast(), 1);
    h.connect(0, C1);
    let a = h.register(C1, 1000);
    h.advance(ms(2500));
    let b = h.register(C1, 1000);
    assert!(a > 1 << 40 && b > a);
}
