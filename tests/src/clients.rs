//! Client incarnations: a pyxis-core `Client` per running client process, driven through
//! its documented loop, with the books the oracles need (pending requests, watches,
//! session ids) and the fault-injecting wrappers of the broken variants.
//!
//! Owns: [`Incarnation`], feeding inputs to a core and draining its outputs in the
//! documented order (io, transmits, events, timeout), resuming the input a core holds
//! back under `Config::frames_per_input` (drain, then `handle_data` with no new bytes,
//! while `buffered_input` names a connection, as the adapters' loops do), and the
//! per-event oracle checks
//! (each request completes exactly once and in time; `Expired` follows `Connected` when
//! the sid changed, and only for a dead session). Must never reach into the core's
//! internals: everything goes through its public API (the variants wrap it from outside).

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use pyxis_core::{
    Client, Config, ConnId, Error, Event, IoAction, Op, Reply, RequestId, SessionEvent, WatchEvent,
    WatchId, WatchSpec,
};
use pyxis_proto::{encode_frame, FrameDecoder};

use crate::config::{InputTurns, Variant};
use crate::history::Shape;
use crate::oracles::Oracle;
use crate::world::{node_addr, Ev, World, MS, NODES, SEC};

/// A kNotLeader answer on its way to a client, or read by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The link it was sent on.
    pub link: usize,
    /// Whether the client has read it.
    pub read: bool,
}

/// Slack past a request's deadline before its completion counts as late (a timer fires
/// at its deadline; only the network's last delivery can be in between).
pub const DEADLINE_SLACK: u64 = 50 * MS;

/// An operation submitted and not yet completed.
#[derive(Debug, Clone)]
pub(crate) struct PendingReq {
    pub op: Op,
    pub submitted: u64,
    /// Latest acceptable completion (deadline + slack, pushed out by pauses).
    pub allowed_until: u64,
}

/// An operation's completion, kept for the end-of-run history checks.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub client: usize,
    pub op: Op,
    pub submitted: u64,
    pub completed: u64,
    pub result: Result<Reply, Error>,
}

/// An application watch the oracles follow.
#[derive(Debug, Clone)]
pub(crate) struct TrackedWatch {
    pub spec: WatchSpec,
    pub created: u64,
    /// What the read that armed it saw (`None` for standalone watches).
    pub baseline: Option<Shape>,
    pub events: Vec<(u64, WatchEvent)>,
    pub done: bool,
}

/// One run of one client process.
pub(crate) struct Incarnation {
    pub slot: usize,
    pub core: Client,
    pub crashed: bool,
    pub close_called: bool,
    pub closed: bool,
    pub paused_until: u64,
    pub timer_gen: u64,
    pub timer_at: Option<u64>,
    pub links: BTreeMap<ConnId, usize>,
    /// The link the session is up on (set at `Connected`, cleared at `Disconnected`).
    pub up_link: Option<usize>,
    pub pending: BTreeMap<RequestId, PendingReq>,
    pub watches: BTreeMap<WatchId, TrackedWatch>,
    /// The sid of the session last reported `Connected` (or being resumed).
    pub sid: Option<u64>,
    pub sids: BTreeSet<u64>,
    pub connects: u64,
    pub expect_expired: Option<u64>,
    /// When each `Expired` was delivered.
    pub expired_at: Vec<u64>,
    pub disturbed: u64,
    pub finished: Vec<Finished>,
    pub counter: u64,
    pub session_came_up: bool,
    /// Every `Connected { sid }`, with its time.
    pub connected_sids: Vec<(u64, u64)>,
    /// When it started (µs).
    pub started: u64,
    /// Whether it started by resuming a session.
    pub resumed: bool,
    /// Writes the server answered kNotLeader and not sent again: the link, and whether
    /// the answer has reached the client.
    pub refused: BTreeMap<RequestId, Refusal>,
    /// Writes the server answered kAgain, with the link (never forgotten: such a write
    /// must never be sent again).
    pub again: BTreeMap<RequestId, usize>,
    /// Re-registrations of every watch seen while the session stayed up.
    pub rearm_alls: u64,
    /// Pauses of the process.
    pub pauses: u64,
    /// Expiries of its session forced at the server.
    pub forced_expiries: u64,
    /// Stat + watch requests written by the [`Variant::RearmOnEveryAnswer`] wrapper.
    pub injected: u64,
    /// The session `close` must end (its sid when `close` was called).
    pub closing_sid: Option<u64>,
    /// `CloseUnconfirmed` was reported.
    pub close_unconfirmed: bool,
    /// When `Closed` was reported (µs).
    pub closed_at: u64,
    /// The sessions its Registers made were checked after `Closed`.
    pub made_sessions_checked: bool,
    /// Closes as soon as it registers a session without sid (a fault).
    pub close_on_register: bool,
    /// When each watch registration whose answer it read reached the server (µs), by
    /// path, in order.
    pub registered: BTreeMap<String, Vec<u64>>,
}

impl World {
    /// Starts a new incarnation in `slot` (resuming `resume` if given).
    pub(crate) fn spawn(&mut self, slot: usize, resume: Option<u64>) {
        let idx = self.clients.len();
        let mut config = Config::new((0..NODES).map(node_addr));
        config.seed = self.rng.u64(..);
        config.resume_sid = resume;
        if self.cfg.variant == Variant::NoPingLiveness {
            config.ping_grace = std::time::Duration::from_secs(3600);
        }
        config.frames_per_input = match self.cfg.input_turns {
            InputTurns::Unbounded => None,
            InputTurns::Fixed(n) => Some(n),
            InputTurns::Drawn => {
                let drawn = InputTurns::DRAWN_FROM[self.rng.usize(0..InputTurns::DRAWN_FROM.len())];
                drawn.and_then(std::num::NonZeroUsize::new)
            }
        };
        let bound = config.frames_per_input;
        let now = self.now_instant();
        let core = match Client::new(config, now) {
            Ok(c) => c,
            Err(e) => {
                self.violation(Oracle::Panic, format!("config refused: {e}"));
                return;
            }
        };
        self.record(("spawn", slot, idx, resume), || {
            let turns = bound.map_or(String::new(), |n| format!(", {n} frames per input"));
            format!("slot {slot}: client {idx} starts (resume sid {resume:?}{turns})")
        });
        self.clients.push(Incarnation {
            slot,
            core,
            crashed: false,
            close_called: false,
            closed: false,
            paused_until: 0,
            timer_gen: 0,
            timer_at: None,
            links: BTreeMap::new(),
            up_link: None,
            pending: BTreeMap::new(),
            watches: BTreeMap::new(),
            sid: resume,
            sids: resume.into_iter().collect(),
            connects: 0,
            expect_expired: None,
            expired_at: Vec::new(),
            disturbed: self.now,
            finished: Vec::new(),
            counter: 0,
            session_came_up: false,
            connected_sids: Vec::new(),
            started: self.now,
            resumed: resume.is_some(),
            refused: BTreeMap::new(),
            again: BTreeMap::new(),
            rearm_alls: 0,
            pauses: 0,
            forced_expiries: 0,
            injected: 0,
            closing_sid: None,
            close_unconfirmed: false,
            closed_at: 0,
            made_sessions_checked: false,
            close_on_register: false,
            registered: BTreeMap::new(),
        });
        self.slots[slot] = idx;
        self.drain_client(idx);
    }

    pub(crate) fn client_timer(&mut self, client: usize, gen: u64) {
        let c = &mut self.clients[client];
        if c.crashed || gen != c.timer_gen {
            return;
        }
        if c.paused_until > self.now {
            let at = c.paused_until;
            self.schedule(at, Ev::ClientTimer { client, gen });
            return;
        }
        c.timer_at = None;
        let now = self.now_instant();
        self.record(("timer", client), || format!("client {client}: timeout"));
        self.clients[client].core.handle_timeout(now);
        self.drain_client(client);
    }

    pub(crate) fn connect_refused(&mut self, client: usize, conn: ConnId) {
        if self.clients[client].crashed {
            return;
        }
        if self.clients[client].paused_until > self.now {
            let at = self.clients[client].paused_until;
            self.schedule(at, Ev::ConnectRefused { client, conn });
            return;
        }
        let now = self.now_instant();
        self.record(("refused", client, conn.0), || {
            format!("client {client}: {conn:?} refused")
        });
        self.clients[client].core.handle_closed(conn, now);
        self.drain_client(client);
    }

    pub(crate) fn client_connected(&mut self, client: usize, link: usize, conn: ConnId) {
        let now = self.now_instant();
        self.record(("open", client, link), || {
            format!("client {client}: {conn:?} (link {link}) open")
        });
        self.links[link].last_frame_at = self.now;
        self.clients[client].core.handle_connected(conn, now);
        self.drain_client_on(client, Some(link));
    }

    pub(crate) fn client_data(&mut self, client: usize, link: usize, conn: ConnId, data: &[u8]) {
        let now = self.now_instant();
        let key = crate::trace::bytes_key(data);
        self.record(("down", client, link, key), || {
            format!("client {client}: {} bytes on link {link}", data.len())
        });
        let data = self.delivered_to_client(client, link, data);
        let before = self.clients[client].core.state();
        self.clients[client].core.handle_data(conn, &data, now);
        let Some(bound) = self.clients[client].core.config().frames_per_input else {
            self.after_input(client, link, conn, before, &data);
            return;
        };
        // With a bound, the core handled at most `bound` frames of what it holds; the
        // variants' wrappers see the frames each turn handled. Until the core has handled
        // everything, its outputs are drained and it is handed the rest again, as the
        // adapters' loops do (nothing more is read from the connection meanwhile).
        self.links[link].turns.extend(&data);
        let (mut link, mut conn, mut before) = (link, conn, before);
        loop {
            let held = self.clients[client].core.buffered_input() == Some(conn);
            let handled = self.frames_handled(link, held.then_some(bound.get()));
            self.after_input(client, link, conn, before, &handled);
            let c = &self.clients[client];
            let Some((next, next_link)) = c
                .core
                .buffered_input()
                .filter(|_| !c.crashed)
                .and_then(|held| Some((held, *c.links.get(&held)?)))
            else {
                return;
            };
            (link, conn) = (next_link, next);
            self.stats.resumed_inputs += 1;
            self.record(("turn", client, link), || {
                format!("client {client}: handles the answers it holds on link {link}")
            });
            before = self.clients[client].core.state();
            let now = self.now_instant();
            self.clients[client].core.handle_data(conn, &[], now);
        }
    }

    /// After an input of `data` (what the core handled of it) on `conn` (`link`), which
    /// found the session in state `before`: the variants' wrappers, then the outputs.
    fn after_input(
        &mut self,
        client: usize,
        link: usize,
        conn: ConnId,
        before: pyxis_core::SessionState,
        data: &[u8],
    ) {
        self.drop_on_not_leader(client, link, conn, data);
        self.rearm_on_every_answer(client, link, data);
        let c = &mut self.clients[client];
        // A session came up on this input: its first transmit carries the re-registrations.
        c.session_came_up = before == pyxis_core::SessionState::Registering
            && c.core.state() == pyxis_core::SessionState::Connected;
        self.drain_client_on(client, Some(link));
        self.clients[client].session_came_up = false;
        self.close_if_registering_anew(client);
    }

    /// The frames a core's turn handled of what it was given on `link`: `limit` of them
    /// when it stopped at its bound, else every complete one (re-encoded, whole).
    fn frames_handled(&mut self, link: usize, limit: Option<usize>) -> Bytes {
        let turns = &mut self.links[link].turns;
        let mut out = BytesMut::new();
        for _ in 0..limit.unwrap_or(usize::MAX) {
            let Ok(Some(rsp)) = turns.next_response() else {
                break;
            };
            out.extend_from_slice(&pyxis_proto::encode_response(&rsp));
        }
        out.freeze()
    }

    pub(crate) fn client_closed(&mut self, client: usize, link: usize, conn: ConnId) {
        let now = self.now_instant();
        self.record(("closed", client, link), || {
            format!("client {client}: {conn:?} (link {link}) closed by the network")
        });
        self.links[link].client_gone = true;
        self.clients[client].core.handle_closed(conn, now);
        self.drain_client(client);
    }

    /// The application submits `op` on `client`.
    pub(crate) fn submit(&mut self, client: usize, op: Op) -> RequestId {
        let now = self.now_instant();
        let c = &mut self.clients[client];
        let timeout = c.core.config().request_timeout;
        let id = c.core.submit(op.clone(), now);
        let allowed_until = self.now + timeout.as_micros() as u64 + DEADLINE_SLACK;
        c.pending.insert(
            id,
            PendingReq {
                op: op.clone(),
                submitted: self.now,
                allowed_until,
            },
        );
        self.stats.submitted += 1;
        self.record(("submit", client, id.0, format!("{op:?}")), || {
            format!("client {client}: submit #{} {}", id.0, op_text(&op))
        });
        self.drain_client(client);
        id
    }

    /// Drains a core's outputs after an input.
    pub(crate) fn drain_client(&mut self, client: usize) {
        self.drain_client_on(client, None);
    }

    fn drain_client_on(&mut self, client: usize, via: Option<usize>) {
        for _round in 0..64 {
            if self.clients[client].crashed {
                return;
            }
            let mut progressed = false;
            while let Some(io) = self.clients[client].core.poll_io() {
                progressed = true;
                match io {
                    IoAction::Connect { conn, addr } => self.open_link(client, conn, &addr),
                    IoAction::Close { conn } => {
                        self.record(("close", client, conn.0), || {
                            format!("client {client}: closes {conn:?}")
                        });
                        if let Some(link) = self.clients[client].links.get(&conn).copied() {
                            self.close_from_client(link);
                        }
                    }
                    other => self.violation(Oracle::Panic, format!("unknown io action {other:?}")),
                }
            }
            while let Some(t) = self.clients[client].core.poll_transmit() {
                progressed = true;
                let data = if self.cfg.variant == Variant::NoWatchReregistration
                    && self.clients[client].connects > 0
                    && self.clients[client].session_came_up
                {
                    drop_rearms(&t.data)
                } else {
                    t.data.clone()
                };
                self.note_client_requests(client, &data);
                self.note_rearms(client, &data);
                if let Some(link) = self.clients[client].links.get(&t.conn).copied() {
                    self.record(
                        ("transmit", client, link, crate::trace::bytes_key(&data)),
                        || {
                            format!(
                                "client {client}: writes on link {link}: {}",
                                crate::describe::describe_requests(&data)
                            )
                        },
                    );
                    self.note_arm_requests(link, &data);
                    self.send_up(link, &data);
                }
            }
            let mut events = Vec::new();
            while let Some(ev) = self.clients[client].core.poll_event() {
                events.push(ev);
            }
            for ev in events {
                progressed = true;
                self.on_event(client, ev, via);
            }
            if !progressed {
                break;
            }
        }
        let c = &mut self.clients[client];
        let want = c.core.poll_timeout().map(|t| {
            u64::try_from(
                t.saturating_duration_since(self.base)
                    .as_nanos()
                    .div_ceil(1_000),
            )
            .unwrap_or(u64::MAX)
        });
        if want != c.timer_at {
            c.timer_gen += 1;
            c.timer_at = want;
            if let Some(at) = want {
                let gen = c.timer_gen;
                self.schedule(at, Ev::ClientTimer { client, gen });
            }
        }
    }

    fn on_event(&mut self, client: usize, ev: Event, via: Option<usize>) {
        self.record(("event", client, format!("{ev:?}")), || {
            format!("client {client}: event {ev:?}")
        });
        let expect = self.clients[client].expect_expired.take();
        if let Some(old) = expect {
            if ev != Event::Session(SessionEvent::Expired { old_sid: old }) {
                self.violation(
                    Oracle::Session,
                    format!("client {client}: sid {old:#x} replaced without Expired (next event {ev:?})"),
                );
            }
        }
        match ev {
            Event::Completed { id, result } => self.on_completed(client, id, result),
            Event::Watch { id, event } => {
                self.stats.watch_events += 1;
                if event.inferred {
                    self.stats.inferred_events += 1;
                }
                let now = self.now;
                match self.clients[client].watches.get_mut(&id) {
                    Some(w) if !w.done => {
                        // The core marks a one-shot watch's one event as its last; a
                        // persistent watch's events never are.
                        let one_shot = w.spec.mode == pyxis_core::WatchMode::OneShot;
                        let wrong_last = event.last != one_shot;
                        w.done = event.last;
                        let spec_mode = w.spec.mode;
                        w.events.push((now, event.clone()));
                        if wrong_last {
                            self.violation(
                                Oracle::Watch,
                                format!(
                                    "client {client}: {spec_mode:?} watch {id:?} got {event} with last = {}",
                                    event.last
                                ),
                            );
                        }
                    }
                    _ => self.violation(
                        Oracle::Watch,
                        format!(
                            "client {client}: event for unknown or finished watch {id:?}: {event}"
                        ),
                    ),
                }
            }
            Event::WatchEnded { id, .. } => {
                if let Some(w) = self.clients[client].watches.get_mut(&id) {
                    w.done = true;
                }
            }
            Event::Session(SessionEvent::Connected { sid }) => {
                self.stats.connects += 1;
                let c = &mut self.clients[client];
                c.connects += 1;
                c.up_link = via;
                if let Some(old) = c.sid.filter(|o| *o != sid) {
                    c.expect_expired = Some(old);
                }
                c.sid = Some(sid);
                c.sids.insert(sid);
                // Checked at the end against the history (the session may expire while
                // the Register answer travels).
                self.clients[client].connected_sids.push((self.now, sid));
            }
            Event::Session(SessionEvent::Expired { old_sid }) => {
                self.stats.expiries += 1;
                self.clients[client].expired_at.push(self.now);
                if self.model.sessions().contains(&old_sid) {
                    self.violation(
                        Oracle::Session,
                        format!(
                            "client {client}: reported sid {old_sid:#x} expired while it is alive"
                        ),
                    );
                }
            }
            Event::Session(SessionEvent::Disconnected) => {
                self.clients[client].up_link = None;
            }
            Event::Session(SessionEvent::CloseUnconfirmed { .. }) => {
                self.clients[client].close_unconfirmed = true;
            }
            Event::Session(SessionEvent::Closed) => {
                self.check_closed(client);
                let now = self.now;
                let c = &mut self.clients[client];
                c.closed = true;
                c.closed_at = now;
                c.up_link = None;
                if !c.close_called {
                    self.violation(
                        Oracle::Session,
                        format!("client {client}: Closed without close()"),
                    );
                }
            }
            _ => {}
        }
    }

    fn on_completed(&mut self, client: usize, id: RequestId, result: Result<Reply, Error>) {
        self.check_not_leader_unknown(client, id, &result);
        self.check_again_unknown(client, id, &result);
        let now = self.now;
        let Some(p) = self.clients[client].pending.remove(&id) else {
            self.violation(
                Oracle::CompletesOnce,
                format!(
                    "client {client}: request #{} completed twice or never submitted: {result:?}",
                    id.0
                ),
            );
            return;
        };
        if now > p.allowed_until {
            let late = (now - p.allowed_until) / MS;
            self.violation(
                Oracle::CompletesOnce,
                format!(
                    "client {client}: request #{} {} completed {late} ms past its deadline",
                    id.0,
                    op_text(&p.op)
                ),
            );
        }
        if result.is_ok() {
            self.stats.succeeded += 1;
        }
        // A read that armed a watch: the watch is followed from the node it saw.
        if let Ok(Reply::Node {
            node,
            watch: Some(w),
        }) = &result
        {
            self.track_watch(client, *w, &p.op, Some(shape_of(Some(node))));
        }
        if let Ok(Reply::Exists {
            node,
            watch: Some(w),
        }) = &result
        {
            self.track_watch(client, *w, &p.op, Some(shape_of(node.as_ref())));
        }
        if let (Op::Unregister, Ok(_)) = (&p.op, &result) {
            self.clients[client].sid = None;
        }
        let unknown = matches!(
            result,
            Err(Error::ConnectionLoss {
                outcome_unknown: true,
                ..
            }) | Err(Error::Again {
                outcome_unknown: true
            }) | Err(Error::Timeout {
                outcome_unknown: true,
                ..
            })
        );
        self.clients[client].finished.push(Finished {
            client,
            op: p.op.clone(),
            submitted: p.submitted,
            completed: now,
            result,
        });
        if unknown
            && self.cfg.variant == Variant::RetryUnknownWrites
            && matches!(
                p.op,
                Op::Create { .. } | Op::Write { .. } | Op::Delete { .. }
            )
            && !self.clients[client].close_called
        {
            self.submit(client, p.op);
        }
    }

    fn track_watch(&mut self, client: usize, id: WatchId, op: &Op, baseline: Option<Shape>) {
        let spec = match op {
            Op::Read { watch: Some(s), .. } | Op::Exists { watch: Some(s), .. } => s.clone(),
            _ => return,
        };
        let now = self.now;
        self.clients[client].watches.insert(
            id,
            TrackedWatch {
                spec,
                created: now,
                baseline,
                events: Vec::new(),
                done: false,
            },
        );
    }

    /// Pauses `client` (no inputs, no timers) until `until`.
    pub(crate) fn pause(&mut self, client: usize, until: u64) {
        let c = &mut self.clients[client];
        c.pauses += 1;
        c.paused_until = until;
        c.disturbed = until;
        let extra = until.saturating_sub(self.now);
        for p in c.pending.values_mut() {
            p.allowed_until += extra;
        }
    }

    /// The process of `client` dies: its sockets close, its requests and watches vanish.
    pub(crate) fn crash(&mut self, client: usize) {
        self.clients[client].crashed = true;
        let links: Vec<usize> = self.clients[client].links.values().copied().collect();
        for link in links {
            self.close_from_client(link);
        }
    }
}

/// The shape a read saw.
pub(crate) fn shape_of(node: Option<&pyxis_core::Node>) -> Shape {
    match node {
        Some(n) => Shape {
            exists: true,
            version: n.version,
            children: n.children.clone(),
        },
        None => Shape {
            exists: false,
            version: 0,
            children: Vec::new(),
        },
    }
}

/// A short readable form of an operation.
pub(crate) fn op_text(op: &Op) -> String {
    let data = |d: &Bytes| String::from_utf8_lossy(d).into_owned();
    match op {
        Op::Create {
            path,
            data: d,
            mode,
        } => format!(
            "create {path} {mode} {:?}",
            d.as_ref().map(data).unwrap_or_default()
        ),
        Op::Delete { path } => format!("delete {path}"),
        Op::Write { path, data: d } => format!("write {path} {:?}", data(d)),
        Op::Read { path, watch, .. } => format!(
            "read {path} watch {:?}",
            watch.as_ref().map(|w| (w.mask, w.mode))
        ),
        Op::Exists { path, watch } => format!(
            "exists {path} watch {:?}",
            watch.as_ref().map(|w| (w.mask, w.mode))
        ),
        Op::Unregister => "unregister".into(),
        other => format!("{other:?}"),
    }
}

/// Variant (a): removes the watch re-registrations (the first stat + watch frame per path)
/// from the first bytes a client writes after its session came up.
fn drop_rearms(data: &Bytes) -> Bytes {
    let mut decoder = FrameDecoder::new();
    decoder.extend(data);
    let mut out = BytesMut::new();
    let mut seen_paths = BTreeSet::new();
    while let Ok(Some(req)) = decoder.next_request() {
        if req.watch.is_some() {
            if let Some(stat) = &req.stat {
                if seen_paths.insert(stat.path.clone()) {
                    continue;
                }
            }
        }
        encode_frame(&req, &mut out);
    }
    // The core writes whole valid frames; anything else goes out unchanged.
    if decoder.buffered() > 0 {
        return data.clone();
    }
    out.freeze()
}

/// The one place a workload slot's µs for "a while" is drawn.
pub(crate) fn a_while(rng: &mut fastrand::Rng) -> u64 {
    rng.u64(SEC / 2..3 * SEC)
}

impl Incarnation {
    /// The earliest change a watch event of this incarnation may be about: its start, or
    /// the beginning of the run when it resumed a session (the server may still hold the
    /// previous process's registrations and pending events on that session).
    pub(crate) fn watch_floor(&self) -> u64 {
        if self.resumed {
            0
        } else {
            self.started
        }
    }
}
