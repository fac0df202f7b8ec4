//! A subtree cache: `pyxis_recipes::TreeCache` mirrors `/examples/app` while another
//! client changes it and the embedded cluster moves its leader; the mirror's changes are
//! printed, and the final mirror is compared with a fresh read. Runs against an embedded
//! test cluster, or a real one named in `PYXIS_ADDRS`.
//!
//! ```text
//! cargo run -p pyxis-recipes --example cache
//! ```

use std::time::Duration;

use pyxis_recipes::{CacheEvent, TreeCache};
use pyxis_testkit::EnvCluster;
use pyxis_tokio::{Client, CreateMode, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    let admin = Client::connect(addrs.clone(), Options::new()).await?;
    let reader = Client::connect(addrs, Options::new()).await?;
    admin
        .create("/examples", "", CreateMode::Persistent)
        .await
        .ok();
    admin
        .create("/examples/app", "v1", CreateMode::Persistent)
        .await
        .ok();

    let cache = TreeCache::watch(&reader, "/examples/app", 1_000)?;
    cache.wait_loaded(Duration::from_secs(10)).await?;
    let mut changes = cache.events();
    tokio::spawn(async move {
        while let Some(change) = changes.next().await {
            match change {
                Ok(CacheEvent::Added { path }) => println!("+ {path}"),
                Ok(CacheEvent::Changed { path }) => println!("~ {path}"),
                Ok(CacheEvent::Removed { path }) => println!("- {path}"),
                other => println!("{other:?}"),
            }
        }
    });

    admin
        .create(
            "/examples/app/flags",
            "dark-mode=on",
            CreateMode::Persistent,
        )
        .await?;
    admin
        .create("/examples/app/flags/beta", "", CreateMode::Persistent)
        .await?;
    if let Some(cluster) = cluster.embedded() {
        // The cache's watch is re-armed on the new leader, and what changed meanwhile
        // is found by the reload that follows.
        cluster.move_leader(1)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    admin.write("/examples/app/flags", "dark-mode=off").await?;
    admin.delete("/examples/app/flags/beta").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let flags = cache.get("/examples/app/flags")?.ok_or("flags missing")?;
    let fresh = admin.read("/examples/app/flags").await?;
    println!(
        "cached flags v{} {:?}, server v{} {:?}",
        flags.version, flags.data, fresh.version, fresh.data
    );
    println!("{} nodes mirrored", cache.len());
    Ok(())
}
