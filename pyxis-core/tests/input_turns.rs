//! `Config::frames_per_input`: the most answer frames one `handle_data` call handles,
//! the rest left buffered (named by `Client::buffered_input`) until the adapter calls
//! again, so that the callers answered so far can send their next requests first.

mod support;

use std::num::NonZeroUsize;

use bytes::BytesMut;
use pyxis_core::{ConnId, Event, EventMask, RequestId, WatchSpec};
use pyxis_proto::encode_response;
use support::*;

/// A session up on a client handling at most `frames` answers per input.
fn up_with(frames: Option<usize>) -> (Peer, ConnId) {
    let mut config = config(&["a:1"]);
    config.frames_per_input = frames.and_then(NonZeroUsize::new);
    let mut p = Peer::new(config);
    let conn = p.connect_with_sid(SID);
    p.take_ping();
    p.take_events();
    (p, conn)
}

/// Submits `n` reads and returns their ids and the answers to them, as one buffer.
fn reads_answered_together(p: &mut Peer, n: usize) -> (Vec<RequestId>, BytesMut) {
    let ids: Vec<RequestId> = (0..n)
        .map(|i| p.client.submit(read(&format!("/n{i}"), None), p.now))
        .collect();
    p.drain();
    let mut answers = BytesMut::new();
    for _ in 0..n {
        let sent = p.take_non_ping();
        answers.extend_from_slice(&encode_response(&stat(sent.req.xid, 1, &[], b"data")));
    }
    (ids, answers)
}

fn completed(p: &mut Peer) -> usize {
    p.take_events()
        .iter()
        .filter(|e| matches!(e, Event::Completed { result: Ok(_), .. }))
        .count()
}

#[test]
fn answers_beyond_the_bound_wait_until_the_adapter_calls_again() {
    let (mut p, conn) = up_with(Some(2));
    let (_, answers) = reads_answered_together(&mut p, 5);
    p.deliver(conn, &answers);
    assert_eq!(completed(&mut p), 2);
    assert_eq!(p.client.buffered_input(), Some(conn));
    p.deliver(conn, &[]);
    assert_eq!(completed(&mut p), 2);
    assert_eq!(p.client.buffered_input(), Some(conn));
    p.deliver(conn, &[]);
    assert_eq!(completed(&mut p), 1);
    assert_eq!(
        p.client.buffered_input(),
        None,
        "everything received was handled"
    );
}

#[test]
fn requests_submitted_between_turns_are_sent_before_the_rest_is_handled() {
    let (mut p, conn) = up_with(Some(1));
    let (_, answers) = reads_answered_together(&mut p, 2);
    p.deliver(conn, &answers);
    assert_eq!(completed(&mut p), 1);
    // The caller answered submits its next request: it leaves before the second answer
    // is handled.
    p.client.submit(read("/next", None), p.now);
    p.drain();
    let next = p.take_non_ping();
    assert_eq!(next.req.stat.map(|s| s.path), Some("/next".to_owned()));
    p.deliver(conn, &[]);
    assert_eq!(completed(&mut p), 1);
    assert_eq!(p.client.buffered_input(), None);
}

#[test]
fn a_partial_frame_left_after_the_bound_waits_for_its_bytes() {
    let (mut p, conn) = up_with(Some(1));
    let (_, answers) = reads_answered_together(&mut p, 2);
    let cut = answers.len() - 3;
    p.deliver(conn, &answers[..cut]);
    assert_eq!(completed(&mut p), 1);
    // Bytes are left, but not a whole frame: going on handles nothing and holds nothing.
    p.deliver(conn, &[]);
    assert_eq!(completed(&mut p), 0);
    assert_eq!(p.client.buffered_input(), None);
    p.deliver(conn, &answers[cut..]);
    assert_eq!(completed(&mut p), 1);
}

#[test]
fn held_answers_go_with_their_connection() {
    let (mut p, conn) = up_with(Some(1));
    let (ids, answers) = reads_answered_together(&mut p, 3);
    p.deliver(conn, &answers);
    assert!(p.completion(ids[0]).is_some());
    assert_eq!(p.client.buffered_input(), Some(conn));
    p.close_conn(conn);
    assert_eq!(p.client.buffered_input(), None);
    // Bytes or calls for the dropped connection change nothing.
    p.deliver(conn, &[]);
    assert!(p.completion(ids[1]).is_none());
    assert!(p.completion(ids[2]).is_none());
}

#[test]
fn without_a_bound_every_answer_received_is_handled_at_once() {
    let (mut p, conn) = up_with(None);
    let (_, answers) = reads_answered_together(&mut p, 40);
    p.deliver(conn, &answers);
    assert_eq!(completed(&mut p), 40);
    assert_eq!(p.client.buffered_input(), None);
}

#[test]
fn a_late_wake_up_handled_in_turns_rearms_every_watch_once() {
    // Sim seed 272 with --frames-per-input 1: a process paused 8 s woke to several
    // answers, and each turn of that input found the deadline it had asked for long
    // past and took itself for another late wake-up, re-registering every watch once
    // per turn.
    let (mut p, conn) = up_with(Some(1));
    p.client.watch(WatchSpec::new("/a", EventMask::ALL), p.now);
    p.drain();
    let arm = p.take_non_ping();
    p.answer(conn, stat(arm.req.xid, 1, &[], b""));
    p.take_events();
    let (ids, answers) = reads_answered_together(&mut p, 3);
    // Paused far past the ping's deadline (T + grace = 7 s).
    p.now += ms(20_000);
    p.deliver(conn, &answers);
    while let Some(held) = p.client.buffered_input() {
        p.deliver(held, &[]);
    }
    for id in ids {
        assert!(p.completion(id).is_some_and(|r| r.is_ok()));
    }
    let arms = p.sent.iter().filter(|s| s.req.watch.is_some()).count();
    assert_eq!(arms, 1, "one re-registration of /a: {:?}", p.sent);
}
