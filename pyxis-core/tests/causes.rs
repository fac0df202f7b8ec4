//! Why no session could be had, as data: the last cause carried by the errors
//! (`Client::last_cause`, `Error::cause`), fail-fast (`Config::fail_fast`), and the
//! decisions the core records for logs (`Client::poll_diagnostic`).

mod support;

use std::time::Duration;

use pyxis_core::{Cause, CauseKind, Diagnostic, Error, IoFailure};
use pyxis_proto::ErrorType;
use support::*;

/// Refuses the oldest pending connect with `failure`, as an adapter reports it.
fn fail(p: &mut Peer, failure: IoFailure) -> String {
    let (conn, addr) = p.connecting.pop_front().expect("a pending connect");
    p.client.handle_failed(conn, failure, p.now);
    p.drain();
    addr
}

fn diagnostics(p: &mut Peer) -> Vec<Diagnostic> {
    std::iter::from_fn(|| p.client.poll_diagnostic()).collect()
}

#[test]
fn a_timeout_while_no_session_could_be_had_carries_the_last_refusal() {
    let mut c = config(&["a:1", "b:1"]);
    c.request_timeout = Duration::from_secs(1);
    let mut p = Peer::new(c);
    let id = p.client.submit(read("/x", None), p.now);
    let mut last = String::new();
    while p.elapsed() < Duration::from_secs(1) {
        while !p.connecting.is_empty() {
            last = fail(&mut p, IoFailure::Refused);
        }
        p.advance(ms(5));
    }
    let refused = Cause::new(last.clone(), CauseKind::Io(IoFailure::Refused));
    assert_eq!(p.client.last_cause(), Some(&refused));
    assert_eq!(
        p.completion(id),
        Some(Err(Error::Timeout {
            outcome_unknown: false,
            cause: Some(refused),
        }))
    );
    // A session forgets the cause: a later timeout is the server's slowness alone.
    while p.connecting.is_empty() {
        p.advance(ms(5));
    }
    p.connect_with_sid(7);
    assert_eq!(p.client.last_cause(), None);
}

#[test]
fn no_leader_and_redirects_are_causes_and_decisions() {
    let mut p = Peer::new(config(&["a:1", "b:1"]));
    let conn = p.accept();
    let register = p.take();
    assert!(matches!(
        diagnostics(&mut p).as_slice(),
        [Diagnostic::Register { resume: None, .. }]
    ));
    p.answer(conn, err(register.req.xid, ErrorType::KAgain, "try again"));
    let cause = p.client.last_cause().expect("a cause").to_string();
    assert!(cause.starts_with("no leader known ("), "{cause}");
    assert!(matches!(
        diagnostics(&mut p).as_slice(),
        [Diagnostic::Backoff { attempt: 1, .. }]
    ));
    while p.connecting.is_empty() {
        p.advance(ms(5));
    }
    let conn = p.accept();
    let register = p.take();
    p.answer(
        conn,
        err(register.req.xid, ErrorType::KNotLeader, "leader:7000"),
    );
    let Some(Diagnostic::Redirect { to, .. }) = diagnostics(&mut p)
        .into_iter()
        .find(|d| matches!(d, Diagnostic::Redirect { .. }))
    else {
        panic!("no redirect recorded");
    };
    assert_eq!(to, "leader:7000");
    let cause = p.client.last_cause().expect("a cause").to_string();
    assert!(
        cause.ends_with("is not the leader (it named leader:7000)"),
        "{cause}"
    );
}

#[test]
fn fail_fast_fails_waiting_and_new_operations_once_every_server_failed() {
    let mut c = config(&["a:1", "b:1"]);
    c.fail_fast = true;
    let mut p = Peer::new(c);
    let waiting = p.client.submit(read("/x", None), p.now);
    fail(&mut p, IoFailure::Refused);
    assert_eq!(p.completion(waiting), None, "one server of two failed");
    assert_eq!(p.client.unreachable(), None);
    while p.connecting.is_empty() {
        p.advance(ms(5));
    }
    let last = fail(&mut p, IoFailure::Unresolved);
    let cause = Cause::new(last, CauseKind::Io(IoFailure::Unresolved));
    let unreachable = Error::Unreachable {
        cause: cause.clone(),
    };
    assert_eq!(p.completion(waiting), Some(Err(unreachable.clone())));
    assert_eq!(p.client.unreachable(), Some(&cause));
    let new = p.client.submit(read("/y", None), p.now);
    p.drain();
    assert_eq!(p.completion(new), Some(Err(unreachable)), "at once");
    // Once a session is up, operations wait for it again.
    while p.connecting.is_empty() {
        p.advance(ms(5));
    }
    let conn = p.connect_with_sid(9);
    assert_eq!(p.client.unreachable(), None);
    let later = p.client.submit(read("/z", None), p.now);
    p.drain();
    assert_eq!(p.completion(later), None);
    let sent = p.take_non_ping();
    p.answer(conn, stat(sent.req.xid, 1, &[], b""));
    assert!(matches!(p.completion(later), Some(Ok(_))));
}
