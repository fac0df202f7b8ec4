//! The `server_input` fuzz body: the `pyxis-testkit` cluster model fed arbitrary client
//! bytes, connections, ticks and cluster controls.
//!
//! Owns the invariants of the server model on hostile input: no panic; every byte it
//! sends is a well-formed response frame, on a connection it knows; outputs bounded per
//! step; and, once time has run far past every session timeout, every request sent on a
//! connection that stayed clean and open has been answered exactly once (held pings
//! included). Must never hide a failure (no `catch_unwind`) and never do I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use pyxis_proto::rpc::{self, Request};
use pyxis_proto::{encode_request, FrameDecoder};
use pyxis_testkit::model::{ClusterModel, ConnId, ModelConfig, Output};

/// Paths the structured input picks from (valid ones, proc paths, and invalid ones).
const PATHS: [&str; 9] = [
    "/",
    "/a",
    "/a/b",
    "/c",
    "/pyxis",
    "/pyxis/session",
    "/pyxis/cluster/leader",
    "bad",
    "/a/",
];

/// Nodes of the fuzzed cluster.
const NODES: usize = 3;

/// Most bytes one step may make the model send.
const MAX_OUTPUT_PER_STEP: usize = 64 << 20;

/// Which sid a request carries.
#[derive(Debug, Clone, Arbitrary)]
pub enum Sid {
    /// One the model handed out (index modulo their count).
    Issued(u8),
    /// Any value.
    Raw(u64),
    /// No sid field.
    Absent,
}

/// The operation of a request.
#[derive(Debug, Clone, Arbitrary)]
pub enum ReqOp {
    /// Register (session timeout in ms).
    Register(Option<i32>),
    /// Unregister.
    Unregister,
    /// Ping.
    Ping,
    /// Create (path index, flags, data).
    Create(u8, i32, Option<Vec<u8>>),
    /// Delete (path index).
    Delete(u8),
    /// Write (path index, data).
    Write(u8, Vec<u8>),
    /// Read (path index).
    Read(u8),
    /// Stat (path index).
    Stat(u8),
    /// Nothing at all.
    Empty,
}

/// A client request, built field by field.
#[derive(Debug, Clone, Arbitrary)]
pub struct FuzzRequest {
    /// Its sid.
    pub sid: Sid,
    /// Its xid (`None`: absent).
    pub xid: Option<u64>,
    /// Its operation.
    pub op: ReqOp,
    /// A watch riding along: (path index, mask, recursive).
    pub watch: Option<(Option<u8>, Option<u32>, Option<bool>)>,
}

/// One step of a server script.
#[derive(Debug, Clone, Arbitrary)]
pub enum ServerStep {
    /// A client connects to a node.
    Connect(u8),
    /// Requests on a connection (index), well framed, split at `split`.
    Requests(u8, Vec<FuzzRequest>, u16),
    /// A payload framed with a correct checksum.
    Framed(u8, Vec<u8>),
    /// Raw bytes on a connection.
    Raw(u8, Vec<u8>),
    /// A client closes a connection.
    Close(u8),
    /// Time passes (ms).
    Tick(u16),
    /// Leadership moves to a node.
    MoveLeader(u8),
    /// A node is killed.
    Kill(u8),
    /// A node restarts.
    Restart(u8),
    /// A no-leader window (ms).
    ElectionGap(u16),
    /// The server expires one of the sessions it issued.
    Expire(u8),
}

/// The structured reading of a fuzz input.
#[derive(Debug, Clone, Arbitrary)]
pub struct ServerScript {
    /// Whether uncommitted writes are applied on a leader change.
    pub apply_in_flight: bool,
    /// The steps.
    pub steps: Vec<ServerStep>,
}

/// What the harness knows of one connection.
#[derive(Debug, Default)]
struct ConnBook {
    open: bool,
    /// Only well-framed requests were sent and the model never closed it.
    clean: bool,
    /// Requests sent per xid (absent xid counts as 0).
    asked: BTreeMap<u64, u32>,
    /// Answers received per xid.
    answered: BTreeMap<u64, u32>,
    decoder: FrameDecoder,
}

struct Harness {
    model: ClusterModel,
    now: Instant,
    conns: Vec<ConnBook>,
    sids: BTreeSet<u64>,
}

impl Harness {
    fn new(apply_in_flight: bool) -> Harness {
        let now = Instant::now();
        let mut config = ModelConfig::fast();
        config.max_frame_len = 1 << 20;
        config.history_limit = 1_000;
        if apply_in_flight {
            config.in_flight_on_move = pyxis_testkit::model::InFlightOnMove::Apply;
        }
        Harness {
            model: ClusterModel::new(config, NODES, now),
            now,
            conns: Vec::new(),
            sids: BTreeSet::new(),
        }
    }

    fn conn(&self, i: u8) -> Option<usize> {
        (!self.conns.is_empty()).then(|| usize::from(i) % self.conns.len())
    }

    /// Drains the model's outputs, checking every byte it sends.
    fn drain(&mut self) {
        self.drain_after(false);
    }

    /// [`drain`](Self::drain), knowing whether the model was just woken at `now`.
    fn drain_after(&mut self, woken: bool) {
        let mut sent = 0;
        while let Some(out) = self.model.poll_output() {
            match out {
                Output::Send { conn, bytes } => {
                    sent += bytes.len();
                    let Some(book) = usize::try_from(conn.0)
                        .ok()
                        .and_then(|i| self.conns.get_mut(i))
                    else {
                        panic!("output for an unknown connection {conn:?}");
                    };
                    assert!(book.open, "output on a closed connection {conn:?}");
                    book.decoder.extend(&bytes);
                    loop {
                        match book.decoder.next_response() {
                            Ok(Some(rsp)) => {
                                *book.answered.entry(rsp.xid.unwrap_or(0)).or_default() += 1;
                                if let Some(sid) = rsp.sid {
                                    self.sids.insert(sid);
                                }
                            }
                            Ok(None) => break,
                            Err(e) => panic!("the model sent a bad frame: {e}"),
                        }
                    }
                }
                Output::Close { conn } => {
                    if let Some(book) = usize::try_from(conn.0)
                        .ok()
                        .and_then(|i| self.conns.get_mut(i))
                    {
                        book.open = false;
                        book.clean = false;
                    }
                }
                _ => {}
            }
        }
        assert!(sent <= MAX_OUTPUT_PER_STEP, "{sent} bytes sent in one step");
        match self.model.poll_timeout() {
            // A control may schedule something for this very instant (a zero-length
            // election gap): a runner wakes the model at once, once.
            Some(t) if t <= self.now && !woken => {
                self.model.handle_timeout(self.now);
                self.drain_after(true);
            }
            // After waking at `now`, a deadline at or before it would make a runner spin.
            Some(t) => assert!(t > self.now, "the model asks to be woken in the past"),
            None => {}
        }
    }

    fn send(&mut self, i: usize, bytes: &[u8], clean: bool) {
        let book = &mut self.conns[i];
        if !book.open {
            return;
        }
        book.clean &= clean;
        self.model.handle_data(ConnId(i as u64), bytes, self.now);
        self.drain();
    }

    fn request(&self, r: &FuzzRequest) -> Request {
        let sid = match r.sid {
            Sid::Issued(i) if !self.sids.is_empty() => self
                .sids
                .iter()
                .nth(usize::from(i) % self.sids.len())
                .copied(),
            Sid::Issued(_) | Sid::Absent => None,
            Sid::Raw(s) => Some(s),
        };
        let mut req = Request {
            sid,
            xid: r.xid,
            ..Default::default()
        };
        let path = |p: u8| pick(p).to_owned();
        match &r.op {
            ReqOp::Register(timeout) => {
                req.register = Some(rpc::RegisterRequest { timeout: *timeout })
            }
            ReqOp::Unregister => req.unregister = Some(rpc::UnRegisterRequest {}),
            ReqOp::Ping => req.ping = Some(rpc::PingRequest {}),
            ReqOp::Create(p, flags, data) => {
                req.create = Some(rpc::CreateRequest {
                    path: path(*p),
                    flags: *flags,
                    data: data.as_deref().map(Bytes::copy_from_slice),
                })
            }
            ReqOp::Delete(p) => req.delete = Some(rpc::DeleteRequest { path: path(*p) }),
            ReqOp::Write(p, data) => {
                req.write = Some(rpc::WriteRequest {
                    path: path(*p),
                    data: Bytes::copy_from_slice(data),
                })
            }
            ReqOp::Read(p) => req.read = Some(rpc::ReadRequest { path: path(*p) }),
            ReqOp::Stat(p) => req.stat = Some(rpc::StatRequest { path: path(*p) }),
            ReqOp::Empty => {}
        }
        req.watch = r.watch.map(|(p, mask, recursive)| rpc::WatchRequest {
            path: p.map(path),
            watch: mask,
            recursive,
        });
        req
    }

    fn step(&mut self, step: &ServerStep) {
        let now = self.now;
        match step {
            ServerStep::Connect(node) => {
                let id = self.conns.len();
                self.conns.push(ConnBook {
                    open: true,
                    clean: true,
                    ..ConnBook::default()
                });
                self.model
                    .handle_connect(usize::from(*node) % NODES, ConnId(id as u64), now);
                self.drain();
            }
            ServerStep::Requests(c, reqs, split) => {
                let Some(i) = self.conn(*c) else { return };
                let mut stream = Vec::new();
                for r in reqs.iter().take(64) {
                    let req = self.request(r);
                    *self.conns[i].asked.entry(req.xid.unwrap_or(0)).or_default() += 1;
                    stream.extend_from_slice(&encode_request(&req));
                }
                let at = usize::from(*split) % (stream.len() + 1);
                self.send(i, &stream[..at], true);
                self.send(i, &stream[at..], true);
            }
            ServerStep::Framed(c, payload) => {
                if let Some(i) = self.conn(*c) {
                    self.send(i, &framed(payload), false);
                }
            }
            ServerStep::Raw(c, bytes) => {
                if let Some(i) = self.conn(*c) {
                    self.send(i, bytes, false);
                }
            }
            ServerStep::Close(c) => {
                if let Some(i) = self.conn(*c) {
                    let book = &mut self.conns[i];
                    book.open = false;
                    book.clean = false;
                    self.model.handle_close(ConnId(i as u64), now);
                    self.drain();
                }
            }
            ServerStep::Tick(ms) => self.tick(u64::from(*ms)),
            ServerStep::MoveLeader(n) => {
                let _ = self.model.move_leader(usize::from(*n) % NODES, now);
                self.drain();
            }
            ServerStep::Kill(n) => {
                let _ = self.model.kill_node(usize::from(*n) % NODES, now);
                self.drain();
            }
            ServerStep::Restart(n) => {
                let _ = self.model.restart_node(usize::from(*n) % NODES, now);
                self.drain();
            }
            ServerStep::ElectionGap(ms) => {
                self.model
                    .start_election_gap(Duration::from_millis(u64::from(*ms)), now);
                self.drain();
            }
            ServerStep::Expire(i) => {
                if !self.sids.is_empty() {
                    let sid = self.sids.iter().nth(usize::from(*i) % self.sids.len());
                    if let Some(&sid) = sid {
                        self.model.expire_session(sid, now);
                    }
                    self.drain();
                }
            }
        }
    }

    fn tick(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.model.handle_timeout(self.now);
        self.drain();
    }

    /// Lets time run past every session timeout and election: every request on a clean,
    /// open connection must have been answered exactly once.
    fn finish(mut self) {
        for n in 0..NODES {
            let _ = self.model.restart_node(n, self.now);
        }
        self.drain();
        for _ in 0..10 {
            self.tick(30_000);
        }
        assert_eq!(self.model.in_flight_writes(), 0, "commits left pending");
        assert!(
            self.model.sessions().is_empty(),
            "sessions outlived their timeout"
        );
        for (i, book) in self.conns.iter().enumerate() {
            if book.open && book.clean {
                assert_eq!(
                    book.asked, book.answered,
                    "connection {i}: requests per xid vs answers per xid"
                );
            }
        }
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

/// The `server_input` fuzz body. `data` is read twice: as raw client bytes on one
/// connection to the leader, and through `arbitrary` as a [`ServerScript`] of
/// connections, well-framed requests (with sids the model issued), raw bytes, ticks and
/// cluster controls. Panics if an invariant breaks (see the module docs).
///
/// ```
/// pyxis_fuzz::server_input(b"\x00\x00\x00\x0cpyxi\x10\x01\x00\x00\x00\x00");
/// pyxis_fuzz::server_input(&[0x00; 64]);
/// ```
pub fn server_input(data: &[u8]) {
    let mut raw = Harness::new(false);
    raw.step(&ServerStep::Connect(0));
    raw.send(0, data, false);
    raw.finish();
    if let Ok(script) = ServerScript::arbitrary_take_rest(Unstructured::new(data)) {
        server_script(&script);
    }
}

/// Runs a [`ServerScript`] (its first 512 steps) against a three-node model, checking
/// the invariants of [`server_input`].
pub fn server_script(script: &ServerScript) {
    let mut h = Harness::new(script.apply_in_flight);
    for step in script.steps.iter().take(512) {
        h.step(step);
    }
    h.finish();
}
