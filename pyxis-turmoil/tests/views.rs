//! The recipes' views (a subtree cache, a discovery view) across a leader change: a
//! write and a child's creation landing before the reader's client re-registers its
//! watch, on a node the view loaded but no watch event ever named (so the client holds
//! no baseline to infer them from), still reach the view, whether the client learns of
//! the change by reconnecting (the leader moved away) or only from its held ping
//! released early on the same connection (the leadership came back to the node it is
//! connected to: `WatchesRearmed` without `Connected`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use pyxis_client_common::CreateMode;
use pyxis_recipes::{Discovery, TreeCache};
use pyxis_tokio::Options;
use pyxis_turmoil::{connect, recipes_in_simulation, Cluster};

/// What the driver and the two clients tell each other (all run on one thread).
#[derive(Default)]
struct Flags {
    created: Cell<bool>,
    loaded: Cell<bool>,
    write: Cell<bool>,
    written: Cell<bool>,
}

/// The view the reader keeps of /app.
#[derive(Debug, Clone, Copy)]
enum Viewed {
    /// A `TreeCache` (must end with /app/x at "new" with the child y).
    Cache,
    /// A `Discovery` (must end with the instance x at "new").
    Discovery,
}

#[test]
fn a_write_missed_while_reconnecting_reaches_the_mirror() {
    missed_changes_reach_the_view(|leader| (leader + 1) % 3, Viewed::Cache);
}

#[test]
fn changes_missed_while_the_leadership_comes_back_to_the_same_node_reach_the_mirror() {
    missed_changes_reach_the_view(|leader| leader, Viewed::Cache);
}

#[test]
fn a_write_missed_while_the_leadership_comes_back_to_the_same_node_reaches_discovery() {
    missed_changes_reach_the_view(|leader| leader, Viewed::Discovery);
}

/// Loads the `viewed` view of /app on the reader, then, while the reader hears nothing
/// from the cluster, moves the leadership from `leader` to `to(leader)` and lets the
/// writer write /app/x and create /app/x/y.
fn missed_changes_reach_the_view(to: fn(usize) -> usize, viewed: Viewed) {
    let _recipes = recipes_in_simulation();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(60))
        .build();
    let cluster = Cluster::add(&mut sim, 3);
    let flags = Rc::new(Flags::default());

    let (addrs, f) = (cluster.addrs(), Rc::clone(&flags));
    sim.client("writer", async move {
        let client = connect(addrs, Options::new().seed(1)).await?;
        client.create("/app", "", CreateMode::Persistent).await?;
        client
            .create("/app/x", "old", CreateMode::Persistent)
            .await?;
        f.created.set(true);
        while !f.write.get() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The leader moved: retried until the new leader takes it.
        while client.write("/app/x", "new").await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while let Err(e) = client.create("/app/x/y", "", CreateMode::Persistent).await {
            if matches!(e, pyxis_client_common::Error::Exists { .. }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        f.written.set(true);
        tokio::time::sleep(Duration::from_secs(50)).await;
        Ok(())
    });

    let (addrs, f) = (cluster.addrs(), Rc::clone(&flags));
    sim.client("reader", async move {
        while !f.created.get() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let client = connect(addrs, Options::new().seed(2)).await?;
        // What the view shows of /app/x and whether it is what the writer left.
        let look: Box<dyn Fn() -> Result<(String, bool), pyxis_recipes::Error>> = match viewed {
            Viewed::Cache => {
                let cache = TreeCache::watch(&client, "/app", 100)?;
                cache.wait_loaded(Duration::from_secs(10)).await?;
                Box::new(move || {
                    let x = cache.get("/app/x")?;
                    let done = x
                        .as_ref()
                        .is_some_and(|n| n.data == "new" && n.children == ["y"])
                        && cache.get("/app/x/y")?.is_some();
                    Ok((format!("{:?}", cache.snapshot()?), done))
                })
            }
            Viewed::Discovery => {
                let discovery = Discovery::watch(&client, "/app")?;
                discovery.wait_loaded(Duration::from_secs(10)).await?;
                Box::new(move || {
                    let instances = discovery.instances();
                    let done = instances.get("x").is_some_and(|data| data == "new");
                    Ok((format!("{instances:?}"), done))
                })
            }
        };
        assert!(look()?.0.contains("old"), "loaded: {}", look()?.0);
        // Idle: no read of a reload (after the session's first events) still in flight.
        tokio::time::sleep(Duration::from_secs(1)).await;
        f.loaded.set(true);
        // 30 s of virtual time: far past any reconnect and reload.
        for _ in 0..300 {
            if look()?.1 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("the {viewed:?} view kept {}", look()?.0).into())
    });

    while !flags.loaded.get() {
        sim.step().unwrap();
    }
    // The reader hears nothing from the cluster while the leader moves (dropping every
    // watch) and the writer's changes land; then it reads the released ping's answer
    // and either finds the old leader a follower and reconnects, or stays on the same
    // connection and re-registers its watches there.
    for host in cluster.hosts() {
        sim.hold("reader", host.as_str());
    }
    cluster.move_leader(to(cluster.leader().unwrap())).unwrap();
    flags.write.set(true);
    while !flags.written.get() {
        sim.step().unwrap();
    }
    for host in cluster.hosts() {
        sim.release("reader", host.as_str());
    }
    sim.run().unwrap();
}
