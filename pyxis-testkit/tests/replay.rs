//! The differential test: every recording of the original server in
//! `../shared/transcripts` replayed against the model, answer by answer.
//!
//! Each file gets a fresh [`ClusterModel`] with the real server's defaults, driven on a
//! virtual clock: a step's requests go in as one write, then time runs as it did for the
//! recording client (commits, 300 ms for a trailing ping, up to the recorded hold for a
//! ping the recording waited for, `max_ms` for a wait), and what every connection got is
//! compared field by field with what the original server sent ([`transcript::compare`]).
//! Holds and expiry times are accepted within one check interval of the recorded value,
//! the tolerance the transcripts' README gives for the expiry timer's phase.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pyxis_proto::FrameDecoder;
use pyxis_testkit::model::{ClusterModel, ConnId, ModelConfig, Output};
use pyxis_testkit::transcript::{self, Expected, Got, Labels, Op, Transcript};
use serde_json::Value;

/// Steps where the model knowingly answers otherwise, with the reason: (file, step, why).
const ALLOWLIST: &[(&str, u64, &str)] = &[];

/// The tolerance on `held_ms`/`after_ms`: one check interval either way.
const TOLERANCE: Duration = Duration::from_millis(1_000);
/// Quiet time after which the recording client ended a step.
const QUIET: Duration = Duration::from_millis(15);
/// How long the recording client gave a trailing ping or a raw frame.
const TRAILING: Duration = Duration::from_millis(300);

struct Replay {
    model: ClusterModel,
    labels: Labels,
    now: Instant,
    conns: BTreeMap<String, ConnId>,
    decoders: BTreeMap<ConnId, FrameDecoder>,
    got: BTreeMap<ConnId, Vec<Got>>,
    step_start: Instant,
}

impl Replay {
    fn new(t: &Transcript) -> Self {
        let nodes = t.header.get("nodes").and_then(Value::as_u64).unwrap_or(1) as usize;
        let addrs: Vec<String> = (0..nodes)
            .map(|i| format!("127.0.0.1:{}", 17001 + i))
            .collect();
        let mut config = ModelConfig::real_defaults();
        config.addrs = addrs.clone();
        let now = Instant::now();
        let mut model = ClusterModel::new(config, nodes, now);
        if let Some(leader) = t.header.get("leader").and_then(Value::as_u64) {
            model
                .move_leader(leader.saturating_sub(1) as usize, now)
                .expect("the header's leader is a node");
        }
        Self {
            model,
            labels: Labels::new(addrs),
            now,
            conns: BTreeMap::new(),
            decoders: BTreeMap::new(),
            got: BTreeMap::new(),
            step_start: now,
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.model.poll_output() {
            match out {
                Output::Send { conn, bytes } => {
                    let d = self.decoders.entry(conn).or_default();
                    d.extend(&bytes);
                    while let Ok(Some(rsp)) = d.next_response() {
                        let at = self.now - self.step_start;
                        self.got.entry(conn).or_default().push(Got::Frame(rsp, at));
                    }
                }
                Output::Close { conn } => self.got.entry(conn).or_default().push(Got::Closed),
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    fn frames_on(&self, conn: ConnId) -> usize {
        self.got.get(&conn).map_or(0, Vec::len)
    }

    /// Runs the clock to `deadline`, or until `done` holds (then for QUIET more).
    fn run(&mut self, deadline: Instant, done: &dyn Fn(&Self) -> bool) {
        let mut end = deadline;
        let mut finished = false;
        loop {
            if !finished && done(self) {
                finished = true;
                end = end.min(self.now + QUIET);
            }
            let next = self.model.poll_timeout().map_or(end, |t| t.max(self.now));
            if next > end {
                break;
            }
            self.now = next;
            self.model.handle_timeout(self.now);
            self.drain();
            if next == end {
                break;
            }
        }
        self.now = self.now.max(end);
        self.model.handle_timeout(self.now);
        self.drain();
    }

    fn conn(&mut self, name: &str) -> ConnId {
        let next = ConnId(self.conns.len() as u64 + 1);
        *self.conns.entry(name.to_owned()).or_insert(next)
    }

    /// Performs one step; returns how many frames were compared, or the difference.
    fn step(&mut self, step: &transcript::Step) -> Result<usize, String> {
        self.step_start = self.now;
        self.got.clear();
        let expected_total: usize = step
            .received
            .values()
            .map(|v| v.iter().map(Expected::len).sum::<usize>())
            .sum();
        let wanted: Vec<(ConnId, usize)> = step
            .received
            .iter()
            .map(|(c, v)| (c.clone(), v.iter().map(Expected::len).sum()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(c, n)| (self.conn(&c), n))
            .collect();
        let all_arrived = move |r: &Self| wanted.iter().all(|&(c, n)| r.frames_on(c) >= n);
        match &step.op {
            Op::Connect { conn, to } => {
                let id = self.conn(conn);
                self.model.handle_connect(*to, id, self.now);
                self.drain();
            }
            Op::Close { conn } => {
                let id = self.conn(conn);
                self.model.handle_close(id, self.now);
                self.drain();
                self.run(self.now + QUIET, &|_| false);
            }
            Op::Send { conn, requests, .. } => {
                let id = self.conn(conn);
                let mut bytes = Vec::new();
                for r in requests {
                    bytes.extend_from_slice(&transcript::encode_request(r, &self.labels)?);
                }
                self.model.handle_data(id, &bytes, self.now);
                self.drain();
                let longest_hold = step
                    .received
                    .values()
                    .flatten()
                    .flat_map(|e| match e {
                        Expected::Frame(f) => vec![f.clone()],
                        Expected::AnyOrder(g) => g.clone(),
                    })
                    .filter_map(|f| {
                        let range = f.get("held_ms_range").and_then(Value::as_array);
                        range
                            .and_then(|r| r.get(1).and_then(Value::as_u64))
                            .or_else(|| f.get("held_ms").and_then(Value::as_u64))
                    })
                    .max()
                    .unwrap_or(0);
                let trailing = requests.last().is_some_and(|r| {
                    transcript::is_ping(r)
                        || r.get("raw_hex").is_some()
                        || r.get("frame_hex").is_some()
                });
                if longest_hold > 0 {
                    let deadline =
                        self.now + Duration::from_millis(longest_hold) + TOLERANCE + QUIET;
                    self.run(deadline, &all_arrived);
                } else if trailing {
                    self.run(self.now + TRAILING, &|_| false);
                } else {
                    let commit = self.model.config().commit_delay;
                    self.run(self.now + commit + QUIET, &|_| false);
                    // Answers still owed (commits queued behind others) end the step too.
                    self.run(self.now + Duration::from_secs(2), &all_arrived);
                }
            }
            Op::Wait { max_ms, until } => {
                let deadline = self.now + Duration::from_millis(*max_ms);
                match until {
                    Some((conn, frames)) => {
                        let id = self.conn(conn);
                        let n = *frames;
                        self.run(deadline, &move |r: &Self| r.frames_on(id) >= n);
                    }
                    None => self.run(deadline, &|_| false),
                }
            }
        }
        // Compare every connection that got or should have got something.
        let mut names: Vec<String> = step.received.keys().cloned().collect();
        for (name, id) in &self.conns {
            if self.frames_on(*id) > 0 && !names.contains(name) {
                names.push(name.clone());
            }
        }
        let none = Vec::new();
        for name in names {
            let id = self.conn(&name);
            let expected = step.received.get(&name).unwrap_or(&none);
            let got = self.got.get(&id).cloned().unwrap_or_default();
            let bindings = transcript::compare_conn(expected, &got, &self.labels, TOLERANCE)
                .map_err(|e| format!("{name}: {e}"))?;
            for (label, sid) in bindings {
                self.labels.bind(&label, sid)?;
            }
        }
        Ok(expected_total)
    }
}

#[test]
fn every_transcript_replays_against_the_model() {
    let dir = transcript::default_dir(env!("CARGO_MANIFEST_DIR"));
    let files = transcript::load_dir(&dir).expect("the transcripts are readable");
    assert!(
        files.len() >= 40,
        "found {} transcripts in {}",
        files.len(),
        dir.display()
    );
    let mut steps = 0usize;
    let mut frames = 0usize;
    let mut failures = Vec::new();
    let mut allowed_seen = Vec::new();
    for t in &files {
        let mut replay = Replay::new(t);
        for step in &t.steps {
            steps += 1;
            match replay.step(step) {
                Ok(n) => frames += n,
                Err(e) => {
                    let allowed = ALLOWLIST
                        .iter()
                        .find(|(f, s, _)| *f == t.name && *s == step.number);
                    match allowed {
                        Some(a) => allowed_seen.push(a),
                        None => failures.push(format!("{} step {}: {e}", t.name, step.number)),
                    }
                }
            }
        }
    }
    println!(
        "replayed {} transcripts: {steps} steps, {frames} recorded frames compared; allowlist: {} entries",
        files.len(),
        ALLOWLIST.len()
    );
    let stale: Vec<_> = ALLOWLIST
        .iter()
        .filter(|a| !allowed_seen.contains(a))
        .collect();
    assert!(
        stale.is_empty(),
        "allowlisted steps that now match: {stale:?}"
    );
    assert!(
        failures.is_empty(),
        "{} steps differ from the original server:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
