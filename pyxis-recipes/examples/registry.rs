//! Service registry and discovery with `pyxis_recipes::{Registration, Discovery}`: two
//! instances register under `/examples/services/api`, a client follows the directory,
//! the embedded cluster expires one instance's session (it registers again by itself),
//! and one instance deregisters. Runs against an embedded test cluster, or a real one
//! named in `PYXIS_ADDRS` (the expiry step is then skipped).
//!
//! ```text
//! cargo run -p pyxis-recipes --example registry
//! ```

use std::time::Duration;

use pyxis_recipes::{wait, Discovery, DiscoveryEvent, Registration, RegistrationEvent};
use pyxis_testkit::EnvCluster;

const SERVICE: &str = "/examples/services/api";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    let connect = || pyxis_blocking::Client::connect(addrs.clone(), Default::default());
    let (web1, web2, watcher) = (connect()?, connect()?, connect()?);

    let view = Discovery::watch(&watcher.to_async(), SERVICE)?;
    let changes = view.events();
    let one = Registration::register(&web1.to_async(), SERVICE, "web-1", "10.0.0.1:8080")?;
    let two = Registration::register(&web2.to_async(), SERVICE, "web-2", "10.0.0.2:8080")?;
    let one_events = one.events();
    wait(one.wait_registered(Duration::from_secs(10)))?;
    wait(two.wait_registered(Duration::from_secs(10)))?;

    if let Some(cluster) = cluster.embedded() {
        let sid = web1.sid().ok_or("no session")?;
        println!("expiring web-1's session {sid:#x}");
        cluster.expire_session(sid)?;
        while let Some(event) = one_events.recv() {
            println!("web-1: {event:?}");
            if matches!(event, Ok(RegistrationEvent::Reregistered { .. })) {
                break;
            }
        }
    }
    wait(two.deregister())?;
    while let Ok(Some(change)) = changes.recv_timeout(Duration::from_millis(500)) {
        match change {
            Ok(DiscoveryEvent::Added { name, data }) => {
                println!("+ {name} at {}", String::from_utf8_lossy(&data))
            }
            Ok(DiscoveryEvent::Changed { name, .. }) => println!("~ {name}"),
            Ok(DiscoveryEvent::Removed { name }) => println!("- {name}"),
            Err(lagged) => println!("{lagged}"),
            _ => {}
        }
    }
    println!(
        "instances now: {:?}",
        view.instances().keys().collect::<Vec<_>>()
    );
    Ok(())
}
