//! The shared adapter scenarios (`pyxis_client_common::scenarios`), each run twice:
//! under `async_std::task::block_on` and under `smol::block_on`, against 3-node test
//! clusters over loopback.

use pyxis_async_std::Client;
use pyxis_client_common::scenarios::{BoxFuture, Harness};
use pyxis_client_common::{AsyncClient, ConnectError, Options};

fn connect(addrs: Vec<String>, options: Options) -> BoxFuture<Result<AsyncClient, ConnectError>> {
    Box::pin(async move { Client::connect(addrs, options).await.map(|c| (*c).clone()) })
}

mod on_async_std {
    use super::*;

    const HARNESS: Harness = Harness {
        connect,
        spawn: |task| Box::pin(async_std::task::spawn(task)),
    };

    pyxis_client_common::async_scenarios!(async_std::task::block_on, HARNESS);
}

mod on_smol {
    use super::*;

    const HARNESS: Harness = Harness {
        connect,
        spawn: |task| Box::pin(smol::spawn(task)),
    };

    pyxis_client_common::async_scenarios!(smol::block_on, HARNESS);
}
