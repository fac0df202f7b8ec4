//! What every recipe test shares: a cluster, clients from each adapter (all of them an
//! `AsyncClient` underneath, which the recipes take), and bounded waiting.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use pyxis_client_common::{AsyncClient, Options};
use pyxis_testkit::TestCluster;

/// The session timeout the tests ask for (the client's minimum).
pub const SESSION: Duration = Duration::from_secs(5);

pub fn options() -> Options {
    Options::new().session_timeout(SESSION)
}

/// Which adapter a client runs on.
#[derive(Debug, Clone, Copy)]
pub enum Adapter {
    Tokio,
    AsyncIo,
    Blocking,
}

/// A client on `adapter` (a tokio client must be made inside a tokio runtime).
pub async fn connect(adapter: Adapter, cluster: &TestCluster) -> AsyncClient {
    let addrs = cluster.addrs();
    let client = match adapter {
        Adapter::Tokio => (*pyxis_tokio::Client::connect(addrs, options())
            .await
            .expect("connect"))
        .clone(),
        Adapter::AsyncIo => (*pyxis_async_std::Client::connect(addrs, options())
            .await
            .expect("connect"))
        .clone(),
        Adapter::Blocking => pyxis_blocking::Client::connect(addrs, options())
            .expect("connect")
            .to_async(),
    };
    client
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");
    client
}

/// Runs `test` on a multi-thread tokio runtime.
pub fn on_tokio<F: Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test);
}

/// Waits (polling every 20 ms) until `check` holds, failing the test after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
}

/// Sleeps on any runtime.
pub async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}
