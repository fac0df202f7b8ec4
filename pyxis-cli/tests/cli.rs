//! End-to-end tests of the built `pyxis` binary against a `TestCluster` started in the
//! test (and against a `pyxis dev` child process): output, `--json` documents and exit
//! codes. Every wait is bounded.

mod support;

use std::process::{Command, Stdio};

use pyxis_testkit::TestCluster;
use serde_json::Value;
use support::*;

#[test]
fn create_get_set_ls_tree_rm_with_json_and_exit_codes() {
    let cluster = TestCluster::start(3);
    let addrs = cluster.addrs();

    ok(&pyxis(&addrs, &["create", "/app", "hello"]));
    assert_eq!(code(&pyxis(&addrs, &["create", "/app", "again"])), 4);
    assert_eq!(code(&pyxis(&addrs, &["create", "/missing/child"])), 3);
    ok(&pyxis(&addrs, &["create", "/app/a", "1"]));
    ok(&pyxis(&addrs, &["create", "/app/b"]));
    let node = cluster.node("/app").expect("created in the model");
    assert_eq!(node.data.as_ref(), b"hello");

    let got = json(&pyxis(&addrs, &["--json", "get", "/app"]));
    assert_eq!(got["data"], "hello");
    assert_eq!(got["version"], 0);
    assert_eq!(got["ephemeral"], false);
    assert_eq!(got["children"], serde_json::json!(["a", "b"]));
    let human = stdout(&pyxis(&addrs, &["get", "/app"]));
    assert!(human.contains("data      hello"), "{human}");

    // Data from stdin.
    let mut set = pyxis_cmd(&addrs, &["set", "/app/a", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn set");
    std::io::Write::write_all(&mut set.stdin.take().expect("stdin"), b"from stdin")
        .expect("write stdin");
    ok(&wait_child(set));
    let raw = pyxis(&addrs, &["get", "--raw", "/app/a"]);
    ok(&raw);
    assert_eq!(raw.stdout, b"from stdin");
    assert_eq!(
        json(&pyxis(&addrs, &["--json", "get", "/app/a"]))["version"],
        1
    );

    let ls = json(&pyxis(&addrs, &["--json", "ls", "/app"]));
    assert_eq!(ls["children"], serde_json::json!(["a", "b"]));
    assert_eq!(stdout(&pyxis(&addrs, &["ls", "/app"])), "a\nb\n");
    let tree = json(&pyxis(&addrs, &["--json", "tree", "/app"]));
    assert_eq!(tree["children"][0]["path"], "/app/a");
    assert_eq!(tree["children"][1]["path"], "/app/b");
    let drawn = stdout(&pyxis(&addrs, &["tree", "/"]));
    assert!(
        drawn.contains("├── app") && drawn.contains("│   ├── a"),
        "{drawn}"
    );

    assert_eq!(code(&pyxis(&addrs, &["rm", "/app"])), 5, "has children");
    let removed = json(&pyxis(&addrs, &["--json", "rm", "-r", "/app"]));
    assert_eq!(
        removed["removed"],
        // Children before their parent; a level's deletes in name order.
        serde_json::json!(["/app/a", "/app/b", "/app"])
    );
    assert!(cluster.node("/app").is_none());
    let missing = pyxis(&addrs, &["get", "/app"]);
    assert_eq!(code(&missing), 3);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    assert_eq!(code(&pyxis(&addrs, &["get", "no-slash"])), 5);
    assert_eq!(code(&pyxis(&addrs, &["get"])), 2, "missing argument");
    assert_eq!(code(&pyxis(&addrs, &["frobnicate"])), 2);

    let unreachable = Command::new(BIN)
        .args(["--addrs", "127.0.0.1:1", "--timeout", "1s", "ls"])
        .output()
        .expect("runs");
    assert_eq!(code(&unreachable), 6);
}

#[test]
fn ephemeral_create_holds_the_session_until_interrupted() {
    let cluster = TestCluster::start(3);
    let addrs = cluster.addrs();
    let mut child = spawn(&addrs, &["create", "--ephemeral", "/lock", "me"]);
    let out = lines(child.stdout.take().expect("stdout"));
    wait_line(&out, "created /lock (ephemeral");
    let node = cluster.node("/lock").expect("ephemeral node exists");
    assert_eq!(node.flags, 1);
    let owner = node.owner.expect("an owner session");

    let sessions = json(&pyxis(&addrs, &["--json", "sessions"]));
    let list = sessions.as_array().expect("an array");
    assert!(list.iter().any(|s| s["sid"] == owner && s["this"] == false));
    assert_eq!(list.iter().filter(|s| s["this"] == true).count(), 1);

    interrupt(&child);
    let status = wait_child(child);
    assert_eq!(code(&status), 0);
    assert!(cluster.node("/lock").is_none(), "deleted with its session");
}

#[test]
fn watch_streams_events_until_count() {
    let cluster = TestCluster::start(3);
    let addrs = cluster.addrs();
    let mut child = spawn(&addrs, &["--json", "watch", "/w", "--count", "3"]);
    let err = lines(child.stderr.take().expect("stderr"));
    wait_line(&err, "watching /w");
    ok(&pyxis(&addrs, &["create", "/w", "1"]));
    ok(&pyxis(&addrs, &["set", "/w", "2"]));
    ok(&pyxis(&addrs, &["rm", "/w"]));
    let out = wait_child(child);
    ok(&out);
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["create", "modify", "delete"], "{events:?}");
    assert!(events.iter().all(|e| e["path"] == "/w"));
}

#[test]
fn watch_says_when_it_is_registered_again_and_keeps_watching() {
    // A leadership change back to the same node drops every watch on the server and
    // releases the held ping: the watch is registered again, and says so.
    let cluster = TestCluster::start(3);
    let addrs = cluster.addrs();
    ok(&pyxis(&addrs, &["create", "/w", "1"]));
    let mut child = spawn(&addrs, &["--json", "watch", "/w", "--count", "1"]);
    let err = lines(child.stderr.take().expect("stderr"));
    wait_line(&err, "watching /w");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cluster
        .with_model(|m, _| m.sessions().iter().any(|sid| m.holds_ping(*sid)))
        .expect("model")
    {
        assert!(std::time::Instant::now() < deadline, "no ping held");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let leader = cluster.leader().expect("a leader");
    cluster.move_leader(leader).expect("move");
    wait_line(&err, "watch registered again");
    ok(&pyxis(&addrs, &["set", "/w", "2"]));
    let out = wait_child(child);
    ok(&out);
    let event: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    assert_eq!(event["event"], "modify", "{event}");
    assert_eq!(event["path"], "/w");
}

#[test]
fn watch_ends_cleanly_on_ctrl_c() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    let mut child = spawn(&addrs, &["watch", "/quiet"]);
    let err = lines(child.stderr.take().expect("stderr"));
    wait_line(&err, "watching /quiet");
    interrupt(&child);
    let out = wait_child(child);
    ok(&out);
    assert_eq!(stdout(&out), "", "no event happened");
}

#[test]
fn leader_follows_a_move() {
    let cluster = TestCluster::start(3);
    let addrs = cluster.addrs();
    let before = json(&pyxis(&addrs, &["--json", "leader"]));
    assert_eq!(before["leader"], addrs[0].as_str());
    assert_eq!(before["servers"].as_array().map(Vec::len), Some(3));
    cluster.move_leader(2).expect("move");
    let after = json(&pyxis(&addrs, &["--json", "leader"]));
    assert_eq!(after["leader"], addrs[2].as_str());
    let table = stdout(&pyxis(&addrs, &["leader"]));
    assert!(table.contains(&format!("{}  leader", addrs[2])), "{table}");
}

#[test]
fn dev_serves_a_cluster_until_killed() {
    let mut dev = Command::new(BIN)
        .args(["--json", "dev", "--nodes", "2", "--fast"])
        .env_remove("PYXIS_ADDRS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dev");
    let out = lines(dev.stdout.take().expect("stdout"));
    let first = wait_line(&out, "addrs");
    let view: Value = serde_json::from_str(&first).expect("JSON line");
    let addrs: Vec<String> = view["addrs"]
        .as_array()
        .expect("addrs")
        .iter()
        .map(|a| a.as_str().expect("string").to_owned())
        .collect();
    assert_eq!(addrs.len(), 2);
    // Through the follower: the client follows the redirect.
    let follower = vec![addrs[1].clone()];
    ok(&pyxis(&follower, &["create", "/from-dev", "x"]));
    assert_eq!(stdout(&pyxis(&addrs, &["ls", "/"])), "from-dev\npyxis\n");
    dev.kill().expect("kill dev");
    let _ = dev.wait();
    let gone = Command::new(BIN)
        .args(["--addrs", &addrs.join(","), "--timeout", "1s", "ls"])
        .output()
        .expect("runs");
    assert_eq!(code(&gone), 6);
}
