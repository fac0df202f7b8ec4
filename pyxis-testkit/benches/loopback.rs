//! Loopback throughput bench.
fn main() {}
