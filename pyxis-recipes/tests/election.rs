//! Leader election against a 3-node `TestCluster`: at most one candidate believes it
//! leads at any sampled instant, through leader moves, no-leader windows, killed nodes,
//! expired sessions and a leader cut off from every server; on every adapter.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, eventually, on_tokio, sleep, Adapter, SESSION};
use pyxis_recipes::{Election, Leadership};
use pyxis_testkit::TestCluster;

/// Samples the candidates every millisecond on a thread of its own and fails if two
/// believe they lead at once.
fn referee(candidates: Vec<Arc<Election>>) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut samples = 0;
        while !done.load(Ordering::SeqCst) {
            let leaders = candidates.iter().filter(|c| c.is_leader()).count();
            assert!(leaders <= 1, "{leaders} candidates believe they lead");
            samples += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        samples
    });
    (stop, thread)
}

fn leader_of(candidates: &[Arc<Election>]) -> Option<usize> {
    candidates.iter().position(|c| c.is_leader())
}

#[test]
fn one_leader_through_moves_gaps_kills_and_expiry_on_every_adapter() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let mut clients = Vec::new();
        for adapter in [Adapter::Tokio, Adapter::AsyncIo, Adapter::Blocking] {
            clients.push(connect(adapter, &cluster).await);
        }
        let candidates: Vec<Arc<Election>> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| Arc::new(Election::join(c, "/svc/leader", format!("c{i}")).unwrap()))
            .collect();
        let (stop, referee) = referee(candidates.clone());
        eventually("a leader", Duration::from_secs(10), || {
            leader_of(&candidates).is_some()
        })
        .await;
        let first = leader_of(&candidates).unwrap();
        assert_eq!(
            candidates[0].leader().await.unwrap().as_deref(),
            Some(format!("c{first}").as_bytes())
        );
        // Faults that keep the leader's session: it keeps leading.
        cluster.move_leader(1).unwrap();
        cluster.no_leader_for(Duration::from_millis(300)).unwrap();
        let leader_node = cluster.leader().unwrap_or(0);
        cluster.kill(leader_node).unwrap();
        sleep(Duration::from_millis(500)).await;
        cluster.restart(leader_node).unwrap();
        sleep(Duration::from_millis(500)).await;
        assert_eq!(
            leader_of(&candidates),
            Some(first),
            "a blip is not a change"
        );
        // Cut every candidate off; the server expires the leader's session only after a
        // full session timeout (as a real server would), by when it has been told.
        let mut lost = candidates[first].events();
        let sid = clients[first].sid().unwrap();
        let cut = Instant::now();
        for n in 0..3 {
            cluster.kill(n).unwrap();
        }
        let told = tokio::time::timeout(SESSION, lost.next())
            .await
            .expect("told");
        assert_eq!(told, Some(Ok(Leadership::Lost)));
        assert!(
            leader_of(&candidates).is_none(),
            "nobody leads while cut off"
        );
        sleep((cut + SESSION).saturating_duration_since(Instant::now())).await;
        assert!(cluster.expire_session(sid).unwrap());
        for n in 0..3 {
            cluster.restart(n).unwrap();
        }
        // A leader again, under another session (the old one may win again, anew).
        eventually("a new leadership", Duration::from_secs(15), || {
            leader_of(&candidates).is_some()
                && cluster
                    .node("/svc/leader")
                    .is_some_and(|node| node.owner != Some(sid))
        })
        .await;
        stop.store(true, Ordering::SeqCst);
        let samples = referee.join().expect("never two leaders");
        assert!(samples > 100, "the referee sampled ({samples})");
    });
}

#[test]
fn resigning_hands_over_at_once() {
    let cluster = TestCluster::start(3);
    smol::block_on(async {
        let a = connect(Adapter::AsyncIo, &cluster).await;
        let b = connect(Adapter::AsyncIo, &cluster).await;
        let ea = Election::join(&a, "/e", "a").unwrap();
        ea.wait_leading(Duration::from_secs(10)).await.unwrap();
        let eb = Election::join(&b, "/e", "b").unwrap();
        sleep(Duration::from_millis(200)).await;
        assert!(!eb.is_leader());
        let start = Instant::now();
        ea.resign().await.unwrap();
        eb.wait_leading(Duration::from_secs(5)).await.unwrap();
        assert!(
            start.elapsed() < SESSION,
            "handed over without waiting for expiry"
        );
        assert_eq!(eb.leader().await.unwrap().as_deref(), Some(&b"b"[..]));
        drop(eb);
        eventually("dropping resigns", Duration::from_secs(5), || {
            cluster.node("/e").is_none()
        })
        .await;
    });
}

#[test]
fn a_leader_cut_off_from_every_server_steps_down_within_its_lease_and_returns() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let a = connect(Adapter::Tokio, &cluster).await;
        let election = Election::join(&a, "/cut/leader", "a").unwrap();
        election
            .wait_leading(Duration::from_secs(10))
            .await
            .unwrap();
        let mut events = election.events();
        sleep(SESSION / 2).await;
        let before_cut = Instant::now();
        for n in 0..3 {
            cluster.kill(n).unwrap();
        }
        // Whatever happens from now on, it cannot lead past ¾T after the cut (its last
        // check-in was sent before it), before the server could expire its session.
        let until = election.leading_until().expect("leads at the cut");
        assert!(
            until <= before_cut + SESSION * 3 / 4,
            "lease past ¾T of the cut"
        );
        let told = tokio::time::timeout(SESSION, events.next())
            .await
            .expect("told in time");
        assert_eq!(told, Some(Ok(Leadership::Lost)));
        assert!(!election.is_leader());
        assert!(Instant::now() >= until, "not told before the lease ran out");
        for n in 0..3 {
            cluster.restart(n).unwrap();
        }
        // The session was resumed and the node is still its own: it leads again.
        let back = tokio::time::timeout(Duration::from_secs(15), events.next())
            .await
            .expect("elected again");
        assert_eq!(back, Some(Ok(Leadership::Elected)));
        assert!(election.is_leader());
    });
}
