//! # pyxis-testkit
pub mod model;
