//! Three workers on three adapters (tokio, smol, plain threads) take turns holding one
//! `pyxis_recipes::Lock`; a fourth holder's session is expired by the embedded cluster
//! and its guard reports the lock lost. Runs against an embedded test cluster, or a real
//! one named in `PYXIS_ADDRS` (`host:port,...`; the expiry step is then skipped).
//!
//! ```text
//! cargo run -p pyxis-recipes --example lock
//! ```

use std::time::Duration;

use pyxis_recipes::{wait, Lock};
use pyxis_testkit::EnvCluster;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    let path = "/examples/locks/report";

    let tokio_worker = {
        let addrs = addrs.clone();
        std::thread::spawn(
            move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                let runtime = tokio::runtime::Runtime::new()?;
                runtime.block_on(async {
                    let client = pyxis_tokio::Client::connect(addrs, Default::default()).await?;
                    let lock = Lock::new(&client, path).with_payload("tokio");
                    for round in 0..3 {
                        let guard = lock.acquire(Duration::from_secs(30)).await?;
                        println!(
                            "[tokio] round {round}: holding (token {:#x})",
                            guard.token()
                        );
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        guard.release().await?;
                    }
                    Ok(())
                })
            },
        )
    };
    let smol_worker = {
        let addrs = addrs.clone();
        std::thread::spawn(
            move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                smol::block_on(async {
                    let client =
                        pyxis_async_std::Client::connect(addrs, Default::default()).await?;
                    let lock = Lock::new(&client, path).with_payload("smol");
                    for round in 0..3 {
                        let guard = lock.acquire(Duration::from_secs(30)).await?;
                        println!("[smol] round {round}: holding (token {:#x})", guard.token());
                        smol::Timer::after(Duration::from_millis(50)).await;
                        guard.release().await?;
                    }
                    Ok(())
                })
            },
        )
    };
    // Plain threads: the same recipe through `to_async` and `wait`.
    let client = pyxis_blocking::Client::connect(addrs, Default::default())?;
    let lock = Lock::new(&client.to_async(), path).with_payload("blocking");
    for round in 0..3 {
        let guard = wait(lock.acquire(Duration::from_secs(30)))?;
        println!(
            "[blocking] round {round}: holding (token {:#x})",
            guard.token()
        );
        std::thread::sleep(Duration::from_millis(50));
        wait(guard.release())?;
    }
    for worker in [tokio_worker, smol_worker] {
        worker
            .join()
            .map_err(|_| "worker panicked")?
            .map_err(|e| e.to_string())?;
    }

    if let Some(cluster) = cluster.embedded() {
        let guard = wait(lock.acquire(Duration::from_secs(30)))?;
        println!("[blocking] holding again; expiring its session on the server");
        cluster.expire_session(guard.token())?;
        wait(guard.lost());
        println!("[blocking] told: lock lost (is_held = {})", guard.is_held());
    }
    client.close();
    Ok(())
}
