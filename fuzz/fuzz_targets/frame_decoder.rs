//! cargo-fuzz target: the frame decoder under arbitrary bytes and chunking. The body
//! lives in `pyxis_fuzz::frame_decoder` so stable `cargo test` runs it over the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pyxis_fuzz::frame_decoder(data));
