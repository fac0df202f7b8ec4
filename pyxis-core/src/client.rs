//! The [`Client`] value: the public methods and the glue between the concern modules.
//!
//! Owns: the `Client` struct, its public getters, commands, `handle_*` inputs and
//! `poll_*` outputs, the output queues, and the close sequence. Must never read a clock,
//! touch a socket or thread, or use a global RNG: every instant is an argument and every
//! random draw comes from the seeded generator.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::time::Instant;

use bytes::BytesMut;
use pyxis_proto::FrameDecoder;

use crate::cause::{Cause, CauseKind, IoFailure};
use crate::config::{Config, ConfigError};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::discovery::Discovery;
use crate::error::Error;
use crate::ping::Pinger;
use crate::requests::Requests;
use crate::session::{Fault, Phase, Session};
use crate::types::{
    ConnId, Event, IoAction, Op, RequestId, SessionEvent, SessionState, TimerReason, Transmit,
    WatchId, WatchSpec,
};
use crate::watches::Watches;

/// Initial room of the transmit buffer: frames of many rounds are encoded into one
/// allocation, which `poll_transmit` hands out piece by piece without copying.
const OUT_CHUNK: usize = 16 * 1024;

/// The Pyxis client protocol as a pure state machine (see the [crate docs](crate) for
/// the driving loop and the guarantees).
///
/// Methods come in four groups:
/// - **getters**: [`state`](Self::state), [`sid`](Self::sid), [`config`](Self::config),
///   [`is_closed`](Self::is_closed), [`last_cause`](Self::last_cause),
///   [`unreachable`](Self::unreachable);
/// - **inputs** from the adapter: [`handle_connected`](Self::handle_connected),
///   [`handle_data`](Self::handle_data), [`handle_closed`](Self::handle_closed) /
///   [`handle_failed`](Self::handle_failed),
///   [`handle_timeout`](Self::handle_timeout);
/// - **commands** from the application: [`submit`](Self::submit),
///   [`watch`](Self::watch), [`unwatch`](Self::unwatch), [`close`](Self::close);
/// - **outputs**, drained after every input or command, in this order:
///   [`poll_io`](Self::poll_io) (open/close connections),
///   [`poll_transmit`](Self::poll_transmit) (bytes to write),
///   [`poll_event`](Self::poll_event) (completions, watch events, session changes),
///   then [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout` next);
///   [`poll_diagnostic`](Self::poll_diagnostic) (what the core decided, for logs) may
///   be drained at any time.
#[derive(Debug)]
pub struct Client {
    pub(crate) config: Config,
    pub(crate) rng: fastrand::Rng,
    pub(crate) discovery: Discovery,
    pub(crate) phase: Phase,
    pub(crate) session: Session,
    pub(crate) requests: Requests,
    pub(crate) watches: Watches,
    pub(crate) decoder: FrameDecoder,
    /// The last `handle_data` stopped at `Config::frames_per_input` with bytes left
    /// (see [`Client::buffered_input`]).
    input_held: bool,
    pub(crate) out: BytesMut,
    pub(crate) io: VecDeque<IoAction>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) next_conn: u64,
    /// Why the last attempt to get or keep a session failed, since the last session
    /// came up (see the `cause` module).
    pub(crate) cause: Option<Cause>,
    /// Every listed server failed in turn, none with a session up, since the last
    /// session came up (see [`Client::unreachable`]).
    pub(crate) unreachable: bool,
    /// What the core decided, for logs (output only).
    pub(crate) diagnostics: Diagnostics,
    /// The latest `now` given (debug builds assert it never goes backwards).
    pub(crate) last_now: Instant,
}

impl Client {
    /// A client for `config`, already asking for its first connection (see
    /// [`poll_io`](Self::poll_io)). Fails if the config has no address, an address that is
    /// not `host:port`, a zero timeout, or a backoff whose initial delay exceeds its max.
    pub fn new(config: Config, now: Instant) -> Result<Client, ConfigError> {
        let config = config.validated()?;
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let mut discovery = Discovery::new(config.addrs.clone(), config.backoff.clone(), &mut rng);
        let first = discovery.first();
        let mut client = Client {
            session: Session::new(
                config.resume_sid,
                Pinger::new(config.session_timeout, config.ping_grace),
            ),
            decoder: FrameDecoder::with_max_frame_len(config.max_frame_len),
            input_held: false,
            config,
            rng,
            discovery,
            phase: Phase::Idle,
            requests: Requests::default(),
            watches: Watches::default(),
            out: BytesMut::with_capacity(OUT_CHUNK),
            io: VecDeque::new(),
            events: VecDeque::new(),
            next_conn: 0,
            cause: None,
            unreachable: false,
            diagnostics: Diagnostics::default(),
            last_now: now,
        };
        client.start_attempt(first, now);
        Ok(client)
    }

    // ----- getters -----

    /// Where the session stands.
    pub fn state(&self) -> SessionState {
        self.phase.state()
    }

    /// The current session id, or the one being resumed.
    pub fn sid(&self) -> Option<u64> {
        self.session.sid
    }

    /// The configuration in force (after `Client::new`'s adjustments).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Why the client last failed to get or keep a session with a leader (a refused
    /// connect, no leader known, a redirect, a silent server, ...), naming the server;
    /// `None` once a session is up again. `Error::Timeout` and `Error::ConnectionLoss`
    /// carry it.
    pub fn last_cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }

    /// With [`Config::fail_fast`]: the last cause while no server is reachable (every
    /// listed server failed in turn and the client is between attempts or connecting
    /// again), when operations fail at once with `Error::Unreachable`. `None` otherwise.
    pub fn unreachable(&self) -> Option<&Cause> {
        // `unreachable` first: false while a session is up, it keeps `submit` at one test.
        let between = || matches!(self.phase, Phase::Waiting { .. } | Phase::Connecting { .. });
        if self.unreachable && self.config.fail_fast && between() {
            self.cause.as_ref()
        } else {
            None
        }
    }

    /// True once `SessionEvent::Closed` has been queued; from then on only the immediate
    /// `Closed` completions of later `submit`/`watch` calls are emitted.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    // ----- commands -----

    /// Submits an operation; its one [`Event::Completed`] carries the returned id.
    ///
    /// A bad path, oversized data, or a closed/closing client completes at once, with no
    /// round trip. Otherwise the operation waits for a session (up to
    /// `request_timeout`), and reads wait for earlier writes (read-your-writes).
    pub fn submit(&mut self, op: Op, now: Instant) -> RequestId {
        self.clock(now);
        let id = self.requests.next_id();
        if let Err(e) = self.check_op(&op) {
            self.complete(id, Err(e));
            return id;
        }
        if matches!(op, Op::Unregister) && self.phase == Phase::Idle {
            // No session to end.
            self.complete(id, Ok(crate::Reply::Done));
            return id;
        }
        // A watch armed by a read is on the read's path, whatever the spec says.
        let deadline = now + self.config.request_timeout;
        let (mut pending, spec) =
            crate::ops::pending(op, self.config.hide_hidden_children, deadline);
        pending.watch = spec.map(|spec| self.watches.add(spec, false));
        pending.session = self.session.lost;
        let up = self.phase.is_up();
        if self.requests.add(id, pending, up) {
            // Queued behind others: writes may still pipeline past held reads.
            self.want_session(now);
            self.flush_requests();
        } else {
            self.send_op(id);
        }
        self.note_sent(now);
        id
    }

    /// Adds a standalone watch. The core registers it with the server (stat + watch, so
    /// it learns the baseline) now or once a session is up, re-registers it after every
    /// reconnect, and reports changes it missed as `inferred` events. A bad path or a
    /// closed client ends it at once with [`Event::WatchEnded`].
    pub fn watch(&mut self, spec: WatchSpec, now: Instant) -> WatchId {
        self.clock(now);
        let bad_path = pyxis_proto::limits::check_path(&spec.path).err();
        let path = spec.path.clone();
        let id = self.watches.add(spec, true);
        let reason = match bad_path {
            Some(reason) => Some(Error::InvalidPath {
                path: path.clone(),
                reason,
            }),
            None if self.phase.is_closing_or_closed() => Some(Error::Closed),
            None => None,
        };
        if let Some(reason) = reason {
            self.watches.remove(id);
            self.events.push_back(Event::WatchEnded { id, reason });
            return id;
        }
        self.want_session(now);
        if self.phase.is_up() {
            self.arm_if_needed(&path);
        }
        self.note_sent(now);
        id
    }

    /// Removes a watch. Nothing more is emitted for it (not even `WatchEnded`). The
    /// server registration, if set, is left to fire and be dropped.
    pub fn unwatch(&mut self, id: WatchId, _now: Instant) {
        self.watches.remove(id);
    }

    /// Closes the client: sends Unregister (ending the session and its ephemeral nodes)
    /// and waits up to `close_timeout` for a definite answer, then closes the connection.
    /// The Unregister goes out when a session is up, behind the Register of a session
    /// being resumed, or, while connecting or backing off with a session alive on the
    /// server, on a connection opened at once for it (no Register needed: sessions are
    /// not tied to connections); a kNotLeader answer is followed to the leader, and a
    /// kAgain answer or a lost connection sends it again after a backoff, until the
    /// server answers ok or kSessionExpired. With a Register without sid in flight (the
    /// first session, or one replacing a session found gone) it waits for that answer
    /// and ends the session it names. If `close_timeout` passes first, or a Register's
    /// answer could not arrive or may hide a session (kAgain) within the server's
    /// largest session timeout, [`SessionEvent::CloseUnconfirmed`] tells the
    /// application a session may live on until the server expires it. With no session,
    /// the client closes at once. Queued
    /// operations complete with `Error::Closed` at once, reads in flight when the close
    /// ends too, and writes in flight then with `ConnectionLoss { outcome_unknown: true }`
    /// (they may have been applied); every watch ends with `WatchEnded { reason: Closed
    /// }`; then `SessionEvent::Closed` is emitted, once.
    pub fn close(&mut self, now: Instant) {
        self.clock(now);
        if self.phase.is_closing_or_closed() {
            return;
        }
        for id in self.requests.unsent_ids() {
            self.complete(id, Err(Error::Closed));
        }
        self.begin_close(now);
    }

    // ----- inputs -----

    /// The connection `conn` (from an `IoAction::Connect`) is open.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.clock(now);
        self.on_connected(conn, now);
        self.note_sent(now);
    }

    /// Bytes arrived on `conn` (none: go on with the frames left buffered, see
    /// [`buffered_input`](Self::buffered_input)). Bytes for a connection the core no
    /// longer uses are ignored. At most `Config::frames_per_input` answer frames are
    /// handled per call; the rest stay buffered.
    pub fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        if self.phase.receiving_conn() != Some(conn) {
            return;
        }
        self.begin_input(now);
        self.decoder.extend(data);
        let mut budget = self
            .config
            .frames_per_input
            .map_or(usize::MAX, NonZeroUsize::get);
        self.input_held = false;
        loop {
            match self.decoder.next_response() {
                // Liveness counts answers to requests in flight, not bytes: a peer
                // trickling a frame it never finishes proves nothing.
                Ok(Some(mut rsp)) => {
                    let in_flight = self.on_response(&mut rsp, now);
                    self.session.ping.note_rx(now, in_flight);
                }
                Ok(None) => break,
                Err(_) => {
                    self.on_fault(Fault::Malformed, now);
                    break;
                }
            }
            // Nothing left to decode (the common case): skip asking the decoder again.
            if self.decoder.buffered() == 0 || self.phase.receiving_conn() != Some(conn) {
                break;
            }
            budget -= 1;
            if budget == 0 {
                self.input_held = true;
                break;
            }
        }
        self.end_input();
        self.flush_requests();
        self.note_sent(now);
    }

    /// The connection whose received bytes wait in the client's buffer, not yet handled
    /// because the last [`handle_data`](Self::handle_data) reached
    /// `Config::frames_per_input`: call `handle_data` for it again (with no new bytes)
    /// to go on. `None` without that bound, once everything received was handled (a
    /// partial frame waits for more bytes), or after the connection was dropped.
    pub fn buffered_input(&self) -> Option<ConnId> {
        let conn = self.phase.receiving_conn()?;
        (self.input_held && self.decoder.buffered() > 0).then_some(conn)
    }

    /// The connection `conn` failed to open or was closed by the peer (as
    /// [`handle_failed`](Self::handle_failed) with [`IoFailure::Closed`]).
    pub fn handle_closed(&mut self, conn: ConnId, now: Instant) {
        self.handle_failed(conn, IoFailure::Closed, now);
    }

    /// The connection `conn` failed to open or was closed by the peer, for the reason
    /// `failure` (kept, with the server's address, as [`last_cause`](Self::last_cause)).
    pub fn handle_failed(&mut self, conn: ConnId, failure: IoFailure, now: Instant) {
        self.clock(now);
        if self.phase.conn() == Some(conn) {
            self.note_cause(CauseKind::Io(failure));
            self.on_fault(Fault::Closed, now);
        }
    }

    /// Time has reached `now`: acts on every deadline at or before it (connection and
    /// registration timeouts, backoff expiry, ping liveness, request deadlines, the close
    /// wait).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.begin_input(now);
        for id in self.requests.expired(now) {
            self.time_out(id);
        }
        self.on_phase_timeout(now);
        self.end_input();
        self.flush_requests();
        self.note_sent(now);
    }

    // ----- outputs -----

    /// The next connection instruction for the adapter.
    #[must_use]
    pub fn poll_io(&mut self) -> Option<IoAction> {
        self.io.pop_front()
    }

    /// Every frame ready for the current connection, as one buffer to write in one go.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.out.is_empty() {
            return None;
        }
        let conn = self.phase.sending_conn()?;
        Some(Transmit {
            conn,
            data: self.out.split().freeze(),
        })
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next decision of the core worth a log line (a redirect, a backoff, a
    /// Register, a ping verdict; see [`Diagnostic`]). Output only: draining it or not
    /// changes nothing, and at most the 64 newest are kept.
    #[must_use]
    pub fn poll_diagnostic(&mut self) -> Option<Diagnostic> {
        self.diagnostics.pop()
    }

    /// When `handle_timeout` must be called next (`None`: only inputs can change
    /// anything).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.poll_timeout_reason().map(|(at, _)| at)
    }

    /// When `handle_timeout` must be called next, and why (the earliest of the named
    /// deadlines; `None`: only inputs can change anything).
    #[must_use]
    pub fn poll_timeout_reason(&self) -> Option<(Instant, TimerReason)> {
        if self.is_closed() {
            return None;
        }
        let requests = self
            .requests
            .next_deadline()
            .map(|at| (at, TimerReason::RequestDeadline));
        // The earliest; on a tie, the first named.
        let earliest =
            |a: Option<(Instant, TimerReason)>, b: Option<(Instant, TimerReason)>| match (a, b) {
                (Some(x), Some(y)) => Some(if y.0 < x.0 { y } else { x }),
                (x, y) => x.or(y),
            };
        earliest(
            earliest(requests, self.phase.deadline()),
            self.session.ping.deadline(),
        )
    }

    // ----- glue -----

    /// Every input and command's `now`: it must never go backwards.
    #[inline]
    pub(crate) fn clock(&mut self, now: Instant) {
        debug_assert!(now >= self.last_now, "`now` went backwards");
        self.last_now = now;
    }

    /// Records that requests went out at `now` if any are waiting to be written: each
    /// refreshes the session at the server, which pushes an idle ping's hold out.
    fn note_sent(&mut self, now: Instant) {
        if !self.out.is_empty() {
            self.session.ping.note_tx(now);
        }
    }

    fn check_op(&self, op: &Op) -> Result<(), Error> {
        if self.phase.is_closing_or_closed() {
            return Err(Error::Closed);
        }
        if let Some(cause) = self.unreachable() {
            return Err(Error::Unreachable {
                cause: cause.clone(),
            });
        }
        if let Some(path) = op.path() {
            pyxis_proto::limits::check_path(path).map_err(|reason| Error::InvalidPath {
                path: path.to_owned(),
                reason,
            })?;
        }
        let max = pyxis_proto::limits::MAX_NODE_SIZE;
        match op {
            Op::Create {
                data: Some(data), ..
            } if data.len() > max => Err(Error::DataTooLarge {
                len: data.len(),
                max,
            }),
            Op::Write { data, .. } if data.len() >= max => Err(Error::DataTooLarge {
                len: data.len(),
                max: max - 1,
            }),
            _ => Ok(()),
        }
    }

    /// Queues a completion and forgets the request (and the watch of a failed read).
    /// Completes `id`, whose deadline passed, with `Timeout`: its outcome is unknown only
    /// if it is a write that went out unanswered. The one rule for an expired operation.
    pub(crate) fn time_out(&mut self, id: RequestId) {
        let sent_write = self.requests.get(id).is_some_and(|p| p.is_sent_write());
        self.complete(
            id,
            Err(Error::Timeout {
                outcome_unknown: sent_write,
                cause: self.cause.clone(),
            }),
        );
    }

    pub(crate) fn complete(&mut self, id: RequestId, result: Result<crate::Reply, Error>) {
        let watch = self.requests.complete(id).and_then(|p| p.watch);
        self.finish(id, watch, result);
    }

    /// Queues the completion of a request already taken out of the table; the watch its
    /// read armed is dropped if it failed.
    pub(crate) fn finish(
        &mut self,
        id: RequestId,
        watch: Option<WatchId>,
        result: Result<crate::Reply, Error>,
    ) {
        if let (Some(w), Err(_)) = (watch, &result) {
            self.watches.remove(w);
        }
        self.events.push_back(Event::Completed { id, result });
    }

    /// Appends one request frame for the current connection.
    pub(crate) fn send_frame(&mut self, req: &pyxis_proto::rpc::Request) {
        pyxis_proto::encode_frame(req, &mut self.out);
    }

    /// Ends everything: the connection, pending requests, watches; emits
    /// `CloseUnconfirmed` unless the session is known to be gone (`confirmed`) and no
    /// session whose id never reached the client may live, then `Closed`, once.
    pub(crate) fn finish_close(&mut self, confirmed: bool) {
        if let Some(conn) = self.phase.conn() {
            self.io.push_back(IoAction::Close { conn });
        }
        self.out.clear();
        self.stop_pinging();
        for id in self.requests.ids() {
            // A write that went out may have been applied: say so instead of hiding it
            // behind `Closed`.
            let sent_write = self.requests.get(id).is_some_and(|p| p.is_sent_write());
            let err = if sent_write {
                Error::ConnectionLoss {
                    outcome_unknown: true,
                    cause: self.cause.clone(),
                }
            } else {
                Error::Closed
            };
            self.complete(id, Err(err));
        }
        let mut ended = Vec::new();
        self.watches.end_all(&Error::Closed, &mut ended);
        self.events.extend(ended);
        // A session whose id never reached the client may live on too.
        let unnamed = self
            .session
            .unnamed_until
            .is_some_and(|until| until > self.last_now);
        if !confirmed || unnamed {
            let sid = self.session.sid.filter(|_| !confirmed);
            self.events
                .push_back(Event::Session(SessionEvent::CloseUnconfirmed { sid }));
        }
        self.events.push_back(Event::Session(SessionEvent::Closed));
        self.phase = Phase::Closed;
    }
}
