//! The scenarios themselves, one `pub async fn` each (see the [parent](super)).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyxis_core::{CreateMode, Error, EventMask, EventType, WatchEvent};
use pyxis_testkit::TestCluster;

use super::{options, pause, within, Harness, PATIENCE};
use crate::{AsyncClient, ReadOptions, SessionEvent, SessionEvents, Watch, WatchError};

const MAX: usize = 1024 * 1024;

/// The next event of `watch`, within [`PATIENCE`].
async fn next_event(watch: &mut Watch, what: &str) -> WatchEvent {
    match within(PATIENCE, what, watch.next()).await {
        Some(Ok(event)) => event,
        other => panic!("{what}: expected an event, got {other:?}"),
    }
}

/// Reads session events until one matches `want`, within [`PATIENCE`].
async fn session_event(
    events: &mut SessionEvents,
    what: &str,
    want: impl Fn(&SessionEvent) -> bool,
) -> SessionEvent {
    within(PATIENCE, what, async {
        loop {
            match events.next().await {
                Some(Ok(event)) if want(&event) => return event,
                Some(_) => {}
                None => panic!("{what}: session events ended"),
            }
        }
    })
    .await
}

/// Polls `check` every 20 ms until it holds, within [`PATIENCE`].
async fn eventually(what: &str, check: impl Fn() -> bool) {
    within(PATIENCE, what, async {
        while !check() {
            pause(Duration::from_millis(20)).await;
        }
    })
    .await;
}

fn sid_of(client: &AsyncClient) -> u64 {
    client.sid().unwrap_or_else(|| panic!("no session id"))
}

/// Create, read, write, exists, delete, and every error: from the server (NotFound,
/// Exists, InvalidArgument, Internal) and from the client's own checks (InvalidPath,
/// DataTooLarge, Closed).
pub async fn crud_and_every_error(h: Harness) {
    let cluster = TestCluster::start(3);
    let c = h.client(cluster.addrs(), options(1)).await;
    let sid = sid_of(&c);
    c.create("/app", "v0", CreateMode::Persistent)
        .await
        .unwrap();
    let node = c.read("/app").await.unwrap();
    assert_eq!(
        (&node.data[..], node.version, node.owner),
        (&b"v0"[..], 0, sid)
    );
    assert!(!node.is_ephemeral());
    c.write("/app", "v1").await.unwrap();
    let node = c.read("/app").await.unwrap();
    assert_eq!((&node.data[..], node.version), (&b"v1"[..], 1));
    c.create("/app/_hidden", "", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/app/child", "", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(c.read("/app").await.unwrap().children, ["child"]);
    let all = c
        .read_with("/app", ReadOptions::show_hidden(true))
        .await
        .unwrap();
    assert_eq!(all.children, ["_hidden", "child"]);
    assert_eq!(c.exists("/nope").await, Ok(None));
    assert_eq!(c.exists("/app").await.unwrap().map(|n| n.version), Some(1));

    assert!(matches!(c.read("/nope").await, Err(Error::NotFound { .. })));
    assert!(matches!(
        c.delete("/nope").await,
        Err(Error::NotFound { .. })
    ));
    let missing_parent = c.create("/missing/x", "", CreateMode::Persistent).await;
    assert!(
        matches!(missing_parent, Err(Error::NotFound { .. })),
        "{missing_parent:?}"
    );
    assert!(matches!(
        c.create("/app", "", CreateMode::Persistent).await,
        Err(Error::Exists { .. })
    ));
    assert!(matches!(
        c.delete("/app").await,
        Err(Error::InvalidArgument { .. })
    ));
    c.create_ephemeral("/eph", "").await.unwrap();
    let under_ephemeral = c.create("/eph/child", "", CreateMode::Persistent).await;
    assert!(
        matches!(under_ephemeral, Err(Error::InvalidArgument { .. })),
        "{under_ephemeral:?}"
    );
    let internal = c.write("/pyxis/cluster/leader", "x").await;
    assert!(
        matches!(internal, Err(Error::Internal { .. })),
        "{internal:?}"
    );
    let big = c
        .create("/big", vec![0u8; MAX + 1], CreateMode::Persistent)
        .await;
    assert!(matches!(big, Err(Error::DataTooLarge { .. })), "{big:?}");
    assert!(matches!(
        c.write("/app", vec![0u8; MAX]).await,
        Err(Error::DataTooLarge { .. })
    ));
    assert!(matches!(
        c.read("no-slash").await,
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        c.create("/app/", "", CreateMode::Persistent).await,
        Err(Error::InvalidPath { .. })
    ));
    assert!(cluster.node("/big").is_none());

    c.delete("/app/_hidden").await.unwrap();
    c.delete("/app/child").await.unwrap();
    c.delete("/app").await.unwrap();
    assert_eq!(c.exists("/app").await, Ok(None));
    assert!(cluster.node("/app").is_none());
    c.close().await;
    assert_eq!(c.read("/").await, Err(Error::Closed));
}

/// Ephemeral nodes survive a reconnect with the same session, and go with the session
/// on close and on expiry.
pub async fn ephemeral_nodes_live_with_their_session(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(2)).await;
    let sid = sid_of(&a);
    let mut events = a.session_events();
    a.create_ephemeral("/e1", "a").await.unwrap();
    assert_eq!(cluster.node("/e1").and_then(|n| n.owner), Some(sid));

    // A broken connection: the client reconnects with the same session.
    let leader = cluster.leader().unwrap();
    cluster
        .send_garbage(leader, b"\x00\x00\x00\x0cnot-a-frame!")
        .unwrap();
    session_event(&mut events, "disconnect", |e| *e == SessionEvent::Suspended).await;
    let back = session_event(&mut events, "reconnect", |e| {
        matches!(e, SessionEvent::Connected { .. })
    })
    .await;
    assert_eq!(back, SessionEvent::Connected { sid });
    assert_eq!(a.read("/e1").await.unwrap().owner, sid);

    // Close: the node is gone when close returns.
    a.close().await;
    assert!(cluster.node("/e1").is_none());
    assert!(!cluster.sessions().unwrap().contains(&sid));

    // Expiry: gone with the session; the client gets a new one.
    let b = h.client(cluster.addrs(), options(3)).await;
    let old = sid_of(&b);
    let mut events = b.session_events();
    b.create_ephemeral("/e2", "b").await.unwrap();
    assert!(cluster.expire_session(old).unwrap());
    assert!(cluster.node("/e2").is_none());
    // Any request notices the expiry; its own outcome does not matter here.
    let _ = b.read("/").await;
    session_event(&mut events, "expiry", |e| {
        *e == SessionEvent::Expired { old_sid: old }
    })
    .await;
    let new = sid_of(&b);
    assert_ne!(new, old);
    b.create_ephemeral("/e3", "").await.unwrap();
    assert_eq!(cluster.node("/e3").and_then(|n| n.owner), Some(new));
}

/// Create, Modify, Delete and Children events, recursive and persistent watches, and
/// read-and-watch; one-shot watches end after their event.
pub async fn every_watch_event_type_and_recursive_watches(h: Harness) {
    let cluster = TestCluster::start(3);
    let c = h.client(cluster.addrs(), options(4)).await;
    let writer = h.client(cluster.addrs(), options(5)).await;
    c.create("/w", "", CreateMode::Persistent).await.unwrap();

    let mut created = c.watch("/w/a", EventMask::CREATE, false).await.unwrap();
    let mut children = c.watch("/w", EventMask::CHILDREN, false).await.unwrap();
    let mut tree = c
        .watch_persistent("/w", EventMask::ALL, true)
        .await
        .unwrap();
    writer
        .create("/w/a", "", CreateMode::Persistent)
        .await
        .unwrap();
    let e = next_event(&mut created, "create").await;
    assert_eq!((e.kind, e.path.as_str()), (EventType::Create, "/w/a"));
    assert!(within(PATIENCE, "one-shot end", created.next())
        .await
        .is_none());
    let e = next_event(&mut children, "children").await;
    assert_eq!((e.kind, e.path.as_str()), (EventType::Children, "/w"));

    let (node, mut modified) = c.read_and_watch("/w/a", EventMask::MODIFY).await.unwrap();
    assert_eq!(node.version, 0);
    writer.write("/w/a", "1").await.unwrap();
    let e = next_event(&mut modified, "modify").await;
    assert_eq!((e.kind, e.path.as_str()), (EventType::Modify, "/w/a"));

    let mut deleted = c.watch("/w/a", EventMask::DELETE, false).await.unwrap();
    writer.delete("/w/a").await.unwrap();
    let e = next_event(&mut deleted, "delete").await;
    assert_eq!((e.kind, e.path.as_str()), (EventType::Delete, "/w/a"));

    // The recursive watch sees events below /w, down to grandchildren.
    writer
        .create("/w/b", "", CreateMode::Persistent)
        .await
        .unwrap();
    writer
        .create("/w/b/c", "", CreateMode::Persistent)
        .await
        .unwrap();
    within(PATIENCE, "recursive grandchild create", async {
        loop {
            let e = next_event(&mut tree, "recursive").await;
            if (e.kind, e.path.as_str()) == (EventType::Create, "/w/b/c") {
                break;
            }
        }
    })
    .await;
    drop(tree);
    c.close().await;
    writer.close().await;
}

/// Writes keep flowing while leadership moves twice: each write succeeds or reports an
/// unknown outcome, the session and its ephemeral node survive, and a watch keeps firing.
pub async fn leader_move_during_a_stream_of_writes(h: Harness) {
    let cluster = Arc::new(TestCluster::start(3));
    let a = h.client(cluster.addrs(), options(6)).await;
    let b = h.client(cluster.addrs(), options(7)).await;
    let sid = sid_of(&a);
    a.create("/svc", "", CreateMode::Persistent).await.unwrap();
    a.create_ephemeral("/svc/a", "").await.unwrap();
    a.create("/data", "0", CreateMode::Persistent)
        .await
        .unwrap();
    let mut watch = b
        .watch_persistent("/data", EventMask::MODIFY, false)
        .await
        .unwrap();

    let moved = Arc::new(AtomicBool::new(false));
    let mover = {
        let (cluster, moved) = (cluster.clone(), moved.clone());
        async move {
            pause(Duration::from_millis(100)).await;
            cluster.move_leader(1).unwrap();
            pause(Duration::from_millis(300)).await;
            cluster.move_leader(2).unwrap();
            moved.store(true, Ordering::SeqCst);
        }
    };
    let writes = async {
        let (mut ok, mut unknown, mut after_moves) = (0, 0, 0);
        while after_moves < 20 {
            if moved.load(Ordering::SeqCst) {
                after_moves += 1;
            }
            match within(
                PATIENCE,
                "write during move",
                a.write("/data", format!("{ok}")),
            )
            .await
            {
                Ok(()) => ok += 1,
                Err(
                    Error::Again {
                        outcome_unknown: true,
                    }
                    | Error::ConnectionLoss {
                        outcome_unknown: true,
                        ..
                    },
                ) => unknown += 1,
                Err(e) => panic!("unexpected error during a leader move: {e}"),
            }
        }
        (ok, unknown)
    };
    let ((ok, _unknown), ()) = futures_lite::future::zip(writes, mover).await;
    assert!(ok > 0, "no write succeeded");
    assert_eq!(cluster.leader(), Some(2));
    assert_eq!(a.sid(), Some(sid));
    assert_eq!(
        b.exists("/svc/a").await.unwrap().map(|n| n.owner),
        Some(sid)
    );

    // The watch fired for the writes made around the moves (persistent: re-armed each time).
    let during = std::iter::from_fn(|| watch.try_recv()).count();
    assert!(during > 0, "no watch event during the leader moves");
    a.write("/data", "final").await.unwrap();
    let e = next_event(&mut watch, "modify after the moves").await;
    assert_eq!((e.kind, e.path.as_str()), (EventType::Modify, "/data"));
    assert_eq!(&b.read("/data").await.unwrap().data[..], b"final");
}

/// A killed leader is replaced; requests wait and succeed; the session survives.
pub async fn killed_leader_is_replaced(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(8)).await;
    let sid = sid_of(&a);
    a.create_ephemeral("/k", "").await.unwrap();
    let old = cluster.leader().unwrap();
    cluster.kill(old).unwrap();
    // Sent before the client saw the connection die, a write's outcome is unknown.
    match a.create("/maybe", "", CreateMode::Persistent).await {
        Ok(())
        | Err(Error::ConnectionLoss {
            outcome_unknown: true,
            ..
        }) => {}
        Err(e) => panic!("unexpected error after the leader was killed: {e}"),
    }
    a.create("/after-kill", "", CreateMode::Persistent)
        .await
        .unwrap();
    assert_ne!(cluster.leader(), Some(old));
    assert_eq!(a.sid(), Some(sid));
    assert_eq!(a.read("/k").await.unwrap().owner, sid);
    cluster.restart(old).unwrap();
    a.write("/after-kill", "x").await.unwrap();
}

/// The original server's failover: after the leader dies its followers name it
/// (kNotLeader with the dead leader's address) for a while, then answer kAgain until a
/// new leader is elected. The client follows the redirect to the dead node, backs off,
/// and fails over to the new leader with its session, and every create it acknowledged
/// (before, during and after) is in the tree: none is lost.
pub async fn failover_through_dead_leader_redirects_loses_no_acknowledged_write(h: Harness) {
    let model = pyxis_testkit::model::ModelConfig::fast()
        .with_dead_leader_redirects(Duration::from_millis(800), Duration::from_millis(1200));
    let cluster = TestCluster::try_start(3, pyxis_testkit::RunnerConfig::with_model(model))
        .expect("a test cluster on 127.0.0.1");
    let a = h.client(cluster.addrs(), options(18)).await;
    let sid = sid_of(&a);
    a.create("/w", "", CreateMode::Persistent).await.unwrap();
    let old = cluster.leader().unwrap();
    let (mut acknowledged, mut after_kill) = (Vec::new(), 0);
    for i in 0..400 {
        if i == 20 {
            cluster.kill(old).unwrap();
        }
        let path = format!("/w/{i}");
        match within(
            PATIENCE,
            "create",
            a.create(&path, "", CreateMode::Persistent),
        )
        .await
        {
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
    let children = a.read("/w").await.unwrap().children;
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|name| !children.contains(name))
        .collect();
    assert!(lost.is_empty(), "acknowledged creates lost: {lost:?}");
}

/// During a window without a leader, reads wait and succeed, writes succeed or report
/// an unknown outcome, and afterwards everything works on the same session.
pub async fn no_leader_window_is_ridden_through(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(9)).await;
    let sid = sid_of(&a);
    cluster.no_leader_for(Duration::from_millis(1500)).unwrap();
    a.read("/").await.unwrap();
    match a.create("/during-gap", "", CreateMode::Persistent).await {
        Ok(())
        | Err(Error::Again {
            outcome_unknown: true,
        }) => {}
        Err(e) => panic!("unexpected error in a no-leader window: {e}"),
    }
    a.create("/after-gap", "", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(a.sid(), Some(sid));
}

/// A client paused past its session timeout (simulated by expiring its session on the
/// server) learns `Expired` after the new session's `Connected`; its ephemeral nodes
/// are gone and its watches ride on.
pub async fn paused_past_session_timeout_gets_a_new_session(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(10)).await;
    let old = sid_of(&a);
    let mut events = a.session_events();
    a.create_ephemeral("/mine", "").await.unwrap();
    a.create("/p", "", CreateMode::Persistent).await.unwrap();
    let mut watch = a
        .watch_persistent("/p", EventMask::MODIFY, false)
        .await
        .unwrap();
    assert!(cluster.expire_session(old).unwrap());
    let _ = a.exists("/p").await;
    let connected = session_event(&mut events, "new session", |e| {
        matches!(e, SessionEvent::Connected { .. })
    })
    .await;
    let expired = session_event(&mut events, "expired", |e| {
        matches!(e, SessionEvent::Expired { .. })
    })
    .await;
    assert_eq!(expired, SessionEvent::Expired { old_sid: old });
    let SessionEvent::Connected { sid: new } = connected else {
        unreachable!()
    };
    assert_ne!(new, old);
    assert_eq!(a.exists("/mine").await, Ok(None));
    a.write("/p", "after").await.unwrap();
    let e = within(PATIENCE, "watch after expiry", watch.next()).await;
    match e {
        Some(Ok(e)) => assert_eq!(e.kind, EventType::Modify),
        Some(Err(WatchError::Ended(Error::SessionExpired))) => {}
        other => panic!("watch after expiry: {other:?}"),
    }
}

/// Garbage and an absurd frame length from the server: the client reconnects with the
/// same session and never panics or allocates the announced size.
pub async fn garbage_from_the_server_reconnects(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(11)).await;
    let sid = sid_of(&a);
    a.create_ephemeral("/g", "").await.unwrap();
    for garbage in [
        &b"\xff\xff\xff\xffpyxi"[..],
        b"\x00\x00\x00\x10pyxiBADCHECKSUM!",
    ] {
        let mut events = a.session_events();
        cluster
            .send_garbage(cluster.leader().unwrap(), garbage)
            .unwrap();
        session_event(&mut events, "disconnect", |e| *e == SessionEvent::Suspended).await;
        session_event(&mut events, "reconnect", |e| {
            *e == SessionEvent::Connected { sid }
        })
        .await;
        assert_eq!(a.read("/g").await.unwrap().owner, sid);
    }
}

/// 100 tasks share one client: every request completes, pipelined on one connection.
pub async fn hundred_tasks_share_one_client(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(12)).await;
    a.create("/t", "", CreateMode::Persistent).await.unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (a, done) = (a.clone(), done.clone());
            (h.spawn)(Box::pin(async move {
                let path = format!("/t/{i}");
                a.create(&path, format!("{i}"), CreateMode::Persistent)
                    .await
                    .unwrap();
                a.write(&path, format!("{i}!")).await.unwrap();
                assert_eq!(
                    a.read(&path).await.unwrap().data,
                    format!("{i}!").into_bytes()
                );
                done.fetch_add(1, Ordering::SeqCst);
            }))
        })
        .collect();
    within(PATIENCE, "100 tasks", async {
        for task in tasks {
            task.await;
        }
    })
    .await;
    assert_eq!(done.load(Ordering::SeqCst), 100);
    assert_eq!(a.read("/t").await.unwrap().children.len(), 100);
}

/// A watch nobody reads keeps at most its bound, reports what it dropped, and never
/// delays the session: writes go on and pings keep it alive past its timeout (5 s).
pub async fn slow_consumer_never_stalls_the_session(h: Harness) {
    let cluster = TestCluster::start(3);
    let mut opts = options(13);
    opts.event_queue_bound = 2;
    let a = h.client(cluster.addrs(), opts).await;
    let sid = sid_of(&a);
    let session = a.session_events();
    a.create("/s", "", CreateMode::Persistent).await.unwrap();
    let watch = a
        .watch_persistent("/s", EventMask::MODIFY, false)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(7) {
        a.write("/s", format!("{i}")).await.unwrap();
        i += 1;
        pause(Duration::from_millis(50)).await;
    }
    assert_eq!(a.sid(), Some(sid));
    assert_eq!(
        session.try_recv(),
        None,
        "the session must not have blinked"
    );
    let items: Vec<_> = std::iter::from_fn(|| watch.try_recv()).collect();
    assert!(items.len() <= 3, "more than bound + 1 items: {items:?}");
    assert!(
        matches!(items.first(), Some(Err(WatchError::Lagged(n))) if *n > 0),
        "{i} writes into a queue of 2 must report a lag first: {items:?}"
    );
    assert!(
        items[1..]
            .iter()
            .all(|i| matches!(i, Ok(e) if e.kind == EventType::Modify)),
        "{items:?}"
    );
}

/// Dropping every handle unregisters the session within a bounded time.
pub async fn dropping_the_last_handle_closes_the_session(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(14)).await;
    let sid = sid_of(&a);
    a.create_ephemeral("/d", "").await.unwrap();
    let mut watch = a
        .watch_persistent("/d", EventMask::ALL, false)
        .await
        .unwrap();
    let clone = a.clone();
    drop(a);
    assert!(
        cluster.node("/d").is_some(),
        "a clone still holds the session"
    );
    drop(clone);
    eventually("ephemeral node deleted after drop", || {
        cluster.node("/d").is_none()
    })
    .await;
    assert!(!cluster.sessions().unwrap().contains(&sid));
    // The watch does not keep the client alive: it ends with the client.
    let ended = within(PATIENCE, "watch end", async {
        loop {
            match watch.next().await {
                Some(Ok(_)) => {}
                other => return other,
            }
        }
    })
    .await;
    assert_eq!(ended, Some(Err(WatchError::Ended(Error::Closed))));
    assert_eq!(within(PATIENCE, "watch done", watch.next()).await, None);
}

/// With no server listening, operations and `wait_connected` fail with `Timeout` at
/// their deadline instead of hanging, and the error says why: the last connect was
/// refused, by that address.
pub async fn unreachable_servers_time_out(h: Harness) {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let mut opts = options(15);
    opts.request_timeout = Duration::from_millis(500);
    let a = within(
        PATIENCE,
        "connect",
        (h.connect)(vec![closed_port.clone()], opts),
    )
    .await
    .unwrap();
    let waited = a.wait_connected(Duration::from_millis(300)).await;
    timed_out_refused_by(waited.map(drop), &closed_port);
    let read = within(PATIENCE, "read deadline", a.read("/")).await;
    timed_out_refused_by(read.map(drop), &closed_port);
    within(PATIENCE, "close", a.close()).await;
}

/// While no node knows a leader, an operation times out saying so ("no leader known",
/// naming the node that answered kAgain), not with a bare "timed out".
pub async fn no_leader_is_the_cause_of_the_timeout(h: Harness) {
    let cluster = TestCluster::start(3);
    cluster.no_leader_for(Duration::from_secs(20)).unwrap();
    let opts = options(16).request_timeout(Duration::from_millis(600));
    let a = within(PATIENCE, "connect", (h.connect)(cluster.addrs(), opts))
        .await
        .unwrap();
    let read = within(PATIENCE, "read deadline", a.read("/")).await;
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
/// with `Unreachable` naming the cause, long before their deadline (which is far off);
/// without it the same client would wait for the deadline (`unreachable_servers_time_out`).
pub async fn fail_fast_fails_at_once_while_no_server_is_reachable(h: Harness) {
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
    let a = within(PATIENCE, "connect", (h.connect)(closed.clone(), opts))
        .await
        .unwrap();
    let read = within(PATIENCE, "read fails fast", a.read("/")).await;
    unreachable_refused(read.map(drop), &closed);
    let waited = within(PATIENCE, "wait fails fast", a.wait_connected(Duration::MAX)).await;
    unreachable_refused(waited.map(drop), &closed);
    let write = within(PATIENCE, "write fails fast", a.write("/x", "1")).await;
    unreachable_refused(write.map(drop), &closed);
    within(PATIENCE, "close", a.close()).await;
}

/// A server name that does not resolve is named as such in the error (fail-fast, so at
/// once).
pub async fn an_unresolvable_name_is_the_cause(h: Harness) {
    // `.invalid` never resolves (RFC 6761).
    let name = "no-such-host.invalid:7000".to_string();
    let opts = options(19)
        .request_timeout(Duration::from_secs(3600))
        .fail_fast(true);
    let a = within(PATIENCE, "connect", (h.connect)(vec![name.clone()], opts))
        .await
        .unwrap();
    let read = within(PATIENCE, "read fails fast", a.read("/")).await;
    let Err(error @ Error::Unreachable { .. }) = &read else {
        panic!("expected Unreachable, got {read:?}");
    };
    assert_eq!(
        error.to_string(),
        format!("no server reachable: name did not resolve: {name}")
    );
    within(PATIENCE, "close", a.close()).await;
}

/// `result` is `Unreachable` naming one of `addrs` and a refused connection.
pub fn unreachable_refused(result: Result<(), Error>, addrs: &[String]) {
    let Err(error @ Error::Unreachable { .. }) = &result else {
        panic!("expected Unreachable, got {result:?}");
    };
    let shown = error.to_string();
    assert!(shown.contains("connection refused"), "{shown}");
    assert!(addrs.iter().any(|a| shown.contains(a.as_str())), "{shown}");
    assert!(error.is_retryable() && !error.is_outcome_unknown());
}

/// `result` is a `Timeout` whose text names `addr` and a refused connection.
pub fn timed_out_refused_by(result: Result<(), Error>, addr: &str) {
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

/// `Duration::MAX` means "wait forever" everywhere a timeout is taken (it once panicked
/// adding it to the clock): `wait_connected`, and the blocking `recv_timeout` of a
/// watch and of session events.
pub async fn duration_max_waits_without_a_deadline(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(16)).await;
    let sid = within(PATIENCE, "wait", a.wait_connected(Duration::MAX))
        .await
        .unwrap();
    assert_eq!(a.sid(), Some(sid));
    a.create("/forever", "", CreateMode::Persistent)
        .await
        .unwrap();
    let watch = a.watch("/forever", EventMask::MODIFY, false).await.unwrap();
    a.write("/forever", "x").await.unwrap();
    let event = watch.recv_timeout(Duration::MAX).unwrap();
    assert!(matches!(
        event,
        Some(Ok(WatchEvent {
            kind: EventType::Modify,
            ..
        }))
    ));
    let events = a.session_events();
    within(PATIENCE, "close", a.close()).await;
    assert_eq!(
        events.recv_timeout(Duration::MAX),
        Ok(Some(Ok(SessionEvent::Closed)))
    );
    assert_eq!(events.recv_timeout(Duration::MAX), Ok(None), "ended");
}

/// After `Closed` the session-event stream ends, and a subscription made after the
/// client closed ends at once (both once waited forever).
pub async fn session_events_end_after_close(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(17)).await;
    let mut events = a.session_events();
    within(PATIENCE, "close", a.close()).await;
    let closed = session_event(&mut events, "closed", |e| *e == SessionEvent::Closed).await;
    assert_eq!(closed, SessionEvent::Closed);
    assert_eq!(within(PATIENCE, "end", events.next()).await, None);
    let mut late = a.session_events();
    assert_eq!(within(PATIENCE, "late end", late.next()).await, None);
    assert_eq!(a.state(), crate::ClientState::Closed);
}

/// Requests leave in the order their methods are called, not the order their futures
/// are first polled: a read called after a write sees it, even when the read is
/// awaited first, or both are joined with the read polled first.
pub async fn calls_are_sent_in_call_order(h: Harness) {
    use futures_lite::future::zip;
    let cluster = TestCluster::start(3);
    let a = h.client(cluster.addrs(), options(18)).await;
    a.create("/order", "0", CreateMode::Persistent)
        .await
        .unwrap();
    for round in 1..=20u32 {
        let value = round.to_string();
        let write = a.write("/order", value.clone());
        let read = a.read("/order");
        let node = if round % 2 == 0 {
            // Awaited later, read first.
            let node = within(PATIENCE, "read", read).await.unwrap();
            within(PATIENCE, "write", write).await.unwrap();
            node
        } else {
            let (node, written) = within(PATIENCE, "join", zip(read, write)).await;
            written.unwrap();
            node.unwrap()
        };
        assert_eq!(&node.data[..], value.as_bytes(), "round {round}");
    }
    // A call made and dropped unawaited is still sent.
    drop(a.write("/order", "dropped"));
    let node = a.read("/order").await.unwrap();
    assert_eq!(&node.data[..], b"dropped");
}

/// A lock waiter fails to create the lock node, then learns the holder's state and
/// arms its watch in one step (`exists_and_watch`): when the holder releases between
/// the two steps, the waiter sees the node gone (a separate `watch(DELETE)` would wait
/// forever for a delete that already happened). 100 rounds, the release always lands
/// between the steps.
pub async fn lock_release_between_the_waiters_two_steps(h: Harness) {
    let cluster = TestCluster::start(3);
    let holder = h.client(cluster.addrs(), options(19)).await;
    let waiter = h.client(cluster.addrs(), options(20)).await;
    for round in 0..100 {
        holder
            .create_ephemeral("/race-lock", "holder")
            .await
            .unwrap();
        let busy = waiter.create_ephemeral("/race-lock", "waiter").await;
        assert!(
            matches!(busy, Err(Error::Exists { .. })),
            "round {round}: {busy:?}"
        );
        holder.delete("/race-lock").await.unwrap(); // the release, between the steps
        let (state, mut watch) = waiter
            .exists_and_watch("/race-lock", EventMask::DELETE, false)
            .await
            .unwrap();
        if state.is_some() {
            next_event(&mut watch, "release").await;
        }
        drop(watch);
        within(
            PATIENCE,
            "acquire",
            waiter.create_ephemeral("/race-lock", "waiter"),
        )
        .await
        .unwrap();
        waiter.delete("/race-lock").await.unwrap();
    }
    // With the lock held, the state is there and the watch fires on release.
    holder
        .create_ephemeral("/race-lock", "holder")
        .await
        .unwrap();
    let (state, mut watch) = waiter
        .exists_and_watch("/race-lock", EventMask::DELETE, false)
        .await
        .unwrap();
    assert_eq!(state.map(|n| n.data), Some("holder".into()));
    holder.delete("/race-lock").await.unwrap();
    assert_eq!(
        next_event(&mut watch, "release").await.kind,
        EventType::Delete
    );
}

/// A server that stops reading what the client writes (its socket buffers fill) never
/// stops the client's timers: every request still fails at its deadline (once the
/// driver sat in a write for 10 s, or forever in the blocking client). The connection
/// is then given up like a silent one (`Suspended`, a new connection), and once that has
/// lasted longer than the session timeout the session is reported `Lost`.
pub async fn a_peer_that_stops_reading_never_stops_the_timers(h: Harness) {
    use std::time::Instant;
    let server = pyxis_testkit::TestServer::start();
    let proxy = super::StallingProxy::start(server.addr());
    let opts = options(21).request_timeout(Duration::from_secs(1));
    let a = h.client(vec![proxy.addr()], opts).await;
    let mut events = a.session_events();
    a.create("/big", "", CreateMode::Persistent).await.unwrap();
    proxy.stop_reading();
    let big = bytes::Bytes::from(vec![7u8; 1000 * 1000]);
    let start = Instant::now();
    // 32 MB: far more than the socket buffers on both sides hold.
    let writes: Vec<_> = (0..32).map(|_| a.write("/big", big.clone())).collect();
    let read = a.read("/big");
    for write in writes {
        let result = within(PATIENCE, "stalled write", write).await;
        assert!(
            matches!(result, Err(Error::Timeout { .. })),
            "write: {result:?}"
        );
    }
    let read = within(PATIENCE, "stalled read", read).await;
    assert!(matches!(read, Err(Error::Timeout { .. })), "read: {read:?}");
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "1 s deadlines kept while the server reads nothing: took {elapsed:?}"
    );
    session_event(&mut events, "suspended", |e| *e == SessionEvent::Suspended).await;
    assert!(
        matches!(a.state(), crate::ClientState::Disconnected { .. }),
        "{:?}",
        a.state()
    );
    eventually("a new connection", || proxy.connections() >= 2).await;
    session_event(&mut events, "lost", |e| *e == SessionEvent::Lost).await;
    assert!(a.stats().reconnects >= 1, "{:?}", a.stats());
    within(PATIENCE, "close", a.close()).await;
}

/// A server that never stops sending (well-formed answers to requests nobody made, as
/// fast as the client takes them) never stops the client's timers: a read fails at its
/// deadline, although the socket always has bytes to read. The connection is then given
/// up like a silent one (it delivers no answer to a request in flight: `Suspended`).
pub async fn a_peer_that_never_stops_sending_never_stops_the_timers(h: Harness) {
    use std::time::Instant;
    let server = pyxis_testkit::TestServer::start();
    let proxy = super::FloodingProxy::start(server.addr());
    let opts = options(23).request_timeout(Duration::from_secs(1));
    let a = h.client(vec![proxy.addr()], opts).await;
    let mut events = a.session_events();
    a.create("/f", "", CreateMode::Persistent).await.unwrap();
    proxy.flood();
    let start = Instant::now();
    let read = within(PATIENCE, "flooded read", a.read("/f")).await;
    assert!(matches!(read, Err(Error::Timeout { .. })), "read: {read:?}");
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "a 1 s deadline kept while the server floods: took {elapsed:?}"
    );
    assert!(proxy.flooded() > 0, "the proxy flooded the client");
    session_event(&mut events, "suspended", |e| *e == SessionEvent::Suspended).await;
    within(PATIENCE, "close", a.close()).await;
}

/// With `close_on_expiry`, an expired session closes the client instead of going on
/// with a new one: `Expired`, then `Closed`, and later calls fail with `Closed`.
pub async fn close_on_expiry_makes_expiry_terminal(h: Harness) {
    let cluster = TestCluster::start(3);
    let a = h
        .client(cluster.addrs(), options(22).close_on_expiry(true))
        .await;
    let sid = sid_of(&a);
    let mut events = a.session_events();
    assert!(cluster.expire_session(sid).unwrap());
    let _ = a.exists("/").await;
    let expired = session_event(&mut events, "expired", |e| {
        matches!(e, SessionEvent::Expired { .. })
    })
    .await;
    assert_eq!(expired, SessionEvent::Expired { old_sid: sid });
    session_event(&mut events, "closed", |e| *e == SessionEvent::Closed).await;
    assert_eq!(within(PATIENCE, "ended", events.next()).await, None);
    assert_eq!(a.exists("/").await, Err(Error::Closed));
    assert_eq!(a.state(), crate::ClientState::Closed);
}

/// Answers to 100 reads reach the client together, in one write (many more than the
/// client handles per turn): every caller gets its node, on the same connection, with
/// none left waiting in the client's buffer.
pub async fn answers_arriving_together_reach_every_caller(h: Harness) {
    let server = pyxis_testkit::TestServer::start();
    let proxy = super::HoldingProxy::start(server.addr());
    let a = h.client(vec![proxy.addr()], options(22)).await;
    a.create("/held", "data", CreateMode::Persistent)
        .await
        .unwrap();
    let attempts = a.stats().connect_attempts;
    proxy.hold();
    let reads: Vec<_> = (0..100).map(|_| a.read("/held")).collect();
    // Every answer is at the proxy: each is more than 16 bytes.
    eventually("100 answers held", || proxy.held() >= 100 * 16).await;
    pause(Duration::from_millis(50)).await;
    proxy.release();
    for read in reads {
        let node = within(PATIENCE, "held read", read).await.unwrap();
        assert_eq!(node.data, "data".as_bytes());
    }
    assert_eq!(
        a.stats().connect_attempts,
        attempts,
        "on the same connection"
    );
}
