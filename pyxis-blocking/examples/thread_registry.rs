//! Service registration from plain threads: four worker threads share one client and
//! register themselves as ephemeral nodes; a watcher sees the directory change; closing
//! the client removes them all. Runs against an embedded test cluster, or a real one
//! named in `PYXIS_ADDRS` (`host:port,...`).
//!
//! ```text
//! cargo run -p pyxis-blocking --example thread_registry
//! ```

use std::time::Duration;

use pyxis_blocking::{Client, CreateMode, Error, EventMask, Options};
use pyxis_testkit::EnvCluster;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    let workers = Client::connect(addrs.clone(), Options::default())?;
    let watcher = Client::connect(addrs, Options::default())?;
    match workers.create("/example-workers", "", CreateMode::Persistent) {
        Ok(()) | Err(Error::Exists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let changes = watcher.watch_persistent("/example-workers", EventMask::CHILDREN, false)?;
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let client = workers.clone();
            std::thread::spawn(move || {
                client.create_ephemeral(&format!("/example-workers/w{i}"), "")
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "worker thread panicked")??;
    }
    println!(
        "registered: {:?}",
        watcher.read("/example-workers")?.children
    );
    while let Ok(Some(Ok(event))) = changes.recv_timeout(Duration::from_millis(200)) {
        println!("watcher: {event}");
    }
    workers.close(); // the session ends: every worker node is deleted
    println!(
        "after close: {:?}",
        watcher.read("/example-workers")?.children
    );
    watcher.close();
    Ok(())
}
