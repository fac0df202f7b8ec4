//! Configuration against a 3-node `TestCluster`: every view ends at the node's latest
//! data (or absence) through leader moves, no-leader windows, killed nodes and an
//! expired session, on every adapter.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{connect, on_tokio, sleep, Adapter};
use pyxis_client_common::CreateMode;
use pyxis_recipes::{ConfigValue, Configuration};
use pyxis_testkit::TestCluster;

const PATH: &str = "/config/limit";

fn parse(data: &Bytes) -> Result<u32, String> {
    std::str::from_utf8(data)
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())
}

async fn settles(views: &[&Configuration<u32>], expected: &ConfigValue<u32>) {
    let start = std::time::Instant::now();
    loop {
        if views.iter().all(|v| v.get() == *expected) {
            return;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let seen: Vec<_> = views.iter().map(|v| v.get()).collect();
            panic!("views {seen:?} never settled on {expected:?}");
        }
        sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn views_follow_the_latest_data_through_faults_on_every_adapter() {
    let cluster = TestCluster::start(3);
    on_tokio(async {
        let writer = connect(Adapter::Tokio, &cluster).await;
        let mut readers = Vec::new();
        for adapter in [Adapter::Tokio, Adapter::AsyncIo, Adapter::Blocking] {
            readers.push(connect(adapter, &cluster).await);
        }
        let views: Vec<Configuration<u32>> = readers
            .iter()
            .map(|c| Configuration::watch_with(c, PATH, parse).unwrap())
            .collect();
        let views: Vec<&Configuration<u32>> = views.iter().collect();
        for v in &views {
            v.wait_loaded(Duration::from_secs(5)).await.unwrap();
        }
        settles(&views, &ConfigValue::Absent).await;
        let mut changes = views[0].events();

        writer
            .create("/config", "", CreateMode::Persistent)
            .await
            .unwrap();
        writer
            .create(PATH, "1", CreateMode::Persistent)
            .await
            .unwrap();
        settles(
            &views,
            &ConfigValue::Present {
                version: 0,
                value: 1,
            },
        )
        .await;
        assert_eq!(
            changes.next().await,
            Some(Ok(ConfigValue::Present {
                version: 0,
                value: 1
            }))
        );

        // Writes while the cluster misbehaves.
        for (n, fault) in (2..=7).zip(0..) {
            match fault % 3 {
                0 => cluster
                    .move_leader((cluster.leader().unwrap_or(0) + 1) % 3)
                    .unwrap(),
                1 => cluster.no_leader_for(Duration::from_millis(200)).unwrap(),
                _ => {
                    let leader = cluster.leader().unwrap_or(0);
                    cluster.kill(leader).unwrap();
                    sleep(Duration::from_millis(250)).await;
                    cluster.restart(leader).unwrap();
                }
            }
            write(&writer, n).await;
        }
        let version = cluster.node(PATH).unwrap().version;
        settles(&views, &ConfigValue::Present { version, value: 7 }).await;

        // A reader whose session expires keeps following.
        assert!(cluster.expire_session(readers[1].sid().unwrap()).unwrap());
        write(&writer, 8).await;
        let version = cluster.node(PATH).unwrap().version;
        settles(&views, &ConfigValue::Present { version, value: 8 }).await;

        // Data the decoder refuses, then deletion.
        writer.write(PATH, "eight").await.unwrap();
        settles_invalid(&views).await;
        writer.delete(PATH).await.unwrap();
        settles(&views, &ConfigValue::Absent).await;
    });
}

/// Writes `n`, settling a write lost with the connection by reading the node back.
async fn write(writer: &pyxis_client_common::AsyncClient, n: u32) {
    loop {
        match writer.write(PATH, n.to_string()).await {
            Ok(()) => return,
            Err(e) if e.is_retryable() => {
                if writer
                    .read(PATH)
                    .await
                    .is_ok_and(|node| node.data == n.to_string())
                {
                    return;
                }
            }
            Err(e) => panic!("write: {e}"),
        }
    }
}

async fn settles_invalid(views: &[&Configuration<u32>]) {
    let start = std::time::Instant::now();
    while !views
        .iter()
        .all(|v| matches!(v.get(), ConfigValue::Invalid { .. }))
    {
        assert!(start.elapsed() < Duration::from_secs(15), "never invalid");
        sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn raw_bytes_with_a_blocking_client() {
    let cluster = TestCluster::start(1);
    let client = pyxis_blocking::Client::connect(cluster.addrs(), common::options()).unwrap();
    client.create("/raw", "a", CreateMode::Persistent).unwrap();
    let view = Configuration::watch(&client.to_async(), "/raw").unwrap();
    let changes = view.events();
    pyxis_recipes::wait(view.wait_loaded(Duration::from_secs(5))).unwrap();
    assert_eq!(view.get().value(), Some(&Bytes::from_static(b"a")));
    client.write("/raw", "b").unwrap();
    let mut last = None;
    while last != Some(Bytes::from_static(b"b")) {
        let event = changes
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("open")
            .expect("no change dropped");
        last = event.value().cloned();
    }
}
