//! Barriers against a 3-node `TestCluster` with leader moves, no-leader windows and a
//! killed leader while participants wait, on every adapter.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{connect, on_tokio, sleep, Adapter};
use pyxis_recipes::{wait, DoubleBarrier, Error, Gate};
use pyxis_testkit::TestCluster;

#[test]
fn a_gate_holds_callers_until_opened_through_a_leader_move() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let admin = connect(Adapter::Tokio, &cluster).await;
        let worker = connect(Adapter::AsyncIo, &cluster).await;
        let gate = Gate::new(&admin, "/deploy/hold");
        gate.close().await.unwrap();
        let held = Gate::new(&worker, "/deploy/hold");
        match held.pass(Duration::from_millis(200)).await {
            Err(Error::Timeout(_)) => {}
            other => panic!("a closed gate lets nobody through: {other:?}"),
        }
        let waiter = tokio::spawn(async move { held.pass(Duration::from_secs(15)).await });
        sleep(Duration::from_millis(100)).await;
        cluster.move_leader(2).unwrap();
        sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished());
        gate.open().await.unwrap();
        waiter.await.unwrap().expect("through once open");
        gate.pass(Duration::from_secs(1)).await.unwrap();
    });
}

#[test]
fn a_double_barrier_lets_all_in_together_and_out_together_on_every_adapter() {
    let cluster = TestCluster::start(3);
    let entered = Arc::new(AtomicUsize::new(0));
    let left = Arc::new(AtomicUsize::new(0));
    let adapters = [Adapter::Tokio, Adapter::AsyncIo, Adapter::Blocking];
    // The tokio client's driver lives on this runtime, kept for the whole test.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let clients: Vec<_> = runtime.block_on(async {
        let mut clients = Vec::new();
        for adapter in adapters {
            clients.push(connect(adapter, &cluster).await);
        }
        clients
    });
    let mut threads = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (entered, left) = (entered.clone(), left.clone());
        threads.push(std::thread::spawn(move || {
            let barrier = DoubleBarrier::new(&client, "/jobs/barrier", format!("p{i}"), 3);
            // Stagger arrivals so the first ones wait.
            std::thread::sleep(Duration::from_millis(300 * i as u64));
            wait(barrier.enter(Duration::from_secs(20))).expect("enter");
            let inside = entered.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(inside <= 3);
            std::thread::sleep(Duration::from_millis(200 * (2 - i as u64)));
            wait(barrier.leave(Duration::from_secs(20))).expect("leave");
            // Nobody is out before everyone has entered.
            assert_eq!(entered.load(Ordering::SeqCst), 3);
            left.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // Faults while participants wait.
    std::thread::sleep(Duration::from_millis(150));
    cluster.no_leader_for(Duration::from_millis(200)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let leader = cluster.leader().unwrap_or(0);
    cluster.kill(leader).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    cluster.restart(leader).unwrap();
    for t in threads {
        t.join().expect("participant");
    }
    assert_eq!(left.load(Ordering::SeqCst), 3);
    let dir = cluster.node("/jobs/barrier").expect("directory stays");
    assert!(
        dir.children.is_empty(),
        "all out and _ready removed: {:?}",
        dir.children
    );
    drop(runtime);
}

#[test]
fn reserved_names_are_refused() {
    let cluster = TestCluster::start(1);
    smol::block_on(async {
        let c = connect(Adapter::AsyncIo, &cluster).await;
        let barrier = DoubleBarrier::new(&c, "/b", "_ready", 2);
        assert!(matches!(
            barrier.enter(Duration::from_secs(1)).await,
            Err(Error::InvalidName(_))
        ));
    });
}
