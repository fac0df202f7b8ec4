//! cargo-fuzz target: the server model fed arbitrary client bytes, connections, ticks and
//! cluster controls. The body lives in `pyxis_fuzz::server_input` so stable `cargo test`
//! runs it over the corpus too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pyxis_fuzz::server_input(data));
