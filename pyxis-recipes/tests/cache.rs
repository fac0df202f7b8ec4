//! The subtree cache against a 3-node `TestCluster`: every mirror ends equal to the
//! server's subtree after changes made through leader moves, no-leader windows, a killed
//! leader and an expired session, on every adapter; and its bound is enforced.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{connect, on_tokio, sleep, Adapter};
use pyxis_client_common::{AsyncClient, CreateMode, Error as ClientError};
use pyxis_recipes::{CacheEvent, Error, TreeCache};
use pyxis_testkit::TestCluster;

/// (data, sorted children, version) of every node at and below `root` on the server.
fn server_tree(cluster: &TestCluster, root: &str) -> BTreeMap<String, (Bytes, Vec<String>, u64)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(path) = todo.pop() {
        if let Some(node) = cluster.node(&path) {
            let mut children = node.children.clone();
            children.sort();
            todo.extend(children.iter().map(|c| format!("{path}/{c}")));
            out.insert(path, (node.data, children, node.version));
        }
    }
    out
}

fn cache_tree(cache: &TreeCache) -> BTreeMap<String, (Bytes, Vec<String>, u64)> {
    cache
        .snapshot()
        .expect("within bound")
        .into_iter()
        .map(|(path, node)| {
            let mut children = node.children;
            children.sort();
            (path, (node.data, children, node.version))
        })
        .collect()
}

async fn converged(cluster: &TestCluster, caches: &[&TreeCache], root: &str) {
    let start = Instant::now();
    loop {
        let server = server_tree(cluster, root);
        if caches.iter().all(|c| cache_tree(c) == server) {
            return;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let seen: Vec<_> = caches.iter().map(|c| cache_tree(c)).collect();
            panic!("caches never equal to the server's subtree {server:?}: {seen:?}");
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `op` until it has an answer, settling lost outcomes (the tests' writer).
async fn settle(what: impl Fn() -> pyxis_client_common::Call<()>) -> Result<(), ClientError> {
    loop {
        match what().await {
            Err(e) if e.is_retryable() => sleep(Duration::from_millis(50)).await,
            other => return other,
        }
    }
}

async fn create(c: &AsyncClient, path: &str, data: &str) {
    match settle(|| c.create(path, data.to_owned(), CreateMode::Persistent)).await {
        Ok(()) | Err(ClientError::Exists { .. }) => {}
        Err(e) => panic!("create {path}: {e}"),
    }
}

async fn delete(c: &AsyncClient, path: &str) {
    match settle(|| c.delete(path)).await {
        Ok(()) | Err(ClientError::NotFound { .. }) => {}
        Err(e) => panic!("delete {path}: {e}"),
    }
}

#[test]
fn mirrors_equal_the_server_after_changes_under_faults_on_every_adapter() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let writer = connect(Adapter::Tokio, &cluster).await;
        let mut readers = Vec::new();
        for adapter in [Adapter::Tokio, Adapter::AsyncIo, Adapter::Blocking] {
            readers.push(connect(adapter, &cluster).await);
        }
        create(&writer, "/app", "root").await;
        for i in 0..4 {
            create(&writer, &format!("/app/d{i}"), &format!("dir {i}")).await;
            for j in 0..3 {
                create(&writer, &format!("/app/d{i}/n{j}"), "x").await;
            }
        }
        let caches: Vec<TreeCache> = readers
            .iter()
            .map(|c| TreeCache::watch(c, "/app", 1000).unwrap())
            .collect();
        let caches: Vec<&TreeCache> = caches.iter().collect();
        for c in &caches {
            c.wait_loaded(Duration::from_secs(10)).await.unwrap();
        }
        converged(&cluster, &caches, "/app").await;
        assert_eq!(caches[0].len(), 1 + 4 + 12);
        assert_eq!(
            caches[1].children("/app").unwrap().unwrap(),
            ["d0", "d1", "d2", "d3"]
        );

        // Changes of every kind while the cluster misbehaves.
        for round in 0..6 {
            match round % 3 {
                0 => cluster
                    .move_leader((cluster.leader().unwrap_or(0) + 1) % 3)
                    .unwrap(),
                1 => cluster.no_leader_for(Duration::from_millis(200)).unwrap(),
                _ => {
                    let leader = cluster.leader().unwrap_or(0);
                    cluster.kill(leader).unwrap();
                    sleep(Duration::from_millis(200)).await;
                    cluster.restart(leader).unwrap();
                }
            }
            let d = format!("/app/d{}", round % 4);
            settle(|| writer.write(&d, format!("round {round}")))
                .await
                .unwrap();
            delete(&writer, &format!("{d}/n{}", round % 3)).await;
            create(&writer, &format!("{d}/new{round}"), "fresh").await;
            create(&writer, &format!("{d}/new{round}/deep"), "deeper").await;
        }
        // A reader's session expires: its watch is gone with it, and it reloads.
        assert!(cluster.expire_session(readers[2].sid().unwrap()).unwrap());
        delete(&writer, "/app/d3/n0").await;
        create(&writer, "/app/late", "after the expiry").await;
        converged(&cluster, &caches, "/app").await;

        // An ephemeral node of a closed client leaves every mirror.
        let temp = connect(Adapter::AsyncIo, &cluster).await;
        temp.create_ephemeral("/app/late/worker", "w")
            .await
            .unwrap();
        converged(&cluster, &caches, "/app").await;
        assert!(caches[0].get("/app/late/worker").unwrap().is_some());
        temp.close().await;
        converged(&cluster, &caches, "/app").await;
        assert!(caches[0].get("/app/late/worker").unwrap().is_none());
    });
}

#[test]
fn past_its_bound_the_cache_stops_with_a_clear_error() {
    let cluster = TestCluster::start(1);
    smol::block_on(async {
        let c = connect(Adapter::AsyncIo, &cluster).await;
        create(&c, "/small", "").await;
        create(&c, "/small/a", "").await;
        let cache = TreeCache::watch(&c, "/small", 3).unwrap();
        cache.wait_loaded(Duration::from_secs(5)).await.unwrap();
        let mut events = cache.events();
        assert_eq!(cache.len(), 2);
        create(&c, "/small/b", "").await;
        create(&c, "/small/b/c", "").await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match cache.get("/small") {
                Err(Error::TooLarge { root, max_nodes }) => {
                    assert_eq!((root.as_str(), max_nodes), ("/small", 3));
                    break;
                }
                Ok(_) => assert!(Instant::now() < deadline, "never reported too large"),
                Err(e) => panic!("{e}"),
            }
            sleep(Duration::from_millis(20)).await;
        }
        let mut saw_overflow = false;
        while let Some(event) = events.next().await {
            saw_overflow |= event == Ok(CacheEvent::Overflow);
        }
        assert!(saw_overflow, "the stream says so, then ends");
        assert!(cache.is_empty());
    });
}
