//! Runs the `client_input` and `server_input` fuzz bodies over their seed corpora
//! (`fuzz/corpus/<target>/`), over every golden vector, and over a fixed stream of
//! pseudo-random inputs (which the bodies read as structured scripts), on stable, as part
//! of `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// A fixed pseudo-random input stream (xorshift), sizes up to 4 KiB.
fn inputs(count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count)
        .map(|_| {
            let len = (next() % 4096) as usize;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

#[test]
fn client_input_over_corpus_vectors_and_random_scripts() {
    let files = corpus("client_input");
    assert!(files.len() >= 10, "seed corpus missing");
    for f in &files {
        pyxis_fuzz::client_input(&fs::read(f).expect("read corpus file"));
    }
    for v in pyxis_fuzz::golden::vectors() {
        pyxis_fuzz::client_input(&v.bytes);
    }
    for data in inputs(300, 0x5eed_c11e) {
        pyxis_fuzz::client_input(&data);
    }
}

#[test]
fn server_input_over_corpus_vectors_and_random_scripts() {
    let files = corpus("server_input");
    assert!(files.len() >= 10, "seed corpus missing");
    for f in &files {
        pyxis_fuzz::server_input(&fs::read(f).expect("read corpus file"));
    }
    for v in pyxis_fuzz::golden::vectors() {
        pyxis_fuzz::server_input(&v.bytes);
    }
    for data in inputs(300, 0x5eed_5e7e) {
        pyxis_fuzz::server_input(&data);
    }
}

/// Long scripts: each step drawn from its own 64 pseudo-random bytes, so scripts have
/// many steps (the fuzzer grows such inputs by itself; a stable test needs them now).
fn steps<T: for<'a> arbitrary::Arbitrary<'a>>(count: usize, seed: u64) -> Vec<T> {
    inputs(count * 4, seed)
        .into_iter()
        .filter_map(|bytes| {
            let mut padded = bytes;
            padded.resize(64, 0x5a);
            T::arbitrary(&mut arbitrary::Unstructured::new(&padded)).ok()
        })
        .take(count)
        .collect()
}

#[test]
fn long_client_scripts_keep_every_invariant() {
    let mut ops = 0;
    // Inputs resumed, by lazy resumption or not.
    let mut resumed = [0, 0];
    for seed in 0..40u64 {
        // Every bound (none, 1..=8), each resumed at once and lazily.
        let turns = (seed % 9) as u8 | ((seed / 9 % 2) as u8) << 7;
        let script = pyxis_fuzz::ClientScript {
            seed,
            turns,
            steps: steps(200, 1000 + seed),
        };
        ops += script
            .steps
            .iter()
            .filter(|s| matches!(s, pyxis_fuzz::ClientStep::Submit { .. }))
            .count();
        let lazy = pyxis_fuzz::InputTurns::from_byte(turns).lazy;
        resumed[usize::from(lazy)] += pyxis_fuzz::client_script(&script);
    }
    assert!(ops > 100, "only {ops} operations submitted");
    assert!(resumed.iter().sum::<u64>() > 0, "held input never resumed");
}

#[test]
fn answers_read_together_are_resumed_at_once_or_between_commands() {
    use pyxis_fuzz::{Answer, ClientStep, Xid};
    let read = |path| ClientStep::Submit {
        kind: 4,
        path,
        data: Vec::new(),
        watch: path == 1,
    };
    let answer = |i| Answer {
        xid: Xid::Sent(i),
        err: None,
        data: None,
        watch: None,
        sid: None,
        path: None,
    };
    for turns in [0x01, 0x02, 0x81, 0x82] {
        let steps = vec![
            read(1),
            read(2),
            read(3),
            ClientStep::Answers((0..6).map(answer).collect()),
            // Lazily: a tick and a command while answers are held.
            ClientStep::Tick(10),
            read(1),
            ClientStep::Answers((0..8).map(answer).collect()),
        ];
        let resumed = pyxis_fuzz::client_script(&pyxis_fuzz::ClientScript {
            seed: 1,
            turns,
            steps,
        });
        assert!(resumed > 0, "turns {turns:#x}: nothing held");
    }
}

#[test]
fn long_server_scripts_keep_every_invariant() {
    let mut requests = 0;
    for seed in 0..40u64 {
        // Fewer connection-breaking steps than uniform draws give, so requests get
        // answered, sessions made and commits applied.
        let drawn: Vec<pyxis_fuzz::ServerStep> = steps(200, 2000 + seed);
        let steps = drawn
            .into_iter()
            .enumerate()
            .map(|(i, s)| match s {
                pyxis_fuzz::ServerStep::Raw(..)
                | pyxis_fuzz::ServerStep::Framed(..)
                | pyxis_fuzz::ServerStep::Close(..)
                | pyxis_fuzz::ServerStep::Kill(..)
                    if i % 4 != 0 =>
                {
                    pyxis_fuzz::ServerStep::Tick(20)
                }
                other => other,
            })
            .collect();
        let mut script = pyxis_fuzz::ServerScript {
            apply_in_flight: seed % 2 == 0,
            steps,
        };
        // Open a few connections first so requests have somewhere to go.
        for n in 0..3 {
            script.steps.insert(0, pyxis_fuzz::ServerStep::Connect(n));
        }
        requests += script
            .steps
            .iter()
            .filter(|s| matches!(s, pyxis_fuzz::ServerStep::Requests(..)))
            .count();
        pyxis_fuzz::server_script(&script);
    }
    assert!(requests > 100, "only {requests} request batches");
}

#[test]
fn structured_scripts_reach_the_cores() {
    // A script of real work must parse from bytes and run: the structured path is what
    // gets the fuzzer past the checksum, so it must not be dead.
    use arbitrary::{Arbitrary, Unstructured};
    let parsed = inputs(50, 7)
        .iter()
        .filter(|d| {
            pyxis_fuzz::ClientScript::arbitrary_take_rest(Unstructured::new(d))
                .is_ok_and(|s| !s.steps.is_empty())
        })
        .count();
    assert!(
        parsed > 10,
        "only {parsed} of 50 inputs parse as client scripts"
    );
    let parsed = inputs(50, 8)
        .iter()
        .filter(|d| {
            pyxis_fuzz::ServerScript::arbitrary_take_rest(Unstructured::new(d))
                .is_ok_and(|s| !s.steps.is_empty())
        })
        .count();
    assert!(
        parsed > 10,
        "only {parsed} of 50 inputs parse as server scripts"
    );
}
