//! cargo-fuzz target: a connected client core fed arbitrary server bytes, connection
//! events, ticks and commands. The body lives in `pyxis_fuzz::client_input` so stable
//! `cargo test` runs it over the corpus too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pyxis_fuzz::client_input(data));
