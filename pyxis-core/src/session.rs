//! The session: finding the leader, registering, the ping long poll and liveness, and
//! the one fault policy: what a session-level fault does to the connection, the session
//! and the requests in flight.
//!
//! Owns: the connection [`Phase`] (waiting out a backoff, connecting, registering, up,
//! draining a connection that stopped serving, idle, closing, closed), the session id,
//! Register and its answers, the `Connected`/`Disconnected`/`Expired` events,
//! dispatching each answer by xid, and [`Client::on_fault`], the only place that
//! decides what a [`Fault`] does. The handlers of Register, ping, operation, arm and
//! Unregister answers do only their local part (an operation refused by a follower is
//! queued again, a write answered kAgain is told its outcome is unknown, ...) and hand the
//! fault on. The policy:
//!
//! | fault | while registering | while up | while closing |
//! |---|---|---|---|
//! | kNotLeader | next: the named leader (\*) | drain, then the named leader | Unregister at the named leader (\*); to a Register without sid (†): closed, no session was made |
//! | kAgain | next address, backoff (\*) | drain, then next address, backoff | Unregister again after a backoff (\*); to a Register without sid (†): closed unconfirmed (it may have made a session) |
//! | kSessionExpired | register anew (same connection); ignored when registering without sid (an answer of the session already found gone) | register anew (same connection) | closed (the session is gone); ignored while a Register without sid (†) is unanswered |
//! | malformed, closed, timed out | next address, backoff | next address, backoff | Unregister again after a backoff; while a Register without sid (†) is unanswered: closed unconfirmed |
//!
//! A request is never carried into another session (Pyxis has no conditional writes: a
//! delete sent again in a new session can remove what another client made meanwhile).
//! Each operation records the session it was submitted in, as the count of sessions
//! reported `Expired` before it; when a new session replaces a gone one, and after every
//! fault, the queued operations of earlier sessions complete with `SessionExpired`
//! (`Client::fail_lost_session_requests`). Those submitted before the first session go
//! out in it.
//!
//! Draining: a server that answers kNotLeader or kAgain to one request still answers
//! the others in flight on that connection (a follower applied none of them, a leader
//! that lost leadership answers each), so the connection is kept until every write in
//! flight has its own answer, at most `ping_grace`; nothing new is sent on it meanwhile.
//! Writes whose answer can no longer arrive (the connection closed or the wait ended)
//! complete with an unknown outcome; reads go back to the queue.
//!
//! (†) `close` while a Register without sid is in flight (the first session, or one
//! replacing a session found gone) waits for its answer: the session it names is then
//! ended like any other, so no session the client made outlives `close` unreported. A
//! Register without sid answered kAgain (it may have committed) or lost with its
//! connection may have made a session whose id never arrives: until the server's
//! largest session timeout has passed, `close` reports itself unconfirmed.
//!
//! (\*) While registering or closing, only the Register's or the Unregister's own answer
//! moves on: a refusal of a write, the ping or an arm sent before it (a session found
//! expired is registered anew on the connection its writes are in flight on) is that
//! request's answer, and the session request's follows the answers of every write sent
//! before it.
//!
//! Must never read a clock or pick addresses itself (that is `discovery`), and never
//! complete application operations except through the request rules of [protocol](pyxis_proto::protocol) §4
//! (reads retried, writes refused by a follower retried, writes in flight told their
//! outcome is unknown only when their answer can no longer arrive).

use std::time::Instant;

use pyxis_proto::rpc;

use crate::cause::{Cause, CauseKind};
use crate::client::Client;
use crate::diagnostic::Diagnostic;
use crate::discovery::Attempt;
use crate::error::Error;
use crate::ping::Pinger;
use crate::reply::{classify, Answer};
use crate::requests::{OpKind, Purpose};
use crate::types::{ConnId, Event, IoAction, Reply, SessionEvent, SessionState, TimerReason};

/// A session-level fault: something about the connection or the session rather than
/// one request. [`Client::on_fault`] decides what each does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// kNotLeader: the node does not lead (and applied nothing); the leader address if
    /// the answer named a valid one.
    NotLeader(Option<String>),
    /// kAgain: no leader now, or leadership changed with the request in flight.
    Again,
    /// kSessionExpired: the server does not know the session.
    SessionExpired,
    /// The bytes broke the protocol (a bad frame, checksum or payload, a Register
    /// answer without a session id): the connection is given up.
    Malformed,
    /// The adapter reported the connection closed (or its connect failed).
    Closed,
    /// A deadline of the connection passed (connect, register, ping liveness, drain).
    Timeout,
}

/// Where the connection to the leader stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting until `at` to connect to `addr` (backoff or redirect delay).
    Waiting { at: Instant, addr: String },
    /// `Connect` issued; waiting for `handle_connected` until `deadline`.
    Connecting {
        conn: ConnId,
        addr: String,
        deadline: Instant,
    },
    /// Register sent; its answer is due by `deadline`.
    Registering {
        conn: ConnId,
        addr: String,
        deadline: Instant,
    },
    /// A session is up on `conn`.
    Up { conn: ConnId, addr: String },
    /// `conn` answered kNotLeader or kAgain: nothing new is sent on it, and once every
    /// write in flight has its answer (or at `deadline`) it is dropped and `next` tried.
    Draining {
        conn: ConnId,
        addr: String,
        next: Next,
        deadline: Instant,
    },
    /// No connection and no session wanted (after `Op::Unregister`).
    Idle,
    /// `close` sent Unregister on `conn` (or, with no sid yet, waits for the answer of
    /// the Register in flight to name the session to end); closing at the Unregister's
    /// answer or at `deadline`.
    Closing {
        conn: ConnId,
        addr: String,
        deadline: Instant,
    },
    /// `close` needs a connection to send the session its Unregister (sessions are not
    /// tied to connections, [protocol](pyxis_proto::protocol) §3): `conn` is being opened; closing at
    /// `deadline` at the latest.
    ClosingConnect {
        conn: ConnId,
        addr: String,
        deadline: Instant,
    },
    /// `close` is waiting until `at` (a backoff or redirect delay) to connect to `addr`
    /// for the Unregister; closing at `deadline` at the latest.
    ClosingWait {
        at: Instant,
        addr: String,
        deadline: Instant,
    },
    /// Closed for good.
    Closed,
}

impl Phase {
    pub(crate) fn state(&self) -> SessionState {
        match self {
            Phase::Waiting { .. } | Phase::Connecting { .. } => SessionState::Connecting,
            Phase::Registering { .. } => SessionState::Registering,
            Phase::Up { .. } | Phase::Draining { .. } => SessionState::Connected,
            Phase::Idle => SessionState::Idle,
            Phase::Closing { .. } | Phase::ClosingConnect { .. } | Phase::ClosingWait { .. } => {
                SessionState::Closing
            }
            Phase::Closed => SessionState::Closed,
        }
    }

    /// The connection the core holds open, if any.
    pub(crate) fn conn(&self) -> Option<ConnId> {
        match self {
            Phase::Connecting { conn, .. }
            | Phase::Registering { conn, .. }
            | Phase::Up { conn, .. }
            | Phase::Draining { conn, .. }
            | Phase::Closing { conn, .. }
            | Phase::ClosingConnect { conn, .. } => Some(*conn),
            _ => None,
        }
    }

    /// The connection whose bytes are read (and which frames are written to).
    pub(crate) fn receiving_conn(&self) -> Option<ConnId> {
        match self {
            Phase::Registering { conn, .. }
            | Phase::Up { conn, .. }
            | Phase::Draining { conn, .. }
            | Phase::Closing { conn, .. } => Some(*conn),
            _ => None,
        }
    }

    /// The connection queued frames go to.
    pub(crate) fn sending_conn(&self) -> Option<ConnId> {
        self.receiving_conn()
    }

    fn addr(&self) -> &str {
        match self {
            Phase::Waiting { addr, .. }
            | Phase::Connecting { addr, .. }
            | Phase::Registering { addr, .. }
            | Phase::Up { addr, .. }
            | Phase::Draining { addr, .. }
            | Phase::Closing { addr, .. }
            | Phase::ClosingConnect { addr, .. }
            | Phase::ClosingWait { addr, .. } => addr,
            Phase::Idle | Phase::Closed => "",
        }
    }

    /// The phase's deadline, and why.
    pub(crate) fn deadline(&self) -> Option<(Instant, TimerReason)> {
        match self {
            Phase::Waiting { at, .. } => Some((*at, TimerReason::Backoff)),
            Phase::ClosingWait { at, deadline, .. } if at < deadline => {
                Some((*at, TimerReason::Backoff))
            }
            Phase::Connecting { deadline, .. } => Some((*deadline, TimerReason::Connect)),
            Phase::Registering { deadline, .. } => Some((*deadline, TimerReason::Register)),
            Phase::Draining { deadline, .. } => Some((*deadline, TimerReason::Drain)),
            Phase::Closing { deadline, .. }
            | Phase::ClosingConnect { deadline, .. }
            | Phase::ClosingWait { deadline, .. } => Some((*deadline, TimerReason::Close)),
            Phase::Up { .. } | Phase::Idle | Phase::Closed => None,
        }
    }

    /// A session is up and serving on the connection: operations, pings and arms may
    /// be sent.
    #[inline]
    pub(crate) fn is_up(&self) -> bool {
        matches!(self, Phase::Up { .. })
    }

    pub(crate) fn is_closing_or_closed(&self) -> bool {
        matches!(
            self,
            Phase::Closing { .. }
                | Phase::ClosingConnect { .. }
                | Phase::ClosingWait { .. }
                | Phase::Closed
        )
    }

    /// `close` is under way (an Unregister sent or to be sent).
    fn is_closing(&self) -> bool {
        matches!(
            self,
            Phase::Closing { .. } | Phase::ClosingConnect { .. } | Phase::ClosingWait { .. }
        )
    }
}

/// The session's identity and its ping.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The live session id, or the one to resume.
    pub sid: Option<u64>,
    /// A session found expired; reported after the next `Connected`.
    pub expired_sid: Option<u64>,
    /// The ping long poll.
    pub ping: Pinger,
    /// How many sessions were reported gone (`Expired`: found expired, or replaced by a
    /// Register that yielded another sid). An operation records it when submitted: it
    /// belongs to the session of that count and is never sent once the count has grown.
    pub lost: u64,
    /// A Register without sid was answered kAgain (it may have committed) or lost with
    /// its connection: a session whose id never reached the client may live until
    /// then, and `close` cannot confirm it ended.
    pub unnamed_until: Option<Instant>,
}

impl Session {
    pub(crate) fn new(resume_sid: Option<u64>, ping: Pinger) -> Session {
        Session {
            sid: resume_sid.filter(|s| *s != 0),
            expired_sid: None,
            ping,
            lost: 0,
            unnamed_until: None,
        }
    }

    /// The server said the session is gone: forget it, remember it for the report.
    fn expire(&mut self) {
        if let Some(old) = self.sid.take() {
            self.expired_sid = Some(old);
        }
    }

    /// A Register succeeded with `sid`: the events to report, in order.
    fn registered(&mut self, sid: u64) -> Vec<SessionEvent> {
        let old = self.expired_sid.take().or(self.sid);
        self.sid = Some(sid);
        let mut events = vec![SessionEvent::Connected { sid }];
        if let Some(old_sid) = old.filter(|o| *o != sid) {
            events.push(SessionEvent::Expired { old_sid });
            self.lost += 1;
        }
        events
    }
}

/// What to do after losing a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Next list address, with backoff.
    Failure,
    /// Follow a kNotLeader (its address, if parsable).
    Redirect(Option<String>),
}

impl Next {
    /// What to do after `fault` (kNotLeader: follow it; anything else: a failure).
    fn after(fault: Fault) -> Next {
        match fault {
            Fault::NotLeader(leader) => Next::Redirect(leader),
            _ => Next::Failure,
        }
    }
}

impl Client {
    // ----- the fault policy -----

    /// The one place that decides what a session-level fault does to the connection,
    /// the session and the requests in flight (see the module docs for the table).
    /// Answer handlers call it after their local part. Afterwards no operation of a
    /// session found gone is left queued (see [`Client::fail_lost_session_requests`]).
    pub(crate) fn on_fault(&mut self, fault: Fault, now: Instant) {
        self.apply_fault(fault, now);
        self.fail_lost_session_requests();
    }

    /// The table of the module docs, applied.
    fn apply_fault(&mut self, fault: Fault, now: Instant) {
        if let Some(kind) = self.cause_of(&fault) {
            self.note_cause(kind);
        }
        // A Register without sid whose answer can no longer arrive may have made a
        // session no one can name.
        if matches!(fault, Fault::Closed | Fault::Timeout | Fault::Malformed)
            && matches!(self.phase, Phase::Registering { .. })
            && self.session.sid.is_none()
            && self.requests.in_flight(&Purpose::Register)
        {
            self.note_unnamed_session(now);
        }
        // A refusal of an operation, the ping or an arm while this connection's
        // Register or closing Unregister is unanswered is that request's own answer:
        // the session request's answer follows those of every write sent before it
        // (writes are answered in the order sent), so those still get theirs, and it
        // alone decides.
        if matches!(fault, Fault::NotLeader(_) | Fault::Again) && self.session_request_in_flight() {
            return;
        }
        if self.phase.is_closing() {
            return self.close_fault(fault, now);
        }
        let close_it = fault != Fault::Closed;
        match &self.phase {
            Phase::Idle | Phase::Closed | Phase::Waiting { .. } => {}
            // Registering anew needs the connection; a session is made on it.
            Phase::Up { .. } if fault == Fault::SessionExpired => self.session_expired(now),
            Phase::Registering { .. }
                if fault == Fault::SessionExpired && self.session.sid.is_some() =>
            {
                self.session.expire();
                self.send_register();
            }
            // An answer to a request of the session found gone, read while a new one is
            // registered on this connection (a Register without sid is never answered
            // kSessionExpired): expected, nothing to do.
            Phase::Registering { .. } if fault == Fault::SessionExpired => {}
            // Answers are still due on a connection that refused or lost one request.
            Phase::Up { conn, addr } if matches!(fault, Fault::NotLeader(_) | Fault::Again) => {
                if self.requests.writes_in_flight() {
                    self.phase = Phase::Draining {
                        conn: *conn,
                        addr: addr.clone(),
                        next: Next::after(fault),
                        deadline: now + self.config.ping_grace,
                    };
                    self.stop_pinging();
                } else {
                    self.drop_connection(now, Next::after(fault), true);
                }
            }
            Phase::Draining { next, .. } => match fault {
                // Expected from the others in flight; a lost session is found by the
                // reconnect's Register.
                Fault::NotLeader(_) | Fault::Again | Fault::SessionExpired => {}
                Fault::Malformed | Fault::Closed | Fault::Timeout => {
                    let next = next.clone();
                    self.drop_connection(now, next, close_it);
                }
            },
            _ => self.drop_connection(now, Next::after(fault), close_it),
        }
    }

    /// A request is never carried into another session: once a new session is up in
    /// place of one that is gone (`Expired` reported), every queued operation submitted
    /// before that report (while the old session was up, being resumed, or already
    /// found expired but not yet reported) completes with `SessionExpired` instead of
    /// going out in the new session, where it could undo what others did meanwhile
    /// (Pyxis has no conditional writes). An `Op::Unregister` among them succeeds: the
    /// session it was to end is over. The operations of the old session sent before
    /// the new Register were answered before it (answers come in the order sent); one
    /// that comes back to the queue later (a refusal) is failed here too. Operations
    /// submitted before any session existed go out in the first one.
    pub(crate) fn fail_lost_session_requests(&mut self) {
        for id in self.requests.unsent_of_lost_sessions(self.session.lost) {
            let unregister = self
                .requests
                .get(id)
                .is_some_and(|p| p.kind == OpKind::Unregister);
            let result = if unregister {
                Ok(Reply::Done)
            } else {
                Err(Error::SessionExpired)
            };
            self.complete(id, result);
        }
    }

    /// A session whose id never reached the client may have been made at `now`: it lives
    /// at most the session timeout the server gave it, which is the one asked for, or
    /// at most the server's largest ([protocol](pyxis_proto::protocol) §9), plus a check
    /// interval.
    fn note_unnamed_session(&mut self, now: Instant) {
        let longest = self.config.session_timeout.max(crate::ping::MAX_HOLD);
        let interval = std::time::Duration::from_millis(u64::from(
            pyxis_proto::limits::SESSION_CHECK_INTERVAL_MS,
        ));
        self.session.unnamed_until = Some(now + longest + interval);
    }

    /// Whether the connection's Register (while registering) or the Unregister of
    /// `close` (while closing) is unanswered.
    fn session_request_in_flight(&self) -> bool {
        match self.phase {
            Phase::Registering { .. } => self.requests.in_flight(&Purpose::Register),
            Phase::Closing { .. } => {
                self.requests.in_flight(&Purpose::Close)
                    || self.requests.in_flight(&Purpose::Register)
            }
            _ => false,
        }
    }

    /// What `fault` says about the server, for [`Client::last_cause`]: `None` for a
    /// closed connection (recorded with the adapter's reason by `handle_failed`) and for
    /// an expired session (the server answers; it is no failure to reach it).
    fn cause_of(&self, fault: &Fault) -> Option<CauseKind> {
        Some(match fault {
            Fault::NotLeader(leader) => CauseKind::NotLeader {
                leader: leader.clone(),
            },
            Fault::Again => CauseKind::NoLeader,
            Fault::Malformed => CauseKind::Malformed,
            Fault::Timeout => match self.phase {
                Phase::Connecting { .. } | Phase::ClosingConnect { .. } => {
                    CauseKind::ConnectTimeout
                }
                Phase::Registering { .. } => CauseKind::RegisterTimeout,
                _ => CauseKind::Silent,
            },
            Fault::SessionExpired | Fault::Closed => return None,
        })
    }

    /// Records why the current server failed (see [`Client::last_cause`]).
    pub(crate) fn note_cause(&mut self, kind: CauseKind) {
        self.cause = Some(Cause::new(self.phase.addr(), kind));
    }

    /// After each answer: a draining connection whose writes are all answered is
    /// dropped, and its next attempt started.
    #[inline]
    pub(crate) fn after_answer(&mut self, now: Instant) {
        if let Phase::Draining { next, .. } = &self.phase {
            if !self.requests.writes_in_flight() {
                let next = next.clone();
                self.drop_connection(now, next, true);
            }
        }
    }

    /// A fault while `close` is under way: a definite answer (kSessionExpired: the
    /// session is gone) closes; anything else sends the Unregister again, to the named
    /// leader or after a backoff, until `close_timeout`. While the Register without sid
    /// that `close` waits for is unanswered (no sid yet): kSessionExpired is an answer of
    /// the session found gone (expected); its own kNotLeader says no session was made
    /// (closed); a kAgain (it may have committed) or a lost connection leaves a session
    /// the client cannot name (closed, unconfirmed).
    fn close_fault(&mut self, fault: Fault, now: Instant) {
        if self.session.sid.is_none() {
            return match fault {
                Fault::SessionExpired => {}
                Fault::NotLeader(_) => self.finish_close(true),
                _ => self.finish_close(false),
            };
        }
        if fault == Fault::SessionExpired {
            return self.finish_close(true);
        }
        let (current, deadline) = match &self.phase {
            Phase::Closing { addr, deadline, .. }
            | Phase::ClosingConnect { addr, deadline, .. } => (addr.clone(), *deadline),
            // Waiting already: nothing is open to fault.
            _ => return,
        };
        if fault != Fault::Closed {
            if let Some(conn) = self.phase.conn() {
                self.io.push_back(IoAction::Close { conn });
            }
        }
        self.out.clear();
        self.decoder.reset();
        self.requests.forget_internal();
        let attempt = self.next_attempt(&current, Next::after(fault));
        self.phase = Phase::ClosingWait {
            at: now + attempt.delay,
            addr: attempt.addr,
            deadline,
        };
        if attempt.delay.is_zero() {
            self.on_phase_timeout(now);
        }
    }

    fn next_attempt(&mut self, current: &str, next: Next) -> Attempt {
        let (attempt, leader) = match next {
            Next::Failure => (self.discovery.after_failure(&mut self.rng), None),
            Next::Redirect(leader) => {
                let attempt =
                    self.discovery
                        .after_redirect(current, leader.as_deref(), &mut self.rng);
                (attempt, leader)
            }
        };
        self.diagnostics.push(match leader {
            Some(to) if to == attempt.addr => Diagnostic::Redirect {
                from: current.to_owned(),
                to,
                delay: attempt.delay,
            },
            _ => Diagnostic::Backoff {
                addr: attempt.addr.clone(),
                delay: attempt.delay,
                attempt: self.discovery.failures(),
            },
        });
        attempt
    }

    /// Gives the connection up (closing it unless `close_it` is false: the adapter said
    /// it is closed) and moves on to `next`. Called only by the fault policy (and when a
    /// drain ends).
    fn drop_connection(&mut self, now: Instant, next: Next, close_it: bool) {
        if close_it {
            if let Some(conn) = self.phase.conn() {
                self.io.push_back(IoAction::Close { conn });
            }
        }
        self.connection_lost(now, next);
    }

    /// The current connection is gone (its `Close`, if due, already queued): settle
    /// what was in flight and schedule the next attempt. Only `drop_connection` calls it.
    fn connection_lost(&mut self, now: Instant, next: Next) {
        let was_up = matches!(self.phase, Phase::Up { .. } | Phase::Draining { .. });
        let current = self.phase.addr().to_owned();
        self.out.clear();
        self.decoder.reset();
        self.stop_pinging();
        for id in self.requests.connection_lost() {
            self.complete(
                id,
                Err(Error::ConnectionLoss {
                    outcome_unknown: true,
                    cause: self.cause.clone(),
                }),
            );
        }
        if was_up {
            self.events
                .push_back(Event::Session(SessionEvent::Disconnected));
        }
        let attempt = self.next_attempt(&current, next);
        self.start_attempt(attempt, now);
        if !was_up && self.discovery.tried_every_address() {
            self.unreachable = true;
            self.fail_fast_if_unreachable();
        }
    }

    /// With `Config::fail_fast`, once no server is reachable: the operations waiting
    /// for a session fail now with the last cause instead of at their deadline.
    fn fail_fast_if_unreachable(&mut self) {
        let Some(cause) = self.unreachable().cloned() else {
            return;
        };
        for id in self.requests.unsent_ids() {
            self.complete(
                id,
                Err(Error::Unreachable {
                    cause: cause.clone(),
                }),
            );
        }
    }

    // ----- connecting and registering -----

    /// Connects now or after the attempt's delay.
    pub(crate) fn start_attempt(&mut self, attempt: Attempt, now: Instant) {
        if attempt.delay.is_zero() {
            self.connect_now(attempt.addr, now);
        } else {
            self.phase = Phase::Waiting {
                at: now + attempt.delay,
                addr: attempt.addr,
            };
        }
    }

    /// Asks the adapter for a new connection to `addr` and returns its id.
    fn open(&mut self, addr: &str) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.io.push_back(IoAction::Connect {
            conn,
            addr: addr.to_owned(),
        });
        self.decoder.reset();
        self.out.clear();
        conn
    }

    fn connect_now(&mut self, addr: String, now: Instant) {
        let conn = self.open(&addr);
        self.phase = Phase::Connecting {
            conn,
            addr,
            deadline: now + self.config.connect_timeout,
        };
    }

    /// Something needs a session (an operation or a watch): leave `Idle`.
    pub(crate) fn want_session(&mut self, now: Instant) {
        if self.phase == Phase::Idle && (!self.requests.is_empty() || self.watches.len() > 0) {
            let attempt = self.discovery.first();
            self.start_attempt(attempt, now);
        }
    }

    /// `close` with a live session: send it the Unregister on the connection the session
    /// is up (or being resumed, or drained) on, behind anything already sent, or on a
    /// connection opened at once for it (skipping any backoff). With a Register without
    /// sid in flight, wait for its answer and end the session it names. Closes at once
    /// when no session lives on the server.
    pub(crate) fn begin_close(&mut self, now: Instant) {
        let deadline = now + self.config.close_timeout;
        if self.session.sid.is_none() {
            // A Register without sid in flight (the first session, or one replacing a
            // session found gone) makes a session whatever the client does next: wait
            // for its answer to name it, then end it.
            if let Phase::Registering { conn, addr, .. } = &self.phase {
                self.phase = Phase::Closing {
                    conn: *conn,
                    addr: addr.clone(),
                    deadline,
                };
                self.stop_pinging();
                return;
            }
            return self.finish_close(true);
        }
        match &self.phase {
            Phase::Up { conn, addr }
            | Phase::Draining { conn, addr, .. }
            | Phase::Registering { conn, addr, .. } => {
                self.phase = Phase::Closing {
                    conn: *conn,
                    addr: addr.clone(),
                    deadline,
                };
                self.send_close_unregister();
            }
            Phase::Connecting { conn, addr, .. } => {
                self.phase = Phase::ClosingConnect {
                    conn: *conn,
                    addr: addr.clone(),
                    deadline,
                };
            }
            Phase::Waiting { addr, .. } => {
                let addr = addr.clone();
                self.phase = Phase::ClosingWait {
                    at: now,
                    addr,
                    deadline,
                };
                self.on_phase_timeout(now);
            }
            _ => self.finish_close(true),
        }
    }

    /// Sends the Unregister of `close` on the current connection.
    fn send_close_unregister(&mut self) {
        self.stop_pinging();
        let xid = self.requests.send(Purpose::Close);
        self.send_frame(&rpc::Request {
            sid: self.session.sid,
            xid: Some(xid),
            unregister: Some(rpc::UnRegisterRequest {}),
            ..Default::default()
        });
    }

    pub(crate) fn on_connected(&mut self, conn: ConnId, _now: Instant) {
        match &self.phase {
            Phase::ClosingConnect {
                conn: c,
                addr,
                deadline,
            } if *c == conn => {
                self.phase = Phase::Closing {
                    conn,
                    addr: addr.clone(),
                    deadline: *deadline,
                };
                self.send_close_unregister();
            }
            Phase::Connecting {
                conn: c,
                addr,
                deadline,
            } if *c == conn => {
                self.phase = Phase::Registering {
                    conn,
                    addr: addr.clone(),
                    deadline: *deadline,
                };
                self.send_register();
            }
            _ => {}
        }
    }

    fn send_register(&mut self) {
        self.diagnostics.push(Diagnostic::Register {
            addr: self.phase.addr().to_owned(),
            resume: self.session.sid,
        });
        let xid = self.requests.send(Purpose::Register);
        self.send_frame(&rpc::Request {
            sid: self.session.sid,
            xid: Some(xid),
            register: Some(rpc::RegisterRequest {
                timeout: Some(self.config.session_timeout_ms()),
            }),
            ..Default::default()
        });
    }

    /// Dispatches one answer by its xid; answers to unknown xids are ignored. Returns
    /// whether the answer was to a request in flight.
    /// Takes the answer by reference: it is large, and moving it costs a copy per answer.
    #[inline]
    pub(crate) fn on_response(&mut self, rsp: &mut rpc::Response, now: Instant) -> bool {
        // An answer without xid is xid 0 (protocol §1), which the core never uses.
        let Some(xid) = rsp.xid else {
            return false;
        };
        let Some(purpose) = self.requests.answered(xid) else {
            // Not the table's: an arm or re-check of the watch registry, or unknown.
            let Some(flight) = self.watches.answered(xid) else {
                return false;
            };
            self.on_watch_answer(flight, rsp, now);
            self.after_answer(now);
            return true;
        };
        match purpose {
            Purpose::Register => self.on_register_answer(rsp, now),
            Purpose::Ping => self.on_ping_answer(rsp, now),
            Purpose::Close => self.on_close_answer(rsp, now),
            Purpose::Op(id) => self.on_op_answer(id, rsp, now),
        }
        self.after_answer(now);
        true
    }

    fn on_register_answer(&mut self, rsp: &rpc::Response, now: Instant) {
        if matches!(self.phase, Phase::Closing { .. }) && self.session.sid.is_none() {
            return self.on_register_answer_while_closing(rsp, now);
        }
        let Phase::Registering { conn, addr, .. } = &self.phase else {
            return;
        };
        let (conn, addr) = (*conn, addr.clone());
        let answer = classify(rsp, "");
        // kAgain to a Register without sid: it may have committed.
        if self.session.sid.is_none() && matches!(answer, Answer::Fault(Fault::Again)) {
            self.note_unnamed_session(now);
        }
        match answer {
            // A resumed session may be confirmed without its sid repeated.
            Answer::Success => match rsp.sid.filter(|s| *s != 0).or(self.session.sid) {
                Some(sid) => self.session_up(conn, addr, sid, now),
                None => self.on_fault(Fault::Malformed, now),
            },
            Answer::Fault(fault) => self.on_fault(fault, now),
            // A Register refused for good: another server may take it.
            Answer::Final(_) => self.on_fault(Fault::Again, now),
        }
    }

    /// `close` came while a Register without sid was in flight: the session its answer
    /// names is ended with an Unregister on the same connection; a refusal is a fault
    /// (see `close_fault`).
    fn on_register_answer_while_closing(&mut self, rsp: &rpc::Response, now: Instant) {
        match classify(rsp, "") {
            Answer::Success => match rsp.sid.filter(|s| *s != 0) {
                Some(sid) => {
                    self.session.sid = Some(sid);
                    self.send_close_unregister();
                }
                None => self.on_fault(Fault::Malformed, now),
            },
            Answer::Fault(fault) => self.on_fault(fault, now),
            Answer::Final(_) => self.on_fault(Fault::Again, now),
        }
    }

    /// The Unregister of `close` was answered: success closes; a refusal is a fault
    /// (retried until `close_timeout`).
    fn on_close_answer(&mut self, rsp: &rpc::Response, now: Instant) {
        match classify(rsp, "") {
            Answer::Success => self.finish_close(true),
            Answer::Fault(fault) => self.on_fault(fault, now),
            Answer::Final(_) => self.on_fault(Fault::Again, now),
        }
    }

    fn session_up(&mut self, conn: ConnId, addr: String, sid: u64, now: Instant) {
        self.cause = None;
        self.unreachable = false;
        let events = self.session.registered(sid);
        self.events.extend(events.into_iter().map(Event::Session));
        self.fail_lost_session_requests();
        self.phase = Phase::Up { conn, addr };
        self.send_ping(now);
        self.rearm_every_watch();
    }

    /// A request (not Register) was answered kSessionExpired while the session was up:
    /// register anew on the same connection; `Expired` follows the next `Connected`.
    fn session_expired(&mut self, now: Instant) {
        let Phase::Up { conn, addr } = &self.phase else {
            return;
        };
        let (conn, addr) = (*conn, addr.clone());
        self.session.expire();
        self.stop_pinging();
        self.phase = Phase::Registering {
            conn,
            addr,
            deadline: now + self.config.connect_timeout,
        };
        self.send_register();
    }

    /// `Op::Unregister` succeeded: the session is over (no `Expired` is reported). A new
    /// one is registered at once if operations or watches need it; otherwise the
    /// connection is closed and the client is idle until the next command.
    pub(crate) fn session_ended(&mut self, now: Instant) {
        self.session.sid = None;
        self.session.expired_sid = None;
        self.stop_pinging();
        let Phase::Up { conn, addr } = &self.phase else {
            return;
        };
        let (conn, addr) = (*conn, addr.clone());
        if !self.requests.is_empty() || self.watches.len() > 0 {
            self.phase = Phase::Registering {
                conn,
                addr,
                deadline: now + self.config.connect_timeout,
            };
            self.send_register();
        } else {
            self.io.push_back(IoAction::Close { conn });
            self.out.clear();
            self.phase = Phase::Idle;
        }
    }

    /// Acts on the phase's deadline and the ping's liveness deadline.
    pub(crate) fn on_phase_timeout(&mut self, now: Instant) {
        match &self.phase {
            Phase::Waiting { at, addr } if *at <= now => {
                let addr = addr.clone();
                self.connect_now(addr, now);
            }
            Phase::Connecting { deadline, .. }
            | Phase::Registering { deadline, .. }
            | Phase::Draining { deadline, .. }
                if *deadline <= now =>
            {
                self.on_fault(Fault::Timeout, now);
            }
            Phase::Closing { deadline, .. }
            | Phase::ClosingConnect { deadline, .. }
            | Phase::ClosingWait { deadline, .. }
                if *deadline <= now =>
            {
                self.finish_close(false)
            }
            Phase::ClosingWait { at, addr, deadline } if *at <= now => {
                let (addr, deadline) = (addr.clone(), *deadline);
                let conn = self.open(&addr);
                self.phase = Phase::ClosingConnect {
                    conn,
                    addr,
                    deadline,
                };
            }
            Phase::Up { .. } => self.on_ping_timeout(now),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expired_is_reported_after_connected_only_when_the_sid_changed() {
        let ping = || Pinger::new(Duration::from_secs(5), Duration::from_secs(2));
        let mut s = Session::new(Some(5), ping());
        assert_eq!(s.registered(5), vec![SessionEvent::Connected { sid: 5 }]);
        s.expire();
        assert_eq!(s.sid, None);
        assert_eq!(
            s.registered(6),
            vec![
                SessionEvent::Connected { sid: 6 },
                SessionEvent::Expired { old_sid: 5 }
            ]
        );
        assert_eq!(Session::new(Some(0), ping()).sid, None);
    }
}
