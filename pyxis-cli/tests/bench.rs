//! Smoke tests of `pyxis bench` in every mode, run small: the JSON reports parse, count
//! exactly the operations asked for, and clean up after themselves. They check that the
//! benchmarks work, not how fast anything is.

use std::process::{Command, Output, Stdio};

use pyxis_testkit::model::AppliedKind;
use pyxis_testkit::TestCluster;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pyxis");

fn bench(args: &[&str]) -> Value {
    let out: Output = Command::new(BIN)
        .env_remove("PYXIS_ADDRS")
        .arg("--json")
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the pyxis binary runs");
    assert!(
        out.status.success(),
        "status {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

/// One side of a load run completed `ops` operations (2 rounds of `--ops`) without an
/// error, and has latencies.
fn assert_counted(side: &Value, ops: u64, name: &str) {
    assert_eq!(side["ops"], ops, "{name}");
    assert_eq!(side["errors"], 0, "{name}");
    let p50 = side["p50_us"].as_f64().expect("p50");
    let p99 = side["p99_us"].as_f64().expect("p99");
    assert!(p50 > 0.0 && p99 >= p50, "{name}: {p50} {p99}");
}

/// A throughput ratio was measured.
fn assert_ratio(ratios: &Value) {
    let ratio = ratios["throughput"].as_f64().expect("ratio");
    assert!(ratio.is_finite() && ratio > 0.0, "{ratio}");
}

#[test]
fn load_counts_the_requested_ops_on_both_sides() {
    let report = bench(&[
        "--ops",
        "300",
        "--rounds",
        "2",
        "-c",
        "1,8",
        "--mix",
        "read=2,write=1,create-delete=1",
    ]);
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for (run, c) in runs.iter().zip([1, 8]) {
        assert_eq!(run["concurrency"], c);
        assert_eq!(run["mix"], "read=2,write=1,create-delete=1");
        for side in ["floor", "client"] {
            assert_counted(&run[side], 600, side);
        }
        assert_ratio(&run["ratios"]);
        assert_eq!(run["adapter"], "tokio", "the default");
        assert!(
            run["task_floor"].is_null(),
            "the task floor runs when asked"
        );
    }
}

#[test]
fn the_async_std_and_blocking_adapters_count_the_requested_ops() {
    // Their loops run on driver threads of their own: the CPU time is the process's.
    for adapter in ["async-std", "blocking"] {
        let report = bench(&[
            "--adapter",
            adapter,
            "--ops",
            "200",
            "--rounds",
            "1",
            "-c",
            "1,8",
            "--clients",
            "2",
            "--mix",
            "read=2,write=1,create-delete=1",
        ]);
        let runs = report["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2);
        for run in runs {
            assert_eq!(run["adapter"], adapter);
            assert_eq!(run["cpu_scope"], "process", "{adapter}");
            assert_counted(&run["client"], 200, adapter);
            assert_ratio(&run["ratios"]);
        }
    }
}

#[test]
fn task_floor_counts_the_requested_ops_over_several_sessions() {
    // 8 slots over 3 sessions: the sessions serve 3, 3 and 2 slots.
    let report = bench(&[
        "--ops",
        "300",
        "--rounds",
        "2",
        "-c",
        "1,8",
        "--clients",
        "3",
        "--task-floor",
        "--mix",
        "read=2,write=1,create-delete=1",
    ]);
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for (run, clients) in runs.iter().zip([1, 3]) {
        assert_eq!(run["clients"], clients);
        assert_counted(&run["task_floor"], 600, "task floor");
        assert_ratio(&run["task_ratios"]);
    }
}

#[test]
fn load_against_addrs_uses_that_cluster_and_removes_its_nodes() {
    let cluster = TestCluster::start(3);
    let addrs = cluster.addrs().join(",");
    let report = bench(&[
        "--addrs", &addrs, "--ops", "100", "--rounds", "1", "-c", "4", "--mix", "write",
    ]);
    assert_eq!(report["target"], addrs.as_str());
    assert_eq!(report["runs"][0]["client"]["ops"], 100);
    let root = cluster.node("/").expect("root");
    assert_eq!(root.children, ["pyxis"], "bench nodes removed");
    let writes = cluster
        .applied_ops()
        .expect("history")
        .iter()
        .filter(|op| matches!(op.kind, AppliedKind::Write { .. }))
        .count();
    // 100 measured writes per side, after a warm-up of 20 per slot per side.
    assert_eq!(writes, 2 * 100 + 2 * 4 * 20);
}

#[test]
fn failover_rewatch_and_memory_report() {
    let failover = bench(&["failover", "--moves", "3"]);
    assert_eq!(failover["moves"], 3);
    assert_eq!(failover["samples_ms"].as_array().map(Vec::len), Some(3));
    assert!(failover["median_ms"].as_f64().expect("median") > 0.0);

    let rewatch = bench(&["rewatch", "--watches", "200", "--moves", "2"]);
    assert_eq!(rewatch["watches"], 200);
    assert_eq!(rewatch["moves"], 2);
    assert!(rewatch["rearm_max_ms"].as_f64() >= rewatch["rearm_ms"].as_f64());
    assert!(rewatch["rearm_ms"].as_f64().expect("rearm") > 0.0);
    assert!(rewatch["floor_ms"].as_f64().expect("floor") > 0.0);

    let memory = bench(&["memory", "--clients", "20"]);
    assert_eq!(memory["clients"], 20);
    assert_eq!(memory["adapter"], "tokio");
    assert!(memory["client_bytes_each"].as_f64().expect("client") >= 0.0);
    assert!(memory["baseline_bytes"].as_u64().expect("baseline") > 0);
}

/// `bench memory --adapter` measures that adapter's clients in the measuring process
/// (the report names what that process opened).
#[test]
fn memory_measures_the_adapter_asked_for() {
    for adapter in ["async-std", "blocking"] {
        let memory = bench(&["memory", "--clients", "10", "--adapter", adapter]);
        assert_eq!(memory["adapter"], adapter);
        assert_eq!(memory["clients"], 10);
        // Each client has a driver thread of its own: its stack and buffers are resident.
        assert!(
            memory["client_bytes_each"].as_f64().expect("client") > 0.0,
            "{memory}"
        );
    }
}
