//! The adapter scenarios (the same list as `pyxis_client_common::scenarios`, which the
//! async adapters run) on the blocking API, against 3-node test clusters over loopback.
//! Every wait is bounded: operations by the request deadline, events by `recv_timeout`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pyxis_blocking::{
    Client, CreateMode, Error, EventMask, EventType, Options, ReadOptions, SessionEvent,
    SessionEvents, Watch, WatchError, WatchEvent,
};
use pyxis_testkit::TestCluster;

const PATIENCE: Duration = Duration::from_secs(30);
const MAX: usize = 1024 * 1024;

fn options(seed: u64) -> Options {
    Options::new().seed(seed)
}

fn client(cluster: &TestCluster, seed: u64) -> Client {
    let client = Client::connect(cluster.addrs(), options(seed)).expect("connect");
    client.wait_connected(PATIENCE).expect("session");
    client
}

fn next_event(watch: &Watch, what: &str) -> WatchEvent {
    match watch.recv_timeout(PATIENCE) {
        Ok(Some(Ok(event))) => event,
        other => panic!("{what}: expected an event, got {other:?}"),
    }
}

fn session_event(events: &SessionEvents, what: &str, want: impl Fn(&SessionEvent) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Some(Ok(event))) if want(&event) => return,
            Ok(Some(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}

fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn sid_of(client: &Client) -> u64 {
    client.sid().expect("a session id")
}

#[test]
fn crud_and_every_error() {
    let cluster = TestCluster::start(3);
    let c = client(&cluster, 1);
    let sid = sid_of(&c);
    c.create("/app", "v0", CreateMode::Persistent).unwrap();
    let node = c.read("/app").unwrap();
    assert_eq!(
        (&node.data[..], node.version, node.owner),
        (&b"v0"[..], 0, sid)
    );
    c.write("/app", "v1").unwrap();
    assert_eq!(c.read("/app").unwrap().version, 1);
    c.create("/app/_hidden", "", CreateMode::Persistent)
        .unwrap();
    c.create("/app/child", "", CreateMode::Persistent).unwrap();
    assert_eq!(c.read("/app").unwrap().children, ["child"]);
    let all = c.read_with("/app", ReadOptions::show_hidden(true)).unwrap();
    assert_eq!(all.children, ["_hidden", "child"]);
    assert_eq!(c.exists("/nope"), Ok(None));

    assert!(matches!(c.read("/nope"), Err(Error::NotFound { .. })));
    let r = c.create("/missing/x", "", CreateMode::Persistent);
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    let r = c.create("/app", "", CreateMode::Persistent);
    assert!(matches!(r, Err(Error::Exists { .. })), "{r:?}");
    assert!(matches!(
        c.delete("/app"),
        Err(Error::InvalidArgument { .. })
    ));
    c.create_ephemeral("/eph", "").unwrap();
    let r = c.create("/eph/child", "", CreateMode::Persistent);
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    let r = c.write("/pyxis/cluster/leader", "x");
    assert!(matches!(r, Err(Error::Internal { .. })), "{r:?}");
    let r = c.create("/big", vec![0u8; MAX + 1], CreateMode::Persistent);
    assert!(matches!(r, Err(Error::DataTooLarge { .. })), "{r:?}");
    assert!(matches!(c.read("no-slash"), Err(Error::InvalidPath { .. })));

    c.delete("/app/_hidden").unwrap();
    c.delete("/app/child").unwrap();
    c.delete("/app").unwrap();
    assert!(cluster.node("/app").is_none());
    c.close();
    assert_eq!(c.read("/"), Err(Error::Closed));
}

#[test]
fn ephemeral_nodes_live_with_their_session() {
    let cluster = TestCluster::start(3);
    let a = client(&cluster, 2);
    let sid = sid_of(&a);
    let events = a.session_events();
    a.create_ephemeral("/e1", "a").unwrap();
    let leader = cluster.leader().unwrap();
    cluster
        .send_garbage(leader, b"\x00\x00\x00\x0cnot-a-frame!")
        .unwrap();
    session_event(&events, "disconnect", |e| *e == SessionEvent::Suspended);
    session_event(&events, "reconnect", |e| {
        *e == SessionEvent::Connected { sid }
    });
    assert_eq!(a.read("/e1").unwrap().owner, sid);
    a.close();
    assert!(cluster.node("/e1").is_none());

    let b = client(&cluster, 3);
    let old = sid_of(&b);
    let events = b.session_events();
    b.create_ephemeral("/e2", "").unwrap();
    assert!(cluster.expire_session(old).unwrap());
    assert!(cluster.node("/e2").is_none());
    let _ = b.read("/");
    session_event(&events, "expiry", |e| {
        *e == SessionEvent::Expired { old_sid: old }
    });
    let new = sid_of(&b);
    assert_ne!(new, old);
    b.create_ephemeral("/e3", "").unwrap();
    assert_eq!(cluster.node("/e3").and_then(|n| n.owner), Some(new));
}

#[test]
fn every_watch_event_type_and_recursive_watches() {
    let cluster = TestCluster::start(3);
    let c = client(&cluster, 4);
    let writer = client(&cluster, 5);
    c.create("/w", "", CreateMode::Persistent).unwrap();
    let created = c.watch("/w/a", EventMask::CREATE, false).unwrap();
    let children = c.watch("/w", EventMask::CHILDREN, false).unwrap();
    let tree = c.watch_persistent("/w", EventMask::ALL, true).unwrap();
    writer.create("/w/a", "", CreateMode::Persistent).unwrap();
    let e = next_event(&created, "create");
    assert_eq!((e.kind, e.path.as_str()), (EventType::Create, "/w/a"));
    assert_eq!(created.recv_timeout(PATIENCE), Ok(None), "one-shot ends");
    let e = next_event(&children, "children");
    assert_eq!((e.kind, e.path.as_str()), (EventType::Children, "/w"));
    let (node, modified) = c.read_and_watch("/w/a", EventMask::MODIFY).unwrap();
    assert_eq!(node.version, 0);
    writer.write("/w/a", "1").unwrap();
    assert_eq!(next_event(&modified, "modify").kind, EventType::Modify);
    let deleted = c.watch("/w/a", EventMask::DELETE, false).unwrap();
    writer.delete("/w/a").unwrap();
    assert_eq!(next_event(&deleted, "delete").kind, EventType::Delete);
    writer.create("/w/b", "", CreateMode::Persistent).unwrap();
    writer.create("/w/b/c", "", CreateMode::Persistent).unwrap();
    // Each wait is bounded by `next_event`; events before the grandchild's are skipped.
    while (next_event(&tree, "recursive").path.as_str()) != "/w/b/c" {}
}

#[test]
fn leader_move_during_a_stream_of_writes() {
    let cluster = Arc::new(TestCluster::start(3));
    let a = client(&cluster, 6);
    let b = client(&cluster, 7);
    let sid = sid_of(&a);
    a.create("/svc", "", CreateMode::Persistent).unwrap();
    a.create_ephemeral("/svc/a", "").unwrap();
    a.create("/data", "0", CreateMode::Persistent).unwrap();
    let watch = b
        .watch_persistent("/data", EventMask::MODIFY, false)
        .unwrap();
    let moved = Arc::new(AtomicBool::new(false));
    let mover = {
        let (cluster, moved) = (cluster.clone(), moved.clone());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            cluster.move_leader(1).unwrap();
            thread::sleep(Duration::from_millis(300));
            cluster.move_leader(2).unwrap();
            moved.store(true, Ordering::SeqCst);
        })
    };
    let (mut ok, mut after_moves) = (0, 0);
    while after_moves < 20 {
        if moved.load(Ordering::SeqCst) {
            after_moves += 1;
        }
        match a.write("/data", format!("{ok}")) {
            Ok(()) => ok += 1,
            Err(Error::Again {
                outcome_unknown: true,
            })
            | Err(Error::ConnectionLoss {
                outcome_unknown: true,
                ..
            }) => {}
            Err(e) => panic!("unexpected error during a leader move: {e}"),
        }
    }
    mover.join().unwrap();
    assert!(ok > 0);
    assert_eq!(a.sid(), Some(sid));
    assert_eq!(b.exists("/svc/a").unwrap().map(|n| n.owner), Some(sid));
    // The watch fired for the writes made around the moves (persistent: re-armed each time).
    let during = std::iter::from_fn(|| watch.try_recv()).count();
    assert!(during > 0, "no watch event during the leader moves");
    a.write("/data", "final").unwrap();
    let e = next_event(&watch, "modify after the moves");
    assert_eq!((e.kind, e.path.as_str()), (EventType::Modify, "/data"));
}

/// After the leader dies its followers name it (kNotLeader) for a while, then answer
/// kAgain until the election: the client fails over with its session, and no create it
/// acknowledged is lost.
#[test]
fn failover_through_dead_leader_redirects_loses_no_acknowledged_write() {
    let model = pyxis_testkit::model::ModelConfig::fast()
        .with_dead_leader_redirects(Duration::from_millis(800), Duration::from_millis(1200));
    let cluster = TestCluster::try_start(3, pyxis_testkit::RunnerConfig::with_model(model))
        .expect("a test cluster on 127.0.0.1");
    let a = client(&cluster, 18);
    let sid = sid_of(&a);
    a.create("/w", "", CreateMode::Persistent).unwrap();
    let old = cluster.leader().unwrap();
    let (mut acknowledged, mut after_kill) = (Vec::new(), 0);
    for i in 0..400 {
        if i == 20 {
            cluster.kill(old).unwrap();
        }
        match a.create(&format!("/w/{i}"), "", CreateMode::Persistent) {
            Ok(()) => {
                acknowledged.push(format!("{i}"));
                after_kill += usize::from(i >= 20);
            }
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("unexpected error during the failover: {e}"),
        }
        if after_kill >= 20 {
            break;
        }
    }
    assert!(after_kill >= 20, "the client did not fail over");
    assert_ne!(cluster.leader(), Some(old));
    assert_eq!(a.sid(), Some(sid), "the session survives the failover");
    assert!(
        a.stats().redirects >= 1,
        "no redirect followed: {:?}",
        a.stats()
    );
    let children = a.read("/w").unwrap().children;
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|name| !children.contains(name))
        .collect();
    assert!(lost.is_empty(), "acknowledged creates lost: {lost:?}");
}

#[test]
fn killed_leader_is_replaced() {
    let cluster = TestCluster::start(3);
    let a = client(&cluster, 8);
    let sid = sid_of(&a);
    a.create_ephemeral("/k", "").unwrap();
    let old = cluster.leader().unwrap();
    cluster.kill(old).unwrap();
    match a.create("/maybe", "", CreateMode::Persistent) {
        Ok(())
        | Err(Error::ConnectionLoss {
            outcome_unknown: true,
            ..
        }) => {}
        Err(e) => panic!("unexpected error after the leader was killed: {e}"),
    }
    a.create("/after-kill", "", CreateMode::Persistent).unwrap();
    assert_ne!(cluster.leader(), Some(old));
    assert_eq!(a.sid(), Some(sid));
    assert_eq!(a.read("/k").unwrap().owner, sid);
    cluster.restart(old).unwrap();
}

#[test]
fn no_leader_window_is_ridden_through() {
    let cluster = TestCluster::start(3);
    let a = client(&cluster, 9);
    let sid = sid_of(&a);
    cluster.no_leader_for(Duration::from_millis(1500)).unwrap();
    a.read("/").unwrap();
    match a.create("/during-gap", "", CreateMode::Persistent) {
        Ok(())
        | Err(Error::Again {
            outcome_unknown: true,
        }) => {}
        Err(e) => panic!("unexpected error in a no-leader window: {e}"),
    }
    a.create("/after-gap", "", CreateMode::Persistent).unwrap();
    assert_eq!(a.sid(), Some(sid));
}

#[test]
fn paused_past_session_timeout_gets_a_new_session() {
    let cluster = TestCluster::start(3);
    let a = client(&cluster, 10);
    let old = sid_of(&a);
    let events = a.session_events();
    a.create_ephemeral("/mine", "").unwrap();
    assert!(cluster.expire_session(old).unwrap());
    let _ = a.exists("/");
    session_event(
        &events,
        "new session",
        |e| matches!(e, SessionEvent::Connected { sid } if *sid != old),
    );
    session_event(&events, "expired", |e| {
        *e == SessionEvent::Expired { old_sid: old }
    });
    assert_ne!(a.sid(), Some(old));
    assert_eq!(a.exists("/mine"), Ok(None));
}

#[test]
fn garbage_from_the_server_reconnects() {
    let cluster = TestCluster::start(3);
    let a = client(&cluster, 11);
    let sid = sid_of(&a);
    a.create_ephemeral("/g", "").unwrap();
    for garbage in [
        &b"\xff\xff\xff\xffpyxi"[..],
        b"\x00\x00\x00\x10pyxiBADCHECKSUM!",
    ] {
        let events = a.session_events();
        cluster
            .send_garbage(cluster.leader().unwrap(), garbage)
            .unwrap();
        session_event(&events, "disconnect", |e| *e == SessionEvent::Suspended);
        session_event(&events, "reconnect", |e| {
            *e == SessionEvent::Connected { sid }
        });
        assert_eq!(a.read("/g").unwrap().owner, sid);
    }
}

#[test]
fn hundred_threads_share_one_client() {
    let cluster = TestCluster::start(3);
    let a = client(&cluster, 12);
    a.create("/t", "", CreateMode::Persistent).unwrap();
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let a = a.clone();
            thread::spawn(move || {
                let path = format!("/t/{i}");
                a.create(&path, format!("{i}"), CreateMode::Persistent)
                    .unwrap();
                a.write(&path, format!("{i}!")).unwrap();
                assert_eq!(a.read(&path).unwrap().data, format!("{i}!").into_bytes());
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a thread failed");
    }
    assert_eq!(a.read("/t").unwrap().children.len(), 100);
}

#[test]
fn slow_consumer_never_stalls_the_session() {
    let cluster = TestCluster::start(3);
    let mut opts = options(13);
    opts.event_queue_bound = 2;
    let a = Client::connect(cluster.addrs(), opts).unwrap();
    let sid = a.wait_connected(PATIENCE).unwrap();
    let session = a.session_events();
    a.create("/s", "", CreateMode::Persistent).unwrap();
    let watch = a.watch_persistent("/s", EventMask::MODIFY, false).unwrap();
    // Past the 5 s session timeout: pings must keep flowing while nobody reads.
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(7) {
        a.write("/s", format!("{i}")).unwrap();
        i += 1;
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.sid(), Some(sid));
    assert_eq!(
        session.try_recv(),
        None,
        "the session must not have blinked"
    );
    let items: Vec<_> = std::iter::from_fn(|| watch.try_recv()).collect();
    assert!(items.len() <= 3, "{items:?}");
    assert!(
        matches!(items.first(), Some(Err(WatchError::Lagged(n))) if *n > 0),
        "{i} writes into a queue of 2 must report a lag first: {items:?}"
    );
}

#[test]
fn dropping_the_last_handle_closes_the_session() {
    let cluster = TestCluster::start(3);
    let a = client(&cluster, 14);
    a.create_ephemeral("/d", "").unwrap();
    let watch = a.watch_persistent("/d", EventMask::ALL, false).unwrap();
    let clone = a.clone();
    drop(a);
    assert!(cluster.node("/d").is_some());
    drop(clone);
    eventually("ephemeral node deleted after drop", || {
        cluster.node("/d").is_none()
    });
    // The watch does not keep the client alive: it ends with the client.
    let ended = loop {
        match watch.recv_timeout(PATIENCE) {
            Ok(Some(Ok(_))) => {}
            other => break other,
        }
    };
    assert_eq!(ended, Ok(Some(Err(WatchError::Ended(Error::Closed)))));
    assert_eq!(watch.recv_timeout(PATIENCE), Ok(None));
}

#[test]
fn unreachable_servers_time_out() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let mut opts = options(15);
    opts.request_timeout = Duration::from_millis(500);
    let a = Client::connect([closed_port.clone()], opts).unwrap();
    let waited = a.wait_connected(Duration::from_millis(300));
    timed_out_refused_by(waited.map(drop), &closed_port);
    timed_out_refused_by(a.read("/").map(drop), &closed_port);
    a.close();
}

/// While no node knows a leader, an operation times out saying so.
#[test]
fn no_leader_is_the_cause_of_the_timeout() {
    let cluster = TestCluster::start(3);
    cluster.no_leader_for(Duration::from_secs(20)).unwrap();
    let opts = options(16).request_timeout(Duration::from_millis(600));
    let a = Client::connect(cluster.addrs(), opts).unwrap();
    let read = a.read("/");
    let Err(error @ Error::Timeout { .. }) = &read else {
        panic!("expected a timeout, got {read:?}");
    };
    let shown = error.to_string();
    assert!(shown.contains("no leader known"), "{shown}");
    assert!(
        cluster
            .addrs()
            .iter()
            .any(|addr| shown.contains(addr.as_str())),
        "{shown}"
    );
}

/// With `fail_fast`, once every server refused, calls and `wait_connected` fail at once
/// with `Unreachable` naming the cause, long before their (far) deadline.
#[test]
fn fail_fast_fails_at_once_while_no_server_is_reachable() {
    let closed: Vec<String> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .to_string()
        })
        .collect();
    let opts = options(17)
        .request_timeout(Duration::from_secs(3600))
        .fail_fast(true);
    let a = Client::connect(closed.clone(), opts).unwrap();
    for result in [
        a.read("/").map(drop),
        a.wait_connected(Duration::MAX).map(drop),
        a.write("/x", "1").map(drop),
    ] {
        let Err(error @ Error::Unreachable { .. }) = &result else {
            panic!("expected Unreachable, got {result:?}");
        };
        let shown = error.to_string();
        assert!(shown.contains("connection refused"), "{shown}");
        assert!(closed.iter().any(|c| shown.contains(c.as_str())), "{shown}");
    }
    a.close();
}

/// A server name that does not resolve is named as such in the error.
#[test]
fn an_unresolvable_name_is_the_cause() {
    // `.invalid` never resolves (RFC 6761).
    let name = "no-such-host.invalid:7000".to_string();
    let opts = options(19)
        .request_timeout(Duration::from_secs(3600))
        .fail_fast(true);
    let a = Client::connect([name.clone()], opts).unwrap();
    let read = a.read("/");
    let Err(error @ Error::Unreachable { .. }) = &read else {
        panic!("expected Unreachable, got {read:?}");
    };
    assert_eq!(
        error.to_string(),
        format!("no server reachable: name did not resolve: {name}")
    );
    a.close();
}

/// `result` is a `Timeout` whose text names `addr` and a refused connection.
fn timed_out_refused_by(result: Result<(), Error>, addr: &str) {
    let Err(
        error @ Error::Timeout {
            outcome_unknown: false,
            ..
        },
    ) = &result
    else {
        panic!("expected a timeout, got {result:?}");
    };
    let shown = error.to_string();
    assert!(
        shown.contains(addr) && shown.contains("connection refused"),
        "the timeout does not say why: {shown}"
    );
}

/// `Duration::MAX` waits without a deadline (it once panicked adding it to the clock).
#[test]
fn duration_max_waits_without_a_deadline() {
    let cluster = TestCluster::start(3);
    let a = Client::connect(cluster.addrs(), options(16)).unwrap();
    let sid = a.wait_connected(Duration::MAX).unwrap();
    assert_eq!(a.sid(), Some(sid));
    a.create("/forever", "", CreateMode::Persistent).unwrap();
    let watch = a.watch("/forever", EventMask::MODIFY, false).unwrap();
    a.write("/forever", "x").unwrap();
    let event = watch.recv_timeout(Duration::MAX).unwrap();
    assert!(matches!(
        event,
        Some(Ok(WatchEvent {
            kind: EventType::Modify,
            ..
        }))
    ));
    let events = a.session_events();
    a.close();
    assert_eq!(
        events.recv_timeout(Duration::MAX),
        Ok(Some(Ok(SessionEvent::Closed)))
    );
    assert_eq!(events.recv_timeout(Duration::MAX), Ok(None), "ended");
}

/// After `Closed` the session-event stream ends, and a subscription made after the
/// client closed ends at once (both once blocked forever).
#[test]
fn session_events_end_after_close() {
    let cluster = TestCluster::start(3);
    let a = client(&cluster, 17);
    let events = a.session_events();
    a.close();
    session_event(&events, "closed", |e| *e == SessionEvent::Closed);
    assert_eq!(events.recv_timeout(PATIENCE), Ok(None));
    assert_eq!(a.session_events().recv_timeout(PATIENCE), Ok(None));
    assert_eq!(a.state(), pyxis_blocking::ClientState::Closed);
}

/// A lock waiter's failed create and its watch on the holder: with `exists_and_watch`
/// the state and the watch come from one server step, so a release between the two
/// steps is seen (a separate `watch(DELETE)` would wait forever). 100 rounds.
#[test]
fn lock_release_between_the_waiters_two_steps() {
    let cluster = TestCluster::start(3);
    let holder = client(&cluster, 19);
    let waiter = client(&cluster, 20);
    for round in 0..100 {
        holder.create_ephemeral("/race-lock", "holder").unwrap();
        let busy = waiter.create_ephemeral("/race-lock", "waiter");
        assert!(
            matches!(busy, Err(Error::Exists { .. })),
            "round {round}: {busy:?}"
        );
        holder.delete("/race-lock").unwrap(); // the release, between the steps
        let (state, watch) = waiter
            .exists_and_watch("/race-lock", EventMask::DELETE, false)
            .unwrap();
        if state.is_some() {
            next_event(&watch, "release");
        }
        waiter.create_ephemeral("/race-lock", "waiter").unwrap();
        waiter.delete("/race-lock").unwrap();
    }
}

/// A server that stops reading what the client writes never stops the client's
/// timers: every request fails at its deadline (once the driver thread sat in
/// `write_all` and nothing timed out at all). The connection is then given up
/// (`Suspended`, a new connection), and the session reported `Lost` once that has
/// lasted longer than the session timeout.
#[test]
fn a_peer_that_stops_reading_never_stops_the_timers() {
    let server = pyxis_testkit::TestServer::start();
    let proxy = pyxis_client_common::scenarios::StallingProxy::start(server.addr());
    let a = Client::connect(
        [proxy.addr()],
        options(21).request_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    a.wait_connected(PATIENCE).unwrap();
    let events = a.session_events();
    a.create("/big", "", CreateMode::Persistent).unwrap();
    proxy.stop_reading();
    let big = pyxis_blocking::Bytes::from(vec![7u8; 1000 * 1000]);
    let start = Instant::now();
    // 32 MB from 8 threads: far more than the socket buffers on both sides hold.
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (a, big) = (a.clone(), big.clone());
            thread::spawn(move || (0..4).map(|_| a.write("/big", big.clone())).collect())
        })
        .collect();
    for writer in writers {
        let results: Vec<Result<(), Error>> = writer.join().unwrap();
        for result in results {
            assert!(
                matches!(result, Err(Error::Timeout { .. })),
                "write: {result:?}"
            );
        }
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(6),
        "1 s deadlines kept while the server reads nothing: took {elapsed:?}"
    );
    session_event(&events, "suspended", |e| *e == SessionEvent::Suspended);
    eventually("a new connection", || proxy.connections() >= 2);
    session_event(&events, "lost", |e| *e == SessionEvent::Lost);
    a.close();
}

/// A server that never stops sending (well-formed answers to requests nobody made, as
/// fast as the client takes them) never stops the client's timers: a read fails at its
/// deadline, although the socket always has bytes to read. The connection is then given
/// up like a silent one (`Suspended`).
#[test]
fn a_peer_that_never_stops_sending_never_stops_the_timers() {
    let server = pyxis_testkit::TestServer::start();
    let proxy = pyxis_client_common::scenarios::FloodingProxy::start(server.addr());
    let a = Client::connect(
        [proxy.addr()],
        options(23).request_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    a.wait_connected(PATIENCE).unwrap();
    let events = a.session_events();
    a.create("/f", "", CreateMode::Persistent).unwrap();
    proxy.flood();
    let start = Instant::now();
    let (done, read) = std::sync::mpsc::channel();
    let reader = a.clone();
    thread::spawn(move || done.send(reader.read("/f")));
    let read = read
        .recv_timeout(PATIENCE)
        .expect("the read ended while the server flooded");
    assert!(matches!(read, Err(Error::Timeout { .. })), "read: {read:?}");
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "a 1 s deadline kept while the server floods: took {elapsed:?}"
    );
    assert!(proxy.flooded() > 0, "the proxy flooded the client");
    session_event(&events, "suspended", |e| *e == SessionEvent::Suspended);
    a.close();
}

/// With `close_on_expiry`, an expired session closes the client: `Expired`, `Closed`,
/// and later calls fail with `Closed`.
#[test]
fn close_on_expiry_makes_expiry_terminal() {
    let cluster = TestCluster::start(3);
    let a = Client::connect(cluster.addrs(), options(22).close_on_expiry(true)).unwrap();
    let sid = a.wait_connected(PATIENCE).unwrap();
    let events = a.session_events();
    assert!(cluster.expire_session(sid).unwrap());
    let _ = a.exists("/");
    session_event(&events, "expired", |e| {
        *e == SessionEvent::Expired { old_sid: sid }
    });
    session_event(&events, "closed", |e| *e == SessionEvent::Closed);
    assert_eq!(events.recv_timeout(PATIENCE), Ok(None));
    assert_eq!(a.exists("/"), Err(Error::Closed));
}

/// Answers to 100 reads from 100 threads reach the client together, in one write (many
/// more than the driver handles per turn): every caller gets its node, on the same
/// connection, with none left waiting in the client's buffer.
#[test]
fn answers_arriving_together_reach_every_caller() {
    let server = pyxis_testkit::TestServer::start();
    let proxy = pyxis_client_common::scenarios::HoldingProxy::start(server.addr());
    let a = Client::connect([proxy.addr()], options(22)).unwrap();
    a.wait_connected(PATIENCE).unwrap();
    a.create("/held", "data", CreateMode::Persistent).unwrap();
    let attempts = a.stats().connect_attempts;
    proxy.hold();
    let readers: Vec<_> = (0..100)
        .map(|_| {
            let a = a.clone();
            thread::spawn(move || a.read("/held"))
        })
        .collect();
    // Every answer is at the proxy: each is more than 16 bytes.
    eventually("100 answers held", || proxy.held() >= 100 * 16);
    thread::sleep(Duration::from_millis(50));
    proxy.release();
    for reader in readers {
        assert_eq!(reader.join().unwrap().unwrap().data, "data".as_bytes());
    }
    assert_eq!(
        a.stats().connect_attempts,
        attempts,
        "on the same connection"
    );
}
