//! The fault-policy oracles and the link faults they need: writes answered kNotLeader or
//! kAgain, connections stalled in the middle of a frame, and `close` across leader changes
//! and while a session replacing an expired one is registered.
//!
//! Owns: the books of what the server answered kNotLeader (per client, the write ids,
//! marked once the answer reaches the client, forgotten when the write is sent again or
//! its link is cut before the answer could arrive) and kAgain (per client, the write
//! ids, never forgotten), the count of complete frames each link delivers, the stalled-link fault, `close` as the application calls
//! it, the checks of [`Oracle::NotLeaderUnknown`], [`Oracle::AgainUnknown`],
//! [`Oracle::FrameLiveness`] and [`Oracle::Close`], and the wrappers of the variants that
//! break them on purpose ([`Variant::DropOnNotLeader`], [`Variant::RetryAgainWrites`],
//! [`Variant::CloseTakesAnyAnswer`], [`Variant::CloseIgnoresRegister`]). Must never reach
//! into a core: it reads frames on the links and the cores' public outputs.

use bytes::{Bytes, BytesMut};
use pyxis_core::{ConnId, Error, RequestId, SessionState};
use pyxis_proto::{encode_response, ErrorType, FrameDecoder};
use pyxis_testkit::model::AppliedKind;

use crate::clients::Refusal;
use crate::config::Variant;
use crate::oracles::Oracle;
use crate::world::{World, SEC};

/// Slack past T + 2 × `ping_grace` before a connection that delivers no complete frame
/// counts as kept too long (timers fire at their deadline; the check runs every second).
const LIVENESS_SLACK: u64 = 2 * SEC;

/// How long after `Closed` a session made by a Register in flight at `close` has landed:
/// the longest one-way delay and commit latency, with room to spare.
const CLOSE_SLACK: u64 = 2 * SEC;

/// T + 2 × `ping_grace` with the default configuration (the guarantee; a broken variant
/// may configure its core otherwise).
fn liveness_bound() -> u64 {
    let cfg = pyxis_core::Config::new(["n0:7000"]);
    (cfg.session_timeout + 2 * cfg.ping_grace).as_micros() as u64
}

fn error_type(rsp: &pyxis_proto::rpc::Response) -> Option<ErrorType> {
    rsp.err
        .as_ref()
        .and_then(|e| ErrorType::try_from(e.r#type).ok())
}

/// The operation an xid belongs to: an operation's xid is twice its id (odd xids are the
/// core's own requests).
fn op_id(xid: Option<u64>) -> Option<RequestId> {
    xid.filter(|x| x % 2 == 0).map(|x| RequestId(x / 2))
}

impl World {
    /// The model answered on `link` with `bytes` (whole frames): an operation refused
    /// with kNotLeader, and a write answered kAgain, are booked for the link's client (an
    /// operation's xid is twice its id).
    fn note_model_answers(&mut self, link: usize, bytes: &Bytes) {
        let mut d = FrameDecoder::new();
        d.extend(bytes);
        let client = self.links[link].client;
        while let Ok(Some(rsp)) = d.next_response() {
            let Some(id) = op_id(rsp.xid) else {
                continue;
            };
            let c = &mut self.clients[client];
            match error_type(&rsp) {
                Some(ErrorType::KNotLeader) => {
                    c.refused.insert(id, Refusal { link, read: false });
                }
                Some(ErrorType::KAgain) if c.pending.get(&id).is_some_and(|p| p.op.is_write()) => {
                    c.again.insert(id, link);
                    self.stats.again_writes += 1;
                }
                _ => {}
            }
        }
    }

    /// `client` writes `data` (whole frames): an operation sent again is no longer
    /// refused, and a write answered kAgain must not be sent again.
    pub(crate) fn note_client_requests(&mut self, client: usize, data: &Bytes) {
        let c = &self.clients[client];
        if c.refused.is_empty() && c.again.is_empty() {
            return;
        }
        let mut d = FrameDecoder::new();
        d.extend(data);
        while let Ok(Some(req)) = d.next_request() {
            let Some(id) = op_id(req.xid) else {
                continue;
            };
            self.clients[client].refused.remove(&id);
            if let Some(link) = self.clients[client].again.get(&id).copied() {
                self.violation(
                    Oracle::AgainUnknown,
                    format!(
                        "client {client}: request #{} answered kAgain on link {link} is sent again",
                        id.0
                    ),
                );
            }
        }
    }

    /// The frames `payloads` reached `client`: the kNotLeader answers among them are read.
    fn note_refusals_read(&mut self, client: usize, payloads: &[Bytes]) {
        if self.clients[client].refused.is_empty() {
            return;
        }
        for payload in payloads {
            let Ok(rsp) = pyxis_proto::decode_response(payload.clone()) else {
                continue;
            };
            let Some(id) = op_id(rsp.xid) else {
                continue;
            };
            if let Some(r) = self.clients[client].refused.get_mut(&id) {
                r.read |= error_type(&rsp) == Some(ErrorType::KNotLeader);
            }
        }
    }

    /// A fault cut `link`: answers still on their way can no longer arrive.
    pub(crate) fn excuse_cut_link(&mut self, link: usize) {
        let client = self.links[link].client;
        self.clients[client].refused.retain(|_, r| r.link != link);
    }

    /// `client` completed `id` with `result`: an unknown outcome for a write the server
    /// refused with kNotLeader (and that was not sent again) is a lie, unless its
    /// deadline passed before the refusal reached the client (the other writes in
    /// flight on a connection must be waited for, not given up, but not past their
    /// deadline).
    pub(crate) fn check_not_leader_unknown(
        &mut self,
        client: usize,
        id: RequestId,
        result: &Result<pyxis_core::Reply, Error>,
    ) {
        let unknown = matches!(
            result,
            Err(Error::ConnectionLoss {
                outcome_unknown: true,
                ..
            } | Error::Again {
                outcome_unknown: true
            } | Error::Timeout {
                outcome_unknown: true,
                ..
            })
        );
        let timed_out = matches!(result, Err(Error::Timeout { .. }));
        let refusal = self.clients[client].refused.remove(&id);
        if let Some(Refusal { link, .. }) = refusal.filter(|r| unknown && (r.read || !timed_out)) {
            self.violation(
                Oracle::NotLeaderUnknown,
                format!(
                    "client {client}: request #{} answered kNotLeader on link {link} completed {result:?}",
                    id.0
                ),
            );
        }
    }

    /// `client` completed `id` with `result`: a write the server answered kAgain may
    /// have committed, so anything but an unknown outcome is a lie.
    pub(crate) fn check_again_unknown(
        &mut self,
        client: usize,
        id: RequestId,
        result: &Result<pyxis_core::Reply, Error>,
    ) {
        let Some(link) = self.clients[client].again.get(&id).copied() else {
            return;
        };
        if !result.as_ref().is_err_and(Error::is_outcome_unknown) {
            self.violation(
                Oracle::AgainUnknown,
                format!(
                    "client {client}: request #{} answered kAgain on link {link} completed {result:?}",
                    id.0
                ),
            );
        }
    }

    /// Bytes reach `client` on `link`: counts the complete frames, and returns what the
    /// core is given (a broken variant rewrites answers).
    pub(crate) fn delivered_to_client(&mut self, client: usize, link: usize, data: &[u8]) -> Bytes {
        let l = &mut self.links[link];
        l.delivered.extend(data);
        let mut payloads = Vec::new();
        while let Ok(Some(payload)) = l.delivered.next_payload() {
            l.last_frame_at = self.now;
            payloads.push(payload);
        }
        self.note_arm_deliveries(client, link, &payloads);
        self.note_refusals_read(client, &payloads);
        let close_any =
            self.cfg.variant == Variant::CloseTakesAnyAnswer && self.clients[client].close_called;
        let ignore_register =
            self.cfg.variant == Variant::CloseIgnoresRegister && self.clients[client].close_called;
        let retry_again = self.cfg.variant == Variant::RetryAgainWrites;
        if !close_any && !ignore_register && !retry_again {
            return Bytes::copy_from_slice(data);
        }
        let node = crate::world::node_addr(self.links[link].node);
        let l = &mut self.links[link];
        l.rewrite.extend(data);
        let mut out = BytesMut::new();
        while let Ok(Some(mut rsp)) = l.rewrite.next_response() {
            let kind = error_type(&rsp);
            if close_any && matches!(kind, Some(ErrorType::KNotLeader | ErrorType::KAgain)) {
                // A client that takes any answer to its Unregister for done.
                rsp.err = None;
            } else if ignore_register && rsp.sid.is_some() {
                // A closing client that takes its Register in flight for one that made
                // no session.
                rsp.sid = None;
                rsp.err = Some(pyxis_proto::rpc::Error {
                    r#type: ErrorType::KNotLeader as i32,
                    data: Some(Bytes::from(node.clone())),
                });
            } else if retry_again
                && kind == Some(ErrorType::KAgain)
                && rsp.xid.is_some_and(|x| x % 2 == 0)
            {
                // A client that takes an operation's kAgain for a refusal that applied
                // nothing, and retries it.
                rsp.err = Some(pyxis_proto::rpc::Error {
                    r#type: ErrorType::KNotLeader as i32,
                    data: Some(Bytes::from(node.clone())),
                });
            }
            out.extend_from_slice(&encode_response(&rsp));
        }
        out.freeze()
    }

    /// After `data` reached the core on `conn`: the [`Variant::DropOnNotLeader`] client
    /// gives the connection up at the first kNotLeader answer it sees.
    pub(crate) fn drop_on_not_leader(
        &mut self,
        client: usize,
        link: usize,
        conn: ConnId,
        data: &[u8],
    ) {
        if self.cfg.variant != Variant::DropOnNotLeader {
            return;
        }
        let mut d = FrameDecoder::new();
        d.extend(data);
        let mut refused = false;
        while let Ok(Some(rsp)) = d.next_response() {
            refused |= error_type(&rsp) == Some(ErrorType::KNotLeader);
        }
        if refused && !self.links[link].client_gone {
            let now = self.now_instant();
            self.links[link].client_gone = true;
            self.close_from_client(link);
            self.clients[client].core.handle_closed(conn, now);
        }
    }

    /// The stalled-link fault: the next server frame on `link` is cut halfway and
    /// nothing more reaches the client, with no close.
    pub(crate) fn stall_link(&mut self, link: usize) {
        self.links[link].stall = Some(false);
    }

    /// What of a server write `bytes` goes down `link` (all of it unless stalled); the
    /// answers in what goes down whole are booked (see `note_model_answers`).
    pub(crate) fn stalled_cut(&mut self, link: usize, bytes: Bytes) -> Option<Bytes> {
        match self.links[link].stall {
            None => {
                self.note_model_answers(link, &bytes);
                self.note_arm_answers(link, &bytes);
                Some(bytes)
            }
            Some(true) => None,
            Some(false) => {
                self.links[link].stall = Some(true);
                let cut = (bytes.len() / 2).max(1).min(bytes.len().saturating_sub(1));
                (cut > 0).then(|| bytes.slice(..cut))
            }
        }
    }

    /// Every link a running client still holds must have delivered a complete frame
    /// within T + 2 × `ping_grace` (plus slack), counted from its opening, the last such
    /// frame, or the end of the client's last pause.
    pub(crate) fn check_frame_liveness(&mut self) {
        let mut late = Vec::new();
        for (i, l) in self.links.iter().enumerate() {
            let c = &self.clients[l.client];
            if l.client_gone || !l.established || c.crashed || c.closed {
                continue;
            }
            let bound = liveness_bound();
            let since = l.last_frame_at.max(c.paused_until);
            if self.now > since + bound + LIVENESS_SLACK && c.paused_until <= self.now {
                late.push((i, l.client, (self.now - since) / 1_000));
            }
        }
        for (link, client, ms) in late {
            self.violation(
                Oracle::FrameLiveness,
                format!("client {client}: link {link} delivered no complete frame for {ms} ms and is still kept"),
            );
        }
    }

    /// `Closed` reached `client`: unless the core said the Unregister was not confirmed,
    /// the session must be gone at the server.
    pub(crate) fn check_closed(&mut self, client: usize) {
        let c = &self.clients[client];
        let Some(sid) = c.closing_sid.filter(|_| !c.close_unconfirmed) else {
            return;
        };
        if self.model.sessions().contains(&sid) {
            self.violation(
                Oracle::Close,
                format!("client {client}: Closed as confirmed while session {sid:#x} lives"),
            );
        }
    }

    /// `close()` on `client`: remembers the session it must end.
    pub(crate) fn note_close(&mut self, client: usize) {
        let c = &mut self.clients[client];
        c.closing_sid = c
            .core
            .sid()
            .filter(|_| c.core.state() != SessionState::Idle);
    }

    /// Part of the faults "pipelined writes across a leader move" and "the leader
    /// answers kAgain mid-flight": a running (not paused) client with a session up
    /// pipelines a few writes.
    pub(crate) fn burst_of_writes(&mut self, client: usize) {
        let c = &self.clients[client];
        if c.crashed
            || c.close_called
            || c.paused_until > self.now
            || c.core.state() != SessionState::Connected
        {
            return;
        }
        for _ in 0..4 {
            let path = crate::workload::PATHS[self.rng.usize(0..crate::workload::PATHS.len())];
            let data = self.unique_data(client);
            self.submit(
                client,
                pyxis_core::Op::Write {
                    path: path.into(),
                    data,
                },
            );
        }
    }

    /// The fault "the leader answers kAgain mid-flight": commits slow down to a Raft-like
    /// latency (20–80 ms, as the original's 50 ms heartbeat batches them), `client`
    /// pipelines writes, and leadership changes before they commit (see
    /// [`again_mid_flight_lands`](Self::again_mid_flight_lands)).
    pub(crate) fn again_mid_flight(&mut self, client: usize) {
        let c = &self.clients[client];
        if c.crashed
            || c.close_called
            || c.paused_until > self.now
            || c.core.state() != SessionState::Connected
        {
            return;
        }
        let latency = self.rng.u64(20 * crate::world::MS..80 * crate::world::MS);
        self.model
            .set_extra_commit_delay(std::time::Duration::from_micros(latency));
        self.burst_of_writes(client);
        let at = self.now + self.delay() + self.rng.u64(0..latency);
        self.record(("again-mid-flight", client, latency), || {
            format!(
                "FAULT client {client} pipelines writes, commits take {} ms, leadership changes before they commit",
                latency / crate::world::MS
            )
        });
        self.schedule(at, crate::world::Ev::AgainMidFlight { client });
    }

    /// The leader change of "the leader answers kAgain mid-flight": `client` pipelines
    /// more writes, then leadership changes (the same node may be elected again) while
    /// the first ones wait for their commit, so these are answered kAgain (applied or
    /// not, as the model's `in_flight_on_move` says) while the others are on the wire.
    pub(crate) fn again_mid_flight_lands(&mut self, client: usize) {
        self.model.set_extra_commit_delay(std::time::Duration::ZERO);
        self.burst_of_writes(client);
        let exercise_gap = self
            .cfg
            .exercises(crate::config::KnownGap::LeaderChangeWithoutHeldPing);
        if self.now < self.fault_stop {
            if let Some(to) = self.leader_target(exercise_gap) {
                let now = self.now_instant();
                let pending = self.model.in_flight_writes();
                self.cluster_disturbed = self.now;
                self.note_leader_change();
                let r = self.model.move_leader(to, now);
                self.record(("again-mid-flight-move", to, pending as u64), || {
                    format!("FAULT move leader to {to} with {pending} writes uncommitted: {r:?}")
                });
            }
        }
        self.drain_model();
    }

    /// The fault "close a client during a leader move": leadership moves (after a short
    /// no-leader window) and a running (not paused) client with a session closes at once.
    pub(crate) fn close_during_leader_move(&mut self, client: usize) {
        let c = &self.clients[client];
        if c.crashed || c.close_called || c.paused_until > self.now || c.core.sid().is_none() {
            return;
        }
        let now = self.now_instant();
        self.record(("close-during-move", client), || {
            format!("FAULT client {client} closes during a leader move")
        });
        self.close_client(client, now);
    }

    /// The application calls `close()` on `client` at `now`; its slot starts a new
    /// client 100 ms to 2 s later.
    pub(crate) fn close_client(&mut self, client: usize, now: std::time::Instant) {
        self.clients[client].close_called = true;
        self.note_close(client);
        self.clients[client].core.close(now);
        self.drain_client(client);
        let at = self.now + self.rng.u64(100 * crate::world::MS..2 * SEC);
        let slot = self.clients[client].slot;
        self.schedule(at, crate::world::Ev::Respawn { slot, resume: None });
    }

    /// Part of the fault "expire a session at the server, and close its client as it
    /// registers a new one": once `client` registers a session without sid (the
    /// replacement of the one found gone, whose Register is in flight), it closes.
    pub(crate) fn close_if_registering_anew(&mut self, client: usize) {
        let c = &self.clients[client];
        if !c.close_on_register
            || c.crashed
            || c.close_called
            || c.core.state() != SessionState::Registering
            || c.core.sid().is_some()
        {
            return;
        }
        let now = self.now_instant();
        self.record(("close-registering", client), || {
            format!("FAULT client {client} closes while it registers a new session")
        });
        self.close_client(client, now);
    }

    /// `Closed` reached `client` at least [`CLOSE_SLACK`] ago without `CloseUnconfirmed`:
    /// no session a Register of its connections made may live (a Register still in
    /// flight at `close` makes one once it lands). Each closed client is checked once.
    pub(crate) fn check_sessions_made_by_closed_clients(&mut self) {
        let due: Vec<usize> = (0..self.clients.len())
            .filter(|i| {
                let c = &self.clients[*i];
                c.closed
                    && !c.close_unconfirmed
                    && !c.made_sessions_checked
                    && c.closed_at + CLOSE_SLACK <= self.now
            })
            .collect();
        if due.is_empty() {
            return;
        }
        let alive: std::collections::BTreeSet<u64> = self.model.sessions().into_iter().collect();
        let mut found = Vec::new();
        for op in self.model.applied_ops() {
            let AppliedKind::SessionOpened { conn, .. } = op.kind else {
                continue;
            };
            let Some(client) = self.links.get(conn.0 as usize).map(|l| l.client) else {
                continue;
            };
            if due.contains(&client) && alive.contains(&op.sid) {
                found.push(format!(
                    "client {client}: Closed as confirmed at {} ms, but session {:#x} its Register made lives",
                    self.clients[client].closed_at / crate::world::MS,
                    op.sid
                ));
            }
        }
        for i in due {
            self.clients[i].made_sessions_checked = true;
        }
        for d in found {
            self.violation(Oracle::Close, d);
        }
    }
}
