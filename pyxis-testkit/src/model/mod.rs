//! The Pyxis server model: sans-IO, deterministic, every client-visible rule of
//! [protocol](pyxis_proto::protocol) §1 and §3–§9 for a cluster of N nodes sharing one replicated
//! state.
//!
//! Owns: sessions, the node tree, watches, held pings, the commit queue, leadership and
//! the connections' frame decoders. Must never read a clock, sleep, spawn, touch a socket
//! or use a global RNG: time is the `now` passed to every input, and the same inputs give
//! the same outputs byte for byte (ordered maps everywhere iteration order shows).
//!
//! # Driving it
//!
//! [`ClusterModel`] is driven like the client core:
//!
//! - **inputs**: [`handle_connect`](ClusterModel::handle_connect),
//!   [`handle_data`](ClusterModel::handle_data), [`handle_close`](ClusterModel::handle_close)
//!   for connections (keyed by a [`ConnId`] the caller picks), and
//!   [`handle_timeout`](ClusterModel::handle_timeout) once the instant returned by
//!   [`poll_timeout`](ClusterModel::poll_timeout) has passed;
//! - **controls**: [`move_leader`](ClusterModel::move_leader),
//!   [`kill_node`](ClusterModel::kill_node), [`restart_node`](ClusterModel::restart_node),
//!   [`start_election_gap`](ClusterModel::start_election_gap),
//!   [`expire_session`](ClusterModel::expire_session),
//!   [`set_extra_commit_delay`](ClusterModel::set_extra_commit_delay),
//!   [`set_drop_answers`](ClusterModel::set_drop_answers),
//!   [`inject_garbage`](ClusterModel::inject_garbage);
//! - **outputs**, after every input or control: drain
//!   [`poll_output`](ClusterModel::poll_output) until `None`, then ask
//!   [`poll_timeout`](ClusterModel::poll_timeout) when to call `handle_timeout` next;
//! - **inspection** for oracles: [`node`](ClusterModel::node),
//!   [`sessions`](ClusterModel::sessions), [`leader`](ClusterModel::leader),
//!   [`applied_ops`](ClusterModel::applied_ops).
//!
//! ```
//! use pyxis_testkit::model::{ClusterModel, ConnId, ModelConfig, Output};
//! use pyxis_proto::{encode_request, rpc::{Request, RegisterRequest}, FrameDecoder};
//! use std::time::{Duration, Instant};
//!
//! let t0 = Instant::now();
//! let mut model = ClusterModel::new(ModelConfig::fast(), 1, t0);
//! model.handle_connect(0, ConnId(1), t0);
//! let register = Request { xid: Some(1), register: Some(RegisterRequest { timeout: Some(1000) }),
//! ..Default::default() }; model.handle_data(ConnId(1), &encode_request(&register), t0);
//! assert!(model.poll_output().is_none()); // a register waits for its commit
//! let commit = model.poll_timeout().unwrap();
//! model.handle_timeout(commit);
//! let Some(Output::Send { bytes, .. }) = model.poll_output() else { panic!("no answer") };
//! let mut decoder = FrameDecoder::new();
//! decoder.extend(&bytes);
//! let answer = decoder.next_response().unwrap().unwrap();
//! assert_eq!(answer.sid, Some(model.sessions()[0]));
//! ```

mod config;
mod dispatch;
mod leadership;
mod proc_tree;
mod session;
mod store;
mod types;
mod watch;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyxis_proto::{store as pb_store, FrameDecoder};

pub use config::{InFlightOnMove, ModelConfig};
pub use types::{AppliedKind, AppliedOp, ConnId, ControlError, NodeSnapshot, Output, SessionEnd};

use dispatch::PendingCommit;
use session::{Clock, Session};
use store::Store;
use watch::Watches;

/// One server of the cluster.
#[derive(Debug, Clone)]
struct NodeState {
    up: bool,
    addr: String,
}

/// An open client connection.
#[derive(Debug)]
struct Conn {
    node: usize,
    decoder: FrameDecoder,
}

/// A pending election: when it ends and which node should win.
#[derive(Debug, Clone, Copy)]
struct Election {
    ends: Instant,
    candidate: Option<usize>,
}

/// The server model: N nodes sharing one replicated state. See the [module docs](self)
/// for how to drive it.
#[derive(Debug)]
pub struct ClusterModel {
    config: ModelConfig,
    clock: Clock,
    nodes: Vec<NodeState>,
    leader: Option<usize>,
    election: Option<Election>,
    /// A killed leader the other nodes still name, until when.
    dead_leader: Option<(usize, Instant)>,
    store: Store,
    sessions: BTreeMap<u64, Session>,
    watches: Watches,
    conns: BTreeMap<ConnId, Conn>,
    commits: VecDeque<PendingCommit>,
    extra_commit_delay: Duration,
    drop_answers: bool,
    next_tick: u64,
    sid_counter: u64,
    last_sid: u64,
    event_seq: u64,
    applied_seq: u64,
    history: VecDeque<AppliedOp>,
    outputs: VecDeque<Output>,
    dirty: BTreeSet<u64>,
}

impl ClusterModel {
    /// A cluster of `nodes` nodes (at least one), all up, node 0 leading, empty store.
    pub fn new(config: ModelConfig, nodes: usize, now: Instant) -> Self {
        let count = nodes.max(1);
        let node_states = (0..count)
            .map(|i| NodeState {
                up: true,
                addr: config
                    .addrs
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("127.0.0.1:{}", 7000 + i)),
            })
            .collect();
        let clock = Clock {
            epoch: now,
            interval: config.interval(),
        };
        Self {
            config,
            clock,
            nodes: node_states,
            leader: Some(0),
            election: None,
            dead_leader: None,
            store: Store::new(),
            sessions: BTreeMap::new(),
            watches: Watches::default(),
            conns: BTreeMap::new(),
            commits: VecDeque::new(),
            extra_commit_delay: Duration::ZERO,
            drop_answers: false,
            next_tick: 1,
            sid_counter: 0,
            last_sid: 0,
            event_seq: 0,
            applied_seq: 0,
            history: VecDeque::new(),
            outputs: VecDeque::new(),
            dirty: BTreeSet::new(),
        }
    }

    // ----- inputs -------------------------------------------------------------------

    /// A client connected to `node`. A connection to a killed (or unknown) node is closed
    /// at once.
    pub fn handle_connect(&mut self, node: usize, conn: ConnId, now: Instant) {
        self.advance(now);
        if self.nodes.get(node).is_some_and(|n| n.up) {
            let decoder = FrameDecoder::with_max_frame_len(self.config.max_frame_len);
            self.conns.insert(conn, Conn { node, decoder });
        } else {
            self.conns.remove(&conn);
            self.outputs.push_back(Output::Close { conn });
        }
    }

    /// Bytes arrived on `conn`. Whole requests are handled in order; a bad frame (or a
    /// request missing a required field) closes the connection without an answer.
    pub fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.advance(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.decoder.extend(data);
        while let Some(c) = self.conns.get_mut(&conn) {
            let node = c.node;
            match c.decoder.next_request() {
                Ok(Some(request)) => self.handle_request(conn, node, request, now),
                Ok(None) => break,
                Err(_) => {
                    self.conns.remove(&conn);
                    self.outputs.push_back(Output::Close { conn });
                    break;
                }
            }
        }
        self.advance(now);
    }

    /// The client closed `conn` (or it broke). Answers still due to it are dropped; a ping
    /// it holds stays held, and an event later handed to that ping is lost, as on the real
    /// server.
    pub fn handle_close(&mut self, conn: ConnId, now: Instant) {
        self.advance(now);
        self.conns.remove(&conn);
    }

    /// Time has reached `now`: commits, session checks and elections that are due happen.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    // ----- outputs ------------------------------------------------------------------

    /// The next thing to do on a connection.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let commit = self.commits.front().map(|c| c.due);
        let election = self.election.map(|e| e.ends);
        let tick = (self.leader.is_some() && !self.sessions.is_empty())
            .then(|| self.clock.instant_of(self.next_tick));
        [commit, election, tick].into_iter().flatten().min()
    }

    // ----- controls -----------------------------------------------------------------

    /// Expires session `sid` now (ephemeral nodes deleted with their events). Returns
    /// whether it was alive.
    pub fn expire_session(&mut self, sid: u64, now: Instant) -> bool {
        self.advance(now);
        if !self.sessions.contains_key(&sid) {
            return false;
        }
        self.end_session(sid, SessionEnd::Expired, now, false);
        self.deliver_events();
        true
    }

    /// Adds `delay` to the commit delay of writes received from now on.
    pub fn set_extra_commit_delay(&mut self, delay: Duration) {
        self.extra_commit_delay = delay;
    }

    /// While on, every answer is computed (state changes happen) but not sent.
    pub fn set_drop_answers(&mut self, drop: bool) {
        self.drop_answers = drop;
    }

    /// Sends `garbage` on every open connection of node `n` (to test a client's handling
    /// of bad frames).
    pub fn inject_garbage(&mut self, n: usize, garbage: Bytes) -> Result<(), ControlError> {
        if n >= self.nodes.len() {
            return Err(ControlError::NoSuchNode(n));
        }
        for (conn, c) in &self.conns {
            if c.node == n {
                self.outputs.push_back(Output::Send {
                    conn: *conn,
                    bytes: garbage.clone(),
                });
            }
        }
        Ok(())
    }

    /// Sets the client address node `n` advertises (kNotLeader data, `/pyxis/cluster`).
    pub fn set_node_addr(&mut self, n: usize, addr: impl Into<String>) -> Result<(), ControlError> {
        let node = self.nodes.get_mut(n).ok_or(ControlError::NoSuchNode(n))?;
        node.addr = addr.into();
        Ok(())
    }

    // ----- inspection ---------------------------------------------------------------

    /// The node at `path` as a stat would show it now (proc nodes included).
    pub fn node(&self, path: &str) -> Option<NodeSnapshot> {
        let n = self.lookup(path).ok()??;
        Some(NodeSnapshot {
            data: n.data.unwrap_or_default(),
            children: n.children,
            flags: n.flags.unwrap_or(0),
            version: n.version.unwrap_or(0),
            owner: n.sid,
        })
    }

    /// Live session ids, ascending.
    pub fn sessions(&self) -> Vec<u64> {
        self.sessions.keys().copied().collect()
    }

    /// A live session's clamped timeout.
    pub fn session_timeout(&self, sid: u64) -> Option<Duration> {
        self.sessions.get(&sid).map(|s| s.timeout)
    }

    /// Whether session `sid` holds a ping now.
    pub fn holds_ping(&self, sid: u64) -> bool {
        self.sessions
            .get(&sid)
            .is_some_and(|s| s.held_ping.is_some())
    }

    /// Whether session `sid` has a watch on `path`.
    pub fn has_watch(&self, sid: u64, path: &str) -> bool {
        self.watches.contains(sid, path)
    }

    /// The current leader, if one is known.
    pub fn leader(&self) -> Option<usize> {
        self.leader
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether node `n` is up.
    pub fn is_up(&self, n: usize) -> bool {
        self.nodes.get(n).is_some_and(|s| s.up)
    }

    /// The address node `n` advertises.
    pub fn node_addr(&self, n: usize) -> String {
        self.nodes
            .get(n)
            .map(|s| s.addr.clone())
            .unwrap_or_default()
    }

    /// Open connections, ascending.
    pub fn connections(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    /// Writes waiting for their commit.
    pub fn in_flight_writes(&self) -> usize {
        self.commits.len()
    }

    /// The applied-operation history, oldest first (at most `history_limit` entries).
    pub fn applied_ops(&self) -> impl Iterator<Item = &AppliedOp> + '_ {
        self.history.iter()
    }

    /// The settings.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    // ----- internals ----------------------------------------------------------------

    fn check_up(&self, n: usize) -> Result<(), ControlError> {
        match self.nodes.get(n) {
            None => Err(ControlError::NoSuchNode(n)),
            Some(s) if !s.up => Err(ControlError::NodeDown(n)),
            Some(_) => Ok(()),
        }
    }

    /// A stat view of `path`: a proc node (for any path starting with `/pyxis`) or a
    /// stored one; `Ok(None)` when there is none, an error where the proc tree answers
    /// one.
    fn lookup(&self, path: &str) -> Result<Option<pb_store::Node>, store::Refusal> {
        if store::is_proc_path(path) {
            return self.proc_node(path);
        }
        Ok(self.store.get(path).map(store::StoredNode::to_proto))
    }

    /// Whole seconds since the Unix epoch at model time `at` (for the session proc node).
    fn wall_secs(&self, at: Instant) -> u64 {
        (self.config.wall_clock + at.saturating_duration_since(self.clock.epoch)).as_secs()
    }

    /// Processes everything due at or before `now`, in time order.
    fn advance(&mut self, now: Instant) {
        loop {
            let commit = self.commits.front().map(|c| c.due);
            let election = self.election.map(|e| e.ends);
            let tick = self.clock.instant_of(self.next_tick);
            let earliest = [commit, election, Some(tick)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(tick);
            if earliest > now {
                break;
            }
            if election == Some(earliest) {
                self.finish_election(earliest);
            } else if commit == Some(earliest) {
                if let Some(c) = self.commits.pop_front() {
                    let rsp = self.apply_commit(&c, earliest, true);
                    // Events for held pings go out before the answer that caused them.
                    self.deliver_events();
                    self.send(c.conn, rsp);
                }
            } else {
                let bound = [commit, election, Some(now)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(now);
                let k = self.clock.tick_at(bound).max(self.next_tick);
                self.next_tick = k.saturating_add(1);
                if self.leader.is_some() {
                    self.check_sessions(k, self.clock.instant_of(k));
                }
                if self.clock.instant_of(self.next_tick) <= earliest {
                    // Only on instant overflow (centuries): stop rather than spin.
                    self.deliver_events();
                    break;
                }
            }
            self.deliver_events();
        }
    }

    /// The session check of tick `k`: answer the held pings of sessions whose expiry
    /// tick is the next one, and expire sessions whose expiry tick has passed. Like the
    /// original, a silent session goes one tick after its expiry tick: two ticks after its
    /// last ping was answered, somewhat after T.
    fn check_sessions(&mut self, k: u64, at: Instant) {
        let expired: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expiry_tick < k)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in expired {
            self.end_session(sid, SessionEnd::Expired, at, false);
        }
        let due: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expiry_tick <= k.saturating_add(1) && s.held_ping.is_some())
            .map(|(sid, _)| *sid)
            .collect();
        for sid in due {
            self.release_ping(sid);
        }
    }

    fn record(
        &mut self,
        sid: u64,
        xid: Option<u64>,
        path: &str,
        kind: AppliedKind,
        acknowledged: bool,
        at: Instant,
    ) {
        self.applied_seq += 1;
        self.history.push_back(AppliedOp {
            seq: self.applied_seq,
            sid,
            xid,
            path: path.to_owned(),
            kind,
            acknowledged,
            at,
        });
        while self.history.len() > self.config.history_limit {
            self.history.pop_front();
        }
    }
}
