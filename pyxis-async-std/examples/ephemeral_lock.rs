//! A simple exclusive lock with ephemeral nodes, run once under smol and once under
//! async-std (the same crate serves both): the holder's node disappears when its session
//! closes, and a waiter's watch tells it the lock is free. Runs against an embedded test
//! cluster, or a real one named in `PYXIS_ADDRS` (`host:port,...`).
//!
//! ```text
//! cargo run -p pyxis-async-std --example ephemeral_lock
//! ```

use pyxis_async_std::{Client, Error, EventMask, Options};
use pyxis_testkit::EnvCluster;

/// Takes the lock `path` for `client`: create it, or wait until its holder lets go and
/// try again. The holder's state and the watch come from one server step
/// (`exists_and_watch`), so a release between the failed create and the watch is seen
/// as "gone" instead of waited for forever.
async fn acquire(client: &Client, path: &str, runtime: &str) -> Result<(), Error> {
    loop {
        match client.create_ephemeral(path, "held").await {
            Ok(()) => return Ok(()),
            Err(Error::Exists { .. }) => {}
            Err(e) => return Err(e),
        }
        let (holder, mut released) = client
            .exists_and_watch(path, EventMask::DELETE, false)
            .await?;
        if holder.is_some() {
            println!("[{runtime}] waiter: lock busy, watching it");
            if let Some(Ok(event)) = released.next().await {
                println!("[{runtime}] waiter saw: {event}");
            }
        }
    }
}

async fn demo(addrs: Vec<String>, runtime: &str) -> Result<(), Error> {
    let holder = Client::connect(addrs.clone(), Options::new()).await?;
    let waiter = Client::connect(addrs, Options::new()).await?;
    acquire(&holder, "/example-lock", runtime).await?;
    println!("[{runtime}] holder took the lock");
    let waiting = acquire(&waiter, "/example-lock", runtime);
    let release = async {
        // Give the waiter time to find the lock busy, then let go.
        async_io::Timer::after(std::time::Duration::from_millis(100)).await;
        holder.close().await; // the session ends: its ephemeral lock node is deleted
        Ok(())
    };
    futures_lite::future::try_zip(waiting, release).await?;
    println!("[{runtime}] waiter took the lock");
    waiter.close().await;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    smol::block_on(demo(addrs.clone(), "smol"))?;
    async_std::task::block_on(demo(addrs, "async-std"))?;
    Ok(())
}
