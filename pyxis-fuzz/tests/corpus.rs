//! Runs every fuzz body over its seed corpus (`fuzz/corpus/<target>/`) and over every
//! golden vector, on stable, as part of `cargo test`.
//!
//! The committed seeds are the golden vectors' bytes: this test checks they are all there
//! and current, and rewrites them when run with `PYXIS_WRITE_SEEDS=1`.

use std::fs;
use std::path::{Path, PathBuf};

use pyxis_fuzz::golden::vectors;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every file of a corpus directory (seeds and anything a fuzzer run left there).
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn frame_decoder_seeds_are_the_golden_vectors() {
    let dir = corpus_dir("frame_decoder");
    let write = std::env::var_os("PYXIS_WRITE_SEEDS").is_some();
    if write {
        fs::create_dir_all(&dir).expect("create corpus dir");
    }
    for v in vectors() {
        let path = dir.join(format!("seed-{}", v.name));
        if write {
            fs::write(&path, &v.bytes).expect("write seed");
        }
        let seed = fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with PYXIS_WRITE_SEEDS=1 to write seeds)",
                path.display()
            )
        });
        assert_eq!(seed, v.bytes, "{} is stale", path.display());
    }
}

#[test]
fn frame_decoder_over_corpus() {
    let files = corpus_files("frame_decoder");
    assert!(!files.is_empty(), "seed corpus missing");
    for f in &files {
        let data = fs::read(f).expect("read corpus file");
        pyxis_fuzz::frame_decoder(&data);
    }
    println!("frame_decoder: {} corpus files", files.len());
}

#[test]
fn frame_decoder_over_vectors_and_their_concatenation() {
    let all = vectors();
    let mut stream = Vec::new();
    for v in &all {
        pyxis_fuzz::frame_decoder(&v.bytes);
        if !v.name.starts_with("malformed_") {
            stream.extend_from_slice(&v.bytes);
        }
    }
    pyxis_fuzz::frame_decoder(&stream);
    // Truncated prefixes of a valid stream: the decoder must wait, never fail or panic.
    for cut in (0..stream.len()).step_by(7) {
        pyxis_fuzz::frame_decoder(&stream[..cut]);
    }
}
