//! Request dispatch, commits, session ends and event delivery ([protocol](pyxis_proto::protocol)
//! §3–§6).
//!
//! Owns: which request does what and in which order, the error answers, the held-ping
//! rules and the one-event-per-ping delivery. As on the original server, a request is
//! one operation: register first; then (after the session check) a request carrying
//! unregister, create, delete or write performs the first present of unregister, create,
//! delete, read, write, stat (so write + read performs the read); any other performs the
//! first of ping, read, stat, watch. A watch alone does not check its path.
//! Must never read a clock: every instant comes from the caller.

use std::time::Instant;

use bytes::Bytes;
use prost::Message;
use pyxis_proto::limits::parent;
use pyxis_proto::rpc::{self, Request, Response};
use pyxis_proto::{encode_response, event_type, ErrorType};

use super::proc_tree::is_writable_proc;
use super::session::{HeldPing, Session};
use super::store::{is_proc_path, valid_path, Refusal, DELETE_UNDER_PROC};
use super::types::{AppliedKind, ConnId, Output, SessionEnd};
use super::watch::Watch;
use super::ClusterModel;

/// A replicated operation waiting for its commit.
#[derive(Debug, Clone)]
pub(crate) struct PendingCommit {
    pub(crate) due: Instant,
    pub(crate) conn: ConnId,
    pub(crate) xid: u64,
    pub(crate) sid: u64,
    pub(crate) op: CommitOp,
}

/// What a pending commit does.
#[derive(Debug, Clone)]
pub(crate) enum CommitOp {
    Register {
        sid: Option<u64>,
        timeout: Option<i32>,
    },
    Unregister,
    Create(rpc::CreateRequest),
    Delete(rpc::DeleteRequest),
    Write(rpc::WriteRequest),
}

pub(crate) fn error(xid: u64, refusal: Refusal) -> Response {
    Response {
        xid: Some(xid),
        err: Some(rpc::Error {
            r#type: refusal.kind as i32,
            data: refusal.data.map(Bytes::from),
        }),
        ..Default::default()
    }
}

fn empty(xid: u64) -> Response {
    Response {
        xid: Some(xid),
        ..Default::default()
    }
}

fn session_expired() -> Refusal {
    Refusal::new(ErrorType::KSessionExpired, "session expired")
}

/// kAgain for a write that was in flight when leadership was lost.
pub(crate) fn again_in_flight() -> Refusal {
    Refusal::new(ErrorType::KAgain, "net error, try again")
}

impl ClusterModel {
    pub(crate) fn send(&mut self, conn: ConnId, rsp: Response) {
        if self.drop_answers || !self.conns.contains_key(&conn) {
            return;
        }
        self.outputs.push_back(Output::Send {
            conn,
            bytes: encode_response(&rsp),
        });
    }

    /// One decoded request from a connection to `node`.
    pub(crate) fn handle_request(&mut self, conn: ConnId, node: usize, req: Request, now: Instant) {
        let xid = req.xid.unwrap_or(0);
        match self.leader {
            None => {
                // The original's followers name a dead leader for a while after its death.
                if let Some((dead, _)) = self.dead_leader.filter(|&(_, until)| now < until) {
                    let addr = self.node_addr(dead);
                    return self.send(conn, error(xid, Refusal::new(ErrorType::KNotLeader, addr)));
                }
                return self.send(
                    conn,
                    error(xid, Refusal::new(ErrorType::KAgain, "try again")),
                );
            }
            Some(l) if l != node => {
                let addr = self.node_addr(l);
                return self.send(conn, error(xid, Refusal::new(ErrorType::KNotLeader, addr)));
            }
            Some(_) => {}
        }
        if let Some(register) = req.register {
            let op = CommitOp::Register {
                sid: req.sid,
                timeout: register.timeout,
            };
            return self.enqueue(conn, xid, req.sid.unwrap_or(0), op, now);
        }
        let sid = req.sid.unwrap_or(0);
        if !self.sessions.contains_key(&sid) {
            return self.send(conn, error(xid, session_expired()));
        }
        if req.unregister.is_some() {
            return self.enqueue(conn, xid, sid, CommitOp::Unregister, now);
        }
        self.refresh(sid, now);
        if let Some(create) = req.create {
            return self.enqueue(conn, xid, sid, CommitOp::Create(create), now);
        }
        if let Some(delete) = req.delete {
            return self.enqueue(conn, xid, sid, CommitOp::Delete(delete), now);
        }
        if req.write.is_some() {
            // A replicated request: read goes before write in the original's order.
            if let Some(read) = req.read {
                let rsp = self.read(sid, &read.path, req.watch.as_ref(), xid);
                return self.send(conn, rsp);
            }
        }
        if let Some(write) = req.write {
            return self.enqueue(conn, xid, sid, CommitOp::Write(write), now);
        }
        if req.ping.is_some() {
            return self.hold_ping(sid, conn, xid);
        }
        let rsp = if let Some(read) = req.read {
            self.read(sid, &read.path, req.watch.as_ref(), xid)
        } else if let Some(stat) = req.stat {
            self.stat(sid, &stat.path, req.watch.as_ref(), xid)
        } else if let Some(watch) = req.watch {
            self.register_watch(sid, &watch);
            empty(xid)
        } else {
            empty(xid)
        };
        self.send(conn, rsp);
    }

    fn refresh(&mut self, sid: u64, now: Instant) {
        let clock = self.clock;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.expiry_tick = clock.expiry_tick(now, s.timeout);
            s.last_refresh = now;
        }
    }

    fn enqueue(&mut self, conn: ConnId, xid: u64, sid: u64, op: CommitOp, now: Instant) {
        let mut due = now + self.config.commit_delay + self.extra_commit_delay;
        if let Some(last) = self.commits.back() {
            due = due.max(last.due);
        }
        self.commits.push_back(PendingCommit {
            due,
            conn,
            xid,
            sid,
            op,
        });
    }

    /// Registers a watch as sent: the original checks neither its path nor its mask
    /// (an absent path is `""`, an absent mask 0).
    fn register_watch(&mut self, sid: u64, req: &rpc::WatchRequest) {
        let path = req.path.as_deref().unwrap_or("");
        let watch = Watch {
            mask: req.watch.unwrap_or(0),
            recursive: req.recursive.unwrap_or(false),
        };
        self.watches.register(sid, path, watch);
    }

    /// The data a read of `path` answers (a valid path), or its error.
    fn read_data(&self, path: &str) -> Result<Bytes, Refusal> {
        let data = if is_proc_path(path) {
            self.proc_node(path)?.map(|n| n.data.unwrap_or_default())
        } else {
            self.store.get(path).map(|n| n.data.clone())
        };
        data.ok_or_else(|| Refusal::new(ErrorType::KNotFound, path))
    }

    fn read(
        &mut self,
        sid: u64,
        path: &str,
        watch: Option<&rpc::WatchRequest>,
        xid: u64,
    ) -> Response {
        let data = match valid_path(path).and_then(|()| self.read_data(path)) {
            Ok(data) => data,
            // read + watch on a missing node registers nothing.
            Err(r) => return error(xid, r),
        };
        if let Some(w) = watch {
            self.register_watch(sid, w);
        }
        Response {
            xid: Some(xid),
            data: Some(data),
            ..Default::default()
        }
    }

    fn stat(
        &mut self,
        sid: u64,
        path: &str,
        watch: Option<&rpc::WatchRequest>,
        xid: u64,
    ) -> Response {
        if let Err(r) = valid_path(path) {
            return error(xid, r);
        }
        // stat + watch registers the watch even when the node is missing.
        if let Some(w) = watch {
            self.register_watch(sid, w);
        }
        match self.lookup(path) {
            Ok(Some(node)) => Response {
                xid: Some(xid),
                data: Some(Bytes::from(node.encode_to_vec())),
                ..Default::default()
            },
            Ok(None) => error(xid, Refusal::new(ErrorType::KNotFound, path)),
            Err(r) => error(xid, r),
        }
    }

    /// A ping: replaces (and answers, empty) any held one, then is answered at once if an
    /// event is pending, or held.
    fn hold_ping(&mut self, sid: u64, conn: ConnId, xid: u64) {
        self.release_ping(sid);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.held_ping = Some(HeldPing { conn, xid });
        }
        self.dirty.insert(sid);
        self.deliver_events();
    }

    /// Answers the session's held ping empty, if it holds one.
    pub(crate) fn release_ping(&mut self, sid: u64) {
        let held = self.sessions.get_mut(&sid).and_then(|s| s.held_ping.take());
        if let Some(p) = held {
            self.send(p.conn, empty(p.xid));
        }
    }

    /// Hands pending events to held pings: one event per answer, by watched path.
    pub(crate) fn deliver_events(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for sid in dirty {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            if s.held_ping.is_none() {
                continue;
            }
            let Some(((watched, _), event)) = s.pending.pop_first() else {
                continue;
            };
            let Some(ping) = s.held_ping.take() else {
                continue;
            };
            let rsp = Response {
                xid: Some(ping.xid),
                watch: Some(event),
                path: Some(watched),
                ..Default::default()
            };
            self.send(ping.conn, rsp);
        }
    }

    /// Raises an event on `path`: matching watches fire (the node's own first, then
    /// recursive ones on its ancestors); a session holding a ping gets its first event in
    /// the ping's answer at once, the others wait, ordered by watched path.
    fn raise(&mut self, path: &str, kind: u32) {
        for fired in self.watches.fire(path, kind) {
            self.event_seq += 1;
            let Some(s) = self.sessions.get_mut(&fired.sid) else {
                continue;
            };
            let event = rpc::WatchEvent {
                path: path.to_owned(),
                r#type: kind,
            };
            match s.held_ping.take() {
                Some(ping) => {
                    let rsp = Response {
                        xid: Some(ping.xid),
                        watch: Some(event),
                        path: Some(fired.watched_path),
                        ..Default::default()
                    };
                    self.send(ping.conn, rsp);
                }
                None => {
                    s.pending
                        .insert((fired.watched_path, self.event_seq), event);
                }
            }
        }
    }

    /// The events of a created or deleted node: on it, then Children on its parent.
    fn raise_with_parent(&mut self, path: &str, kind: u32) {
        self.raise(path, kind);
        if let Some(p) = parent(path) {
            self.raise(p, event_type::CHILDREN);
        }
    }

    fn new_sid(&mut self) -> u64 {
        self.sid_counter += 1;
        // Like the original's: a base taken from the wall clock at start, plus a counter.
        let mut sid = self.config.sid_base.wrapping_add(self.sid_counter);
        if sid <= self.last_sid {
            sid = self.last_sid.wrapping_add(1);
        }
        while sid == 0 || self.sessions.contains_key(&sid) {
            sid = sid.wrapping_add(1);
        }
        self.last_sid = sid;
        sid
    }

    /// Applies a committed operation at `at`; returns the answer for its client.
    pub(crate) fn apply_commit(&mut self, c: &PendingCommit, at: Instant, ack: bool) -> Response {
        let xid = c.xid;
        if let CommitOp::Register { sid, timeout } = &c.op {
            return match sid {
                Some(s) if self.sessions.contains_key(s) => {
                    // Resuming replaces the timeout (clamped) but does not refresh.
                    let timeout = self.config.clamp_timeout(*timeout);
                    if let Some(session) = self.sessions.get_mut(s) {
                        session.timeout = timeout;
                    }
                    Response {
                        xid: Some(xid),
                        sid: Some(*s),
                        ..Default::default()
                    }
                }
                Some(_) => error(xid, Refusal::bare(ErrorType::KSessionExpired)),
                None => {
                    let timeout = self.config.clamp_timeout(*timeout);
                    let sid = self.new_sid();
                    let tick = self.clock.expiry_tick(at, timeout);
                    self.sessions.insert(sid, Session::new(timeout, tick, at));
                    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
                    self.record(
                        sid,
                        Some(xid),
                        "",
                        AppliedKind::SessionOpened {
                            timeout_ms,
                            conn: c.conn,
                        },
                        ack,
                        at,
                    );
                    Response {
                        xid: Some(xid),
                        sid: Some(sid),
                        ..Default::default()
                    }
                }
            };
        }
        if !self.sessions.contains_key(&c.sid) {
            return error(xid, session_expired());
        }
        let outcome = match &c.op {
            CommitOp::Register { .. } => Ok(()),
            CommitOp::Unregister => {
                self.end_session(c.sid, SessionEnd::Unregistered, at, ack);
                Ok(())
            }
            CommitOp::Create(req) => self.apply_create(c, req, at, ack),
            CommitOp::Delete(req) => self.apply_delete(c, &req.path, at, ack),
            CommitOp::Write(req) if is_proc_path(&req.path) => self.apply_proc_write(&req.path),
            CommitOp::Write(req) => self
                .store
                .write(&req.path, req.data.clone())
                .map(|version| {
                    let kind = AppliedKind::Write {
                        data: req.data.clone(),
                        version,
                    };
                    self.record(c.sid, Some(xid), &req.path, kind, ack, at);
                    self.raise(&req.path, event_type::MODIFY);
                }),
        };
        match outcome {
            Ok(()) => empty(xid),
            Err(r) => error(xid, r),
        }
    }

    fn apply_create(
        &mut self,
        c: &PendingCommit,
        req: &rpc::CreateRequest,
        at: Instant,
        ack: bool,
    ) -> Result<(), Refusal> {
        let data = req.data.clone().unwrap_or_default();
        self.store
            .create(&req.path, req.flags, data.clone(), c.sid)?;
        let flags = self.store.get(&req.path).map(|n| n.flags).unwrap_or(0);
        if flags & 1 != 0 {
            if let Some(s) = self.sessions.get_mut(&c.sid) {
                s.ephemerals.insert(req.path.clone());
            }
        }
        self.record(
            c.sid,
            Some(c.xid),
            &req.path,
            AppliedKind::Create { flags, data },
            ack,
            at,
        );
        self.raise_with_parent(&req.path, event_type::CREATE);
        Ok(())
    }

    /// A write to a `/pyxis…` path: at or below `/pyxis/snapshot` and `/pyxis/eventlog`
    /// it succeeds (the original starts a snapshot or reopens its event log) and fires
    /// Modify watches; to another proc node kInternal; where nothing is, kNotFound.
    fn apply_proc_write(&mut self, path: &str) -> Result<(), Refusal> {
        valid_path(path)?;
        let exists = !matches!(self.proc_node(path), Ok(None));
        if !exists {
            return Err(Refusal::new(ErrorType::KNotFound, path));
        }
        if !is_writable_proc(path) {
            return Err(Refusal::new(
                ErrorType::KInternal,
                format!("{path} NotFound: {path}"),
            ));
        }
        self.raise(path, event_type::MODIFY);
        Ok(())
    }

    fn apply_delete(
        &mut self,
        c: &PendingCommit,
        path: &str,
        at: Instant,
        ack: bool,
    ) -> Result<(), Refusal> {
        if is_proc_path(path) {
            valid_path(path)?;
            return Err(match self.proc_node(path) {
                Ok(None) => Refusal::new(ErrorType::KNotFound, path),
                _ => Refusal::new(ErrorType::KInvalidArgument, DELETE_UNDER_PROC),
            });
        }
        self.store.delete(path)?;
        // The deleting session's own list drops the path; an owner whose ephemeral node
        // another session deleted keeps it listed, as on the original.
        if let Some(s) = self.sessions.get_mut(&c.sid) {
            s.ephemerals.remove(path);
        }
        self.record(c.sid, Some(c.xid), path, AppliedKind::Delete, ack, at);
        self.raise_with_parent(path, event_type::DELETE);
        Ok(())
    }

    /// Ends a session: watches dropped, held ping answered empty, ephemeral nodes deleted
    /// with their Delete and Children events.
    pub(crate) fn end_session(&mut self, sid: u64, reason: SessionEnd, at: Instant, ack: bool) {
        self.release_ping(sid);
        let Some(session) = self.sessions.remove(&sid) else {
            return;
        };
        self.watches.drop_session(sid);
        self.dirty.remove(&sid);
        self.record(
            sid,
            None,
            "",
            AppliedKind::SessionClosed { reason },
            ack,
            at,
        );
        for path in session.ephemerals {
            // Whatever node the session still owns there goes, even one it re-created as
            // persistent; a node another session created there stays.
            if self.store.get(&path).and_then(|n| n.sid) != Some(sid) {
                continue;
            }
            if self.store.delete(&path).is_ok() {
                self.record(sid, None, &path, AppliedKind::EphemeralDeleted, false, at);
                self.raise_with_parent(&path, event_type::DELETE);
            }
        }
    }
}
