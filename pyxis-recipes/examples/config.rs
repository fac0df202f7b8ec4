//! A typed configuration value with `pyxis_recipes::Configuration`: a `u32` rate limit
//! read from `/examples/config/rate-limit`, followed through writes, data that does not
//! parse, a leader move and a deletion. Runs against an embedded test cluster, or a real
//! one named in `PYXIS_ADDRS`.
//!
//! ```text
//! cargo run -p pyxis-recipes --example config
//! ```

use std::time::Duration;

use pyxis_recipes::{ConfigValue, Configuration};
use pyxis_testkit::EnvCluster;
use pyxis_tokio::{Client, CreateMode, Options};

const PATH: &str = "/examples/config/rate-limit";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    let admin = Client::connect(addrs.clone(), Options::new()).await?;
    let service = Client::connect(addrs, Options::new()).await?;

    let limit = Configuration::watch_with(&service, PATH, |data| {
        std::str::from_utf8(data)
            .map_err(|e| e.to_string())?
            .trim()
            .parse::<u32>()
            .map_err(|e| e.to_string())
    })?;
    limit.wait_loaded(Duration::from_secs(10)).await?;
    let mut changes = limit.events();
    println!("at start: {:?}", limit.get());

    admin
        .create("/examples", "", CreateMode::Persistent)
        .await
        .ok();
    admin
        .create("/examples/config", "", CreateMode::Persistent)
        .await
        .ok();
    admin.create(PATH, "100", CreateMode::Persistent).await?;
    admin.write(PATH, "250").await?;
    admin.write(PATH, "lots").await?;
    if let Some(cluster) = cluster.embedded() {
        cluster.move_leader(2)?;
    }
    admin.write(PATH, "500").await?;
    admin.delete(PATH).await?;

    while let Ok(Some(value)) = tokio::time::timeout(Duration::from_secs(1), changes.next()).await {
        match value {
            Ok(ConfigValue::Present { version, value }) => println!("v{version}: {value}/s"),
            Ok(ConfigValue::Invalid { version, error }) => println!("v{version} refused: {error}"),
            Ok(ConfigValue::Absent) => println!("no limit configured"),
            other => println!("{other:?}"),
        }
        if value_is_absent(&limit) {
            break;
        }
    }
    Ok(())
}

fn value_is_absent(limit: &Configuration<u32>) -> bool {
    matches!(limit.get(), ConfigValue::Absent)
}
