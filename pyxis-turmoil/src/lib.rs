//! # pyxis-turmoil: test a service built on pyxis-rs under faults, deterministically
//!
//! [turmoil](https://docs.rs/turmoil) runs a distributed system's hosts as futures on one
//! thread, over a simulated network and on virtual time, all driven by one seed; a test
//! can partition, hold and repair links and crash and restart hosts. This crate puts
//! the two halves of a Pyxis deployment into such a simulation:
//!
//! - [`connect`]: the ordinary [`pyxis_tokio::Client`], its connections made over
//!   turmoil's network and its timers on the simulated clock (the protocol core is the
//!   one every adapter uses, unchanged);
//! - [`Cluster`]: an N-node Pyxis cluster, one turmoil host per node, serving the
//!   `pyxis-testkit` server model (one replicated state), with controls to move the
//!   leader, open no-leader windows and expire sessions, next to turmoil's own
//!   partition, crash and bounce (a crashed node host is a killed node);
//! - [`recipes_in_simulation`]: the recipes of `pyxis-recipes` (lock, election,
//!   registry, cache, ...) with their background tasks on the simulated hosts and their
//!   leases on the simulated clock.
//!
//! ```
//! use std::time::Duration;
//! use pyxis_turmoil::{connect, Cluster};
//! use pyxis_tokio::{CreateMode, Options};
//!
//! let mut sim = turmoil::Builder::new()
//!     .rng_seed(7)
//!     .simulation_duration(Duration::from_secs(60))
//!     .build();
//! let cluster = Cluster::add(&mut sim, 3);
//! let addrs = cluster.addrs();
//! let control = cluster.clone();
//! sim.client("app", async move {
//!     let options = Options::new().seed(7); // every source of randomness seeded
//!     let client = connect(addrs, options).await?;
//!     client.create("/svc", "", CreateMode::Persistent).await?;
//!     control.move_leader(2)?;                // the client finds the new leader
//!     client.create_ephemeral("/svc/a", "10.0.0.1:80").await?;
//!     tokio::time::sleep(Duration::from_secs(30)).await; // virtual: instant in real time
//!     assert_eq!(client.read("/svc").await?.children, ["a"]);
//!     Ok(())
//! });
//! sim.run().unwrap();
//! ```
//!
//! ## What keeps a run replayable
//!
//! The same seed gives the same run only if everything the simulated code does is
//! driven by the simulation. In the code under test, avoid:
//!
//! - the real clock: `std::time::Instant::now`, `SystemTime::now`, `thread::sleep`. Use
//!   `tokio::time` (turmoil drives it) or [`now`];
//! - real sockets and real DNS: `tokio::net`, `std::net`. Take the stream type or a
//!   connect function as a parameter, or use `turmoil::net` in the simulated build;
//! - unseeded randomness: `rand::thread_rng`, `HashMap` iteration order (its hasher is
//!   seeded per process), a client without [`Options::seed`](pyxis_tokio::Options);
//! - `tokio::select!` without `biased;`: tokio picks the branch to poll first from its
//!   own, unseeded generator;
//! - threads (`std::thread::spawn`, `spawn_blocking`, a multi-thread runtime): turmoil
//!   runs every host on the test's one thread, and only that is deterministic.
//!
//! The pyxis client and the cluster model follow these rules themselves.
//!
//! ## Not simulated
//!
//! Replication: the nodes share one state, so a partition between two node hosts
//! changes nothing (use [`Cluster::move_leader`] or [`Cluster::no_leader_for`]).
//! turmoil's TCP loses what is written across a partition instead of retransmitting
//! it (whole writes: requests and answers, never half a frame) and keeps the connection
//! open: the client's request deadlines and ping liveness notice, as they notice a peer
//! that stops answering.

mod client;
mod clock;
mod cluster;
mod recipes;

pub use client::connect;
pub use clock::{now, since_start};
pub use cluster::{Cluster, ClusterConfig};
pub use recipes::recipes_in_simulation;
