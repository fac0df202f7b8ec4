//! # pyxis-testkit: a Pyxis server for tests, examples and local development
//!
//! The real Pyxis server is a replicated C++/Raft system. This crate is an independent
//! implementation of everything a client can observe of it ([protocol](pyxis_proto::protocol) §1,
//! §3–§9), built on `pyxis-proto` only — never on the client core — so the two check each other.
//! It is for tests, examples and local development; production clusters are real Pyxis
//! servers.
//!
//! - [`model`]: the server as a sans-IO, deterministic state machine
//!   ([`model::ClusterModel`]): connections' bytes and ticks in, frames out, time passed
//!   in. A simulator drives it on a virtual clock.
//! - [`TestCluster`] / [`TestServer`]: the model served over TCP on `127.0.0.1:0`, one
//!   background thread per cluster, with a synchronous control API (move leadership,
//!   kill/restart a node, no-leader windows, expire a session, delay or drop answers,
//!   send garbage, inspect nodes) usable from plain, tokio, async-std and smol tests.
//! - [`EnvCluster`]: what the workspace's examples run against: the real cluster named in
//!   `PYXIS_ADDRS`, or else an embedded `TestCluster`.
//!
//! ```
//! use pyxis_testkit::TestCluster;
//! use std::time::Duration;
//!
//! let cluster = TestCluster::start(3);          // fast settings, node 0 leads
//! let addrs: Vec<String> = cluster.addrs();      // "127.0.0.1:port" per node
//! cluster.move_leader(1).unwrap();
//! cluster.no_leader_for(Duration::from_millis(100)).unwrap(); // every node answers kAgain
//! cluster.kill(2).unwrap();
//! cluster.restart(2).unwrap();                  // same port
//! assert!(cluster.node("/").unwrap().children.contains(&"pyxis".to_string()));
//! # drop(addrs);
//! ```
//!
//! ## Settings
//!
//! [`model::ModelConfig::fast`] (the runners' default): sessions 200 ms..120 s checked
//! every 50 ms, 1 ms commit delay, 200 ms election gap after a killed leader.
//! [`model::ModelConfig::real_defaults`]: the real server's ([protocol](pyxis_proto::protocol) §9)
//! — 5 s..120 s, 1 s check interval, 64 MiB frame cap.
//!
//! ## Throughput
//!
//! `cargo bench -p pyxis-testkit --bench loopback` prints how many pipelined reads per
//! second a `TestServer` answers on one loopback connection, next to a raw frame-echo
//! floor measured in the same run. On the 2-core development machine (1 000 000 reads,
//! other builds running): about 1.2–1.3 million reads/s, against a floor of about
//! 4 million (ratio ≈ 0.3); other benches compare against it.
//!
//! ## Rules and their tests
//!
//! Every rule of the [protocol](pyxis_proto::protocol) the model implements has a test:
//! model tests (`tests/model_*.rs`) drive [`model::ClusterModel`] with frames built by
//! `pyxis-proto`; runner tests (`tests/runner.rs`) use real loopback sockets.

mod env_cluster;
pub mod model;
pub mod runner;
pub mod transcript;

pub use env_cluster::{EnvCluster, EnvClusterError, ADDRS_ENV};
pub use runner::{RunnerConfig, RunnerError, TestCluster, TestServer};
