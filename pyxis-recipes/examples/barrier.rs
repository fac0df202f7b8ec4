//! Barriers: three workers (plain threads, blocking clients) wait at a `Gate` until the
//! coordinator opens it, then meet at a `DoubleBarrier` to start and finish a phase
//! together. Runs against an embedded test cluster, or a real one named in
//! `PYXIS_ADDRS`.
//!
//! ```text
//! cargo run -p pyxis-recipes --example barrier
//! ```

use std::time::Duration;

use pyxis_recipes::{wait, DoubleBarrier, Gate};
use pyxis_testkit::EnvCluster;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    let coordinator = pyxis_blocking::Client::connect(addrs.clone(), Default::default())?;
    let gate = Gate::new(&coordinator.to_async(), "/examples/phase/gate");
    wait(gate.close())?;

    let workers: Vec<_> = (0..3)
        .map(|i| {
            let addrs = addrs.clone();
            std::thread::spawn(move || -> Result<(), pyxis_recipes::Error> {
                let client = pyxis_blocking::Client::connect(addrs, Default::default())
                    .map_err(|e| pyxis_recipes::Error::Start(e.to_string()))?;
                let client = client.to_async();
                wait(Gate::new(&client, "/examples/phase/gate").pass(Duration::from_secs(30)))?;
                println!("[worker {i}] through the gate");
                let phase = DoubleBarrier::new(&client, "/examples/phase/run", format!("w{i}"), 3);
                std::thread::sleep(Duration::from_millis(100 * i));
                wait(phase.enter(Duration::from_secs(30)))?;
                println!("[worker {i}] all three in: working");
                std::thread::sleep(Duration::from_millis(100 * (3 - i)));
                println!("[worker {i}] done, waiting for the others");
                wait(phase.leave(Duration::from_secs(30)))?;
                println!("[worker {i}] all three out");
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    println!("[coordinator] opening the gate");
    wait(gate.open())?;
    for worker in workers {
        worker.join().map_err(|_| "worker panicked")??;
    }
    Ok(())
}
