//! Quickstart: service registration and discovery that rides through a leader change.
//!
//! ```text
//! cargo run --example quickstart                          # embedded 3-node test cluster
//! cargo run --example quickstart -- --addrs h1:7000,h2:7000,h3:7000   # a real cluster
//! PYXIS_ADDRS=h1:7000,h2:7000 cargo run --example quickstart
//! ```
//!
//! A registry client registers service instances as ephemeral nodes; a discovery client
//! watches the service directory. On the embedded cluster the leader is then moved, and
//! both clients carry on: the registry's next write succeeds on the same session and the
//! discovery watch still fires. The embedded cluster is `pyxis-testkit`'s model, meant
//! for tests and development; production uses real Pyxis servers.

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use pyxis_testkit::{EnvCluster, EnvClusterError};
use pyxis_tokio::{Client, CreateMode, Error, EventMask, Options, Watch};

const DIR: &str = "/quickstart-services";
const PATIENCE: Duration = Duration::from_secs(20);

/// Prints numbered steps with the time since the start.
struct Steps {
    start: Instant,
    n: u32,
}

impl Steps {
    fn say(&mut self, what: impl std::fmt::Display) {
        self.n += 1;
        let ms = self.start.elapsed().as_millis();
        println!("[{ms:>6} ms] {}. {what}", self.n);
    }
}

/// The cluster named by `--addrs LIST` (or `--addrs=LIST`), else by `PYXIS_ADDRS`, else an
/// embedded 3-node test cluster.
fn cluster_from_args() -> Result<EnvCluster, EnvClusterError> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--addrs" {
            if let Some(list) = args.next() {
                return EnvCluster::named(&list);
            }
        } else if let Some(list) = arg.strip_prefix("--addrs=") {
            return EnvCluster::named(list);
        }
    }
    EnvCluster::from_env(3)
}

async fn next_children_event(watch: &mut Watch) -> Result<String, Box<dyn StdError>> {
    match tokio::time::timeout(PATIENCE, watch.next()).await {
        Ok(Some(Ok(event))) => Ok(event.to_string()),
        Ok(other) => Err(format!("watch ended: {other:?}").into()),
        Err(_) => Err("no watch event within 20 s".into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn StdError>> {
    let mut steps = Steps {
        start: Instant::now(),
        n: 0,
    };
    let cluster = cluster_from_args()?;
    let addrs = cluster.addrs();
    match cluster.embedded() {
        Some(_) => steps.say(format_args!(
            "started an embedded 3-node test cluster at {} (leader: node 0)",
            addrs.join(", ")
        )),
        None => steps.say(format_args!("using the cluster at {}", addrs.join(","))),
    }

    let registry = Client::connect(addrs.clone(), Options::default()).await?;
    let sid = registry.wait_connected(PATIENCE).await?;
    steps.say(format_args!("registry client connected, session {sid:#x}"));

    match registry.create(DIR, "", CreateMode::Persistent).await {
        Ok(()) | Err(Error::Exists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let me = format!("{DIR}/web-{}", std::process::id());
    registry.create_ephemeral(&me, "127.0.0.1:8080").await?;
    steps.say(format_args!(
        "registered {me} (ephemeral: it lives as long as the session)"
    ));

    let discovery = Client::connect(addrs, Options::default()).await?;
    let mut watch = discovery
        .watch_persistent(DIR, EventMask::CHILDREN, false)
        .await?;
    let services = discovery.read(DIR).await?.children;
    steps.say(format_args!(
        "discovery client sees {services:?} and watches {DIR}"
    ));

    let second = format!("{me}-b");
    registry.create_ephemeral(&second, "127.0.0.1:8081").await?;
    let event = next_children_event(&mut watch).await?;
    steps.say(format_args!(
        "registered a second instance; discovery got: {event}"
    ));

    if let Some(cluster) = cluster.embedded() {
        cluster.move_leader(1)?;
        steps.say("moved the leader from node 0 to node 1 (every connection must find it again)");
        let before = Instant::now();
        registry.write(&me, "127.0.0.1:8080 healthy").await?;
        steps.say(format_args!(
            "registry wrote its health after the move in {} ms, same session: {}",
            before.elapsed().as_millis(),
            registry.sid() == Some(sid)
        ));
    } else {
        steps.say("a real cluster cannot be steered from here: skipping the leader move");
    }

    registry.delete(&second).await?;
    let event = next_children_event(&mut watch).await?;
    steps.say(format_args!(
        "deregistered the second instance; discovery still fires: {event}"
    ));

    registry.close().await;
    let event = next_children_event(&mut watch).await?;
    let services = discovery.read(DIR).await?.children;
    steps.say(format_args!(
        "registry closed: its ephemeral node went with the session ({event}); left: {services:?}"
    ));

    drop(watch);
    discovery.close().await;
    steps.say("done");
    Ok(())
}
