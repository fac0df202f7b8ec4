//! The oracles: what must hold in every run, checked while it runs and at its end.
//!
//! Owns: [`Oracle`], [`Violation`], and the checks over the client books and the server
//! history: every request completes exactly once by its deadline; successes agree with
//! the history (acknowledged creates and writes applied exactly once, definite failures
//! never applied, outcome-unknown writes at most once, reads linearizable); ephemeral
//! nodes live exactly as long as their session; sessions only expire around a fault;
//! watched changes are never silently missed; clients find the leader once faults stop.
//! Must never change the world: oracles only read it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use pyxis_core::{Error, EventMask, EventType, Op, Reply, SessionState, WatchEvent};
use pyxis_testkit::model::{AppliedKind, SessionEnd};

use crate::history::{us_since, ChangeKind, Shape, Timelines};
use crate::workload::PATHS;
use crate::world::{World, MS, SEC};

/// Which rule a violation broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Oracle {
    /// Every request completes exactly once, by its deadline (+ slack).
    CompletesOnce,
    /// Successes and failures agree with the server's applied history.
    History,
    /// An ephemeral node lives exactly as long as its session.
    Ephemeral,
    /// Session reports (`Connected`/`Expired`) are true, and a session never expires
    /// without a fault near its client.
    Session,
    /// Every change of a watched node is reported (directly or inferred; for a recursive
    /// watch, of the watched node itself), no event is invented, and exactly one-shot
    /// watches' events are marked last (so one-shot ones get one).
    Watch,
    /// Once faults stop, every client is connected to the leader in bounded time.
    Reconnect,
    /// No write the server answered kNotLeader (and that was not sent again) completes
    /// with an unknown outcome, unless its deadline passed before the answer arrived.
    NotLeaderUnknown,
    /// A write the server answered kAgain (which may or may not have committed,
    /// [protocol](pyxis_proto::protocol) §4) completes with an unknown outcome and is
    /// never sent again.
    AgainUnknown,
    /// A client re-registers every watch at most once per leadership change, besides
    /// after a new session, a pause, a forced expiry and (once) on a server holding
    /// pings shorter than asked.
    Rearm,
    /// A connection that delivers no complete frame for T + 2 × `ping_grace` is given up.
    FrameLiveness,
    /// `Closed` without `CloseUnconfirmed` means the session is gone at the server, and
    /// so is every session the client's Registers made (checked once they have landed).
    Close,
    /// Nothing panics.
    Panic,
    /// The same seed gives the same trace.
    Determinism,
}

impl fmt::Display for Oracle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Oracle::CompletesOnce => "completes-once",
            Oracle::History => "history",
            Oracle::Ephemeral => "ephemeral",
            Oracle::Session => "session",
            Oracle::Watch => "watch",
            Oracle::Reconnect => "reconnect",
            Oracle::NotLeaderUnknown => "not-leader-unknown",
            Oracle::AgainUnknown => "again-unknown",
            Oracle::Rearm => "rearm",
            Oracle::FrameLiveness => "frame-liveness",
            Oracle::Close => "close",
            Oracle::Panic => "panic",
            Oracle::Determinism => "determinism",
        })
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub oracle: Oracle,
    /// Virtual µs when it was found.
    pub at_us: u64,
    /// What happened.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>3}.{:06}] {}: {}",
            self.at_us / 1_000_000,
            self.at_us % 1_000_000,
            self.oracle,
            self.detail
        )
    }
}

/// How long after the last fault near a client its session may still expire: the
/// session timeout, the ping grace, a check interval and some network slack.
const EXPIRY_EXCUSE: u64 = 12 * SEC;

impl World {
    /// Checks run every virtual second.
    pub(crate) fn periodic_checks(&mut self) {
        self.check_sessions_made_by_closed_clients();
        let sessions: BTreeSet<u64> = self.model.sessions().into_iter().collect();
        for p in PATHS {
            if let Some(n) = self.model.node(p) {
                if n.flags & 1 != 0 && !n.owner.is_some_and(|o| sessions.contains(&o)) {
                    self.violation(
                        Oracle::Ephemeral,
                        format!("ephemeral {p} outlives its session {:?}", n.owner),
                    );
                }
            }
        }
    }

    /// Once faults have stopped long enough: every running client is connected to the
    /// leader on a working link, with a session the server knows.
    pub(crate) fn liveness_check(&mut self, when: &str) {
        let leader = self.model.leader();
        let sessions = self.model.sessions();
        for i in 0..self.clients.len() {
            let c = &self.clients[i];
            if c.crashed || c.close_called || c.core.state() == SessionState::Idle {
                continue;
            }
            let state = c.core.state();
            let link = c.up_link.map(|l| &self.links[l]);
            let ok = state == SessionState::Connected
                && link.is_some_and(|l| Some(l.node) == leader && l.carries() && !l.server_gone)
                && c.core.sid().is_some_and(|s| sessions.contains(&s));
            if !ok {
                let detail = format!(
                    "client {i} {when}: state {state}, link {:?} (node {:?}, carries {:?}), leader {leader:?}, sid {:?} known {}",
                    c.up_link,
                    link.map(|l| l.node),
                    link.map(|l| l.carries()),
                    c.core.sid(),
                    c.core.sid().is_some_and(|s| sessions.contains(&s)),
                );
                self.violation(Oracle::Reconnect, detail);
            }
        }
    }

    /// The end-of-run oracles.
    pub(crate) fn final_checks(&mut self) {
        self.liveness_check("at the end");
        self.periodic_checks();
        let end = self.now;
        // Every request of a running client completed by its deadline.
        let mut late = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            if c.crashed {
                continue;
            }
            for (id, p) in &c.pending {
                if p.allowed_until < end || c.closed {
                    late.push(format!(
                        "client {i}: request #{} {} submitted at {} ms never completed (closed: {})",
                        id.0,
                        crate::clients::op_text(&p.op),
                        p.submitted / MS,
                        c.closed
                    ));
                }
            }
        }
        for l in late {
            self.violation(Oracle::CompletesOnce, l);
        }
        let timelines = Timelines::build(self.base, self.model.applied_ops());
        self.check_history(&timelines);
        self.check_ephemerals();
        self.check_expiries();
        self.check_watches(&timelines);
    }

    fn check_history(&mut self, t: &Timelines) {
        // Every create/write data tag is unique: count how often each was applied.
        let mut applied: BTreeMap<Bytes, (u32, bool)> = BTreeMap::new();
        for op in self.model.applied_ops() {
            let data = match &op.kind {
                AppliedKind::Create { data, .. } | AppliedKind::Write { data, .. } => data,
                _ => continue,
            };
            let e = applied.entry(data.clone()).or_insert((0, false));
            e.0 += 1;
            e.1 |= op.acknowledged;
        }
        let mut found = Vec::new();
        for (data, (count, _)) in &applied {
            if *count > 1 {
                found.push(format!(
                    "write {:?} applied {count} times (a retried write?)",
                    String::from_utf8_lossy(data)
                ));
            }
        }
        let finished: Vec<_> = self
            .clients
            .iter()
            .flat_map(|c| c.finished.iter().cloned())
            .collect();
        for f in &finished {
            let tag = match &f.op {
                Op::Create { data: Some(d), .. } | Op::Write { data: d, .. } => Some(d.clone()),
                _ => None,
            };
            let times = tag
                .as_ref()
                .map(|d| applied.get(d).map_or(0, |e| e.0))
                .unwrap_or(0);
            let what = crate::clients::op_text(&f.op);
            let who = f.client;
            match (&f.op, &f.result) {
                (Op::Create { .. } | Op::Write { .. }, Ok(_)) if times != 1 => found.push(format!(
                    "client {who}: {what} succeeded but was applied {times} times"
                )),
                (
                    Op::Create { .. } | Op::Write { .. },
                    Err(
                        Error::NotFound { .. }
                        | Error::Exists { .. }
                        | Error::InvalidArgument { .. }
                        | Error::ConnectionLoss {
                            outcome_unknown: false,
                            ..
                        }
                        | Error::Timeout {
                            outcome_unknown: false,
                            ..
                        }
                        | Error::Again {
                            outcome_unknown: false,
                        }
                        | Error::Closed,
                    ),
                ) if times != 0 => found.push(format!(
                    "client {who}: {what} failed definitely ({:?}) but was applied",
                    f.result
                )),
                (Op::Read { path, .. } | Op::Exists { path, .. }, result) => {
                    let seen = match result {
                        Ok(Reply::Node { node, .. })
                        | Ok(Reply::Exists {
                            node: Some(node), ..
                        }) => Some(Some((node.data.clone(), node.version))),
                        Ok(Reply::Exists { node: None, .. }) | Err(Error::NotFound { .. }) => {
                            Some(None)
                        }
                        _ => None,
                    };
                    if let Some(seen) = seen {
                        let possible = t.states_during(path, f.submitted, f.completed);
                        if !possible.contains(&seen) {
                            found.push(format!(
                                "client {who}: {what} submitted at {} ms, answered at {} ms saw {seen:?}, but the node was only ever {possible:?} in between",
                                f.submitted / MS,
                                f.completed / MS
                            ));
                        }
                    }
                }
                (Op::Delete { path }, Ok(_)) => {
                    let deleted = t.changes(path).iter().any(|c| {
                        c.kind == ChangeKind::Delete
                            && c.acknowledged
                            && c.at_us >= f.submitted
                            && c.at_us <= f.completed
                    });
                    if !deleted {
                        found.push(format!("client {who}: {what} succeeded but no acknowledged delete is in the history"));
                    }
                }
                _ => {}
            }
        }
        for d in found {
            self.violation(Oracle::History, d);
        }
    }

    fn check_ephemerals(&mut self) {
        let mut closed: BTreeMap<u64, u64> = BTreeMap::new();
        let mut alive: BTreeMap<String, u64> = BTreeMap::new();
        // Every node's creator: like the original, a session's end also deletes a
        // persistent node it re-created where its deleted ephemeral node was.
        let mut created_by: BTreeMap<String, u64> = BTreeMap::new();
        let mut found = Vec::new();
        for op in self.model.applied_ops() {
            let at = us_since(self.base, op.at);
            match &op.kind {
                AppliedKind::SessionClosed { .. } => {
                    closed.insert(op.sid, at);
                }
                AppliedKind::Create { flags, .. } => {
                    if flags & 1 != 0 {
                        if closed.contains_key(&op.sid) {
                            found.push(format!(
                                "ephemeral {} created by closed session {:#x}",
                                op.path, op.sid
                            ));
                        }
                        alive.insert(op.path.clone(), op.sid);
                    }
                    created_by.insert(op.path.clone(), op.sid);
                }
                AppliedKind::Delete => {
                    alive.remove(&op.path);
                    created_by.remove(&op.path);
                }
                AppliedKind::EphemeralDeleted
                    if {
                        alive.remove(&op.path);
                        created_by.remove(&op.path) != Some(op.sid)
                    } || closed.get(&op.sid) != Some(&at) =>
                {
                    found.push(format!(
                        "ephemeral {} deleted with session {:#x} that did not just end",
                        op.path, op.sid
                    ));
                }
                _ => {}
            }
        }
        for (path, sid) in alive {
            if closed.contains_key(&sid) {
                found.push(format!("ephemeral {path} outlived its session {sid:#x}"));
            }
        }
        for d in found {
            self.violation(Oracle::Ephemeral, d);
        }
    }

    /// A session that expired while its client ran undisturbed means the client let it
    /// lapse (no ping, or a dead connection not noticed).
    fn check_expiries(&mut self) {
        let mut owner: BTreeMap<u64, usize> = BTreeMap::new();
        for (i, c) in self.clients.iter().enumerate() {
            for s in &c.sids {
                owner.insert(*s, i);
            }
        }
        let mut found = Vec::new();
        let opened: BTreeSet<u64> = self
            .model
            .applied_ops()
            .filter(|op| matches!(op.kind, AppliedKind::SessionOpened { .. }))
            .map(|op| op.sid)
            .collect();
        for (i, c) in self.clients.iter().enumerate() {
            for (at, sid) in &c.connected_sids {
                if !opened.contains(sid) {
                    found.push(format!(
                        "client {i}: Connected at {} ms with sid {sid:#x} the server never opened",
                        at / MS
                    ));
                }
            }
        }
        for op in self.model.applied_ops() {
            if op.kind
                != (AppliedKind::SessionClosed {
                    reason: SessionEnd::Expired,
                })
            {
                continue;
            }
            let at = us_since(self.base, op.at);
            let Some(&i) = owner.get(&op.sid) else {
                continue;
            };
            let c = &self.clients[i];
            let abandoned = c.crashed || c.close_called || c.sid != Some(op.sid) && c.sid.is_some();
            let excused = c.disturbed.max(self.cluster_disturbed) + EXPIRY_EXCUSE >= at;
            if !abandoned && !excused {
                found.push(format!(
                    "client {i}: session {:#x} expired at {} ms, {} ms after the last fault near it",
                    op.sid,
                    at / MS,
                    (at - c.disturbed.max(self.cluster_disturbed)) / MS
                ));
            }
        }
        for d in found {
            self.violation(Oracle::Session, d);
        }
    }

    fn check_watches(&mut self, t: &Timelines) {
        let end = self.now;
        let mut found = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            if c.crashed || c.close_called {
                continue;
            }
            for (id, w) in &c.watches {
                // Soundness: a direct event names a change that happened since the watch.
                for (at, ev) in &w.events {
                    if ev.inferred {
                        continue;
                    }
                    let changes = t.changes(&ev.path);
                    let real = match ev.kind {
                        EventType::Children => PATHS.iter().any(|p| {
                            pyxis_proto::limits::parent(p) == Some(ev.path.as_str())
                                && t.changes(p).iter().any(|ch| {
                                    ch.at_us >= c.watch_floor()
                                        && ch.at_us <= *at
                                        && matches!(
                                            ch.kind,
                                            ChangeKind::Create
                                                | ChangeKind::Delete
                                                | ChangeKind::EphemeralDeleted
                                        )
                                })
                        }),
                        kind => changes.iter().any(|ch| {
                            ch.at_us <= *at
                                && ch.at_us >= c.watch_floor()
                                && match kind {
                                    EventType::Create => ch.kind == ChangeKind::Create,
                                    EventType::Delete => matches!(
                                        ch.kind,
                                        ChangeKind::Delete | ChangeKind::EphemeralDeleted
                                    ),
                                    EventType::Modify => ch.kind == ChangeKind::Write,
                                    _ => false,
                                }
                        }),
                    };
                    if !real {
                        found.push(format!(
                            "client {i}: watch {id:?} on {} got {ev} at {} ms with no such change",
                            w.spec.path,
                            at / MS
                        ));
                    }
                }
                // Completeness: a live watch whose path differs from what it last saw
                // must have been told.
                let Some(baseline) = &w.baseline else {
                    continue;
                };
                if w.done {
                    continue;
                }
                // The events about the watched node itself (a recursive watch's events
                // about descendants say nothing of it).
                let own: Vec<&(u64, WatchEvent)> = w
                    .events
                    .iter()
                    .filter(|(_, e)| e.path == w.spec.path)
                    .collect();
                // What the watch last told the application. After an event, the
                // application can only observe the node through requests that reach the
                // server behind the core's re-arm (same connection, in order), so the
                // shape it can act on is any one from the event's delivery until that
                // re-arm arrived (at most one worst-case one-way delay later, twice for
                // slack): a change landing in between is not a change it missed. A
                // re-arm the server refused (the session ended, no leader, ...) arms
                // nothing, and the reads behind it fail with it: then the one that counts
                // is the first registration of the path after the event that the server
                // accepted and the client read the answer of (see `registrations`).
                let references: Vec<Shape> = match own.last() {
                    Some((at, _)) => {
                        let slack = *at + 2 * (self.net.min_delay_us + self.net.jitter_us);
                        let rearmed = c
                            .registered
                            .get(&w.spec.path)
                            .and_then(|r| r.iter().copied().find(|r| *r >= *at));
                        let reach = slack.max(rearmed.unwrap_or(0));
                        let mut instants = vec![*at];
                        for p in PATHS.iter().filter(|p| {
                            **p == w.spec.path
                                || pyxis_proto::limits::parent(p) == Some(w.spec.path.as_str())
                        }) {
                            instants.extend(
                                t.changes(p)
                                    .iter()
                                    .map(|c| c.at_us)
                                    .filter(|c| *c > *at && *c <= reach),
                            );
                        }
                        instants
                            .into_iter()
                            .map(|i| t.shape_at(&w.spec.path, i, &PATHS))
                            .collect()
                    }
                    None => vec![baseline.clone()],
                };
                let last_change = t.changes(&w.spec.path).last().map(|c| c.at_us).unwrap_or(0);
                let now_shape = t.shape_at(&w.spec.path, end, &PATHS);
                let since = own.last().map_or(w.created, |(at, _)| *at);
                if c.expired_at.iter().any(|at| *at >= since) {
                    // The session expired since: the client said so (Expired), and the
                    // watch's server state is gone with it.
                    continue;
                }
                let kinds = matching_changes_since(t, &w.spec.path, since, w.spec.mask);
                if references.iter().all(|r| differs(r, &now_shape, kinds)) {
                    let reference = &references[0];
                    found.push(format!(
                        "client {i}: watch {id:?} ({:?} {} {:?}) saw {:?}, but at the end {} is {:?} (last change at {} ms, {} events, created at {} ms) and nothing was reported",
                        w.spec.mode, w.spec.path, w.spec.mask, reference, w.spec.path, now_shape, last_change / MS, w.events.len(), w.created / MS
                    ));
                }
            }
        }
        for d in found {
            self.violation(Oracle::Watch, d);
        }
    }
}

/// The event types in `mask` that some change of `path` (or of a child, for Children)
/// after `since` raised at the server.
fn matching_changes_since(t: &Timelines, path: &str, since: u64, mask: EventMask) -> EventMask {
    let mut raised = 0;
    for c in t.changes(path).iter().filter(|c| c.at_us > since) {
        raised |= match c.kind {
            ChangeKind::Create => EventMask::CREATE.0,
            ChangeKind::Write => EventMask::MODIFY.0,
            ChangeKind::Delete | ChangeKind::EphemeralDeleted => EventMask::DELETE.0,
        };
    }
    let child_changed = PATHS.iter().any(|p| {
        pyxis_proto::limits::parent(p) == Some(path)
            && t.changes(p)
                .iter()
                .any(|c| c.at_us > since && c.kind != ChangeKind::Write)
    });
    if child_changed {
        raised |= EventMask::CHILDREN.0;
    }
    EventMask(raised & mask.0)
}

/// Whether a watch must report the difference between `a` and `b`, given the event
/// types it listens for that were raised in between (`mask`).
fn differs(a: &Shape, b: &Shape, mask: EventMask) -> bool {
    (mask.intersects(EventMask::CREATE) && !a.exists && b.exists)
        || (mask.intersects(EventMask::DELETE) && a.exists && !b.exists)
        || (mask.intersects(EventMask::MODIFY) && a.exists && b.exists && a.version != b.version)
        || (mask.intersects(EventMask::CHILDREN)
            && a.exists
            && b.exists
            && a.children != b.children)
}
