//! The client's log of a reconnect and of a leader move, captured with a minimal
//! `tracing` subscriber (the only test in this binary, so it can own the global
//! default): a connection that dies is logged with its cause, the suspension and the
//! resumed session follow, and the steady state before it logs nothing at INFO; a leader
//! move shows the core's decisions, the ping's verdict (released early: every watch
//! registered again) at INFO and the redirect to the new leader at DEBUG.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyxis_testkit::TestCluster;
use pyxis_tokio::{Client, Options, SessionEvent};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records every event at DEBUG or above as `LEVEL target: message field=value ...`.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::DEBUG
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut line = Line(format!("{} {}:", meta.level(), meta.target()));
        event.record(&mut line);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_is_logged_with_its_cause() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).expect("the only subscriber");
    let cluster = TestCluster::start(3);
    let client = Client::connect(cluster.addrs(), Options::new().seed(5))
        .await
        .unwrap();
    let sid = client.wait_connected(PATIENCE).await.unwrap();
    for _ in 0..50 {
        client.exists("/").await.unwrap();
    }
    let startup = capture.take();
    assert!(
        startup.iter().any(|l| l.contains("session established")),
        "{startup:#?}"
    );
    assert!(
        startup.iter().all(|l| !l.contains("WARN")),
        "a clean start warns of nothing: {startup:#?}"
    );
    let register = startup
        .iter()
        .position(|l| l.contains("registering a new session"))
        .unwrap_or_else(|| panic!("no Register decision in {startup:#?}"));
    assert!(startup[register].starts_with("DEBUG"), "{startup:#?}");
    for _ in 0..50 {
        client.exists("/").await.unwrap();
    }
    let steady = capture.take();
    assert!(
        steady.is_empty(),
        "a steady session logs nothing: {steady:#?}"
    );
    let mut events = client.session_events();
    cluster
        .send_garbage(cluster.leader().unwrap(), b"\xff\xff\xff\xff garbage")
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline.into(), events.next()).await;
        match event {
            Ok(Some(Ok(SessionEvent::Connected { sid: again }))) => {
                assert_eq!(again, sid, "the session is resumed");
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("no reconnect: {other:?}"),
        }
    }
    let lines = capture.lines();
    let position = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in {lines:#?}"))
    };
    let died = position("connection closed");
    assert!(lines[died].contains("cause="), "{}", lines[died]);
    let suspended = position("connection to the leader lost");
    let resumed = position("session resumed");
    assert!(died <= suspended && suspended < resumed, "{lines:#?}");
    assert_eq!(client.stats().reconnects, 1);

    // A leader move: the old leader releases the held ping at once (the core takes it
    // for a leader change and registers every watch again), then refuses with kNotLeader
    // naming the new leader, which the client follows.
    let _watch = client
        .watch("/", pyxis_tokio::EventMask::ALL, false)
        .await
        .unwrap();
    capture.take();
    let old = cluster.leader().unwrap();
    let new = (old + 1) % 3;
    cluster.move_leader(new).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline.into(), events.next()).await;
        match event {
            Ok(Some(Ok(SessionEvent::Connected { .. }))) => break,
            Ok(Some(_)) => {}
            other => panic!("no reconnect after the leader move: {other:?}"),
        }
    }
    let lines = capture.lines();
    let verdict = lines
        .iter()
        .find(|l| l.contains("held ping released early"))
        .unwrap_or_else(|| panic!("no ping verdict in {lines:#?}"));
    assert!(verdict.starts_with("INFO"), "{verdict}");
    let to = &cluster.addrs()[new];
    let redirect = lines
        .iter()
        .find(|l| l.contains("redirected to the leader"))
        .unwrap_or_else(|| panic!("no redirect in {lines:#?}"));
    assert!(
        redirect.starts_with("DEBUG") && redirect.contains(&format!("to={to}")),
        "{redirect}"
    );
    let stats = client.stats();
    assert!(stats.redirects >= 1 && stats.rearms >= 1, "{stats:?}");
    client.close().await;
}
