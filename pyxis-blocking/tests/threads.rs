//! The threads a blocking client runs, read from `/proc/self/task` (Linux): one driver
//! thread per client once it is connected, also after a killed leader made it connect
//! again; a connection thread only while it connects; none once the client is closed.
//! In a test binary of its own, so that no other test's clients are counted.
#![cfg(target_os = "linux")]

use std::thread;
use std::time::{Duration, Instant};

use pyxis_blocking::{Client, CreateMode, Options};
use pyxis_testkit::TestCluster;

const PATIENCE: Duration = Duration::from_secs(30);

/// The names of this process's threads that belong to a client (the test cluster's
/// own are named `pyxis-testkit`), sorted.
fn client_threads() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .filter(|name| name.starts_with("pyxis-") && name != "pyxis-testkit")
        .collect();
    names.sort();
    names
}

/// Waits until the client threads are `want`, failing with what they were.
fn eventually_threads(want: &[&str], when: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let threads = client_threads();
        if threads == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{when}: client threads {threads:?}, expected {want:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_runs_one_thread_whatever_its_connections() {
    let cluster = TestCluster::start(3);
    let clients: Vec<Client> = (0..3)
        .map(|seed| {
            let client =
                Client::connect(cluster.addrs(), Options::new().seed(seed)).expect("connect");
            client.wait_connected(PATIENCE).expect("session");
            client
        })
        .collect();
    for (i, client) in clients.iter().enumerate() {
        client
            .create(&format!("/t{i}"), "", CreateMode::Persistent)
            .expect("create");
    }
    eventually_threads(&["pyxis-driver"; 3], "three clients connected");

    // Every client connects again, to the new leader.
    let old = cluster.leader().expect("a leader");
    cluster.kill(old).expect("kill the leader");
    for (i, client) in clients.iter().enumerate() {
        client
            .create(&format!("/after{i}"), "", CreateMode::Persistent)
            .expect("create on the new leader");
    }
    eventually_threads(&["pyxis-driver"; 3], "after the leader moved");

    for client in &clients {
        client.close();
    }
    eventually_threads(&[], "every client closed");
    cluster.restart(old).expect("restart");
}
