//! Session timeout, ping liveness and pacing, backoff after failing sessions, and close,
//! against what real servers do (hold pings for their own clamped timeout, keep a busy
//! session's ping held, answer replaced pings at once) rather than our test server.

mod support;

use std::time::Duration;

use pyxis_core::{Error, Event, SessionEvent, SessionState};
use pyxis_proto::{rpc, ErrorType};
use support::*;

// ----- session timeout and ping liveness -----

#[test]
fn ping_liveness_tolerates_a_server_holding_longer() {
    // The server raised our 5 s to its own minimum of 10 s: it holds each ping ~9 s.
    let (mut p, conn, mut ping) = up();
    let hold = Duration::from_secs(9);
    let end = p.now + Duration::from_secs(120);
    let mut sent_at = p.now;
    while p.now < end {
        let answer_at = sent_at + hold;
        let next = p.client.poll_timeout().expect("a deadline");
        if next < answer_at {
            p.advance(next - p.now);
            // A liveness probe replaces the held ping: the server answers the old one.
            if p.pings_outstanding() > 0 {
                let probe = p.take_ping();
                p.answer(conn, ok(ping.req.xid));
                ping = probe;
                sent_at = p.now;
            }
            continue;
        }
        p.advance(answer_at - p.now);
        p.answer(conn, ok(ping.req.xid));
        ping = p.take_ping();
        sent_at = p.now;
    }
    assert!(p.closes.is_empty(), "a live connection was declared dead");
    assert_eq!(p.client.state(), SessionState::Connected);
}

#[test]
fn a_server_holding_longer_than_asked_never_stretches_the_liveness_bound() {
    // The server holds each ping ~9 s (its minimum timeout is above the 5 s asked): the
    // client keeps the connection, and a stall that starts after any of its answers is
    // still given up within T + 2 x grace (9 s) of the last complete frame.
    for stall_after in 1..6 {
        let (mut p, conn, mut ping) = up();
        let mut last_frame = p.now;
        for _ in 0..stall_after {
            let answer_at = p.now.max(last_frame) + Duration::from_secs(9);
            let next = p.client.poll_timeout().expect("a deadline");
            if next < answer_at {
                p.advance(next - p.now);
                let probe = p.take_ping();
                p.answer(conn, ok(ping.req.xid));
                ping = probe;
            } else {
                p.advance(answer_at - p.now);
                p.answer(conn, ok(ping.req.xid));
                ping = p.take_ping();
            }
            last_frame = p.now;
            assert!(p.closes.is_empty(), "a live connection was declared dead");
        }
        p.advance(Duration::from_secs(9));
        assert_eq!(
            p.closes,
            vec![conn],
            "stalled after {stall_after} answers: kept past T + 2 x grace"
        );
    }
}

#[test]
fn an_answer_read_late_after_an_unnoticed_pause_does_not_stretch_the_liveness_bound() {
    // Sim seed 11725086159089: the process slept with its ping held and woke 0.4 s past
    // the ping's deadline (too little to count as a late wake-up) to read the answer
    // released meanwhile: "held" 7.4 s. The connection stalls after that answer: it is
    // still given up T + 2 x grace after it.
    let (mut p, conn, ping) = up();
    p.now += Duration::from_millis(7_400);
    p.answer(conn, ok(ping.req.xid));
    let _next = p.take_ping();
    p.sent.clear();
    p.advance(Duration::from_secs(9));
    assert_eq!(
        p.closes,
        vec![conn],
        "kept past T + 2 x grace after its last complete frame"
    );
}

#[test]
fn ping_liveness_declares_a_silent_connection_dead() {
    let (mut p, conn, _ping) = up();
    // Nothing comes back: a probe goes out, then the connection is given up, well
    // before twice the session timeout.
    p.advance(Duration::from_secs(7));
    assert!(p.closes.is_empty());
    p.advance(Duration::from_secs(3));
    assert_eq!(p.closes, vec![conn]);
}

#[test]
fn idle_ping_round_trip_is_about_t_minus_one_second() {
    let mut c = config(&["a:1"]);
    c.session_timeout = Duration::from_secs(30);
    let mut p = Peer::new(c);
    let conn = p.connect_with_sid(1);
    let mut ping = p.take_ping();
    for _ in 0..5 {
        // The server answers at T - 1 s; nothing else happens in between.
        p.advance(Duration::from_secs(29));
        assert!(p.sent.is_empty(), "nothing sent while the ping is held");
        p.answer(conn, ok(ping.req.xid));
        ping = p.take_ping();
    }
    assert!(p.closes.is_empty());
}

// ----- early empty answers -----

/// Every stat + watch the client sent and the test has not taken, removed.
fn take_arms(p: &mut Peer) -> Vec<Sent> {
    let (arms, rest): (Vec<Sent>, Vec<Sent>) = std::mem::take(&mut p.sent)
        .into_iter()
        .partition(|s| s.req.watch.is_some());
    p.sent = rest.into();
    arms
}

fn watch_a(p: &mut Peer, conn: pyxis_core::ConnId) {
    p.client.watch(
        pyxis_core::WatchSpec {
            path: "/a".into(),
            mask: pyxis_core::EventMask::ALL,
            recursive: false,
            mode: pyxis_core::WatchMode::Persistent,
        },
        p.now,
    );
    p.drain();
    let arms = take_arms(p);
    assert_eq!(arms.len(), 1);
    p.answer(conn, stat(arms[0].req.xid, 1, &[], b""));
}

#[test]
fn an_early_empty_answer_repings_at_once_and_answers_at_once_are_paced() {
    let (mut p, conn, ping) = up();
    watch_a(&mut p, conn);
    // A held ping released early (a leader change): re-register and ping at once, to
    // learn without delay whether this node still leads.
    p.advance(ms(1_000));
    p.answer(conn, ok(ping.req.xid));
    assert_eq!(take_arms(&mut p).len(), 1, "watches re-registered");
    assert_eq!(p.pings_outstanding(), 1, "pinged again at once");
    let second = p.take_ping();
    // That ping is answered at once: another leader change, or a server that does not
    // hold pings. The ping before was held, so it cannot tell: re-register again.
    p.answer(conn, ok(second.req.xid));
    assert_eq!(take_arms(&mut p).len(), 1, "a second release is acted on");
    let third = p.take_ping();
    // Answered at once again: the server is not holding pings. Pace, and do not
    // re-register again.
    p.answer(conn, ok(third.req.xid));
    assert!(take_arms(&mut p).is_empty(), "no third re-registration");
    assert_eq!(p.pings_outstanding(), 0, "the next ping is paced");
    p.advance(ms(499));
    assert_eq!(p.pings_outstanding(), 0);
    p.advance(ms(1));
    let fourth = p.take_ping();
    // Held normally again, then released early: a new leader change, acted on.
    p.advance(ms(1_500));
    p.answer(conn, ok(fourth.req.xid));
    assert_eq!(take_arms(&mut p).len(), 1, "a ping held, then released");
    assert_eq!(p.pings_outstanding(), 1);
}

#[test]
fn a_server_answering_every_ping_at_once_costs_a_bounded_number_of_pings_and_arms() {
    let (mut p, conn, mut ping) = up();
    watch_a(&mut p, conn);
    let (mut pings, mut arms) = (0, 0);
    let start = p.now;
    while p.now < start + Duration::from_secs(10) {
        p.answer(conn, ok(ping.req.xid));
        for arm in take_arms(&mut p) {
            arms += 1;
            p.answer(conn, stat(arm.req.xid, 1, &[], b""));
        }
        if p.pings_outstanding() == 0 {
            let next = p.client.poll_timeout().expect("a deadline");
            p.advance(next.saturating_duration_since(p.now));
        }
        ping = p.take_ping();
        pings += 1;
        assert!(pings < 1_000, "hot ping loop");
    }
    assert!(pings <= 25, "{pings} pings in 10 s");
    assert!(arms <= 1, "{arms} re-registrations in 10 s");
    assert!(p.closes.is_empty());
}

// ----- redirects, backoff, close -----

#[test]
fn again_on_register_backs_off_on_every_server() {
    let mut p = Peer::new(config(&["a:1", "b:1", "c:1"]));
    let start = p.now;
    let mut attempts = 0;
    while p.now < start + Duration::from_secs(10) {
        if p.connecting.is_empty() {
            let next = p.client.poll_timeout().expect("a deadline");
            p.advance(next.saturating_duration_since(p.now).max(ms(1)));
            continue;
        }
        let conn = p.accept();
        let reg = p.take();
        p.answer(conn, err(reg.req.xid, ErrorType::KAgain, "try again"));
        attempts += 1;
        assert!(attempts < 500, "hot loop");
    }
    assert!((5..=80).contains(&attempts), "{attempts} attempts in 10 s");
}

#[test]
fn requests_after_close_complete_closed_and_nothing_follows() {
    let (mut p, conn, _ping) = up();
    let inflight = p.client.submit(read("/a", None), p.now);
    p.drain();
    let s = p.take_non_ping();
    p.client.close(p.now);
    p.drain();
    let unreg = p.take_non_ping();
    assert!(unreg.req.unregister.is_some());
    // The read's answer still arrives before the Unregister's.
    p.answer(conn, stat(s.req.xid, 0, &[], b""));
    assert!(matches!(p.completion(inflight), Some(Ok(_))));
    let late = p.client.submit(read("/a", None), p.now);
    p.drain();
    assert_eq!(p.completion(late), Some(Err(Error::Closed)));
    p.answer(conn, ok(unreg.req.xid));
    assert!(p.client.is_closed());
    let events = p.take_events();
    assert_eq!(events.last(), Some(&Event::Session(SessionEvent::Closed)));
    // After Closed: answers, timeouts and connection events produce nothing.
    p.answer(conn, ok(unreg.req.xid));
    p.client.handle_closed(conn, p.now);
    p.advance(Duration::from_secs(60));
    p.drain();
    assert!(p.take_events().is_empty());
    assert!(p.sent.is_empty());
    let after = p.client.submit(read("/a", None), p.now);
    p.drain();
    assert_eq!(p.completion(after), Some(Err(Error::Closed)));
}

/// A server that accepts Register but then fails the session at once (`fail` answers
/// the first ping): the connects made in 10 virtual seconds.
fn connects_when_sessions_fail_at_once(fail: impl Fn(Option<u64>) -> rpc::Response) -> usize {
    let mut p = Peer::new(config(&["a:1", "b:1"]));
    let start = p.now;
    while p.now < start + Duration::from_secs(10) {
        if p.connecting.is_empty() {
            let next = p.client.poll_timeout().expect("a deadline");
            p.advance(next.saturating_duration_since(p.now).max(ms(1)));
            continue;
        }
        let conn = p.connect_with_sid(SID);
        let ping = p.take_ping();
        p.answer(conn, fail(ping.req.xid));
        assert!(p.connects.len() < 2_000, "hot loop");
    }
    p.connects.len()
}

#[test]
fn sessions_failing_right_after_register_back_off() {
    // The backoff and the redirect count start over only once a ping was answered
    // without error, not at Register.
    let again = connects_when_sessions_fail_at_once(|xid| err(xid, ErrorType::KAgain, ""));
    assert!(
        (5..=80).contains(&again),
        "{again} connects in 10 s (kAgain)"
    );
    let redirect =
        connects_when_sessions_fail_at_once(|xid| err(xid, ErrorType::KNotLeader, "b:1"));
    assert!(
        (5..=320).contains(&redirect),
        "{redirect} connects in 10 s (kNotLeader)"
    );
}

#[test]
fn busy_session_ping_held_by_refreshes_is_not_declared_dead() {
    // Every request refreshes the session, so a busy session's ping may stay held as
    // long as requests flow; their answers prove the connection alive.
    let (mut p, conn, _ping) = up();
    for _ in 0..60 {
        let id = p.client.submit(read("/a", None), p.now);
        p.drain();
        let s = p.take_non_ping();
        p.advance(Duration::from_secs(1));
        p.answer(conn, stat(s.req.xid, 0, &[], b""));
        assert!(matches!(p.completion(id), Some(Ok(_))));
    }
    assert!(p.closes.is_empty(), "declared dead while answers flowed");
    assert_eq!(p.pings_outstanding(), 0, "not even probed");
    // The answers stop: the connection is given up within the bound.
    let _id = p.client.submit(read("/a", None), p.now);
    p.advance(Duration::from_secs(10));
    assert_eq!(p.closes, vec![conn]);
}

#[test]
fn a_connection_stalled_after_a_busy_spell_is_given_up_within_the_bound() {
    // Sim seeds 1174, 1569, 1993 (with the fault mix of their day): requests refreshed
    // the session for a while, so the server held the ping long past T after its
    // sending and answered it T - 1 s after the last refresh; the connection was then
    // blackholed. That answer is no sign of a longer hold: the connection is given up
    // T + 2 x grace (9 s) after its last complete frame, not the busy spell later.
    for busy_secs in [4, 12, 40] {
        let (mut p, conn, ping) = up();
        for _ in 0..busy_secs {
            p.advance(Duration::from_secs(1));
            let id = p.client.submit(read("/a", None), p.now);
            p.drain();
            let s = p.take_non_ping();
            p.answer(conn, stat(s.req.xid, 0, &[], b""));
            assert!(matches!(p.completion(id), Some(Ok(_))));
        }
        // The held ping is answered T - 1 s after the last refresh; nothing follows.
        p.advance(Duration::from_secs(4));
        p.answer(conn, ok(ping.req.xid));
        let last_frame = p.now;
        assert!(p.closes.is_empty(), "busy {busy_secs} s: kept while alive");
        p.advance(Duration::from_secs(9));
        assert_eq!(
            p.closes,
            vec![conn],
            "busy {busy_secs} s: kept past T + 2 x grace after {:?}",
            last_frame - p.base
        );
    }
}

#[test]
fn huge_requested_timeout_uses_the_server_maximum_as_bound() {
    // Asked 300 s; the server clamps to 120 s and answers the idle ping at ~119 s.
    let mut c = config(&["a:1"]);
    c.session_timeout = Duration::from_secs(300);
    let mut p = Peer::new(c);
    let conn = p.connect_with_sid(1);
    let ping = p.take_ping();
    p.advance(Duration::from_secs(119));
    p.answer(conn, ok(ping.req.xid));
    let _ping = p.take_ping();
    // A dead connection is noticed by 120 s + 2 × grace, not 300 s.
    p.advance(Duration::from_secs(125));
    assert_eq!(p.closes, vec![conn]);
}

#[test]
fn close_while_resuming_unregisters_the_session() {
    // Closing during a reconnect must still end the session: its ephemeral nodes would
    // otherwise outlive the client by a whole session timeout.
    let (mut p, conn, _ping) = up();
    p.close_conn(conn);
    p.advance(ms(20));
    let conn = p.accept();
    p.sent.retain(|s| s.conn == conn);
    let reg = p.take();
    assert_eq!(reg.req.sid, Some(SID));
    p.client.close(p.now);
    p.drain();
    let unreg = p.take();
    assert!(unreg.req.unregister.is_some(), "{:?}", unreg.req);
    assert_eq!((unreg.conn, unreg.req.sid), (conn, Some(SID)));
    assert!(!p.client.is_closed());
    p.answer(conn, ok_sid(reg.req.xid, SID));
    assert!(p.sent.is_empty(), "no ping or re-arm after close");
    p.answer(conn, ok(unreg.req.xid));
    assert!(p.client.is_closed());
    assert_eq!(p.closes.last(), Some(&conn));
    // With a Register without sid in flight, the session it makes is still to end
    // (`faults::close_before_the_first_session_is_answered_ends_the_session_it_yields`).
    let mut p = Peer::new(config(&["a:1"]));
    p.accept();
    p.client.close(p.now);
    p.drain();
    assert!(!p.client.is_closed());
    // With nothing in flight, nothing lives on the server: closed at once.
    let mut p = Peer::new(config(&["a:1"]));
    p.client.close(p.now);
    p.drain();
    assert!(p.client.is_closed());
}

#[test]
fn unregister_of_an_expired_session_succeeds_without_a_new_session() {
    let (mut p, conn, _ping) = up();
    let id = p.client.submit(pyxis_core::Op::Unregister, p.now);
    p.drain();
    let s = p.take_non_ping();
    p.answer(conn, err(s.req.xid, ErrorType::KSessionExpired, ""));
    assert_eq!(p.completion(id), Some(Ok(pyxis_core::Reply::Done)));
    assert!(
        p.sent.iter().all(|s| s.req.register.is_none()),
        "no session registered for nothing"
    );
    assert_eq!(p.client.state(), SessionState::Idle);
    assert_eq!(p.closes, vec![conn]);
    assert!(
        p.take_events().is_empty(),
        "no Expired for a session ended on purpose"
    );
}

#[test]
fn close_between_connections_unregisters_on_a_new_connection() {
    // The connection was lost; the core is backing off with the session alive on the
    // server (its ephemeral nodes too). Close connects at once, sends Unregister with the
    // sid (no Register needed), and closes at its answer.
    let (mut p, conn, _ping) = up();
    p.close_conn(conn);
    let connects = p.connects.len();
    p.client.close(p.now);
    p.drain();
    assert_eq!(
        p.connects.len(),
        connects + 1,
        "connects at once, no backoff"
    );
    assert_eq!(p.client.state(), SessionState::Closing);
    assert!(!p.client.is_closed());
    let late = p.client.submit(read("/a", None), p.now);
    p.drain();
    assert_eq!(p.completion(late), Some(Err(Error::Closed)));
    let conn = p.accept();
    let unreg = p.take();
    assert_eq!(unreg.conn, conn);
    assert!(unreg.req.unregister.is_some() && unreg.req.register.is_none());
    assert_eq!(unreg.req.sid, Some(SID));
    p.answer(conn, ok(unreg.req.xid));
    assert!(p.client.is_closed());
    assert_eq!(p.closes.last(), Some(&conn));

    // The connect fails: tried again after a backoff. The connect hangs: closed at
    // close_timeout, unconfirmed.
    let (mut p, conn, _ping) = up();
    p.close_conn(conn);
    p.client.close(p.now);
    p.drain();
    p.refuse();
    assert!(!p.client.is_closed());
    p.advance(ms(10));
    let conn = p.accept();
    let unreg = p.take();
    assert!(unreg.req.unregister.is_some());
    p.answer(conn, ok(unreg.req.xid));
    assert!(p.client.is_closed());
    let (mut p, conn, _ping) = up();
    p.close_conn(conn);
    p.client.close(p.now);
    p.drain();
    p.advance(Duration::from_secs(2) - ms(1));
    assert!(!p.client.is_closed());
    p.advance(ms(1));
    assert!(p.client.is_closed());
    assert_eq!(
        p.session_events(),
        vec![
            SessionEvent::Disconnected,
            SessionEvent::CloseUnconfirmed { sid: Some(SID) },
            SessionEvent::Closed
        ]
    );
}

// ----- configuration -----

#[test]
fn durations_too_long_to_add_to_now_are_refused() {
    use pyxis_core::{Client, ConfigError, MAX_CONFIG_DURATION};
    type Set = fn(&mut pyxis_core::Config, Duration);
    let fields: [(&str, Set); 7] = [
        ("session_timeout", |c, d| c.session_timeout = d),
        ("request_timeout", |c, d| c.request_timeout = d),
        ("connect_timeout", |c, d| c.connect_timeout = d),
        ("close_timeout", |c, d| c.close_timeout = d),
        ("ping_grace", |c, d| c.ping_grace = d),
        ("backoff.initial", |c, d| c.backoff.initial = d),
        ("backoff.max", |c, d| c.backoff.max = d),
    ];
    let now = std::time::Instant::now();
    for (name, set) in fields {
        for too_long in [Duration::MAX, MAX_CONFIG_DURATION + Duration::from_nanos(1)] {
            let mut c = config(&["a:1"]);
            // Keep the backoff ordered so that only the length is at fault.
            c.backoff.max = MAX_CONFIG_DURATION;
            set(&mut c, too_long);
            match Client::new(c, now) {
                Err(ConfigError::DurationTooLong { field, max }) => {
                    assert_eq!((field, max), (name, MAX_CONFIG_DURATION));
                }
                other => panic!("{name} = {too_long:?}: {other:?}"),
            }
        }
        // The longest allowed value is accepted, and a client using it does not panic.
        let mut c = config(&["a:1"]);
        c.backoff.max = MAX_CONFIG_DURATION;
        set(&mut c, MAX_CONFIG_DURATION);
        let mut p = Peer::new(c);
        let _conn = p.connect_with_sid(1);
        let id = p.client.submit(
            pyxis_core::Op::Exists {
                path: "/a".into(),
                watch: None,
            },
            p.now,
        );
        p.advance(Duration::from_secs(60));
        p.client.close(p.now);
        p.advance(Duration::from_secs(60));
        let _ = p.completion(id);
    }
}

#[test]
fn a_pause_does_not_teach_a_longer_hold() {
    let (mut p, conn, ping) = up();
    // Paused for 20 s with the ping held: the timer fires late, a probe replaces the
    // ping, and the replaced ping's answer comes in; it was "held" 20 s only because the
    // process slept.
    p.now += Duration::from_secs(20);
    p.client.handle_timeout(p.now);
    p.drain();
    let probe = p.take_ping();
    p.answer(conn, ok(ping.req.xid));
    // The probe is answered after the usual idle hold; then the connection goes silent.
    p.advance(Duration::from_secs(4));
    p.answer(conn, ok(probe.req.xid));
    let _held = p.take_ping();
    p.sent.clear();
    p.advance(Duration::from_secs(10));
    assert_eq!(
        p.closes,
        vec![conn],
        "a silent connection is given up after T + 2 x grace, not after the pause"
    );
}
