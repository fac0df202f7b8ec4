//! The cluster handle and the client on turmoil, one behaviour per test: what a crash
//! and a restart of a node host do to the model, a forced session expiry seen by the
//! client, and the client's deadlines counted on virtual time.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use pyxis_tokio::{CreateMode, Error, Options, SessionEvent};
use pyxis_turmoil::{connect, now, since_start, Cluster};
use turmoil::Sim;

fn sim(seed: u64) -> Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(Duration::from_millis(10))
        .simulation_duration(Duration::from_secs(120))
        .build()
}

fn options(seed: u64) -> Options {
    Options::new().seed(seed)
}

fn run_until(sim: &mut Sim<'_>, at: Duration) {
    while sim.elapsed() < at {
        sim.step().expect("the simulation runs");
    }
}

#[test]
fn a_crashed_node_host_is_a_killed_node_and_a_bounce_restarts_it() {
    let mut sim = sim(1);
    let cluster = Cluster::add(&mut sim, 3);
    run_until(&mut sim, Duration::from_secs(1));
    assert_eq!(cluster.leader(), Some(0));
    let crashed_at = sim.elapsed();
    sim.crash("pyxis-0");
    let up = |n| cluster.with_model(|model, _| model.is_up(n));
    assert!(!up(0), "the crashed host's node is down");
    assert_eq!(cluster.leader(), None, "no leader during the election gap");
    // The real server's election gap is 2 s, counted from the crash; then a node that
    // is up takes over.
    run_until(&mut sim, crashed_at + Duration::from_millis(1_900));
    assert_eq!(cluster.leader(), None, "the gap lasts 2 s: {cluster:?}");
    run_until(&mut sim, crashed_at + Duration::from_millis(2_100));
    assert!(matches!(cluster.leader(), Some(1 | 2)), "{cluster:?}");
    sim.bounce("pyxis-0");
    run_until(&mut sim, crashed_at + Duration::from_secs(3));
    assert!(up(0), "the bounced host's node is up again");
    assert_eq!(cluster.move_leader(0), Ok(()));
    assert_eq!(cluster.leader(), Some(0));
}

#[test]
fn an_expired_session_loses_its_ephemeral_nodes_and_the_client_registers_anew() {
    let mut sim = sim(2);
    let cluster = Cluster::add(&mut sim, 3);
    let addrs = cluster.addrs();
    let handle = cluster.clone();
    sim.client("app", async move {
        let client = connect(addrs, options(2)).await?;
        let mut session = client.session_events();
        client.create("/svc", "", CreateMode::Persistent).await?;
        client.create_ephemeral("/svc/me", "1").await?;
        let sid = client.sid().ok_or("no session")?;
        assert!(handle.expire_session(sid), "the session was alive");
        assert!(
            handle.node("/svc/me").is_none(),
            "its ephemeral node went with it"
        );
        // The next request finds the session gone; the client registers a new one.
        assert!(matches!(
            client.exists("/svc").await,
            Err(Error::SessionExpired)
        ));
        loop {
            match session.next().await {
                Some(Ok(SessionEvent::Expired { old_sid })) => {
                    assert_eq!(old_sid, sid);
                    break;
                }
                Some(_) => {}
                None => return Err("session events ended".into()),
            }
        }
        assert_ne!(client.sid(), Some(sid));
        client.create_ephemeral("/svc/me", "2").await?;
        Ok(())
    });
    sim.run().expect("the client's checks pass");
    let node = cluster.node("/svc/me").expect("registered again");
    assert_eq!(&node.data[..], b"2");
}

#[test]
fn client_deadlines_run_on_virtual_time() {
    // A minute of simulated time passes first (a fraction of a second of the machine's
    // clock); then, the cluster cut off, waiting for a session times out after the 3 s
    // asked for, in simulated time.
    let mut sim = sim(3);
    let cluster = Cluster::add(&mut sim, 1);
    let addrs = cluster.addrs();
    let waited = Rc::new(Cell::new(None));
    let result = Rc::clone(&waited);
    sim.client("app", async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        turmoil::partition("app", "pyxis-0");
        let client = connect(addrs, options(3)).await?;
        let start = now();
        let outcome = client.wait_connected(Duration::from_secs(3)).await;
        result.set(Some((outcome, since_start(start), now() - start)));
        Ok(())
    });
    sim.run().expect("the client finishes");
    let (outcome, started, after) = waited.take().expect("the wait ended");
    assert!(matches!(outcome, Err(Error::Timeout { .. })), "{outcome:?}");
    assert!(started >= Duration::from_secs(60), "started at {started:?}");
    assert!(
        after >= Duration::from_secs(3) && after < Duration::from_millis(3_100),
        "timed out after {after:?} of simulated time"
    );
}
