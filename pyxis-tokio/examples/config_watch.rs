//! A configuration value watched with tokio: read it with a watch, change it from a
//! second client, see the change. Runs against an embedded test cluster, or a real one
//! named in `PYXIS_ADDRS` (`host:port,...`).
//!
//! ```text
//! cargo run -p pyxis-tokio --example config_watch
//! ```

use std::time::Duration;

use pyxis_testkit::EnvCluster;
use pyxis_tokio::{Client, CreateMode, Error, EventMask, Options};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    let reader = Client::connect(addrs.clone(), Options::default()).await?;
    let admin = Client::connect(addrs, Options::default()).await?;
    match admin
        .create("/example-config", "color=blue", CreateMode::Persistent)
        .await
    {
        Ok(()) | Err(Error::Exists { .. }) => {}
        Err(e) => return Err(e.into()),
    }

    let (node, mut watch) = reader
        .read_and_watch("/example-config", EventMask::MODIFY)
        .await?;
    println!(
        "config v{}: {}",
        node.version,
        String::from_utf8_lossy(&node.data)
    );
    admin.write("/example-config", "color=green").await?;
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(Ok(event))) => println!("event: {event}"),
        other => println!("no event: {other:?}"),
    }
    let node = reader.read("/example-config").await?;
    println!(
        "config v{}: {}",
        node.version,
        String::from_utf8_lossy(&node.data)
    );
    admin.delete("/example-config").await?;
    reader.close().await;
    admin.close().await;
    Ok(())
}
