//! End-to-end tests of `pyxis lock` and `pyxis elect` against a `TestCluster` started in
//! the test. Every wait is bounded.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pyxis_testkit::TestCluster;

const BIN: &str = env!("CARGO_BIN_EXE_pyxis");

fn pyxis(addrs: &[String]) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("PYXIS_ADDRS", addrs.join(","))
        .args(["--timeout", "10s"])
        .stdin(Stdio::null());
    command
}

fn run(addrs: &[String], args: &[&str]) -> Output {
    pyxis(addrs)
        .args(args)
        .output()
        .expect("the pyxis binary runs")
}

#[test]
fn lock_runs_the_command_under_the_lock_and_exits_with_its_code() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    let mut holder = pyxis(&addrs)
        .args(["lock", "/locks/job", "--", "sh", "-c", "sleep 1; exit 3"])
        .spawn()
        .expect("runs");
    let start = Instant::now();
    while cluster.node("/locks/job").is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "never locked");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Held: another lock with a short wait gives up (exit code 6) without running.
    let busy = run(
        &addrs,
        &["lock", "/locks/job", "--wait", "200ms", "--", "true"],
    );
    assert_eq!(busy.status.code(), Some(6), "{busy:?}");
    // A waiter without a deadline runs once the holder is done.
    let waiter = run(&addrs, &["lock", "/locks/job", "--", "sh", "-c", "exit 0"]);
    assert!(waiter.status.success(), "{waiter:?}");
    let status = holder.wait().expect("holder ends");
    assert_eq!(status.code(), Some(3), "the command's own exit code");
    assert!(
        cluster.node("/locks/job").is_none(),
        "released after the command"
    );
}

#[test]
fn elect_prints_leadership_and_hands_over_when_the_leader_stops() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    let spawn = || {
        pyxis(&addrs)
            .args(["--json", "elect", "/elections/e"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("runs")
    };
    let mut first = spawn();
    let mut first_out = BufReader::new(first.stdout.take().expect("stdout"));
    let mut line = String::new();
    first_out.read_line(&mut line).expect("a line");
    let change: serde_json::Value = serde_json::from_str(&line).expect("NDJSON");
    assert_eq!(change["leadership"], "elected", "{line}");
    let mut second = spawn();
    let mut second_out = BufReader::new(second.stdout.take().expect("stdout"));
    std::thread::sleep(Duration::from_millis(300));
    // The first resigns on SIGTERM: the second is elected without waiting for expiry.
    let killed = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    assert!(first.wait().expect("first ends").success());
    let start = Instant::now();
    let mut line = String::new();
    second_out.read_line(&mut line).expect("a line");
    assert!(line.contains("\"elected\""), "{line}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "handed over at once"
    );
    let _ = second.kill();
    let _ = second.wait();
}

#[test]
fn tree_follow_prints_the_tree_then_every_change() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    assert!(run(&addrs, &["create", "-p", "/app/a/x", "1"])
        .status
        .success());
    let mut follower = pyxis(&addrs)
        .args(["tree", "/app", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut stderr = BufReader::new(follower.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("a line");
    assert_eq!(line, "following /app\n");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a line in time")
    };
    // The tree as loaded, as `pyxis tree` prints it.
    assert_eq!([next(), next(), next()], ["/app", "└── a", "    └── x"]);
    assert!(run(&addrs, &["create", "/app/b", "2"]).status.success());
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.ends_with(" added /app/b")) {
        seen.push(next());
    }
    assert!(run(&addrs, &["rm", "/app/a/x"]).status.success());
    while !seen
        .iter()
        .any(|l: &String| l.ends_with(" removed /app/a/x"))
    {
        seen.push(next());
    }
    // Each line is a time and a change of the mirror (the parents' children changed).
    assert!(
        seen.iter().any(|l| l.ends_with(" changed /app")),
        "{seen:?}"
    );
    for l in &seen {
        let (time, change) = l.split_once(' ').expect("time first");
        assert!(humantime::parse_rfc3339(time).is_ok(), "{l}");
        assert!(
            ["added ", "changed ", "removed "]
                .iter()
                .any(|w| change.starts_with(w)),
            "{l}"
        );
    }
    let _ = Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status();
    let status = follower.wait().expect("ends");
    assert!(status.success(), "Ctrl-C ends it cleanly: {status:?}");
}
