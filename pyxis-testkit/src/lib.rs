//! # pyxis-testkit (work in progress)
