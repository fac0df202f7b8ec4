//! The lock against a 3-node `TestCluster` with leader moves, killed nodes, no-leader
//! windows and expired sessions, on every adapter.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, eventually, on_tokio, sleep, Adapter, SESSION};
use pyxis_client_common::AsyncClient;
use pyxis_recipes::{wait, Error, Lock};
use pyxis_testkit::TestCluster;

/// `workers` clients take the lock `rounds` times each while the cluster moves its
/// leader and opens no-leader windows; no two guards ever report the lock held at once.
async fn contention(clients: Vec<AsyncClient>, cluster: &TestCluster, rounds: usize) {
    let inside = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for client in clients {
        let (inside, taken) = (inside.clone(), taken.clone());
        workers.push(std::thread::spawn(move || {
            wait(async {
                let lock = Lock::new(&client, "/recipes/locks/contended");
                for _ in 0..rounds {
                    let guard = lock
                        .acquire(Duration::from_secs(30))
                        .await
                        .expect("acquire");
                    assert!(guard.is_held());
                    let before = inside.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(before, 0, "two holders at once");
                    sleep(Duration::from_millis(20)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    taken.fetch_add(1, Ordering::SeqCst);
                    guard.release().await.expect("release");
                }
            })
        }));
    }
    let total = rounds * workers.len();
    // Faults while they contend.
    let mut faults = 0;
    while faults < 6 {
        sleep(Duration::from_millis(60)).await;
        match faults % 3 {
            0 => cluster
                .move_leader((cluster.leader().unwrap_or(0) + 1) % 3)
                .expect("move"),
            1 => cluster
                .no_leader_for(Duration::from_millis(150))
                .expect("gap"),
            _ => {
                let leader = cluster.leader().unwrap_or(0);
                cluster.kill(leader).expect("kill");
                sleep(Duration::from_millis(300)).await;
                cluster.restart(leader).expect("restart");
            }
        }
        faults += 1;
    }
    assert!(
        taken.load(Ordering::SeqCst) < total,
        "the faults should hit the workers while they contend"
    );
    for worker in workers {
        worker.join().expect("worker");
    }
    assert_eq!(taken.load(Ordering::SeqCst), total);
    assert!(
        cluster.node("/recipes/locks/contended").is_none(),
        "released"
    );
}

#[test]
fn tokio_clients_exclude_each_other_under_leader_moves_gaps_and_kills() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(connect(Adapter::Tokio, &cluster).await);
        }
        contention(clients, &cluster, 8).await;
    });
}

#[test]
fn async_std_and_smol_clients_exclude_each_other() {
    let cluster = TestCluster::start(3);
    smol::block_on(async {
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(connect(Adapter::AsyncIo, &cluster).await);
        }
        contention(clients, &cluster, 8).await;
    });
}

#[test]
fn blocking_clients_exclude_each_other() {
    let cluster = TestCluster::start(3);
    let clients = (0..3)
        .map(|_| wait(connect(Adapter::Blocking, &cluster)))
        .collect();
    wait(contention(clients, &cluster, 8));
}

#[test]
fn try_acquire_and_timeout_while_held_then_the_waiter_wins_on_release() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let a = connect(Adapter::Tokio, &cluster).await;
        let b = connect(Adapter::AsyncIo, &cluster).await;
        let guard = Lock::new(&a, "/l")
            .try_acquire()
            .await
            .unwrap()
            .expect("free");
        assert_eq!(guard.token(), a.sid().unwrap());
        let lock_b = Lock::new(&b, "/l");
        assert!(lock_b.try_acquire().await.unwrap().is_none(), "held by a");
        // The same session cannot take it twice either (a second acquisition's token differs).
        assert!(Lock::new(&a, "/l").try_acquire().await.unwrap().is_none());
        let start = Instant::now();
        match lock_b.acquire(Duration::from_millis(300)).await {
            Err(Error::Timeout(_)) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(start.elapsed() >= Duration::from_millis(300));
        let waiter = tokio::spawn(async move { lock_b.acquire(Duration::from_secs(10)).await });
        sleep(Duration::from_millis(100)).await;
        guard.release().await.unwrap();
        let guard_b = waiter.await.unwrap().expect("b gets it after the release");
        assert!(guard_b.is_held());
        assert_eq!(guard_b.token(), b.sid().unwrap());
        // Dropping releases in the background.
        drop(guard_b);
        eventually("released on drop", Duration::from_secs(5), || {
            cluster.node("/l").is_none()
        })
        .await;
    });
}

#[test]
fn an_expired_session_loses_the_lock_and_the_next_waiter_gets_it() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let a = connect(Adapter::Tokio, &cluster).await;
        let b = connect(Adapter::Tokio, &cluster).await;
        let guard = Lock::new(&a, "/x/lock")
            .acquire(Duration::from_secs(5))
            .await
            .unwrap();
        let lock_b = Lock::new(&b, "/x/lock");
        let waiter = tokio::spawn(async move { lock_b.acquire(Duration::from_secs(20)).await });
        sleep(Duration::from_millis(100)).await;
        assert!(cluster.expire_session(guard.token()).unwrap());
        let start = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), guard.lost())
            .await
            .expect("told within a heartbeat of the expiry");
        assert!(!guard.is_held());
        let guard_b = waiter.await.unwrap().expect("b takes over");
        assert!(guard_b.is_held());
        assert!(start.elapsed() < Duration::from_secs(5));
        // The old guard's release must not delete b's node.
        guard.release().await.unwrap();
        assert!(
            cluster.node("/x/lock").is_some(),
            "b's node survives a's release"
        );
        assert!(guard_b.is_held());
    });
}

#[test]
fn a_holder_cut_off_from_every_server_lets_go_before_its_session_could_expire() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let a = connect(Adapter::Tokio, &cluster).await;
        let guard = Lock::new(&a, "/cut")
            .acquire(Duration::from_secs(5))
            .await
            .unwrap();
        // Let a few check-ins renew the lease, then cut every server off.
        sleep(SESSION / 2).await;
        assert!(guard.is_held());
        let cut = Instant::now();
        for n in 0..3 {
            cluster.kill(n).unwrap();
        }
        // Its last check-in was sent before the cut: the lease cannot reach past ¾T of it.
        let until = guard.held_until().expect("held at the cut");
        assert!(until <= cut + SESSION * 3 / 4, "lease past ¾T of the cut");
        tokio::time::timeout(SESSION, guard.lost())
            .await
            .expect("lost before the session timeout");
        assert!(!guard.is_held());
        for n in 0..3 {
            cluster.restart(n).unwrap();
        }
        // The session resumes, but a lapsed lock stays lost (the holder was told).
        a.wait_connected(Duration::from_secs(10)).await.unwrap();
        sleep(SESSION / 5 * 2).await;
        assert!(!guard.is_held());
        guard.release().await.unwrap();
        assert!(
            cluster.node("/cut").is_none(),
            "released after the reconnect"
        );
    });
}
