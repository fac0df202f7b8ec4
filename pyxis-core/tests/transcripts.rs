//! The client core fed the original server's recorded answers (`../shared/transcripts`,
//! read through `pyxis_testkit::transcript`): every recorded answer to a stat (a node,
//! proc nodes included, or an error) must decode to what the server meant, odd paths the
//! server mishandles are refused before sending, and a follower's recorded kNotLeader
//! sends the client to the leader it names.

mod support;

use pyxis_core::{Error, Reply};
use pyxis_proto::limits::check_path;
use pyxis_testkit::transcript::{self, Expected, Labels, Op as Step};
use serde_json::Value;
use support::*;

/// Labels with fixed values: sids of 17 digits, 15-byte addresses, a 10-digit time.
fn labels() -> Labels {
    let mut labels = Labels::new((1..=3).map(|i| format!("127.0.0.1:1700{i}")).collect());
    for n in 1..=64u64 {
        labels
            .bind(&format!("$s{n}"), 39_000_000_000_000_000 + n)
            .expect("distinct");
    }
    labels.set_time(1_700_000_000);
    labels
}

fn transcripts() -> Vec<transcript::Transcript> {
    let dir = transcript::default_dir(env!("CARGO_MANIFEST_DIR"));
    transcript::load_dir(&dir).expect("the transcripts are readable")
}

/// The one recorded frame a single-request step got on its own connection.
fn only_frame<'a>(step: &'a transcript::Step, conn: &str) -> Option<&'a Value> {
    match step.received.get(conn).map(Vec::as_slice) {
        Some([Expected::Frame(f)]) if step.received.len() == 1 => Some(f),
        _ => None,
    }
}

#[test]
fn recorded_stat_answers_decode_as_the_original_meant_them() {
    let labels = labels();
    let (mut decoded, mut refused) = (0, 0);
    for t in transcripts() {
        for step in &t.steps {
            let Step::Send { conn, requests, .. } = &step.op else {
                continue;
            };
            let [req] = requests.as_slice() else { continue };
            let only_stat = req.as_object().is_some_and(|o| {
                o.keys().all(|k| k == "sid" || k == "xid" || k == "stat") && o.contains_key("stat")
            });
            let Some(frame) = only_frame(step, conn).filter(|_| only_stat) else {
                continue;
            };
            let err_type = frame
                .pointer("/err/type")
                .and_then(Value::as_str)
                .unwrap_or("");
            // Session and leadership answers act on the session, not on the call.
            if matches!(err_type, "kSessionExpired" | "kNotLeader" | "kAgain") {
                continue;
            }
            let Some(path) = req.pointer("/stat/path").and_then(Value::as_str) else {
                continue;
            };
            let path = labels.substitute(path).expect("labels");
            let where_ = format!("{} step {}", t.name, step.number);
            let (mut p, conn, _ping) = up();
            let id = p.client.submit(read(&path, None), p.now);
            p.drain();
            if let Err(reason) = check_path(&path) {
                // Refused before sending: the server would mishandle or refuse it.
                let got = p.completion(id);
                assert!(
                    matches!(&got, Some(Err(Error::InvalidPath { reason: r, .. })) if *r == reason),
                    "{where_}: {path:?} gave {got:?}"
                );
                refused += 1;
                continue;
            }
            let sent = p.take_non_ping();
            assert_eq!(
                sent.req.stat.as_ref().map(|s| s.path.as_str()),
                Some(path.as_str())
            );
            let rsp = transcript::response_of(frame, &labels, sent.req.xid).expect(&where_);
            let expected_err = rsp.err.clone();
            let node = frame.get("node").cloned();
            p.answer(conn, rsp);
            let got = p
                .completion(id)
                .unwrap_or_else(|| panic!("{where_}: no completion"));
            let text = |d: &Option<bytes::Bytes>| {
                String::from_utf8_lossy(d.as_deref().unwrap_or_default()).into_owned()
            };
            match (expected_err, got) {
                (Some(e), Err(got)) => {
                    let data = text(&e.data);
                    let want = match err_type {
                        "kNotFound" => Error::NotFound { path: data },
                        "kInvalidArgument" => Error::InvalidArgument { reason: data },
                        "kInternal" => Error::Internal { reason: data },
                        other => panic!("{where_}: unexpected error {other}"),
                    };
                    assert_eq!(got, want, "{where_}");
                }
                (None, Ok(Reply::Node { node: got, .. })) => {
                    let want = node.unwrap_or_else(|| panic!("{where_}: no node recorded"));
                    let data = want
                        .get("data_hex")
                        .and_then(Value::as_str)
                        .map(|h| transcript::hex_bytes(h, &labels).expect("hex"))
                        .unwrap_or_default();
                    assert_eq!(got.data.as_ref(), &data[..], "{where_}: data");
                    let mut children: Vec<String> = want
                        .get("children")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(|c| labels.substitute(c).expect("labels"))
                                .filter(|c| !c.starts_with('_'))
                                .collect()
                        })
                        .unwrap_or_default();
                    children.sort();
                    assert_eq!(got.children, children, "{where_}: children");
                    let num = |k: &str| want.get(k).and_then(Value::as_u64).unwrap_or(0);
                    assert_eq!(u64::from(got.flags), num("flags"), "{where_}: flags");
                    assert_eq!(got.version, num("version"), "{where_}: version");
                    let owner = want
                        .get("sid")
                        .and_then(Value::as_str)
                        .map_or(0, |l| labels.sid(l).expect("bound"));
                    assert_eq!(got.owner, owner, "{where_}: owner");
                }
                (want, got) => panic!("{where_}: recorded {want:?}, core gave {got:?}"),
            }
            decoded += 1;
        }
    }
    println!("{decoded} recorded stat answers decoded, {refused} odd paths refused locally");
    assert!(decoded >= 300, "only {decoded} stat answers found");
    assert!(refused >= 5, "only {refused} odd paths found");
}

#[test]
fn a_recorded_follower_answer_sends_the_client_to_the_leader_it_names() {
    let labels = labels();
    let t = transcripts()
        .into_iter()
        .find(|t| t.name == "cluster_follower.jsonl")
        .expect("cluster_follower.jsonl");
    let mut followed = 0;
    for step in &t.steps {
        let Step::Send { conn, .. } = &step.op else {
            continue;
        };
        let Some(frame) = only_frame(step, conn) else {
            continue;
        };
        if frame.pointer("/err/type").and_then(Value::as_str) != Some("kNotLeader") {
            continue;
        }
        // The answer to the client's register on a follower.
        let mut p = Peer::new(config(&["127.0.0.1:17002"]));
        let conn = p.accept();
        let reg = p.take();
        let rsp = transcript::response_of(frame, &labels, reg.req.xid).expect("frame");
        p.answer(conn, rsp);
        assert_eq!(p.closes, vec![conn], "step {}", step.number);
        p.advance(ms(200));
        assert_eq!(
            p.connects.last().map(|c| c.1.as_str()),
            Some("127.0.0.1:17001"),
            "step {}",
            step.number
        );
        followed += 1;
    }
    assert!(followed >= 15, "only {followed} follower answers");
}
