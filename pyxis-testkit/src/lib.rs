//! # pyxis-testkit
pub mod model;
pub mod runner;

pub use runner::{RunnerConfig, RunnerError, TestCluster, TestServer};
