//! Three candidates elect a leader with `pyxis_recipes::Election`; the embedded cluster
//! moves its own leadership (nothing changes for the candidates), then every Pyxis node
//! goes down: the leader steps down within ¾ of its session timeout, before the server
//! could expire its session. The cluster then expires that session (as a server does a
//! session timeout after its last request) and comes back, and a candidate (any, the old
//! leader too, with a new session) takes over. Runs against an embedded test cluster, or a real one named in `PYXIS_ADDRS`
//! (then the leader resigns instead).
//!
//! ```text
//! cargo run -p pyxis-recipes --example election
//! ```

use std::time::Duration;

use pyxis_recipes::{Election, Leadership};
use pyxis_testkit::EnvCluster;
use pyxis_tokio::{Client, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EnvCluster::from_env(3)?;
    let addrs = cluster.addrs();
    let mut candidates = Vec::new();
    for name in ["a", "b", "c"] {
        let client = Client::connect(addrs.clone(), Options::new()).await?;
        let election = Election::join(&client, "/examples/scheduler/leader", name)?;
        let mut changes = election.events();
        tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                match change {
                    Ok(Leadership::Elected) => println!("[{name}] elected"),
                    Ok(Leadership::Lost) => println!("[{name}] lost the leadership"),
                    Err(lagged) => println!("[{name}] {lagged}"),
                    _ => {}
                }
            }
        });
        candidates.push((name, client, election));
    }
    let leader = loop {
        if let Some(i) = candidates.iter().position(|(_, _, e)| e.is_leader()) {
            break i;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let who = candidates[0].2.leader().await?.unwrap_or_default();
    println!(
        "everyone sees {:?} as leader",
        String::from_utf8_lossy(&who)
    );

    if let Some(cluster) = cluster.embedded() {
        cluster.move_leader(1)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        println!(
            "Pyxis moved its own leader; still leading: {}",
            candidates[leader].2.is_leader()
        );
        let sid = candidates[leader].1.sid().ok_or("no session")?;
        let down = std::time::Instant::now();
        println!("every Pyxis node goes down");
        for n in 0..3 {
            cluster.kill(n)?;
        }
        while candidates[leader].2.is_leader() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("the leader stepped down {:?} after the cut", down.elapsed());
        let timeout = candidates[leader].1.session_timeout();
        tokio::time::sleep((down + timeout).saturating_duration_since(std::time::Instant::now()))
            .await;
        println!("a session timeout later the server expires its session; nodes come back");
        cluster.expire_session(sid)?;
        for n in 0..3 {
            cluster.restart(n)?;
        }
    } else {
        let (name, _, election) = candidates.remove(leader);
        println!("[{name}] resigns");
        election.resign().await?;
    }
    loop {
        if let Some((name, client, _)) = candidates.iter().find(|(_, _, e)| e.is_leader()) {
            // The old leader may win again, with its new session.
            println!(
                "[{name}] now leads (session {:#x})",
                client.sid().unwrap_or(0)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
