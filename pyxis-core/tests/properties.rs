//! Whole-client properties: determinism, 10 000 random interleavings, the unregister
//! round trip, and the purity of the source (no clock, thread or socket).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use pyxis_core::{
    CreateMode, Event, EventMask, Op, Reply, RequestId, SessionEvent, SessionState, WatchId,
    WatchMode, WatchSpec,
};
use pyxis_proto::{encode_response, rpc, ErrorType};
use support::*;

const PATHS: [&str; 5] = ["/a", "/a/b", "/c", "/", "bad path"];

fn random_op(rng: &mut fastrand::Rng) -> Op {
    let path = PATHS[rng.usize(..PATHS.len())].to_owned();
    let watch = if rng.bool() {
        Some(random_spec(rng, &path))
    } else {
        None
    };
    match rng.u8(..7) {
        0 => Op::Create {
            path,
            data: rng.bool().then(|| Bytes::from_static(b"d")),
            mode: if rng.bool() {
                CreateMode::Ephemeral
            } else {
                CreateMode::Persistent
            },
        },
        1 => Op::Delete { path },
        2 => Op::Write {
            path,
            data: Bytes::from_static(b"w"),
        },
        3 => Op::Read {
            path,
            show_hidden: None,
            watch,
        },
        4 => Op::Exists { path, watch },
        5 => Op::Unregister,
        _ => Op::Exists { path, watch: None },
    }
}

fn random_spec(rng: &mut fastrand::Rng, path: &str) -> WatchSpec {
    WatchSpec {
        path: path.to_owned(),
        mask: EventMask(rng.u32(..16)),
        recursive: rng.bool(),
        mode: if rng.bool() {
            WatchMode::OneShot
        } else {
            WatchMode::Persistent
        },
    }
}

fn random_answer(rng: &mut fastrand::Rng, req: &rpc::Request) -> rpc::Response {
    let xid = if rng.u8(..20) == 0 {
        Some(rng.u64(..50))
    } else {
        req.xid
    };
    if rng.u8(..20) < 13 {
        return if req.register.is_some() {
            ok_sid(xid, 1 + rng.u64(..3))
        } else if req.stat.is_some() {
            stat(xid, rng.u64(..3), &["x", "_y"], b"v")
        } else if req.ping.is_some() && rng.bool() {
            let p = PATHS[rng.usize(..4)];
            event(xid, p, p, 1 << rng.u32(..5))
        } else {
            ok(xid)
        };
    }
    match rng.u8(..10) {
        0 => err(
            xid,
            ErrorType::KNotLeader,
            ["b:1", "a:1", "junk"][rng.usize(..3)],
        ),
        code => {
            let mut r = err(xid, ErrorType::KAgain, "reason");
            if let Some(e) = r.err.as_mut() {
                e.r#type = [2, 3, 4, 5, 6, 7, 8, 9, 42][(code as usize + rng.usize(..9)) % 9];
            }
            r
        }
    }
}

/// Runs one random scenario; returns the peer's output log. Panics if a request
/// completes twice or stays incomplete after close.
fn scenario(seed: u64, steps: usize) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut c = config(&["a:1", "b:1"]);
    c.seed = seed;
    let mut p = Peer::new(c);
    let mut submitted: Vec<RequestId> = Vec::new();
    let mut watches: Vec<WatchId> = Vec::new();
    let mut completions: BTreeMap<RequestId, usize> = BTreeMap::new();
    let mut collect = |p: &mut Peer| {
        for e in p.take_events() {
            if let Event::Completed { id, .. } = e {
                *completions.entry(id).or_default() += 1;
            }
        }
    };
    for _ in 0..steps {
        match rng.u8(..12) {
            0 | 1 => {
                let op = random_op(&mut rng);
                submitted.push(p.client.submit(op, p.now));
                p.drain();
            }
            2 => {
                let path = PATHS[rng.usize(..PATHS.len())];
                let spec = random_spec(&mut rng, path);
                watches.push(p.client.watch(spec, p.now));
                p.drain();
            }
            3 if !watches.is_empty() => {
                let id = watches[rng.usize(..watches.len())];
                p.client.unwatch(id, p.now);
                p.drain();
            }
            4 if !p.connecting.is_empty() => {
                if rng.u8(..4) == 0 {
                    p.refuse();
                } else {
                    p.accept();
                }
            }
            5..=7 if !p.sent.is_empty() => {
                let i = rng.usize(..p.sent.len());
                if let Some(s) = p.sent.remove(i) {
                    let rsp = random_answer(&mut rng, &s.req);
                    let bytes = encode_response(&rsp);
                    // Split the frame at a random point.
                    let cut = rng.usize(..=bytes.len());
                    p.deliver(s.conn, &bytes[..cut]);
                    p.deliver(s.conn, &bytes[cut..]);
                }
            }
            8 if !p.open.is_empty() => {
                let conns: Vec<_> = p.open.keys().copied().collect();
                let conn = conns[rng.usize(..conns.len())];
                if rng.u8(..3) == 0 {
                    let junk: Vec<u8> = (0..rng.usize(..12)).map(|_| rng.u8(..)).collect();
                    p.deliver(conn, &junk);
                } else {
                    p.close_conn(conn);
                }
            }
            _ => p.advance(Duration::from_millis(rng.u64(..3000))),
        }
        collect(&mut p);
    }
    p.client.close(p.now);
    p.drain();
    if rng.bool() {
        if let Some(i) = p.sent.iter().position(|s| s.req.unregister.is_some()) {
            let s = p.sent.remove(i).expect("index valid");
            p.answer(s.conn, ok(s.req.xid));
        }
    }
    p.advance(Duration::from_secs(5));
    assert!(
        p.client.is_closed(),
        "seed {seed}: closed after close_timeout"
    );
    assert_eq!(p.client.state(), SessionState::Closed);
    let tail = p.take_events();
    let closed_at = tail
        .iter()
        .position(|e| *e == Event::Session(SessionEvent::Closed))
        .unwrap_or_else(|| panic!("seed {seed}: Closed emitted once at the end: {tail:?}"));
    assert_eq!(
        closed_at,
        tail.len() - 1,
        "seed {seed}: nothing after Closed"
    );
    p.events.extend(tail);
    collect(&mut p);
    for id in &submitted {
        assert_eq!(
            completions.get(id).copied().unwrap_or(0),
            1,
            "seed {seed}: request {id:?} must complete exactly once"
        );
    }
    assert_eq!(completions.len(), submitted.len());
    p.log
}

#[test]
fn random_interleavings_complete_every_request() {
    // 10 000 random operation/answer/timeout interleavings of 25 steps each.
    let (mut ok, mut watch_events, mut connected) = (0, 0, 0);
    for seed in 0..10_000 {
        for line in scenario(seed, 25) {
            ok += usize::from(line.contains("result: Ok"));
            watch_events += usize::from(line.starts_with("ev Watch {"));
            connected += usize::from(line.contains("Connected {"));
        }
    }
    // The interleavings reach the interesting states, not only early failures.
    assert!(
        ok > 500 && watch_events > 20 && connected > 2_000,
        "{ok} {watch_events} {connected}"
    );
}

#[test]
fn determinism_same_seed_same_outputs() {
    for seed in [3, 17, 99] {
        let first = scenario(seed, 60);
        let second = scenario(seed, 60);
        assert!(first.len() > 20);
        assert_eq!(first, second, "seed {seed}: same inputs, same outputs");
    }
    assert_ne!(scenario(3, 60), scenario(4, 60), "different seeds differ");
}

#[test]
fn unregister_ends_the_session_and_the_client_stays_usable() {
    let mut p = Peer::new(config(&["a:1"]));
    let conn = p.connect_with_sid(5);
    p.take_events();
    let u = p.client.submit(Op::Unregister, p.now);
    let after = p.client.submit(
        Op::Exists {
            path: "/a".into(),
            watch: None,
        },
        p.now,
    );
    p.drain();
    let unreg = p.take_non_ping();
    assert!(unreg.req.unregister.is_some());
    assert!(
        p.sent.iter().all(|s| s.req.stat.is_none()),
        "held behind the unregister"
    );
    p.answer(conn, ok(unreg.req.xid));
    assert_eq!(p.completion(u), Some(Ok(Reply::Done)));
    // The pending exists needs a session: a new one is registered on the same connection.
    let reg = p.take_non_ping();
    assert!(reg.req.register.is_some());
    assert_eq!(reg.req.sid, None);
    p.answer(conn, ok_sid(reg.req.xid, 6));
    assert_eq!(
        p.session_events(),
        vec![SessionEvent::Connected { sid: 6 }],
        "no Expired"
    );
    p.take_events();
    let ex = p.take_non_ping();
    assert_eq!(ex.req.sid, Some(6));
    p.answer(conn, err(ex.req.xid, ErrorType::KNotFound, ""));
    assert!(matches!(
        p.completion(after),
        Some(Ok(Reply::Exists { node: None, .. }))
    ));
    // Nothing pending: the next unregister leaves the client idle, connection closed.
    let u = p.client.submit(Op::Unregister, p.now);
    p.drain();
    let unreg = p.take_non_ping();
    p.answer(conn, ok(unreg.req.xid));
    assert_eq!(p.completion(u), Some(Ok(Reply::Done)));
    assert_eq!(p.client.state(), SessionState::Idle);
    assert_eq!(p.closes, vec![conn]);
    assert_eq!(p.client.poll_timeout(), None);
    // Usable again.
    p.client.submit(
        Op::Exists {
            path: "/a".into(),
            watch: None,
        },
        p.now,
    );
    p.drain();
    assert_eq!(p.client.state(), SessionState::Connecting);
}

#[test]
fn source_uses_no_clock_thread_or_socket() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let forbidden = [
        "Instant::now",
        "SystemTime",
        "std::thread",
        "std::net",
        "fastrand::u",
        "fastrand::usize",
        "tokio::",
        "async_std::",
    ];
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("src dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("source file");
        // Unit tests (after the module's `#[cfg(test)]`) may read a clock for a base.
        let shipped = text.split("#[cfg(test)]").next().unwrap_or("");
        files += 1;
        for f in forbidden {
            assert!(!shipped.contains(f), "{} uses {f}", path.display());
        }
    }
    assert!(files >= 8);
    // The manifest: no runtime dependency, and fastrand without its global generator.
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("manifest");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("dependencies section");
    for line in deps.lines() {
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        for runtime in [
            "tokio",
            "async-std",
            "smol",
            "async-io",
            "mio",
            "rand",
            "getrandom",
        ] {
            assert_ne!(name, runtime, "pyxis-core depends on {runtime}");
        }
    }
    let workspace = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .expect("workspace manifest");
    let line = workspace
        .lines()
        .find(|l| l.starts_with("fastrand"))
        .expect("fastrand in workspace deps");
    assert!(line.contains("default-features = false"), "{line}");
}
