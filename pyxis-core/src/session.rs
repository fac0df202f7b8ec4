//! The session: finding the leader, registering, the ping long poll and liveness, and
//! what happens when a connection or the session is lost.
//!
//! Owns: the connection [`Phase`] (waiting out a backoff, connecting, registering, up,
//! idle, closing, closed), the session id and the one outstanding ping with its
//! liveness deadline (session timeout + grace), Register and its answers (kNotLeader ⇒
//! redirect, kSessionExpired ⇒ register anew on the same connection, anything else ⇒
//! next address), the `Connected`/`Disconnected`/`Expired` events, and dispatching each
//! answer by xid. Must never read a clock or pick addresses itself (that is
//! `discovery`), and never complete application operations except through the request
//! rules of PROTOCOL.md §4 (reads retried, writes in flight told their outcome is unknown).

use std::time::Instant;

use pyxis_proto::rpc;

use crate::client::Client;
use crate::discovery::Attempt;
use crate::error::Error;
use crate::ping::Pinger;
use crate::reply::{server_error, ServerError};
use crate::requests::Purpose;
use crate::types::{ConnId, Event, IoAction, SessionEvent, SessionState};

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
    /// No connection and no session wanted (after `Op::Unregister`).
    Idle,
    /// `close` sent Unregister; closing at the answer or at `deadline`.
    Closing { conn: ConnId, deadline: Instant },
    /// `close` came while no connection was up but a session lives on the server: `conn`
    /// is being opened only to send it an Unregister (sessions are not tied to
    /// connections, PROTOCOL.md §3); closing at `deadline` at the latest.
    ClosingConnect { conn: ConnId, deadline: Instant },
    /// Closed for good.
    Closed,
}

impl Phase {
    pub(crate) fn state(&self) -> SessionState {
        match self {
            Phase::Waiting { .. } | Phase::Connecting { .. } => SessionState::Connecting,
            Phase::Registering { .. } => SessionState::Registering,
            Phase::Up { .. } => SessionState::Connected,
            Phase::Idle => SessionState::Idle,
            Phase::Closing { .. } | Phase::ClosingConnect { .. } => SessionState::Closing,
            Phase::Closed => SessionState::Closed,
        }
    }

    /// The connection the core holds open, if any.
    pub(crate) fn conn(&self) -> Option<ConnId> {
        match self {
            Phase::Connecting { conn, .. }
            | Phase::Registering { conn, .. }
            | Phase::Up { conn, .. }
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
            | Phase::Up { addr, .. } => addr,
            _ => "",
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Phase::Waiting { at, .. } => Some(*at),
            Phase::Connecting { deadline, .. }
            | Phase::Registering { deadline, .. }
            | Phase::Closing { deadline, .. }
            | Phase::ClosingConnect { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        matches!(self, Phase::Up { .. })
    }

    pub(crate) fn is_closing_or_closed(&self) -> bool {
        matches!(
            self,
            Phase::Closing { .. } | Phase::ClosingConnect { .. } | Phase::Closed
        )
    }
}

/// The session's identity and its ping.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    /// The live session id, or the one to resume.
    pub sid: Option<u64>,
    /// A session found expired; reported after the next `Connected`.
    pub expired_sid: Option<u64>,
    /// The ping long poll.
    pub ping: Pinger,
}

impl Session {
    pub(crate) fn new(resume_sid: Option<u64>) -> Session {
        Session {
            sid: resume_sid.filter(|s| *s != 0),
            ..Session::default()
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

impl Client {
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

    fn connect_now(&mut self, addr: String, now: Instant) {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.io.push_back(IoAction::Connect {
            conn,
            addr: addr.clone(),
        });
        self.decoder.reset();
        self.out.clear();
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

    /// `close` while connecting or backing off with a live session: open a connection
    /// (the pending one, or a new one at once, skipping the backoff) just to send the
    /// session its Unregister, within `close_timeout`.
    pub(crate) fn close_via_new_connection(&mut self, now: Instant) {
        let deadline = now + self.config.close_timeout;
        let conn = match &self.phase {
            Phase::Connecting { conn, .. } => *conn,
            Phase::Waiting { addr, .. } => {
                let addr = addr.clone();
                self.connect_now(addr, now);
                match self.phase.conn() {
                    Some(conn) => conn,
                    None => return self.finish_close(),
                }
            }
            _ => return self.finish_close(),
        };
        self.phase = Phase::ClosingConnect { conn, deadline };
    }

    pub(crate) fn on_connected(&mut self, conn: ConnId, _now: Instant) {
        if let Phase::ClosingConnect { conn: c, deadline } = self.phase {
            if c == conn {
                self.phase = Phase::Closing { conn, deadline };
                self.send_close_unregister();
            }
            return;
        }
        if let Phase::Connecting {
            conn: c,
            addr,
            deadline,
        } = &self.phase
        {
            if *c == conn {
                self.phase = Phase::Registering {
                    conn,
                    addr: addr.clone(),
                    deadline: *deadline,
                };
                self.send_register();
            }
        }
    }

    fn send_register(&mut self) {
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

    /// The current connection is lost (or given up): close it unless the adapter said
    /// it is closed, settle what was in flight, and schedule the next attempt.
    pub(crate) fn connection_lost(&mut self, now: Instant, next: Next, close_it: bool) {
        let Some(conn) = self.phase.conn() else {
            return;
        };
        if close_it {
            self.io.push_back(IoAction::Close { conn });
        }
        if let Phase::Closing { .. } | Phase::ClosingConnect { .. } = self.phase {
            self.phase = Phase::Idle;
            self.finish_close();
            return;
        }
        let was_up = self.phase.is_up();
        let current = self.phase.addr().to_owned();
        self.out.clear();
        self.decoder.reset();
        self.stop_pinging();
        for id in self.requests.connection_lost() {
            self.complete(
                id,
                Err(Error::ConnectionLoss {
                    outcome_unknown: true,
                }),
            );
        }
        if was_up {
            self.events
                .push_back(Event::Session(SessionEvent::Disconnected));
        }
        let attempt = match next {
            Next::Failure => self.discovery.after_failure(&mut self.rng),
            Next::Redirect(leader) => {
                self.discovery
                    .after_redirect(&current, leader.as_deref(), &mut self.rng)
            }
        };
        self.start_attempt(attempt, now);
    }

    /// Dispatches one answer by its xid; answers to unknown xids are ignored.
    /// Takes the answer by reference: it is large, and moving it costs a copy per answer.
    pub(crate) fn on_response(&mut self, rsp: &mut rpc::Response, now: Instant) {
        // An answer without xid is xid 0 (PROTOCOL.md §1), which the core never uses.
        let Some(purpose) = rsp.xid.and_then(|xid| self.requests.answered(xid)) else {
            return;
        };
        match purpose {
            Purpose::Register => self.on_register_answer(rsp, now),
            Purpose::Ping => self.on_ping_answer(rsp, now),
            Purpose::Close => self.finish_close(),
            Purpose::Op(id) => self.on_op_answer(id, rsp, now),
            Purpose::Arm(path) => self.on_arm_answer(&path, rsp, now),
        }
    }

    fn on_register_answer(&mut self, rsp: &rpc::Response, now: Instant) {
        let Phase::Registering { conn, addr, .. } = &self.phase else {
            return;
        };
        let (conn, addr) = (*conn, addr.clone());
        match server_error(rsp, "") {
            // A resumed session may be confirmed without its sid repeated.
            None => match rsp.sid.filter(|s| *s != 0).or(self.session.sid) {
                Some(sid) => self.session_up(conn, addr, sid, now),
                None => self.connection_lost(now, Next::Failure, true),
            },
            Some(ServerError::SessionExpired) if self.session.sid.is_some() => {
                self.session.expire();
                self.send_register();
            }
            Some(ServerError::NotLeader(leader)) => {
                self.connection_lost(now, Next::Redirect(leader), true)
            }
            Some(_) => self.connection_lost(now, Next::Failure, true),
        }
    }

    fn session_up(&mut self, conn: ConnId, addr: String, sid: u64, now: Instant) {
        let events = self.session.registered(sid);
        self.events.extend(events.into_iter().map(Event::Session));
        self.phase = Phase::Up { conn, addr };
        self.send_ping(now);
        self.requests.forget_arms();
        for arm in self.watches.rearm_all() {
            self.send_arm(arm);
        }
    }

    /// A request (not Register) was answered kSessionExpired while the session was up:
    /// register anew on the same connection; `Expired` follows the next `Connected`.
    pub(crate) fn session_expired(&mut self, now: Instant) {
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
            Phase::Connecting { deadline, .. } | Phase::Registering { deadline, .. }
                if *deadline <= now =>
            {
                self.connection_lost(now, Next::Failure, true);
            }
            Phase::Closing { deadline, .. } | Phase::ClosingConnect { deadline, .. }
                if *deadline <= now =>
            {
                self.finish_close()
            }
            Phase::Up { .. } => self.on_ping_timeout(now),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_is_reported_after_connected_only_when_the_sid_changed() {
        let mut s = Session::new(Some(5));
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
        assert_eq!(Session::new(Some(0)).sid, None);
    }
}
