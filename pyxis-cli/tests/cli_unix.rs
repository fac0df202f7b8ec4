//! The `pyxis` binary as a Unix tool, driven as a child process: signals (SIGTERM like
//! Ctrl-C), a closed stdout, usage errors, an unreachable cluster, escaping of
//! server-supplied text, timestamped watch events, session ids, `create -p`, shell
//! completions and the manual page, help texts and the exit-code table. Every wait is
//! bounded.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use pyxis_testkit::TestCluster;
use serde_json::Value;
use support::*;

#[test]
fn sigterm_ends_an_ephemeral_create_like_ctrl_c_and_deletes_its_node() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    let mut child = spawn(&addrs, &["create", "--ephemeral", "/lock", "me"]);
    let out = lines(child.stdout.take().expect("stdout"));
    wait_line(&out, "created /lock (ephemeral");
    assert!(cluster.node("/lock").is_some());
    signal(&child, "TERM");
    let status = wait_child(child);
    ok(&status);
    assert!(
        cluster.node("/lock").is_none(),
        "deleted at once with its session, not after a session timeout"
    );
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_with_0() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    ok(&pyxis(&addrs, &["create", "/a", "data"]));
    for args in [&["ls", "/"][..], &["get", "/a"], &["--json", "get", "/a"]] {
        // The read end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = pyxis_cmd(&addrs, args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("runs");
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}: nothing to say");
    }
    // The shell form of the same, under pipefail.
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", &format!("{BIN} ls / | head -c 0")])
        .env("PYXIS_ADDRS", addrs.join(","))
        .output()
        .expect("bash runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_zero_timeout_is_a_usage_error_naming_the_option() {
    let out = pyxis_alone(&["--timeout", "0", "ls"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("--timeout"), "{err}");
    assert!(err.contains("more than zero"), "{err}");
    assert!(!err.contains("request_timeout"), "no internal names: {err}");
}

#[test]
fn an_unreachable_cluster_says_why_hints_and_fails_fast() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let start = Instant::now();
    let out = pyxis_alone(&["--addrs", &addr, "--timeout", "30s", "ls"]);
    let took = start.elapsed();
    assert_eq!(code(&out), 6);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("connection refused by {addr}")),
        "{err}"
    );
    assert!(err.contains("gave up after"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("pyxis dev") && err.contains("PYXIS_ADDRS"),
        "{err}"
    );
    assert!(
        !err.contains("Timeout") && !err.contains("outcome_unknown"),
        "{err}"
    );
    // Every server (the one) refused: a one-shot command gives up at once instead of
    // waiting out its 30 s.
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn verbose_flags_show_the_clients_log_and_rust_log_overrides_them() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let quiet = stderr(&pyxis_alone(&["--addrs", &addr, "ls"]));
    assert!(!quiet.contains("connection closed"), "{quiet}");
    let info = stderr(&pyxis_alone(&["-v", "--addrs", &addr, "ls"]));
    assert!(
        info.contains("INFO") && info.contains("connection closed"),
        "{info}"
    );
    assert!(!info.contains("DEBUG"), "{info}");
    let debug = stderr(&pyxis_alone(&["-vv", "--addrs", &addr, "ls"]));
    assert!(
        debug.contains("DEBUG") && debug.contains("connecting") && debug.contains("backing off"),
        "{debug}"
    );
    let from_env = Command::new(BIN)
        .env_remove("PYXIS_ADDRS")
        .env("RUST_LOG", "pyxis=debug")
        .args(["--addrs", &addr, "ls"])
        .stdin(Stdio::null())
        .output()
        .expect("the pyxis binary runs");
    let from_env = stderr(&from_env);
    assert!(from_env.contains("backing off"), "{from_env}");
}

#[test]
fn a_server_that_accepts_but_never_answers_is_told_apart_from_a_refusal() {
    // The kernel completes connections to a listening socket nobody serves.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("local addr").to_string();
    let out = pyxis_alone(&["--addrs", &addr, "--timeout", "1s", "ls"]);
    assert_eq!(code(&out), 6);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{addr} accepts connections but opened no session")),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn server_supplied_text_is_printed_with_control_characters_escaped() {
    let cluster = TestCluster::start(2);
    let addrs = cluster.addrs();
    // Node data that would clear the screen and fake a second line.
    ok(&pyxis(&addrs, &["create", "/paint", "a\u{1b}[2J\nexit 0"]));
    let got = pyxis(&addrs, &["get", "/paint"]);
    ok(&got);
    let text = stdout(&got);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("a\\u{1b}[2J\\nexit 0"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("exit 0")), "{text}");
    // --raw is the way to get the bytes as they are.
    let raw = pyxis(&addrs, &["get", "--raw", "/paint"]);
    assert_eq!(raw.stdout, "a\u{1b}[2J\nexit 0".as_bytes());

    // A server address (from the server's /pyxis/cluster data) in the leader table.
    cluster
        .with_model(|model, _| model.set_node_addr(1, "10.0.0.2:7000\u{1b}]0;owned\u{7}"))
        .expect("model runs")
        .expect("node 1 exists");
    let leader = pyxis(&addrs, &["leader"]);
    ok(&leader);
    let text = stdout(&leader);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(
        text.contains("10.0.0.2:7000\\u{1b}]0;owned\\u{7}"),
        "{text}"
    );

    // Error messages: the path is shown escaped too.
    let bad = pyxis(&addrs, &["get", "/x\u{1b}[2J"]);
    assert_eq!(code(&bad), 5);
    let err = stderr(&bad);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn watch_events_carry_their_time() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    for json_output in [true, false] {
        let path = if json_output { "/tj" } else { "/th" };
        let mut args = vec!["watch", path, "--count", "1"];
        if json_output {
            args.insert(0, "--json");
        }
        let mut child = spawn(&addrs, &args);
        let err = lines(child.stderr.take().expect("stderr"));
        wait_line(&err, &format!("watching {path}"));
        let before = SystemTime::now() - Duration::from_secs(1);
        ok(&pyxis(&addrs, &["create", path]));
        let out = wait_child(child);
        ok(&out);
        let line = stdout(&out);
        let time = if json_output {
            let event: Value = serde_json::from_str(line.trim()).expect("one JSON line");
            assert_eq!(event["event"], "create");
            event["time"].as_str().expect("a time string").to_owned()
        } else {
            let mut fields = line.split_whitespace();
            let time = fields.next().expect("a time first").to_owned();
            assert_eq!(fields.collect::<Vec<_>>(), ["create", path], "{line}");
            time
        };
        let at = humantime::parse_rfc3339(&time).expect("RFC 3339");
        assert!(at >= before && at <= SystemTime::now(), "{time}");
    }
}

#[test]
fn session_ids_are_hex_everywhere_with_the_decimal_proc_name_beside() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    let mut child = spawn(&addrs, &["create", "--ephemeral", "/mine"]);
    let out = lines(child.stdout.take().expect("stdout"));
    let line = wait_line(&out, "created /mine (ephemeral");
    let owner = cluster
        .node("/mine")
        .and_then(|n| n.owner)
        .expect("an owner");
    let hex = format!("{owner:#x}");
    assert!(line.contains(&format!("session {hex},")), "{line}");

    let get = stdout(&pyxis(&addrs, &["get", "/mine"]));
    assert!(
        get.contains(&format!("owner     {hex} (/pyxis/session/{owner})")),
        "{get}"
    );
    let sessions = stdout(&pyxis(&addrs, &["sessions"]));
    let row = sessions
        .lines()
        .find(|l| l.starts_with(&hex))
        .unwrap_or_else(|| panic!("a row for {hex}: {sessions}"));
    assert!(row.contains(&owner.to_string()), "{row}");
    assert!(sessions.starts_with("SESSION"), "{sessions}");
    // JSON keeps the number.
    let list = json(&pyxis(&addrs, &["--json", "sessions"]));
    assert!(list
        .as_array()
        .expect("array")
        .iter()
        .any(|s| s["sid"] == owner));

    signal(&child, "INT");
    ok(&wait_child(child));
}

#[test]
fn create_p_creates_missing_parents_and_says_so() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    let out = pyxis(&addrs, &["create", "-p", "/a/b/c", "leaf"]);
    ok(&out);
    assert_eq!(
        stdout(&out),
        "created /a (parent)\ncreated /a/b (parent)\ncreated /a/b/c (persistent)\n"
    );
    assert_eq!(
        cluster.node("/a/b/c").expect("created").data.as_ref(),
        b"leaf"
    );
    assert!(cluster.node("/a/b").expect("parent").data.is_empty());

    // Only what is missing; JSON lists the parents it made.
    let out = json(&pyxis(&addrs, &["--json", "create", "-p", "/a/x/y"]));
    assert_eq!(out["path"], "/a/x/y");
    assert_eq!(out["parents"], serde_json::json!(["/a/x"]));
    // Without -p a missing parent is still "not found"; with -p an existing node "exists".
    assert_eq!(code(&pyxis(&addrs, &["create", "/q/r"])), 3);
    assert_eq!(code(&pyxis(&addrs, &["create", "-p", "/a/b/c"])), 4);
    // An ephemeral leaf under new parents.
    let mut child = spawn(&addrs, &["create", "-p", "-e", "/e/f"]);
    let out = lines(child.stdout.take().expect("stdout"));
    wait_line(&out, "created /e (parent)");
    wait_line(&out, "created /e/f (ephemeral");
    signal(&child, "TERM");
    ok(&wait_child(child));
    assert!(cluster.node("/e").is_some() && cluster.node("/e/f").is_none());
}

#[test]
fn completions_load_in_bash_and_the_man_page_renders() {
    let bash = pyxis_alone(&["completions", "bash"]);
    ok(&bash);
    let script = stdout(&bash);
    assert!(script.contains("_pyxis()"), "a bash function");
    let dir = std::env::temp_dir().join(format!("pyxis-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("pyxis.bash");
    std::fs::write(&file, &bash.stdout).expect("write script");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash runs");
    assert!(check.status.success(), "bash -n: {}", stderr(&check));
    // Sourced, it registers the completion for `pyxis`.
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!("source {}; complete -p pyxis", file.display()))
        .output()
        .expect("bash runs");
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert!(stdout(&loaded).contains("_pyxis"), "{}", stdout(&loaded));
    let _ = std::fs::remove_dir_all(&dir);

    for (shell, marker) in [("zsh", "#compdef pyxis"), ("fish", "complete -c pyxis")] {
        let out = pyxis_alone(&["completions", shell]);
        ok(&out);
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in ["create", "watch", "completions"] {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
    }
    assert_eq!(code(&pyxis_alone(&["completions", "tcsh"])), 2);

    let man = pyxis_alone(&["man"]);
    ok(&man);
    let page = stdout(&man);
    assert!(
        page.starts_with(".ie") || page.contains(".TH pyxis"),
        "{page}"
    );
    assert!(
        page.contains("Exit codes"),
        "the exit-code table is in the page"
    );
    // Every page cited exists: --out-dir writes one per subcommand.
    let dir = std::env::temp_dir().join(format!("pyxis-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    ok(&pyxis_alone(&[
        "man",
        "--out-dir",
        dir.to_str().expect("utf-8 path"),
    ]));
    let written = std::fs::read_to_string(dir.join("pyxis.1")).expect("pyxis.1 written");
    assert_eq!(written, page, "the same page as printed");
    let (mut pages, mut cited) = (0, 0);
    for entry in std::fs::read_dir(&dir).expect("read dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("page");
        pages += 1;
        // A cited page stands on a line of its own: pyxis\-ls(1).
        for name in text.lines().filter_map(|l| l.trim().strip_suffix("(1)")) {
            let name = name.replace("\\-", "-");
            assert!(dir.join(format!("{name}.1")).exists(), "{name}(1) is cited");
            cited += 1;
        }
    }
    assert!(
        pages > 10 && cited >= pages - 1,
        "{pages} pages, {cited} cited"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let render = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    if let Ok(mut groff) = render {
        std::io::Write::write_all(&mut groff.stdin.take().expect("stdin"), &man.stdout)
            .expect("feed groff");
        let out = wait_child(groff);
        assert!(out.status.success(), "groff: {}", stderr(&out));
    }
}

#[test]
fn help_texts_have_no_backticks_and_dev_lists_only_its_options() {
    let cli = pyxis_cli::command();
    let mut pages = vec![vec!["--help".to_owned()]];
    for sub in cli.get_subcommands() {
        pages.push(vec![sub.get_name().to_owned(), "--help".to_owned()]);
        for nested in sub.get_subcommands() {
            pages.push(vec![
                sub.get_name().to_owned(),
                nested.get_name().to_owned(),
                "--help".to_owned(),
            ]);
        }
    }
    for page in &pages {
        let args: Vec<&str> = page.iter().map(String::as_str).collect();
        let out = pyxis_alone(&args);
        ok(&out);
        assert!(!stdout(&out).contains('`'), "{page:?}:\n{}", stdout(&out));
    }
    let dev = stdout(&pyxis_alone(&["dev", "--help"]));
    // dev listens on --addrs when given; it has no use for --timeout.
    assert!(
        dev.contains("--nodes") && dev.contains("--json") && dev.contains("--addrs"),
        "{dev}"
    );
    assert!(!dev.contains("--timeout"), "dev ignores it: {dev}");
    // bench sets its own deadlines per phase: it has no use for --timeout either.
    let bench = stdout(&pyxis_alone(&["bench", "--help"]));
    assert!(
        bench.contains("--addrs") && bench.contains("--json"),
        "{bench}"
    );
    assert!(!bench.contains("--timeout"), "bench ignores it: {bench}");
    assert!(
        dev.contains("Addresses the nodes listen on") && !dev.contains("followers redirect"),
        "dev's --addrs are where it listens: {dev}"
    );
    // Before or after the subcommand, the addresses reach the command.
    for argv in [
        ["pyxis", "dev", "--addrs", "127.0.0.1:9"],
        ["pyxis", "--addrs", "127.0.0.1:9", "dev"],
    ] {
        let matches = pyxis_cli::command()
            .try_get_matches_from(argv)
            .expect("parses");
        let cli = <pyxis_cli::args::Cli as clap::FromArgMatches>::from_arg_matches(&matches)
            .expect("a command line");
        assert_eq!(
            cli.global.addrs,
            Some(vec!["127.0.0.1:9".to_owned()]),
            "{argv:?}"
        );
    }
}

#[test]
fn hold_without_ephemeral_is_a_usage_error_that_does_not_ask_for_addrs() {
    // With the server list in the environment, as users set it after pyxis dev.
    let servers = vec!["127.0.0.1:7000".to_owned()];
    for args in [&["create", "/x", "--hold", "1s"][..], &["get"]] {
        let out = pyxis_cmd(&servers, args).output().expect("runs");
        assert_eq!(code(&out), 2, "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("Usage: pyxis"), "{err}");
        assert!(!err.contains("--addrs"), "{args:?}: {err}");
    }
    let hold = stderr(&pyxis_alone(&["create", "/x", "--hold", "1s"]));
    assert!(hold.contains("--ephemeral"), "{hold}");
}

#[test]
fn changes_under_pyxis_exit_as_the_server_answers_and_as_the_help_says() {
    let cluster = TestCluster::start(1);
    let addrs = cluster.addrs();
    // A write to a read-only proc node: the server answers kInternal.
    let set = pyxis(&addrs, &["set", "/pyxis/cluster/leader", "me"]);
    assert_eq!(code(&set), 1, "{}", stderr(&set));
    // Create and delete under /pyxis: kInvalidArgument.
    let create = pyxis(&addrs, &["create", "/pyxis/mine"]);
    assert_eq!(code(&create), 5, "{}", stderr(&create));
    let rm = pyxis(&addrs, &["rm", "/pyxis/cluster"]);
    assert_eq!(code(&rm), 5, "{}", stderr(&rm));

    let help = stdout(&pyxis_alone(&["--help"]));
    let entry = |code: &str| {
        help.lines()
            .skip_while(|l| !l.starts_with(&format!("  {code}  ")))
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        entry("1").contains("set on a read-only /pyxis node"),
        "{help}"
    );
    assert!(entry("5").contains("create or rm under /pyxis"), "{help}");
}
