//! One scripted exchange per behaviour of the core (the behaviour -> test table is in the
//! repository's TESTING.md).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use pyxis_core::{
    CreateMode, Error, Event, EventMask, EventType, IoAction, Op, Reply, SessionEvent,
    SessionState, WatchMode, WatchSpec,
};
use pyxis_proto::{encode_frame, ErrorType};
use support::*;

fn exists(path: &str) -> Op {
    Op::Exists {
        path: path.into(),
        watch: None,
    }
}

fn write(path: &str, data: &'static [u8]) -> Op {
    Op::Write {
        path: path.into(),
        data: Bytes::from_static(data),
    }
}

fn read(path: &str) -> Op {
    Op::Read {
        path: path.into(),
        show_hidden: None,
        watch: None,
    }
}

fn watch_spec(path: &str, mask: EventMask, recursive: bool, mode: WatchMode) -> WatchSpec {
    WatchSpec {
        path: path.into(),
        mask,
        recursive,
        mode,
    }
}

// ----- 1. discovery -----

#[test]
fn b01_discovery_follows_redirects_with_backoff() {
    // The start address is drawn from the seed.
    let starts: BTreeSet<String> = (0..16)
        .map(|seed| {
            let mut c = config(&["a:1", "b:1", "c:1"]);
            c.seed = seed;
            Peer::new(c).connects[0].1.clone()
        })
        .collect();
    assert!(
        starts.len() > 1,
        "start address does not depend on the seed"
    );

    let mut p = Peer::new(config(&["a:1", "b:1", "c:1"]));
    let first = p.connects[0].1.clone();
    let conn = p.accept();
    let reg = p.take();
    p.answer(conn, err(reg.req.xid, ErrorType::KNotLeader, "leader:9"));
    assert_eq!(p.closes, vec![conn]);
    p.advance(ms(10));
    assert_eq!(
        p.connects.last().unwrap().1,
        "leader:9",
        "redirect followed within 10 ms"
    );
    // kAgain from the leader-to-be: next list address, after a backoff.
    let conn = p.accept();
    let reg = p.take();
    p.answer(conn, err(reg.req.xid, ErrorType::KAgain, ""));
    let n = p.connects.len();
    p.advance(ms(10));
    assert_eq!(p.connects.len(), n + 1, "first backoff is at most 10 ms");
    let second = p.connects.last().unwrap().1.clone();
    assert_ne!(second, first, "the list is walked");
    // Connection refused: the next address, the backoff cap doubles.
    p.refuse();
    p.advance(ms(20));
    assert_eq!(p.connects.len(), n + 2);
    let sid = 0x5eed;
    p.connect_with_sid(sid);
    assert_eq!(p.session_events(), vec![SessionEvent::Connected { sid }]);
    assert_eq!(p.client.state(), SessionState::Connected);
}

#[test]
fn b01_connect_timeout_covers_connect_and_register() {
    let mut p = Peer::new(config(&["a:1", "b:1"]));
    // The TCP connect never completes: given up after connect_timeout.
    let (first, _) = p.connecting.front().cloned().unwrap();
    p.advance(Duration::from_secs(2) - ms(1));
    assert!(p.closes.is_empty());
    p.advance(ms(1));
    assert_eq!(p.closes, vec![first]);
    p.connecting.clear();
    p.advance(ms(10));
    assert_eq!(p.connects.len(), 2, "next address after the backoff");
    // Connected, but Register is never answered: the same deadline covers it.
    p.advance(ms(500));
    let conn = p.accept();
    let reg = p.take();
    assert!(reg.req.register.is_some());
    let started = p.connects[1].0;
    p.advance(started + Duration::from_secs(2) - p.elapsed() - ms(1));
    assert_eq!(p.closes.len(), 1);
    p.advance(ms(1));
    assert_eq!(p.closes, vec![first, conn]);
}

/// Runs a cluster whose every server answers Register with `redirect(addr)` for
/// `secs` virtual seconds; returns the number of Connect actions.
fn connects_under_redirects(addrs: &[&str], redirect: impl Fn(&str) -> String, secs: u64) -> usize {
    let mut p = Peer::new(config(addrs));
    let end = p.now + Duration::from_secs(secs);
    while p.now < end {
        while let Some((_, addr)) = p.connecting.front().cloned() {
            let conn = p.accept();
            let reg = p.take();
            assert_eq!(reg.conn, conn);
            p.answer(
                conn,
                err(reg.req.xid, ErrorType::KNotLeader, &redirect(&addr)),
            );
        }
        let next = p
            .client
            .poll_timeout()
            .expect("always a deadline while connecting");
        assert!(
            next > p.now || !p.connecting.is_empty(),
            "no progress of time"
        );
        let step = next
            .saturating_duration_since(p.now)
            .max(Duration::from_nanos(1));
        p.advance(step);
    }
    p.connects.len()
}

#[test]
fn b01_redirect_to_itself_is_bounded() {
    let n = connects_under_redirects(&["a:1"], |me| me.to_owned(), 10);
    // 10 ms doubling to 1 s with full jitter: a few dozen attempts, never thousands.
    assert!((5..=80).contains(&n), "{n} connects in 10 s");
}

#[test]
fn b01_redirect_loop_between_two_servers_is_bounded() {
    let n = connects_under_redirects(
        &["a:1", "b:1"],
        |me| {
            if me == "a:1" {
                "b:1".into()
            } else {
                "a:1".into()
            }
        },
        10,
    );
    // At most MAX_REDIRECTS_IN_ROW hops per backoff step.
    assert!((5..=320).contains(&n), "{n} connects in 10 s");
    let garbage = connects_under_redirects(&["a:1"], |_| "not an address".into(), 10);
    assert!((5..=80).contains(&garbage), "{garbage} connects in 10 s");
}

// ----- 2. register -----

#[test]
fn b02_register_resumes_and_reports_expiry() {
    let mut c = config(&["a:1"]);
    c.resume_sid = Some(77);
    c.session_timeout = Duration::from_secs(8);
    let mut p = Peer::new(c);
    let conn = p.accept();
    let reg = p.take();
    assert_eq!(reg.req.sid, Some(77));
    assert_eq!(reg.req.register.as_ref().unwrap().timeout, Some(8000));
    p.answer(conn, err(reg.req.xid, ErrorType::KSessionExpired, ""));
    assert!(p.closes.is_empty(), "same connection");
    let again = p.take();
    assert_eq!(again.conn, conn);
    assert!(again.req.register.is_some());
    assert_eq!(again.req.sid, None, "the expired sid is dropped");
    p.answer(conn, ok_sid(again.req.xid, 99));
    assert_eq!(
        p.session_events(),
        vec![
            SessionEvent::Connected { sid: 99 },
            SessionEvent::Expired { old_sid: 77 }
        ]
    );
    assert_eq!(p.client.sid(), Some(99));

    // A too-short timeout is raised to 5 s; sid 0 is never sent.
    let mut c = config(&["a:1"]);
    c.resume_sid = Some(0);
    c.session_timeout = Duration::from_secs(1);
    let mut p = Peer::new(c);
    p.accept();
    let reg = p.take();
    assert_eq!(reg.req.sid, None);
    assert_eq!(reg.req.register.unwrap().timeout, Some(5000));
}

// ----- 3. ping -----

#[test]
fn b03_ping_long_poll_and_liveness() {
    let mut p = Peer::new(config(&["a:1"]));
    let conn = p.connect_with_sid(5);
    assert_eq!(p.pings_outstanding(), 1);
    let w = p.client.watch(
        watch_spec("/w", EventMask::MODIFY, false, WatchMode::OneShot),
        p.now,
    );
    p.drain();
    let arm = p.take_non_ping();
    assert!(arm.req.stat.is_some() && arm.req.watch.is_some());
    p.answer(conn, stat(arm.req.xid, 0, &[], b""));
    // Held for ~T - 1 s, then answered empty: the next ping goes out at once.
    p.advance(Duration::from_secs(4));
    let ping = p.take_ping();
    assert_eq!(ping.req.sid, Some(5));
    p.answer(conn, ok(ping.req.xid));
    assert_eq!(
        p.pings_outstanding(),
        1,
        "re-pinged immediately, one at a time"
    );
    // A ping answer carrying an event is dispatched.
    let ping = p.take_ping();
    p.answer(conn, event(ping.req.xid, "/w", "/w", 4));
    let events = p.take_events();
    assert!(events.iter().any(|e| matches!(e, Event::Watch { id, event }
        if *id == w && event.kind == EventType::Modify && !event.inferred)));
    assert_eq!(p.pings_outstanding(), 1);
    // No answer by session timeout + grace: a probe ping replaces the held one (the
    // server would answer the replaced ping at once); nothing within another grace: the
    // connection is dead.
    p.advance(Duration::from_secs(7) - ms(1));
    assert_eq!(p.pings_outstanding(), 1);
    p.advance(ms(1));
    assert_eq!(p.pings_outstanding(), 2, "a probe");
    assert!(p.closes.is_empty());
    p.advance(Duration::from_secs(2) - ms(1));
    assert!(p.closes.is_empty());
    p.advance(ms(1));
    assert_eq!(p.closes, vec![conn]);
    assert_eq!(
        p.take_events(),
        vec![Event::Session(SessionEvent::Disconnected)]
    );
    p.advance(ms(10));
    p.accept();
    let reg = p.take_non_ping();
    assert_eq!(reg.req.sid, Some(5), "reconnects with the same sid");
}

// ----- 4. pipelining -----

#[test]
fn b04_pipelined_out_of_order_unknown_xid() {
    let mut p = Peer::new(config(&["a:1"]));
    let conn = p.connect_with_sid(5);
    let _ping = p.take_ping();
    p.take_events();
    let t0 = p.transmits;
    let ids: Vec<_> = ["/a", "/b", "/c"]
        .iter()
        .map(|path| p.client.submit(exists(path), p.now))
        .collect();
    p.drain();
    assert_eq!(
        p.transmits,
        t0 + 1,
        "frames ready together leave in one transmit"
    );
    let reqs: Vec<_> = (0..3).map(|_| p.take()).collect();
    let xids: BTreeSet<_> = reqs.iter().map(|r| r.req.xid).collect();
    assert_eq!(xids.len(), 3, "each frame has its own xid");
    // An answer for an unknown xid is ignored, not fatal.
    p.answer(conn, ok(Some(99_999)));
    assert!(p.take_events().is_empty());
    assert!(p.closes.is_empty());
    // Out of order: /c, /a, /b.
    p.answer(conn, err(reqs[2].req.xid, ErrorType::KNotFound, ""));
    p.answer(conn, stat(reqs[0].req.xid, 3, &[], b"A"));
    p.answer(conn, stat(reqs[1].req.xid, 4, &[], b"B"));
    assert_eq!(
        p.completion(ids[2]),
        Some(Ok(Reply::Exists {
            node: None,
            watch: None
        }))
    );
    match p.completion(ids[0]) {
        Some(Ok(Reply::Exists { node: Some(n), .. })) => {
            assert_eq!(
                (n.path.as_str(), n.version, &n.data[..]),
                ("/a", 3, &b"A"[..])
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(p.completion(ids[1]), Some(Ok(Reply::Exists { node: Some(n), .. })) if n.version == 4)
    );
    // Answered twice: the second is an unknown xid now.
    p.answer(conn, ok(reqs[0].req.xid));
    assert!(p.take_events().is_empty());
}

// ----- 5. waiting for the session -----

#[test]
fn b05_requests_wait_for_the_session() {
    let mut p = Peer::new(config(&["a:1"]));
    let id = p.client.submit(
        Op::Create {
            path: "/n".into(),
            data: Some(Bytes::from_static(b"x")),
            mode: CreateMode::Ephemeral,
        },
        p.now,
    );
    let conn = p.accept();
    let reg = p.take();
    assert!(reg.req.register.is_some());
    assert!(p.sent.is_empty(), "nothing before the session is up");
    p.advance(ms(500));
    p.answer(conn, ok_sid(reg.req.xid, 8));
    let create = p.take_non_ping();
    let c = create.req.create.as_ref().unwrap();
    assert_eq!((c.path.as_str(), c.flags), ("/n", 1));
    assert_eq!(create.req.sid, Some(8));
    p.answer(conn, ok(create.req.xid));
    assert_eq!(p.completion(id), Some(Ok(Reply::Done)));
    assert_eq!(p.completion(id), None, "exactly once");

    // No session ever: the deadline completes it, once, with outcome known.
    let mut p = Peer::new(config(&["a:1"]));
    let id = p.client.submit(exists("/x"), p.now);
    let mut done = Vec::new();
    while p.elapsed() < Duration::from_secs(12) {
        if !p.connecting.is_empty() {
            p.refuse();
        }
        p.advance(ms(50));
        done.extend(p.take_events());
    }
    let completions: Vec<_> = done
        .iter()
        .filter(|e| matches!(e, Event::Completed { id: i, .. } if *i == id))
        .collect();
    assert_eq!(completions.len(), 1);
    assert!(matches!(
        completions[0],
        Event::Completed {
            result: Err(Error::Timeout {
                outcome_unknown: false,
                ..
            }),
            ..
        }
    ));
}

// ----- 6. connection loss -----

#[test]
fn b06_connection_loss_retries_reads_fails_writes() {
    let mut p = Peer::new(config(&["a:1", "b:1"]));
    let conn = p.connect_with_sid(5);
    p.take_events();
    let r = p.client.submit(read("/r"), p.now);
    let w = p.client.submit(write("/w", b"v"), p.now);
    p.drain();
    // The read was submitted before the write: both are in flight.
    let sent: Vec<_> = p.sent.drain(..).filter(|s| s.req.ping.is_none()).collect();
    assert_eq!(sent.len(), 2);
    p.close_conn(conn);
    assert!(matches!(
        p.completion(w),
        Some(Err(Error::ConnectionLoss {
            outcome_unknown: true,
            ..
        }))
    ));
    assert_eq!(p.completion(r), None, "the read waits for a retry");
    assert_eq!(
        p.take_events(),
        vec![Event::Session(SessionEvent::Disconnected)]
    );
    p.advance(ms(10));
    let conn = p.connect_with_sid(5);
    let retry = p.take_non_ping();
    assert_eq!(retry.req.stat.as_ref().unwrap().path, "/r");
    p.answer(conn, stat(retry.req.xid, 1, &["b", "a", "_h"], b"R"));
    match p.completion(r) {
        Some(Ok(Reply::Node { node, watch: None })) => {
            assert_eq!(node.children, vec!["a", "b"], "sorted, hidden dropped")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        p.sent.iter().all(|s| s.req.write.is_none()),
        "the write is never retried"
    );

    // kAgain: the write's outcome is unknown, the read is retried elsewhere.
    let r = p.client.submit(read("/r"), p.now);
    p.drain();
    let rr = p.take_non_ping();
    let w = p.client.submit(write("/w", b"v"), p.now);
    p.drain();
    let ww = p.take_non_ping();
    p.answer(conn, err(ww.req.xid, ErrorType::KAgain, ""));
    assert_eq!(
        p.completion(w),
        Some(Err(Error::Again {
            outcome_unknown: true
        }))
    );
    assert!(p.closes.contains(&conn));
    assert_eq!(p.completion(r), None);
    let _ = rr;
    p.advance(ms(20));
    let conn = p.connect_with_sid(5);
    let retry = p.take_non_ping();
    p.answer(conn, stat(retry.req.xid, 1, &[], b""));
    assert!(matches!(p.completion(r), Some(Ok(Reply::Node { .. }))));

    // kNotLeader on a write: the follower applied nothing, it is retried at the leader.
    let w = p.client.submit(write("/w", b"v"), p.now);
    p.drain();
    let ww = p.take_non_ping();
    p.answer(conn, err(ww.req.xid, ErrorType::KNotLeader, "leader:1"));
    assert_eq!(p.completion(w), None);
    p.advance(ms(10));
    assert_eq!(p.connects.last().unwrap().1, "leader:1");
    let conn = p.connect_with_sid(5);
    let again = p.take_non_ping();
    assert!(again.req.write.is_some());
    p.answer(conn, ok(again.req.xid));
    assert_eq!(p.completion(w), Some(Ok(Reply::Done)));
}

// ----- 7. watches -----

#[test]
fn b07_watch_fan_out_and_rearm() {
    let mut p = Peer::new(config(&["a:1"]));
    let modify = p.client.watch(
        watch_spec("/a", EventMask::MODIFY, false, WatchMode::OneShot),
        p.now,
    );
    let delete = p.client.watch(
        watch_spec("/a", EventMask::DELETE, false, WatchMode::OneShot),
        p.now,
    );
    let all = p.client.watch(
        watch_spec(
            "/a",
            EventMask::CHILDREN | EventMask::MODIFY | EventMask::CREATE,
            true,
            WatchMode::Persistent,
        ),
        p.now,
    );
    let conn = p.connect_with_sid(5);
    let arms: Vec<_> = p
        .sent
        .iter()
        .filter(|s| s.req.watch.is_some())
        .cloned()
        .collect();
    assert_eq!(arms.len(), 1, "one server registration per path");
    let wr = arms[0].req.watch.clone().unwrap();
    assert_eq!(wr.path.as_deref(), Some("/a"));
    assert_eq!(
        wr.watch,
        Some(0x0F),
        "union of the masks (and every node event)"
    );
    assert_eq!(wr.recursive, Some(true), "recursive if any is");
    assert_eq!(arms[0].req.stat.as_ref().unwrap().path, "/a");
    p.sent.retain(|s| s.req.watch.is_none());
    p.take_events();
    p.answer(conn, stat(arms[0].req.xid, 1, &[], b""));
    assert!(p.take_events().is_empty());

    // Modify: delivered to exactly the watches whose mask has it.
    let ping = p.take_ping();
    p.answer(conn, event(ping.req.xid, "/a", "/a", 4));
    let got: Vec<_> = p
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Watch { id, event } => (id, event.kind),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![(modify, EventType::Modify), (all, EventType::Modify)]
    );
    // The server registration is spent: re-armed for what remains (delete + all).
    let rearm = p.take_non_ping();
    assert_eq!(rearm.req.watch.as_ref().unwrap().watch, Some(0x0F));
    p.answer(conn, stat(rearm.req.xid, 2, &[], b""));
    assert!(
        p.take_events().is_empty(),
        "the delivered Modify is not inferred again"
    );
    // A descendant's event reaches only the recursive watch; the spent one-shot is gone.
    let ping = p.take_ping();
    // A grandchild's Create stands for the Children event on its parent /a/x too (it
    // spent the registration the server's Children event would have fired).
    p.answer(conn, event(ping.req.xid, "/a", "/a/x/y", 1));
    let got: Vec<_> = p
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Watch { id, event } => (id, event.path, event.kind, event.inferred),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (all, "/a/x/y".into(), EventType::Create, false),
            (all, "/a/x".into(), EventType::Children, true)
        ]
    );
    // The re-arm batch re-checks both first; they show nothing more.
    let check_parent = p.take_non_ping();
    let check_node = p.take_non_ping();
    let rearm = p.take_non_ping();
    assert_eq!(check_parent.req.stat.as_ref().unwrap().path, "/a/x");
    assert!(check_parent.req.watch.is_none());
    assert_eq!(check_node.req.stat.as_ref().unwrap().path, "/a/x/y");
    assert!(rearm.req.watch.is_some());
    p.answer(conn, stat(check_parent.req.xid, 0, &["y"], b""));
    p.answer(conn, stat(check_node.req.xid, 0, &[], b""));
    p.answer(conn, stat(rearm.req.xid, 2, &[], b""));
    assert!(p.take_events().is_empty());
    // Delete: the one-shot delete watch fires; `all` does not listen for deletes, but
    // the data it saw is gone: it is told an inferred Modify.
    let ping = p.take_ping();
    p.answer(conn, event(ping.req.xid, "/a", "/a", 2));
    let got: Vec<_> = p
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Watch { id, event } => (id, event.kind, event.inferred),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (delete, EventType::Delete, false),
            (all, EventType::Modify, true)
        ]
    );
    // An event for a path nobody watches is dropped.
    let rearm = p.take_non_ping();
    p.answer(conn, err(rearm.req.xid, ErrorType::KNotFound, ""));
    let ping = p.take_ping();
    p.answer(conn, event(ping.req.xid, "/zzz", "/zzz", 4));
    assert!(p.take_events().is_empty());
    // A read arming a watch returns its id and shares the path's registration.
    let id = p.client.submit(
        Op::Read {
            path: "/a".into(),
            show_hidden: Some(true),
            watch: Some(WatchSpec::new("/a", EventMask::DELETE)),
        },
        p.now,
    );
    p.drain();
    let rd = p.take_non_ping();
    assert!(rd.req.watch.is_some());
    p.answer(conn, stat(rd.req.xid, 3, &["_h"], b""));
    let watch = match p.completion(id) {
        Some(Ok(Reply::Node {
            node,
            watch: Some(w),
        })) => {
            assert_eq!(node.children, vec!["_h"], "show_hidden keeps _ children");
            w
        }
        other => panic!("{other:?}"),
    };
    let ping = p.take_ping();
    p.answer(conn, event(ping.req.xid, "/a", "/a", 2));
    let got = p.take_events();
    assert!(got
        .iter()
        .any(|e| matches!(e, Event::Watch { id, .. } if *id == watch)));
}

#[test]
fn b07_watch_added_while_registered_is_covered() {
    let mut p = Peer::new(config(&["a:1"]));
    let conn = p.connect_with_sid(5);
    p.take_events();
    let del = p
        .client
        .watch(WatchSpec::new("/a", EventMask::DELETE), p.now);
    p.drain();
    let arm = p.take_non_ping();
    let wr = arm.req.watch.clone().unwrap();
    // The server does not merge masks: the registration covers every node event.
    assert_eq!(wr.watch, Some(0x0F));
    assert_eq!(wr.recursive, Some(false));
    p.answer(conn, stat(arm.req.xid, 0, &[], b""));
    let modify = p
        .client
        .watch(WatchSpec::new("/a", EventMask::MODIFY), p.now);
    p.drain();
    assert!(
        p.sent.iter().all(|s| s.req.watch.is_none()),
        "already registered"
    );
    let ping = p.take_ping();
    p.answer(conn, event(ping.req.xid, "/a", "/a", 4));
    let got = p.take_events();
    assert!(
        matches!(&got[..], [Event::Watch { id, .. }] if *id == modify),
        "{got:?}"
    );
    // The delete watch is still there, re-armed.
    let rearm = p.take_non_ping();
    assert!(rearm.req.watch.is_some());
    p.answer(conn, stat(rearm.req.xid, 1, &[], b""));
    let ping = p.take_ping();
    p.answer(conn, event(ping.req.xid, "/a", "/a", 2));
    let got = p.take_events();
    assert!(matches!(&got[..], [Event::Watch { id, .. }] if *id == del));
}

// ----- 8. missed changes -----

#[test]
fn b08_missed_changes_are_inferred_after_reconnect() {
    let mut p = Peer::new(config(&["a:1"]));
    let a = p.client.watch(
        watch_spec("/a", EventMask::ALL, false, WatchMode::Persistent),
        p.now,
    );
    let b = p.client.watch(
        watch_spec("/b", EventMask::DELETE, false, WatchMode::OneShot),
        p.now,
    );
    let c = p.client.watch(
        watch_spec("/c", EventMask::CREATE, false, WatchMode::OneShot),
        p.now,
    );
    let conn = p.connect_with_sid(5);
    for _ in 0..3 {
        let arm = p.take_non_ping();
        let path = arm.req.stat.as_ref().unwrap().path.clone();
        let rsp = match path.as_str() {
            "/a" => stat(arm.req.xid, 1, &["x"], b""),
            "/b" => stat(arm.req.xid, 0, &[], b""),
            _ => err(arm.req.xid, ErrorType::KNotFound, ""),
        };
        p.answer(conn, rsp);
    }
    // Every watch registered with the session says so after its Connected.
    let up = vec![
        Event::Session(SessionEvent::Connected { sid: 5 }),
        Event::Session(SessionEvent::WatchesRearmed),
    ];
    assert_eq!(p.take_events(), up);
    // The connection dies (an event handed to its ping is lost); while away, /a is
    // written and gets a child, /b is deleted, /c is created.
    p.close_conn(conn);
    p.take_events();
    p.advance(ms(10));
    let conn = p.connect_with_sid(5);
    assert_eq!(p.take_events(), up);
    let mut arms: Vec<_> = p.sent.drain(..).filter(|s| s.req.watch.is_some()).collect();
    assert_eq!(arms.len(), 3, "every live watch re-registered");
    arms.sort_by_key(|s| s.req.stat.as_ref().unwrap().path.clone());
    p.answer(conn, stat(arms[0].req.xid, 2, &["x", "y"], b""));
    p.answer(conn, err(arms[1].req.xid, ErrorType::KNotFound, ""));
    p.answer(conn, stat(arms[2].req.xid, 0, &[], b""));
    let got: Vec<_> = p
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Watch { id, event } => {
                assert!(event.inferred);
                (id, event.kind)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (a, EventType::Modify),
            (a, EventType::Children),
            (b, EventType::Delete),
            (c, EventType::Create)
        ]
    );
}

// ----- 9. close -----

#[test]
fn b09_close_unregisters_and_ends_everything() {
    let mut p = Peer::new(config(&["a:1"]));
    let w = p.client.watch(WatchSpec::new("/a", EventMask::ALL), p.now);
    let conn = p.connect_with_sid(5);
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 0, &[], b""));
    p.take_events();
    let wr = p.client.submit(write("/a", b"1"), p.now);
    let rd = p.client.submit(read("/a"), p.now);
    p.drain();
    let ww = p.take_non_ping();
    assert!(ww.req.write.is_some());
    p.client.close(p.now);
    p.drain();
    assert_eq!(p.client.state(), SessionState::Closing);
    assert_eq!(
        p.completion(rd),
        Some(Err(Error::Closed)),
        "the queued read ends at once"
    );
    let unreg = p.take_non_ping();
    assert!(unreg.req.unregister.is_some());
    assert_eq!(unreg.req.sid, Some(5));
    let late = p.client.submit(exists("/a"), p.now);
    p.drain();
    assert_eq!(p.completion(late), Some(Err(Error::Closed)));
    // The write in flight is answered before the Unregister (commit order).
    p.answer(conn, ok(ww.req.xid));
    assert_eq!(p.completion(wr), Some(Ok(Reply::Done)));
    p.answer(conn, ok(unreg.req.xid));
    assert_eq!(p.closes, vec![conn]);
    assert_eq!(
        p.take_events(),
        vec![
            Event::WatchEnded {
                id: w,
                reason: Error::Closed
            },
            Event::Session(SessionEvent::Closed)
        ]
    );
    assert!(p.client.is_closed());
    assert_eq!(p.client.poll_timeout(), None);
    // Nothing after Closed but the immediate completion of new commands.
    p.answer(conn, ok(Some(1)));
    p.advance(Duration::from_secs(30));
    assert!(p.take_events().is_empty());
    let after = p.client.submit(exists("/a"), p.now);
    p.drain();
    assert_eq!(
        p.take_events(),
        vec![Event::Completed {
            id: after,
            result: Err(Error::Closed)
        }]
    );

    // A server that never answers the Unregister: closed after close_timeout.
    let mut p = Peer::new(config(&["a:1"]));
    let conn = p.connect_with_sid(5);
    p.take_events();
    let inflight = p.client.submit(write("/a", b"1"), p.now);
    p.client.close(p.now);
    p.drain();
    p.advance(Duration::from_secs(2) - ms(1));
    assert!(!p.client.is_closed());
    p.advance(ms(1));
    assert!(p.client.is_closed());
    assert_eq!(p.closes, vec![conn]);
    assert!(
        matches!(
            p.completion(inflight),
            Some(Err(Error::ConnectionLoss {
                outcome_unknown: true,
                ..
            }))
        ),
        "a write sent but never answered may have been applied"
    );
    assert_eq!(
        p.session_events(),
        vec![
            SessionEvent::CloseUnconfirmed { sid: Some(5) },
            SessionEvent::Closed
        ]
    );
}

// ----- 10. malformed frames -----

#[test]
fn b10_malformed_frames_reconnect_with_sid() {
    let mut good = bytes::BytesMut::new();
    encode_frame(&pyxis_proto::rpc::Response::default(), &mut good);
    let mut bad_sum = good.to_vec();
    let last = bad_sum.len() - 1;
    bad_sum[last] ^= 0xff;
    // A frame with a valid checksum but a payload that is not a Response.
    let junk_payload = {
        let mut f = Vec::new();
        let body: Vec<u8> = b"pyxi".iter().copied().chain([0xff, 0xff, 0xff]).collect();
        f.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        f.extend_from_slice(&body);
        f.extend_from_slice(&adler(&body).to_be_bytes());
        f
    };
    let bad_tag = {
        let mut f = Vec::new();
        let body = b"xxxx".to_vec();
        f.extend_from_slice(&8u32.to_be_bytes());
        f.extend_from_slice(&body);
        f.extend_from_slice(&adler(&body).to_be_bytes());
        f
    };
    let too_long = vec![0xff, 0xff, 0xff, 0xff, b'p'];
    let too_short = vec![0, 0, 0, 3];
    for garbage in [bad_sum, junk_payload, bad_tag, too_long, too_short] {
        let mut p = Peer::new(config(&["a:1"]));
        let conn = p.connect_with_sid(5);
        p.take_events();
        p.deliver(conn, &garbage);
        assert_eq!(p.closes, vec![conn], "{garbage:?}");
        assert_eq!(
            p.take_events(),
            vec![Event::Session(SessionEvent::Disconnected)]
        );
        p.advance(ms(10));
        p.accept();
        let reg = p.take_non_ping();
        assert_eq!(reg.req.sid, Some(5), "sid kept");
    }
    // A stat answer whose node does not decode fails that request, connection kept.
    let mut p = Peer::new(config(&["a:1"]));
    let conn = p.connect_with_sid(5);
    let id = p.client.submit(read("/a"), p.now);
    p.drain();
    let rd = p.take_non_ping();
    let mut rsp = ok(rd.req.xid);
    rsp.data = Some(Bytes::from_static(&[0xff, 0xff]));
    p.answer(conn, rsp);
    assert!(matches!(
        p.completion(id),
        Some(Err(Error::Protocol { .. }))
    ));
    assert!(p.closes.is_empty());
}

fn adler(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

// ----- 11. read-your-writes -----

#[test]
fn b11_reads_wait_for_earlier_writes() {
    let mut p = Peer::new(config(&["a:1"]));
    let conn = p.connect_with_sid(5);
    p.take_ping();
    let create = p.client.submit(
        Op::Create {
            path: "/p".into(),
            data: None,
            mode: CreateMode::Persistent,
        },
        p.now,
    );
    let rd = p.client.submit(read("/p"), p.now);
    let wr = p.client.submit(write("/q", b"x"), p.now);
    p.drain();
    let sent: Vec<_> = p.sent.drain(..).collect();
    assert_eq!(
        sent.len(),
        2,
        "create and write pipelined, read held: {sent:?}"
    );
    assert!(sent[0].req.create.is_some() && sent[1].req.write.is_some());
    p.answer(conn, ok(sent[0].req.xid));
    assert_eq!(p.completion(create), Some(Ok(Reply::Done)));
    let stat_req = p.take();
    assert_eq!(
        stat_req.req.stat.as_ref().unwrap().path,
        "/p",
        "read released by the create's answer"
    );
    p.answer(conn, stat(stat_req.req.xid, 0, &[], b""));
    assert!(matches!(p.completion(rd), Some(Ok(Reply::Node { .. }))));
    // A read submitted after the write to /q waits for it.
    let rq = p.client.submit(read("/q"), p.now);
    p.drain();
    assert!(p.sent.is_empty(), "held behind the unanswered write");
    p.answer(conn, ok(sent[1].req.xid));
    assert_eq!(p.completion(wr), Some(Ok(Reply::Done)));
    let stat_q = p.take();
    assert_eq!(stat_q.req.stat.as_ref().unwrap().path, "/q");
    p.answer(conn, stat(stat_q.req.xid, 1, &[], b"x"));
    assert!(matches!(p.completion(rq), Some(Ok(Reply::Node { .. }))));
    // Client-side checks: no round trip.
    let bad = p.client.submit(exists("/a b"), p.now);
    let big = p.client.submit(
        Op::Write {
            path: "/a".into(),
            data: Bytes::from(vec![0; 1 << 20]),
        },
        p.now,
    );
    let big_create = p.client.submit(
        Op::Create {
            path: "/a".into(),
            data: Some(Bytes::from(vec![0; (1 << 20) + 1])),
            mode: CreateMode::Persistent,
        },
        p.now,
    );
    p.drain();
    assert!(p.sent.is_empty());
    assert!(matches!(
        p.completion(bad),
        Some(Err(Error::InvalidPath { .. }))
    ));
    assert!(matches!(
        p.completion(big),
        Some(Err(Error::DataTooLarge { .. }))
    ));
    assert!(matches!(
        p.completion(big_create),
        Some(Err(Error::DataTooLarge { .. }))
    ));
}

// ----- 12. election -----

#[test]
fn b12_request_rides_through_an_election() {
    let mut p = Peer::new(config(&["a:1", "b:1", "c:1"]));
    // Find the leader: whoever we reach first redirects to a:1.
    let conn = p.accept();
    let reg = p.take();
    let conn = if p.connects[0].1 == "a:1" {
        p.answer(conn, ok_sid(reg.req.xid, 5));
        conn
    } else {
        p.answer(conn, err(reg.req.xid, ErrorType::KNotLeader, "a:1"));
        p.advance(ms(10));
        p.connect_with_sid(5)
    };
    p.take_events();
    // The leader dies; an election takes 3.4 s, during which a:1 refuses connections and
    // the others answer kAgain; then b:1 leads and c:1 redirects to it.
    p.close_conn(conn);
    let start = p.now;
    let w = p.client.submit(write("/k", b"v"), p.now);
    let r = p.client.submit(read("/k"), p.now);
    p.drain();
    let election = Duration::from_millis(3400);
    let mut served = None;
    while p.now - start < Duration::from_secs(10) && served.is_none() {
        while let Some((_, addr)) = p.connecting.front().cloned() {
            let in_election = p.now - start < election;
            if addr == "a:1" {
                p.refuse();
                continue;
            }
            let conn = p.accept();
            let reg = p.take_non_ping();
            if in_election {
                p.answer(conn, err(reg.req.xid, ErrorType::KAgain, ""));
            } else if addr == "c:1" {
                p.answer(conn, err(reg.req.xid, ErrorType::KNotLeader, "b:1"));
            } else {
                assert_eq!(reg.req.sid, Some(5));
                p.answer(conn, ok_sid(reg.req.xid, 5));
                served = Some(conn);
            }
        }
        p.advance(ms(5));
    }
    let conn = served.expect("found the new leader");
    assert!(
        p.now - start < election + Duration::from_millis(1600),
        "found within ~1 s of the election's end"
    );
    let wq = p.take_non_ping();
    assert!(wq.req.write.is_some());
    p.answer(conn, ok(wq.req.xid));
    let rq = p.take_non_ping();
    p.answer(conn, stat(rq.req.xid, 1, &[], b"v"));
    assert_eq!(p.completion(w), Some(Ok(Reply::Done)));
    assert!(matches!(p.completion(r), Some(Ok(Reply::Node { .. }))));
    assert!(!p
        .events
        .iter()
        .any(|e| matches!(e, Event::Completed { result: Err(_), .. })));
    let _ = IoAction::Close { conn };
}
