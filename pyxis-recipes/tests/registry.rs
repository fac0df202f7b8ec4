//! Service registry and discovery against a 3-node `TestCluster`: registrations come
//! back after their session expires, and every view converges to the server's directory
//! through leader moves, no-leader windows, killed nodes and expired sessions, on every
//! adapter.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{connect, on_tokio, sleep, Adapter};
use pyxis_recipes::{Discovery, DiscoveryEvent, Registration, RegistrationEvent};
use pyxis_testkit::TestCluster;

const DIR: &str = "/services/api";

/// The directory as the server has it.
fn server_view(cluster: &TestCluster) -> BTreeMap<String, Bytes> {
    let Some(dir) = cluster.node(DIR) else {
        return BTreeMap::new();
    };
    dir.children
        .iter()
        .filter_map(|name| {
            let node = cluster.node(&format!("{DIR}/{name}"))?;
            Some((name.clone(), node.data))
        })
        .collect()
}

async fn converged(cluster: &TestCluster, views: &[&Discovery], expected: &[&str]) {
    let start = std::time::Instant::now();
    loop {
        let server = server_view(cluster);
        let names: Vec<&str> = server.keys().map(String::as_str).collect();
        if names == expected && views.iter().all(|v| v.instances() == server) {
            return;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let seen: Vec<_> = views.iter().map(|v| v.instances()).collect();
            panic!("not converged to {expected:?}: server {server:?}, views {seen:?}");
        }
        sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn registrations_survive_expiry_and_views_converge_through_faults() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let adapters = [Adapter::Tokio, Adapter::AsyncIo, Adapter::Blocking];
        let mut clients = Vec::new();
        for adapter in adapters {
            clients.push(connect(adapter, &cluster).await);
        }
        let watcher_tokio = connect(Adapter::Tokio, &cluster).await;
        let watcher_blocking = connect(Adapter::Blocking, &cluster).await;
        let view_a = Discovery::watch(&watcher_tokio, DIR).unwrap();
        let view_b = Discovery::watch(&watcher_blocking, DIR).unwrap();
        view_a.wait_loaded(Duration::from_secs(5)).await.unwrap();
        let changes = view_a.events();
        let regs: Vec<Registration> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Registration::register(c, DIR, &format!("i{i}"), format!("10.0.0.{i}:80")).unwrap()
            })
            .collect();
        let mut reg_events = regs[0].events();
        for reg in &regs {
            reg.wait_registered(Duration::from_secs(5)).await.unwrap();
        }
        converged(&cluster, &[&view_a, &view_b], &["i0", "i1", "i2"]).await;
        let mut added = Vec::new();
        while let Some(event) = changes.try_recv() {
            if let Ok(DiscoveryEvent::Added { name, .. }) = event {
                added.push(name);
            }
        }
        added.sort();
        assert_eq!(added, ["i0", "i1", "i2"]);

        // The first instance's session expires: it is re-registered, and says so.
        let old_sid = clients[0].sid().unwrap();
        assert!(cluster.expire_session(old_sid).unwrap());
        let mut saw = Vec::new();
        while !matches!(saw.last(), Some(RegistrationEvent::Reregistered { .. })) {
            let event = tokio::time::timeout(Duration::from_secs(10), reg_events.next())
                .await
                .expect("re-registered in time")
                .expect("stream open")
                .expect("no event dropped");
            // The first registration's own event may come first.
            if !matches!(event, RegistrationEvent::Registered { .. }) {
                saw.push(event);
            }
        }
        assert_eq!(saw[0], RegistrationEvent::Gone);
        let RegistrationEvent::Reregistered { sid } = saw[saw.len() - 1] else {
            unreachable!()
        };
        assert_ne!(sid, old_sid);
        converged(&cluster, &[&view_a, &view_b], &["i0", "i1", "i2"]).await;
        assert_eq!(cluster.node(&format!("{DIR}/i0")).unwrap().owner, Some(sid));

        // Changes during faults: leader moves, a no-leader window, a killed leader.
        cluster.move_leader(2).unwrap();
        let reg3 = Registration::register(&clients[1], DIR, "late", "x").unwrap();
        cluster.no_leader_for(Duration::from_millis(300)).unwrap();
        let [r0, r1, r2] = <[Registration; 3]>::try_from(regs).unwrap();
        drop(r1);
        let leader = cluster.leader().unwrap_or(2);
        cluster.kill(leader).unwrap();
        r2.deregister().await.unwrap();
        sleep(Duration::from_millis(300)).await;
        cluster.restart(leader).unwrap();
        reg3.wait_registered(Duration::from_secs(10)).await.unwrap();
        converged(&cluster, &[&view_a, &view_b], &["i0", "late"]).await;
        assert!(r0.is_registered());

        // A closed client's instance disappears from every view.
        clients[1].close().await;
        converged(&cluster, &[&view_a, &view_b], &["i0"]).await;
    });
}

#[test]
fn a_name_held_by_another_session_is_taken_once_it_goes() {
    let cluster = TestCluster::start(1);
    smol::block_on(async {
        let a = connect(Adapter::AsyncIo, &cluster).await;
        let b = connect(Adapter::AsyncIo, &cluster).await;
        let first = Registration::register(&a, DIR, "same", "a").unwrap();
        first.wait_registered(Duration::from_secs(5)).await.unwrap();
        let second = Registration::register(&b, DIR, "same", "b").unwrap();
        sleep(Duration::from_millis(300)).await;
        assert!(!second.is_registered(), "the name is a's");
        first.deregister().await.unwrap();
        second
            .wait_registered(Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(
            cluster.node(&format!("{DIR}/same")).unwrap().data,
            Bytes::from_static(b"b")
        );
    });
}
