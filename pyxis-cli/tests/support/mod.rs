//! What the tests of the `pyxis` binary share: running it against a cluster or alone,
//! reading its output, waiting for lines and exits (every wait bounded by [`WAIT`]),
//! signalling it.

// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_pyxis");
pub const WAIT: Duration = Duration::from_secs(30);

/// `pyxis` with `PYXIS_ADDRS` pointing at `addrs`.
pub fn pyxis_cmd(addrs: &[String], args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("PYXIS_ADDRS", addrs.join(","))
        .args(["--timeout", "10s"])
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// Starts `pyxis` against `addrs` with stdout and stderr piped (read them with [`lines`]).
pub fn spawn(addrs: &[String], args: &[&str]) -> Child {
    pyxis_cmd(addrs, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the pyxis binary starts")
}

/// Runs `pyxis` to completion (bounded by its own `--timeout`).
pub fn pyxis(addrs: &[String], args: &[&str]) -> Output {
    pyxis_cmd(addrs, args)
        .output()
        .expect("the pyxis binary runs")
}

/// `pyxis` without a cluster (no `PYXIS_ADDRS`).
pub fn pyxis_alone(args: &[&str]) -> Output {
    Command::new(BIN)
        .env_remove("PYXIS_ADDRS")
        .env_remove("RUST_LOG")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the pyxis binary runs")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(out), stderr(out)))
}

#[track_caller]
pub fn ok(out: &Output) {
    assert_eq!(
        code(out),
        0,
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

/// Waits for a child to exit, killing it after [`WAIT`].
pub fn wait_child(mut child: Child) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("child output");
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("child output");
            panic!(
                "child did not exit in time; stdout: {}\nstderr: {}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of `reader`, delivered through a channel so reads can time out.
pub fn lines(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns it.
pub fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?}: {e}"),
        }
    }
}

/// Sends signal `name` (`INT`, `TERM`) to `child`.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

/// Sends Ctrl-C's SIGINT to `child`.
pub fn interrupt(child: &Child) {
    signal(child, "INT");
}
