//! The `client_input` fuzz body: a connected `pyxis-core` client fed arbitrary server
//! bytes, connection events, ticks and application commands.
//!
//! Owns the invariants of the client core on hostile input: no panic; outputs bounded
//! per step; time never needed in the past; a watch's events say `last` exactly when it
//! is one-shot, and nothing comes for a watch after its last event or its end; input
//! held back under `Config::frames_per_input` (a bound drawn from the input) only with
//! that bound and only on the connection being read, and each resumption handling some
//! of it; and, after `close`, every operation ever submitted has completed exactly once
//! and `Session(Closed)` came exactly once. Held input is resumed as the adapters do:
//! before anything more is read, and, as the fuzz input decides, at once after each
//! turn or after the next commands and ticks. Must never hide a failure (no
//! `catch_unwind`) and never do I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use prost::Message;
use pyxis_core::{
    Client, Config, ConnId, CreateMode, Event, EventMask, IoAction, Op, RequestId, SessionEvent,
    WatchId, WatchMode, WatchSpec,
};
use pyxis_proto::rpc::{self, Response};
use pyxis_proto::{encode_response, store, FrameDecoder};

/// Paths the structured input picks from (valid ones, a proc path, and invalid ones).
const PATHS: [&str; 8] = ["/", "/a", "/a/b", "/c", "/pyxis/session", "bad", "/a/", ""];

/// Most bytes one step may make the client write (frames for every pending operation
/// and watch of a step are far below this).
const MAX_TRANSMIT_PER_STEP: usize = 4 << 20;

/// Most events one step may produce.
const MAX_EVENTS_PER_STEP: usize = 10_000;

/// Which xid an answer carries.
#[derive(Debug, Clone, Arbitrary)]
pub enum Xid {
    /// The xid of one of the requests the client sent (index taken modulo their count).
    Sent(u8),
    /// Any value.
    Raw(u64),
    /// No xid field.
    Absent,
}

/// The `data` field of an answer.
#[derive(Debug, Clone, Arbitrary)]
pub enum AnswerData {
    /// A well-formed `pyxis.store.Node` (a stat answer).
    Node {
        /// Node data.
        data: Option<Vec<u8>>,
        /// Child names.
        children: Vec<String>,
        /// Flags.
        flags: Option<u32>,
        /// Version.
        version: Option<u64>,
        /// Owner.
        sid: Option<u64>,
    },
    /// Arbitrary bytes.
    Raw(Vec<u8>),
}

/// A server answer, built field by field so the fuzzer reaches the dispatch logic.
#[derive(Debug, Clone, Arbitrary)]
pub struct Answer {
    /// Its xid.
    pub xid: Xid,
    /// An error `(type, data)`.
    pub err: Option<(i32, Option<Vec<u8>>)>,
    /// The data field.
    pub data: Option<AnswerData>,
    /// A watch event `(path index, type)`.
    pub watch: Option<(u8, u32)>,
    /// The sid field.
    pub sid: Option<u64>,
    /// The watched path (index).
    pub path: Option<u8>,
}

/// One step of a client script.
#[derive(Debug, Clone, Arbitrary)]
pub enum ClientStep {
    /// A well-framed answer, delivered in two pieces split at `split`.
    Answer(Answer, u8),
    /// Well-framed answers delivered together, in one read.
    Answers(Vec<Answer>),
    /// A payload framed with a correct checksum.
    Framed(Vec<u8>),
    /// Raw bytes.
    Raw(Vec<u8>),
    /// Time passes (ms); the client's deadline is honoured if it passed.
    Tick(u16),
    /// The connection the client asked for opens and its Register gets a session.
    Connected,
    /// The current connection closes (or the pending one fails).
    Closed,
    /// The application submits an operation.
    Submit {
        /// Which kind (modulo the number of kinds).
        kind: u8,
        /// Path index.
        path: u8,
        /// Data.
        data: Vec<u8>,
        /// Arm a watch with a read.
        watch: bool,
    },
    /// The application adds a watch.
    Watch {
        /// Path index.
        path: u8,
        /// Mask.
        mask: u8,
        /// Recursive.
        recursive: bool,
        /// Persistent.
        persistent: bool,
    },
    /// The application removes one of its watches (index modulo their count).
    Unwatch(u8),
}

/// The structured reading of a fuzz input.
#[derive(Debug, Clone, Arbitrary)]
pub struct ClientScript {
    /// The client's seed.
    pub seed: u64,
    /// How the client takes its input in turns (see [`InputTurns::from_byte`]).
    pub turns: u8,
    /// The steps.
    pub steps: Vec<ClientStep>,
}

/// How a harness hands answers to the client: `Config::frames_per_input`, and when the
/// input held back under it is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputTurns {
    /// The most answer frames one input handles (`None`: no bound).
    pub frames: Option<NonZeroUsize>,
    /// Held input is resumed only before more bytes are read (and at the end), so
    /// that commands, ticks and connection events run between turns, as in an async
    /// adapter's loop; otherwise at once after every turn, as in a blocking one.
    pub lazy: bool,
}

impl InputTurns {
    /// No bound: every complete frame received is handled at once.
    pub const UNBOUNDED: InputTurns = InputTurns {
        frames: None,
        lazy: false,
    };

    /// The turns a fuzz byte picks: its low bits (modulo 9) no bound or 1..=8 frames,
    /// its top bit lazy resumption.
    pub fn from_byte(b: u8) -> InputTurns {
        InputTurns {
            frames: NonZeroUsize::new(usize::from(b & 0x7f) % 9),
            lazy: b & 0x80 != 0,
        }
    }
}

/// Drives one client and keeps the books.
struct Harness {
    client: Client,
    now: Instant,
    /// The connection the client asked for last (the one it reads).
    conn: Option<ConnId>,
    sent_xids: Vec<u64>,
    decoder: FrameDecoder,
    submitted: BTreeMap<RequestId, u32>,
    watches: Vec<WatchId>,
    /// The mode of each standalone watch.
    modes: BTreeMap<WatchId, WatchMode>,
    /// Watches that had their last event or ended.
    finished: BTreeSet<WatchId>,
    closed_events: u32,
    lazy: bool,
    /// Inputs resumed (`handle_data` with no new bytes for held input).
    resumed: u64,
    /// Bytes handed to the client.
    delivered: u64,
}

impl Harness {
    fn new(seed: u64, turns: InputTurns) -> Option<Harness> {
        let now = Instant::now();
        let mut config = Config::new(["s0:7000", "s1:7000", "s2:7000"]);
        config.seed = seed;
        config.max_frame_len = 1 << 20;
        config.frames_per_input = turns.frames;
        let client = Client::new(config, now).ok()?;
        let mut h = Harness {
            client,
            lazy: turns.lazy,
            resumed: 0,
            delivered: 0,
            now,
            conn: None,
            sent_xids: Vec::new(),
            decoder: FrameDecoder::new(),
            submitted: BTreeMap::new(),
            watches: Vec::new(),
            modes: BTreeMap::new(),
            finished: BTreeSet::new(),
            closed_events: 0,
        };
        h.drain();
        Some(h)
    }

    /// Drains every output, checking the per-step bounds, and resumes held input unless
    /// resumption is lazy.
    fn drain(&mut self) {
        self.drain_outputs();
        if !self.lazy {
            self.resume();
        }
    }

    /// Hands the client its held input again, draining between turns, until none is
    /// held. Each turn must handle some of it (or find only a partial frame left).
    fn resume(&mut self) {
        while let Some(held) = self.client.buffered_input() {
            assert!(
                self.client.config().frames_per_input.is_some(),
                "input held without a bound"
            );
            assert_eq!(
                Some(held),
                self.conn,
                "input held on a connection not being read"
            );
            self.resumed += 1;
            // Each turn handles at least one frame of what was delivered.
            assert!(
                self.resumed <= self.delivered,
                "held input never runs out ({} resumptions, {} bytes delivered)",
                self.resumed,
                self.delivered
            );
            self.client.handle_data(held, &[], self.now);
            self.drain_outputs();
        }
    }

    /// Drains every output, checking the per-step bounds.
    fn drain_outputs(&mut self) {
        while let Some(io) = self.client.poll_io() {
            match io {
                IoAction::Connect { conn, .. } => {
                    self.conn = Some(conn);
                    self.decoder.reset();
                }
                IoAction::Close { conn } if self.conn == Some(conn) => self.conn = None,
                _ => {}
            }
        }
        let mut written = 0;
        while let Some(t) = self.client.poll_transmit() {
            assert!(!t.data.is_empty(), "empty transmit");
            written += t.data.len();
            self.decoder.extend(&t.data);
            while let Ok(Some(req)) = self.decoder.next_request() {
                if let Some(xid) = req.xid {
                    self.sent_xids.push(xid);
                }
            }
        }
        assert!(
            written <= MAX_TRANSMIT_PER_STEP,
            "{written} bytes in one step"
        );
        let mut events = 0;
        while let Some(ev) = self.client.poll_event() {
            events += 1;
            match ev {
                Event::Completed { id, .. } => {
                    let Some(n) = self.submitted.get_mut(&id) else {
                        panic!("completion of an unknown id {id:?}");
                    };
                    *n += 1;
                    assert_eq!(*n, 1, "request {id:?} completed twice");
                }
                Event::Watch { id, event } => {
                    assert!(
                        !self.finished.contains(&id),
                        "{id:?}: {event} after its end"
                    );
                    if let Some(mode) = self.modes.get(&id) {
                        assert_eq!(
                            event.last,
                            *mode == WatchMode::OneShot,
                            "{mode:?} watch {id:?}: {event}"
                        );
                    }
                    if event.last {
                        self.finished.insert(id);
                    }
                }
                Event::WatchEnded { id, .. } => {
                    assert!(self.finished.insert(id), "{id:?} ended after its end");
                }
                Event::Session(SessionEvent::Closed) => self.closed_events += 1,
                _ => {}
            }
        }
        assert!(events <= MAX_EVENTS_PER_STEP, "{events} events in one step");
        if let Some(t) = self.client.poll_timeout() {
            // A deadline in the past would make an adapter spin.
            assert!(
                t + Duration::from_secs(3600) > self.now,
                "deadline far in the past"
            );
        }
    }

    fn deliver(&mut self, bytes: &[u8]) {
        // An adapter reads no more from a connection whose input is held.
        self.resume();
        if let Some(conn) = self.conn {
            self.delivered += bytes.len() as u64;
            self.client.handle_data(conn, bytes, self.now);
        }
        self.drain();
    }

    fn tick(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        self.drain();
    }

    /// Opens the pending connection and answers the Register, so the script starts from
    /// a connected client.
    fn connect(&mut self) {
        if let Some(conn) = self.conn {
            self.client.handle_connected(conn, self.now);
            self.drain();
            if let Some(&xid) = self.sent_xids.last() {
                let rsp = Response {
                    xid: Some(xid),
                    sid: Some(0x1234_5678_9abc),
                    ..Default::default()
                };
                self.deliver(&encode_response(&rsp));
            }
        }
    }

    fn step(&mut self, step: &ClientStep) {
        match step {
            ClientStep::Answer(a, split) => {
                let frame = encode_response(&self.build(a));
                let at = usize::from(*split) % (frame.len() + 1);
                self.deliver(&frame[..at]);
                self.deliver(&frame[at..]);
            }
            ClientStep::Answers(answers) => {
                let mut bytes = BytesMut::new();
                for a in answers {
                    bytes.extend_from_slice(&encode_response(&self.build(a)));
                }
                self.deliver(&bytes);
            }
            ClientStep::Framed(payload) => self.deliver(&framed(payload)),
            ClientStep::Raw(bytes) => self.deliver(bytes),
            ClientStep::Tick(ms) => self.tick(u64::from(*ms)),
            // The connection opens and its Register is answered with a session.
            ClientStep::Connected => self.connect(),
            ClientStep::Closed => {
                if let Some(conn) = self.conn {
                    self.client.handle_closed(conn, self.now);
                }
                self.drain();
            }
            ClientStep::Submit {
                kind,
                path,
                data,
                watch,
            } => {
                let path = pick(*path).to_owned();
                let data = Bytes::copy_from_slice(data);
                let spec = watch.then(|| WatchSpec::new(path.clone(), EventMask::ALL));
                let op = match kind % 7 {
                    0 => Op::Create {
                        path,
                        data: Some(data),
                        mode: CreateMode::Persistent,
                    },
                    1 => Op::Create {
                        path,
                        data: None,
                        mode: CreateMode::Ephemeral,
                    },
                    2 => Op::Delete { path },
                    3 => Op::Write { path, data },
                    4 => Op::Read {
                        path,
                        show_hidden: Some(data.is_empty()),
                        watch: spec,
                    },
                    5 => Op::Exists { path, watch: spec },
                    _ => Op::Unregister,
                };
                let id = self.client.submit(op, self.now);
                assert!(self.submitted.insert(id, 0).is_none(), "request id reused");
                self.drain();
            }
            ClientStep::Watch {
                path,
                mask,
                recursive,
                persistent,
            } => {
                let spec = WatchSpec {
                    path: pick(*path).to_owned(),
                    mask: EventMask(u32::from(*mask)),
                    recursive: *recursive,
                    mode: if *persistent {
                        WatchMode::Persistent
                    } else {
                        WatchMode::OneShot
                    },
                };
                let mode = spec.mode;
                let id = self.client.watch(spec, self.now);
                self.modes.insert(id, mode);
                self.watches.push(id);
                self.drain();
            }
            ClientStep::Unwatch(i) => {
                if !self.watches.is_empty() {
                    let id = self.watches[usize::from(*i) % self.watches.len()];
                    self.client.unwatch(id, self.now);
                    // Nothing more may come for it.
                    self.finished.insert(id);
                    self.drain();
                }
            }
        }
    }

    fn build(&self, a: &Answer) -> Response {
        let xid = match a.xid {
            Xid::Sent(i) if !self.sent_xids.is_empty() => {
                Some(self.sent_xids[usize::from(i) % self.sent_xids.len()])
            }
            Xid::Sent(_) | Xid::Absent => None,
            Xid::Raw(x) => Some(x),
        };
        Response {
            xid,
            err: a.err.as_ref().map(|(t, d)| rpc::Error {
                r#type: *t,
                data: d.as_deref().map(Bytes::copy_from_slice),
            }),
            data: a.data.as_ref().map(|d| match d {
                AnswerData::Node {
                    data,
                    children,
                    flags,
                    version,
                    sid,
                } => Bytes::from(
                    store::Node {
                        data: data.as_deref().map(Bytes::copy_from_slice),
                        children: children.clone(),
                        flags: *flags,
                        version: *version,
                        sid: *sid,
                    }
                    .encode_to_vec(),
                ),
                AnswerData::Raw(b) => Bytes::copy_from_slice(b),
            }),
            watch: a.watch.map(|(p, t)| rpc::WatchEvent {
                path: pick(p).to_owned(),
                r#type: t,
            }),
            sid: a.sid,
            path: a.path.map(|p| pick(p).to_owned()),
        }
    }

    /// Closes the client and lets every deadline pass: everything must be settled.
    /// Returns how many inputs were resumed.
    fn finish(mut self) -> u64 {
        self.resume();
        self.client.close(self.now);
        self.drain();
        for _ in 0..4 {
            self.tick(5_000);
        }
        assert!(
            self.client.is_closed(),
            "client not closed after close + 20 s"
        );
        assert_eq!(
            self.closed_events, 1,
            "Session(Closed) must come exactly once"
        );
        for (id, n) in &self.submitted {
            assert_eq!(*n, 1, "request {id:?} completed {n} times");
        }
        assert_eq!(
            self.client.poll_timeout(),
            None,
            "a closed client wants no timer"
        );
        // Commands after close complete at once, with `Closed`.
        let id = self.client.submit(Op::Unregister, self.now);
        match self.client.poll_event() {
            Some(Event::Completed { id: done, result }) => {
                assert_eq!(done, id);
                assert!(result.is_err());
            }
            other => panic!("submit after close: {other:?}"),
        }
        self.resumed
    }
}

fn pick(i: u8) -> &'static str {
    PATHS[usize::from(i) % PATHS.len()]
}

/// `payload` in a frame with the right length, tag and Adler-32.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    pyxis_proto::frame_payload(payload, &mut out);
    out.to_vec()
}

/// The `client_input` fuzz body. `data` is read twice: as raw server bytes into a
/// connected client (taking them in the turns its last byte picks, see
/// [`InputTurns::from_byte`]), and through `arbitrary` as a [`ClientScript`] of
/// well-framed answers (echoing the xids the client sent), raw bytes, ticks, connection
/// events and application commands. Panics if an invariant breaks (see the module docs).
///
/// ```
/// pyxis_fuzz::client_input(b"\x00\x00\x00\x0cpyxi\x08\x01\x00\x00\x00\x00");
/// pyxis_fuzz::client_input(&[0xff; 64]);
/// ```
pub fn client_input(data: &[u8]) {
    let turns = data
        .last()
        .map_or(InputTurns::UNBOUNDED, |b| InputTurns::from_byte(*b));
    if let Some(mut h) = Harness::new(0, turns) {
        h.connect();
        h.deliver(data);
        h.finish();
    }
    if let Ok(script) = ClientScript::arbitrary_take_rest(Unstructured::new(data)) {
        client_script(&script);
    }
}

/// Runs a [`ClientScript`] (its first 512 steps) against a connected client, checking
/// the invariants of [`client_input`]. Returns how many times held input was resumed
/// (0 when the client does not start).
pub fn client_script(script: &ClientScript) -> u64 {
    let Some(mut h) = Harness::new(script.seed, InputTurns::from_byte(script.turns)) else {
        return 0;
    };
    h.connect();
    for step in script.steps.iter().take(512) {
        h.step(step);
    }
    h.finish()
}
