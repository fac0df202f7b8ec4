//! The world of one run: client incarnations, the three-node server model and the links
//! between them, on a virtual clock driven by one event queue.
//!
//! Owns: the event queue (ordered by virtual time, then by insertion, so a run is a pure
//! function of its seed), the conversion between virtual microseconds and `Instant`s
//! (one base instant captured at the start; nothing in the trace depends on it), the
//! delivery of link chunks to the model and the cores, and the model's outputs and timer.
//! Must never read the wall clock after the base instant, never use a global RNG, and
//! never iterate a hash map where the order could show.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::{Duration, Instant};

use pyxis_testkit::model::{self, ClusterModel, ModelConfig, Output};

use crate::clients::Incarnation;
use crate::config::SimConfig;
use crate::net::{fragment, Chunk, Link, NetParams};
use crate::oracles::{Oracle, Violation};
use crate::trace::{bytes_key, Trace};

/// Number of server nodes.
pub const NODES: usize = 3;

/// Virtual µs per second.
pub const SEC: u64 = 1_000_000;

/// Virtual µs per millisecond.
pub const MS: u64 = 1_000;

/// The advertised address of node `n`.
pub fn node_addr(n: usize) -> String {
    format!("n{n}:7000")
}

/// The node an address names, if any.
pub fn addr_node(addr: &str) -> Option<usize> {
    let n: usize = addr
        .strip_prefix('n')?
        .strip_suffix(":7000")?
        .parse()
        .ok()?;
    (n < NODES).then_some(n)
}

/// Something scheduled on the virtual clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    ClientTimer {
        client: usize,
        gen: u64,
    },
    ModelTimer {
        gen: u64,
    },
    Establish {
        link: usize,
    },
    ConnectRefused {
        client: usize,
        conn: pyxis_core::ConnId,
    },
    DeliverUp {
        link: usize,
    },
    DeliverDown {
        link: usize,
    },
    Workload {
        slot: usize,
    },
    Fault,
    RestartNode {
        node: usize,
    },
    EndPartition {
        slot: usize,
    },
    Respawn {
        slot: usize,
        resume: Option<u64>,
    },
    /// The leader change of the fault "the leader answers kAgain mid-flight".
    AgainMidFlight {
        client: usize,
    },
    Check,
    FaultStop,
    LivenessCheck,
}

#[derive(Debug, PartialEq, Eq)]
struct Scheduled {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: earliest (then first inserted) on top.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Counters of one run, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations submitted.
    pub submitted: u64,
    /// Operations completed successfully.
    pub succeeded: u64,
    /// Watch events delivered (inferred ones included).
    pub watch_events: u64,
    /// Of those, inferred by the reconnect gap check.
    pub inferred_events: u64,
    /// Faults injected.
    pub faults: u64,
    /// `Connected` events.
    pub connects: u64,
    /// `Expired` events.
    pub expiries: u64,
    /// Writes the server answered kAgain.
    pub again_writes: u64,
    /// Re-registrations of every watch seen while a session stayed up (see the `rearm`
    /// oracle).
    pub rearm_alls: u64,
    /// Inputs a client core held back under its bound and was handed again.
    pub resumed_inputs: u64,
    /// Steps traced.
    pub steps: u64,
}

/// The whole simulated world of one run.
pub struct World {
    pub(crate) cfg: SimConfig,
    pub(crate) rng: fastrand::Rng,
    pub(crate) base: Instant,
    pub(crate) now: u64,
    pub(crate) end: u64,
    pub(crate) fault_stop: u64,
    pub(crate) workload_stop: u64,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    pub(crate) model: ClusterModel,
    model_timer_gen: u64,
    model_timer_at: Option<u64>,
    pub(crate) links: Vec<Link>,
    /// Link ids by the model's connection id (the same number).
    pub(crate) net: NetParams,
    pub(crate) clients: Vec<Incarnation>,
    /// The current incarnation of each workload slot.
    pub(crate) slots: Vec<usize>,
    /// Nodes each slot cannot reach, while partitioned.
    pub(crate) partitions: BTreeMap<usize, BTreeSet<usize>>,
    /// Last time a cluster-wide fault happened (µs).
    pub(crate) cluster_disturbed: u64,
    /// When the cluster changed (or lost) leadership, µs.
    pub(crate) leader_changes: Vec<u64>,
    /// The servers hold pings shorter than the clients ask (session bounds [1 s, 3 s]).
    pub(crate) short_bounds: bool,
    pub(crate) trace: Trace,
    pub(crate) violations: Vec<Violation>,
    pub(crate) stats: Stats,
}

impl World {
    /// A world for `cfg`, with its clients spawned and its first events scheduled.
    pub fn new(cfg: SimConfig) -> World {
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let base = Instant::now();
        let mut mc = ModelConfig::real_defaults();
        mc.addrs = (0..NODES).map(node_addr).collect();
        // One run in four: session bounds [1 s, 3 s], below the 5 s the clients ask for
        // (the server holds every idle ping about 2 s).
        let short_bounds = rng.u32(0..4) == 0;
        if short_bounds {
            mc.min_session_timeout = Duration::from_secs(1);
            mc.max_session_timeout = Duration::from_secs(3);
        }
        mc.in_flight_on_move = if rng.bool() {
            model::InFlightOnMove::Apply
        } else {
            model::InFlightOnMove::Drop
        };
        let model = ClusterModel::new(mc, NODES, base);
        let net = NetParams {
            min_delay_us: rng.u64(50..2_000),
            jitter_us: rng.u64(0..20_000),
            max_fragment: if rng.bool() { rng.usize(1..16) } else { 4096 },
            refuse_per_mille: rng.u32(0..100),
        };
        let end = cfg.virtual_secs.max(30) * SEC;
        let trace = Trace::new(cfg.trace_tail, cfg.keep_all);
        let mut world = World {
            rng,
            base,
            now: 0,
            end,
            fault_stop: end - 25 * SEC,
            workload_stop: end - 15 * SEC,
            queue: BinaryHeap::new(),
            seq: 0,
            model,
            model_timer_gen: 0,
            model_timer_at: None,
            links: Vec::new(),
            net,
            clients: Vec::new(),
            slots: Vec::new(),
            partitions: BTreeMap::new(),
            cluster_disturbed: 0,
            leader_changes: Vec::new(),
            short_bounds,
            trace,
            violations: Vec::new(),
            stats: Stats::default(),
            cfg,
        };
        let n_clients = 3 + world.rng.usize(0..4);
        for slot in 0..n_clients {
            world.slots.push(usize::MAX);
            world.spawn(slot, None);
            let first = world.rng.u64(0..200 * MS);
            world.schedule(first, Ev::Workload { slot });
        }
        let first_fault = world.rng.u64(500 * MS..3 * SEC);
        world.schedule(first_fault, Ev::Fault);
        world.schedule(SEC, Ev::Check);
        world.schedule(world.fault_stop, Ev::FaultStop);
        world.schedule(world.fault_stop + 15 * SEC, Ev::LivenessCheck);
        let on_move = world.model.config().in_flight_on_move;
        let bounds = (
            world.model.config().min_session_timeout,
            world.model.config().max_session_timeout,
        );
        world.record(("start", n_clients as u64), || {
            format!(
                "start: {n_clients} clients, net: {}, uncommitted writes on a leader change: {on_move:?}, session bounds {bounds:?}",
                world_net(&net)
            )
        });
        world.drain_model();
        world
    }

    /// Runs to the end and checks the end-of-run oracles.
    pub fn run(&mut self) {
        while let Some(s) = self.queue.pop() {
            if s.at > self.end {
                break;
            }
            self.now = s.at;
            self.dispatch(s.ev);
        }
        self.now = self.end;
        self.final_checks();
        self.stats.steps = self.trace.len();
    }

    // ----- time and scheduling -----

    /// The `Instant` of virtual µs `us`.
    pub(crate) fn instant(&self, us: u64) -> Instant {
        self.base + Duration::from_micros(us)
    }

    /// Virtual µs of an `Instant`, rounded up (a timer never fires before its deadline).
    pub(crate) fn us_of(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos.div_ceil(1_000)).unwrap_or(u64::MAX)
    }

    /// The current instant.
    pub(crate) fn now_instant(&self) -> Instant {
        self.instant(self.now)
    }

    pub(crate) fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    /// A one-way network delay.
    pub(crate) fn delay(&mut self) -> u64 {
        self.net.min_delay_us + self.rng.u64(0..=self.net.jitter_us)
    }

    pub(crate) fn record(&mut self, key: impl std::hash::Hash, text: impl FnOnce() -> String) {
        self.trace.record(self.now, key, text);
    }

    pub(crate) fn violation(&mut self, oracle: Oracle, detail: String) {
        let at = self.now;
        self.record(("violation", oracle as u8), || {
            format!("VIOLATION {oracle}: {detail}")
        });
        self.violations.push(Violation {
            oracle,
            at_us: at,
            detail,
        });
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::ClientTimer { client, gen } => self.client_timer(client, gen),
            Ev::ModelTimer { gen } => {
                if gen == self.model_timer_gen {
                    self.model_timer_at = None;
                    let now = self.now_instant();
                    self.record("model-timer", || "model: timeout".into());
                    self.model.handle_timeout(now);
                    self.drain_model();
                }
            }
            Ev::Establish { link } => self.establish(link),
            Ev::ConnectRefused { client, conn } => self.connect_refused(client, conn),
            Ev::DeliverUp { link } => self.deliver_up(link),
            Ev::DeliverDown { link } => self.deliver_down(link),
            Ev::Workload { slot } => self.workload(slot),
            Ev::Fault => self.fault(),
            Ev::RestartNode { node } => self.restart_node(node),
            Ev::EndPartition { slot } => {
                self.record(("heal-partition", slot), || {
                    format!("partition of slot {slot} healed")
                });
                self.partitions.remove(&slot);
            }
            Ev::Respawn { slot, resume } => self.spawn(slot, resume),
            Ev::Check => {
                self.periodic_checks();
                self.check_frame_liveness();
                let next = self.now + SEC;
                self.schedule(next, Ev::Check);
            }
            Ev::AgainMidFlight { client } => self.again_mid_flight_lands(client),
            Ev::FaultStop => self.fault_stop_now(),
            Ev::LivenessCheck => self.liveness_check("15 s after faults stopped"),
        }
    }

    // ----- the model -----

    /// Drains the model's outputs onto the links and re-arms its timer.
    pub(crate) fn drain_model(&mut self) {
        while let Some(out) = self.model.poll_output() {
            match out {
                Output::Send { conn, bytes } => {
                    let link = conn.0 as usize;
                    let Some(l) = self.links.get(link) else {
                        continue;
                    };
                    if !l.carries() || l.client_gone {
                        continue;
                    }
                    let Some(bytes) = self.stalled_cut(link, bytes) else {
                        continue;
                    };
                    self.record(("model-send", link, bytes_key(&bytes)), || {
                        format!(
                            "model answers on link {link}: {}",
                            crate::describe::describe_responses(&bytes)
                        )
                    });
                    let max = self.net.max_fragment;
                    for piece in fragment(&bytes, max, &mut self.rng) {
                        let d = self.delay();
                        let now = self.now;
                        let due = self.links[link].down.push(now, d, Chunk::Data(piece));
                        self.schedule(due, Ev::DeliverDown { link });
                    }
                }
                Output::Close { conn } => {
                    let link = conn.0 as usize;
                    let Some(l) = self.links.get_mut(link) else {
                        continue;
                    };
                    l.server_gone = true;
                    if l.blackholed || l.client_gone || l.stall == Some(true) {
                        continue;
                    }
                    let d = self.delay();
                    let now = self.now;
                    let due = self.links[link].down.push(now, d, Chunk::Fin);
                    self.schedule(due, Ev::DeliverDown { link });
                }
                _ => {}
            }
        }
        let want = self.model.poll_timeout().map(|t| self.us_of(t));
        if want != self.model_timer_at {
            self.model_timer_gen += 1;
            self.model_timer_at = want;
            if let Some(at) = want {
                let gen = self.model_timer_gen;
                self.schedule(at, Ev::ModelTimer { gen });
            }
        }
    }

    // ----- links -----

    /// A client asked to connect to `addr`.
    pub(crate) fn open_link(&mut self, client: usize, conn: pyxis_core::ConnId, addr: &str) {
        let slot = self.clients[client].slot;
        let node = addr_node(addr);
        let partitioned = node.is_some_and(|n| {
            self.partitions
                .get(&slot)
                .is_some_and(|set| set.contains(&n))
        });
        let refused = self.rng.u32(0..1000) < self.net.refuse_per_mille;
        let d = self.delay();
        match node {
            Some(n) if !partitioned && !refused => {
                let link = self.links.len();
                self.links.push(Link::new(client, conn, n));
                self.links[link].last_frame_at = self.now;
                self.clients[client].links.insert(conn, link);
                self.record(("connect", client, link, n), || {
                    format!("client {client}: connect {conn:?} to node {n} (link {link})")
                });
                self.schedule(self.now + d, Ev::Establish { link });
            }
            _ => {
                self.record(("refuse", client, conn.0), || {
                    format!("client {client}: connect {conn:?} to {addr} refused (partitioned: {partitioned})")
                });
                self.schedule(self.now + d, Ev::ConnectRefused { client, conn });
            }
        }
    }

    fn establish(&mut self, link: usize) {
        let l = &mut self.links[link];
        if l.client_gone || !l.carries() {
            l.server_gone = true;
            return;
        }
        l.established = true;
        let node = l.node;
        let now = self.now_instant();
        self.record(("establish", link), || {
            format!("link {link}: established at node {node}")
        });
        self.model
            .handle_connect(node, model::ConnId(link as u64), now);
        let d = self.delay();
        let at = self.now;
        let due = self.links[link].down.push(at, d, Chunk::Open);
        self.schedule(due, Ev::DeliverDown { link });
        self.drain_model();
    }

    /// A client sends bytes on its connection.
    pub(crate) fn send_up(&mut self, link: usize, data: &bytes::Bytes) {
        let Some(l) = self.links.get(link) else {
            return;
        };
        if !l.carries() || !l.established || l.server_gone {
            return;
        }
        let max = self.net.max_fragment;
        for piece in fragment(data, max, &mut self.rng) {
            let d = self.delay();
            let now = self.now;
            let due = self.links[link].up.push(now, d, Chunk::Data(piece));
            self.schedule(due, Ev::DeliverUp { link });
        }
    }

    /// A client closes its connection (or crashed): the server sees the close after the
    /// bytes already in flight.
    pub(crate) fn close_from_client(&mut self, link: usize) {
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        if l.client_gone {
            return;
        }
        l.client_gone = true;
        l.down.clear();
        if l.established && !l.server_gone && l.carries() {
            let d = self.delay();
            let now = self.now;
            let due = self.links[link].up.push(now, d, Chunk::Fin);
            self.schedule(due, Ev::DeliverUp { link });
        }
    }

    /// Resets a link: queued bytes are lost and both ends see a close.
    pub(crate) fn reset_link(&mut self, link: usize) {
        self.excuse_cut_link(link);
        let l = &mut self.links[link];
        if l.reset || l.blackholed {
            return;
        }
        l.reset = true;
        l.up.clear();
        l.down.clear();
        let (to_server, to_client) = (l.established && !l.server_gone, !l.client_gone);
        let now = self.now;
        if to_server {
            let d = self.delay();
            let due = self.links[link].up.push(now, d, Chunk::Fin);
            self.schedule(due, Ev::DeliverUp { link });
        }
        if to_client {
            let d = self.delay();
            let due = self.links[link].down.push(now, d, Chunk::Fin);
            self.schedule(due, Ev::DeliverDown { link });
        }
    }

    /// Blackholes a link: everything is silently dropped from now on, with no close.
    pub(crate) fn blackhole_link(&mut self, link: usize) {
        self.excuse_cut_link(link);
        let l = &mut self.links[link];
        if l.reset {
            return;
        }
        l.blackholed = true;
        l.up.clear();
        l.down.clear();
    }

    fn deliver_up(&mut self, link: usize) {
        let now_us = self.now;
        let chunks = self.links[link].up.take_due(now_us);
        let now = self.now_instant();
        for c in chunks {
            if self.links[link].server_gone {
                break;
            }
            match c {
                Chunk::Data(b) => {
                    self.record(("up", link, bytes_key(&b)), || {
                        format!("link {link}: {} bytes to server", b.len())
                    });
                    self.model.handle_data(model::ConnId(link as u64), &b, now);
                }
                Chunk::Fin => {
                    self.record(("up-fin", link), || {
                        format!("link {link}: closed towards server")
                    });
                    self.links[link].server_gone = true;
                    self.model.handle_close(model::ConnId(link as u64), now);
                }
                Chunk::Open => {}
            }
            self.drain_model();
        }
    }

    fn deliver_down(&mut self, link: usize) {
        let client = self.links[link].client;
        let paused_until = self.clients[client].paused_until;
        if paused_until > self.now {
            // The client process is frozen: its socket buffers the bytes.
            self.schedule(paused_until, Ev::DeliverDown { link });
            return;
        }
        let now_us = self.now;
        let chunks = self.links[link].down.take_due(now_us);
        if chunks.is_empty() || self.links[link].client_gone {
            return;
        }
        let conn = self.links[link].core_conn;
        let mut data = Vec::new();
        for c in chunks {
            match c {
                Chunk::Data(b) => data.extend_from_slice(&b),
                other => {
                    if !data.is_empty() {
                        self.client_data(client, link, conn, &std::mem::take(&mut data));
                    }
                    match other {
                        Chunk::Open => self.client_connected(client, link, conn),
                        _ => self.client_closed(client, link, conn),
                    }
                }
            }
            if self.links[link].client_gone {
                return;
            }
        }
        if !data.is_empty() {
            self.client_data(client, link, conn, &data);
        }
    }
}

fn world_net(n: &NetParams) -> String {
    format!(
        "delay {}..{} µs, fragments ≤ {} B, {}‰ refused",
        n.min_delay_us,
        n.min_delay_us + n.jitter_us,
        n.max_fragment,
        n.refuse_per_mille
    )
}
