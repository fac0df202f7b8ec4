//! A simple exclusive lock with ephemeral nodes, run once under smol and once under
//! async-std (the same crate serves both): the holder's node disappears when its session
//! closes, and a waiter's watch tells it the lock is free. Runs against an embedded test
//! cluster, or a real one named in `PYXIS_ADDRS` (`host:port,...`).
//!
//! ```text
//! cargo run -p pyxis-async-std --example lock
//! ```

use pyxis_async_std::{Client, Error, EventMask, Options};
use pyxis_testkit::TestCluster;

async fn demo(addrs: Vec<String>, runtime: &str) -> Result<(), Box<dyn std::error::Error>> {
    let holder = Client::connect(addrs.clone(), Options::default())
        .await
        .map_err(|_| Error::Closed)?;
    let waiter = Client::connect(addrs, Options::default())
        .await
        .map_err(|_| Error::Closed)?;
    holder.create_ephemeral("/example-lock", "holder").await?;
    println!("[{runtime}] holder took the lock");
    match waiter.create_ephemeral("/example-lock", "waiter").await {
        Err(Error::Exists { .. }) => println!("[{runtime}] waiter: lock busy, watching it"),
        other => println!("[{runtime}] waiter: unexpected {other:?}"),
    }
    let mut released = waiter
        .watch("/example-lock", EventMask::DELETE, false)
        .await?;
    holder.close().await; // the session ends: its ephemeral lock node is deleted
    if let Some(Ok(event)) = released.next().await {
        println!("[{runtime}] waiter saw: {event}");
    }
    waiter.create_ephemeral("/example-lock", "waiter").await?;
    println!("[{runtime}] waiter took the lock");
    waiter.close().await;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let embedded = std::env::var("PYXIS_ADDRS")
        .is_err()
        .then(|| TestCluster::start(3));
    let addrs: Vec<String> = match &embedded {
        Some(cluster) => cluster.addrs(),
        None => std::env::var("PYXIS_ADDRS")?
            .split(',')
            .map(String::from)
            .collect(),
    };
    smol::block_on(demo(addrs.clone(), "smol"))?;
    async_std::task::block_on(demo(addrs, "async-std"))?;
    Ok(())
}
