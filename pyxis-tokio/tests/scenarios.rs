//! The shared adapter scenarios (`pyxis_client_common::scenarios`) on a tokio
//! multi-thread runtime, against 3-node test clusters over loopback.

use std::future::Future;

use pyxis_client_common::scenarios::Harness;
use pyxis_tokio::Client;

fn block_on<F: Future<Output = ()>>(scenario: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(scenario);
}

const HARNESS: Harness = Harness {
    connect: |addrs, options| {
        Box::pin(async move { Client::connect(addrs, options).await.map(|c| (*c).clone()) })
    },
    spawn: |task| {
        let handle = tokio::spawn(task);
        Box::pin(async move { handle.await.expect("task panicked") })
    },
};

pyxis_client_common::async_scenarios!(block_on, HARNESS);
