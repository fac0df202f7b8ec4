//! The threads a blocking client runs, read from `/proc/self/task` (Linux): one driver
//! thread per client once it is connected, also after a killed leader made it connect
//! again; a connection thread only while it connects; none once the client is closed;
//! and an idle client's driver thread sleeps (no busy polling). In a test binary of its
//! own, its tests one at a time, so that no other test's clients are counted.
#![cfg(target_os = "linux")]

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use pyxis_blocking::{Client, CreateMode, Options};
use pyxis_testkit::TestCluster;

const PATIENCE: Duration = Duration::from_secs(30);

/// Held by each test, so that the tests of this binary run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

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

/// The CPU time (user + system) this process's driver threads have used so far.
fn driver_cpu() -> Duration {
    // Clock ticks per second: USER_HZ, 100 on every Linux port.
    const TICK: Duration = Duration::from_millis(10);
    let ticks: u32 = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            if name.trim_end() != "pyxis-driver" {
                return None;
            }
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // After the name in parentheses: state is field 3, utime 14, stime 15.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let utime: u32 = fields.get(11)?.parse().ok()?;
            let stime: u32 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .sum();
    TICK * ticks
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
    let _alone = alone();
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

#[test]
fn an_idle_client_sleeps_until_its_next_ping() {
    let _alone = alone();
    let cluster = TestCluster::start(3);
    let client = Client::connect(cluster.addrs(), Options::new().seed(9)).expect("connect");
    client.wait_connected(PATIENCE).expect("session");
    client
        .create("/idle", "", CreateMode::Persistent)
        .expect("create");
    eventually_threads(&["pyxis-driver"], "connected");
    let before = driver_cpu();
    thread::sleep(Duration::from_secs(2));
    let used = driver_cpu() - before;
    // A loop that polled or spun would use most of the 2 s; one that sleeps until a
    // socket, a command or its next deadline uses a few pings' worth.
    assert!(
        used <= Duration::from_millis(200),
        "the idle driver thread used {used:?} of CPU in 2 s"
    );
    client.close();
}
