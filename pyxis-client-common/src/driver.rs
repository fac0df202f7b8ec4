//! The runtime-independent half of every adapter's driver: it owns the core [`Client`],
//! applies the application's [`Command`]s to it, and routes the core's events to the
//! callers and watches waiting for them.
//!
//! Owns: [`Driver`], [`Command`], [`Step`], the routing tables (request id → caller,
//! watch id → watch queue, session-event subscribers, close and connect waiters), the
//! client-side session signals (`Suspended`, `Lost`, closing on expiry), the rule for
//! due deadlines ([`Driver::handle_due`], which every adapter loop applies after every
//! input), when bytes read still owe the peer an acknowledgement
//! ([`Driver::take_unacknowledged`]), and the log of what the core did (`tracing`, from
//! its events and outputs).
//! Must never touch a socket, a timer or a thread, read the clock, or make a protocol
//! decision: adapters pass `now` and perform the [`Step`]s; the core decides everything
//! else. Never blocks: every delivery goes through a bounded, non-blocking
//! [`EventSender`].

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use pyxis_core::{
    Client, Config, ConfigError, ConnId, Diagnostic, Error, Event, IoAction, IoFailure, Op, Reply,
    RequestId, SessionState, Transmit, WatchEvent, WatchId,
};

use crate::log;
use crate::options::Options;
use crate::queue::EventSender;
use crate::session::{SessionEvent, Suspension};
use crate::status::{ClientState, Counter, Status};
use crate::watch::WatchError;

/// Where a caller waits for an operation's one result: a one-shot slot (one allocation,
/// no lock), whose receiver may wait on a thread or in a task.
pub type ReplySender = oneshot::Sender<Result<Reply, Error>>;
/// Where a watch's events go.
pub type WatchSender = EventSender<Result<WatchEvent, WatchError>>;
/// Where `wait_connected` learns the session id.
pub type ConnectWaiter = EventSender<Result<u64, Error>>;

/// What a client handle asks of its driver.
#[non_exhaustive]
pub enum Command {
    /// Submit `op`; its result goes to `reply`. When the operation arms a watch, its
    /// events go to `watch`.
    Call {
        /// The operation.
        op: Op,
        /// Where the result goes.
        reply: ReplySender,
        /// Where the armed watch's events go.
        watch: Option<WatchSender>,
    },
    /// Forget a watch (its handle was dropped).
    Unwatch(WatchId),
    /// Answer with the session id once a session is up, or `Timeout` after `timeout`
    /// (counted on the driver's clock from when the driver takes the command; one too
    /// large to add to it, such as `Duration::MAX`, waits without a deadline).
    WaitConnected {
        /// How long to wait.
        timeout: Duration,
        /// Where the answer goes.
        reply: ConnectWaiter,
    },
    /// Close the client (unregister); `done` is dropped once it is closed.
    Close {
        /// Dropped when the client is closed.
        done: EventSender<()>,
    },
    /// The last client handle was dropped: close and let the driver end.
    HandlesGone,
}

/// One thing the adapter must do, from [`Driver::next_step`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Step {
    /// Open or close a connection (`IoAction::Connect` / `IoAction::Close`).
    Io(IoAction),
    /// Write these bytes on their connection, after whatever is still unwritten on it,
    /// without waiting for the peer to take them: report what it took with
    /// [`Driver::handle_written`].
    Transmit(Transmit),
}

/// The bytes handed to the adapter for the current connection and not yet written, and
/// since when they have made no progress: a peer that takes none of them for longer
/// than [`Driver::write_stall_bound`] is given up.
#[derive(Debug, Default)]
struct Unwritten {
    conn: Option<ConnId>,
    bytes: usize,
    since: Option<Instant>,
}

impl Unwritten {
    fn queued(&mut self, conn: ConnId, len: usize, now: Instant) {
        if self.conn != Some(conn) {
            *self = Unwritten {
                conn: Some(conn),
                ..Unwritten::default()
            };
        }
        self.bytes += len;
        self.since.get_or_insert(now);
    }

    fn written(&mut self, conn: ConnId, n: usize, now: Instant) {
        if self.conn == Some(conn) {
            self.bytes = self.bytes.saturating_sub(n);
            self.since = (self.bytes > 0).then_some(now);
        }
    }

    fn forget(&mut self, conn: ConnId) {
        if self.conn == Some(conn) {
            *self = Unwritten::default();
        }
    }

    /// The stalled connection, if its bytes have waited `bound` at `now`.
    fn stalled(&self, now: Instant, bound: Duration) -> Option<(ConnId, Duration)> {
        let waited = now.saturating_duration_since(self.since?);
        (waited >= bound).then_some((self.conn?, waited))
    }
}

/// Hashes the core's request and watch ids. They are counters the core assigns (never
/// chosen by the network), so one multiplication spreads them well enough, where the
/// default SipHash would cost more than the rest of the lookup.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: odd multiplier, so distinct ids keep distinct low bits and
        // the high bits (hashbrown's tag) mix all of them.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The most answer frames the core handles per input in the adapters' loops
/// (`Config::frames_per_input`), when the callers answered run on the loop's thread once
/// it yields (a current-thread runtime) and in the blocking loop. Between two such turns
/// the loops let the callers answered run and write their next requests, which then
/// reach the server while the client handles the rest, instead of the two sides taking
/// turns at idling. Every turn costs a write (and, on loopback, the kernel's work for
/// it), so turns are not made smaller than needed: in `pyxis bench` at 64 requests in
/// flight, 32 did as well as 16 for one client and better for two sharing a thread,
/// while 64 (no turns) lost the overlap. The async-std and blocking loops keep it too,
/// although their callers run on other threads: there 16 did no better (`pyxis bench
/// --adapter async-std` and `--adapter blocking`, 64 in flight: 0.51–0.58× the floor
/// for async-std reads against 0.56–0.58× with 32, with a worse p99; 0.37–0.44× for
/// blocking reads against 0.39–0.45×).
pub const FRAMES_PER_TURN: usize = 32;

/// The bound used instead of [`FRAMES_PER_TURN`] on a multi-thread tokio runtime, where
/// the callers answered run on other workers while the loop goes on: smaller turns hand
/// them their answers sooner. In `pyxis bench --threads 2` at 64 requests in flight, 16
/// gave 0.76–0.82× the floor for reads where 32 gave 0.65–0.68×, and 0.60–0.74× for
/// writes against 0.59–0.61×; 12 did worse (0.70–0.71×).
pub const PARALLEL_FRAMES_PER_TURN: usize = 16;

/// How many answer frames a turn of the adapters' loops hands over: `parallel` when the
/// callers run on other threads while the loop goes on (a multi-thread async runtime).
pub fn frames_per_turn(parallel: bool) -> usize {
    if parallel {
        PARALLEL_FRAMES_PER_TURN
    } else {
        FRAMES_PER_TURN
    }
}

/// A map keyed by the core's ids.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

struct Call {
    reply: ReplySender,
    watch: Option<WatchSender>,
}

/// The core plus the routing of its events (see the [module docs](self)).
pub struct Driver {
    core: Client,
    calls: IdMap<RequestId, Call>,
    watches: IdMap<WatchId, WatchSender>,
    connect_waiters: Vec<(Option<Instant>, ConnectWaiter)>,
    closers: Vec<EventSender<()>>,
    status: Status,
    /// The state last stored in `status`.
    shown: ClientState,
    suspension: Suspension,
    close_on_expiry: bool,
    unwritten: Unwritten,
    /// A connection the driver gave up (its writes stalled): the adapter closes it.
    abandoned: Option<ConnId>,
    /// Calls answered since [`take_answered`](Driver::take_answered) last read it.
    answered: usize,
    /// The connection that received bytes since the last write on it.
    unacknowledged: Option<ConnId>,
}

impl Driver {
    /// A driver for a new core client built from `config` at `now`.
    ///
    /// # Errors
    ///
    /// The server list or a setting of `config` is invalid.
    pub fn new(config: Config, now: Instant) -> Result<Driver, ConfigError> {
        Ok(Driver {
            core: Client::new(config, now)?,
            calls: IdMap::default(),
            watches: IdMap::default(),
            connect_waiters: Vec::new(),
            closers: Vec::new(),
            status: Status::default(),
            shown: ClientState::Connecting,
            suspension: Suspension::default(),
            close_on_expiry: false,
            unwritten: Unwritten::default(),
            abandoned: None,
            answered: 0,
            unacknowledged: None,
        })
    }

    /// A driver for these servers and options, at `now`, whose core hands over at most
    /// `frames_per_turn` answers per input ([`frames_per_turn`]).
    ///
    /// # Errors
    ///
    /// The server list or an option is invalid.
    pub fn with_options<I, S>(
        addrs: I,
        options: &Options,
        frames_per_turn: usize,
        now: Instant,
    ) -> Result<Driver, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut config = options.config(addrs);
        config.frames_per_input = std::num::NonZeroUsize::new(frames_per_turn);
        let mut driver = Driver::new(config, now)?;
        driver.close_on_expiry = options.close_on_expiry;
        log::started(driver.core.config());
        Ok(driver)
    }

    /// The state shared with client handles (session id, state, subscribers, counters).
    pub fn status(&self) -> Status {
        self.status.clone()
    }

    /// How long a connection may accept none of the bytes written to it before it is
    /// given up: the core's bound for a silent peer (session timeout plus twice the ping
    /// grace), so a peer that stops reading is abandoned like one that stops answering.
    pub fn write_stall_bound(&self) -> Duration {
        let config = self.core.config();
        config.session_timeout + config.ping_grace * 2
    }

    /// Applies a command from a client handle.
    pub fn command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Call { op, reply, watch } => {
                self.status.count(counter_of(&op), 1);
                let id = self.core.submit(op, now);
                self.calls.insert(id, Call { reply, watch });
            }
            Command::Unwatch(id) => {
                self.watches.remove(&id);
                self.core.unwatch(id, now);
            }
            Command::WaitConnected { timeout, reply } => match self.core.state() {
                SessionState::Connected => {
                    reply.push(self.core.sid().ok_or(Error::Closed));
                }
                SessionState::Closed | SessionState::Closing => {
                    reply.push(Err(Error::Closed));
                }
                _ => {
                    self.connect_waiters.push((now.checked_add(timeout), reply));
                    self.fail_fast_waiters();
                }
            },
            Command::Close { done } => {
                self.closers.push(done);
                self.core.close(now);
            }
            Command::HandlesGone => self.core.close(now),
        }
    }

    /// Applies a batch of commands taken from the command channel
    /// ([`CommandInbox::poll_take`](crate::inbox::CommandInbox::poll_take), which says
    /// `taken`), draining `batch`. `taken` is `false` when none are left and every
    /// handle is gone, which closes the client. Returns whether handles remain (the
    /// loop stops taking commands once they are gone).
    pub fn apply_commands(
        &mut self,
        taken: bool,
        batch: &mut VecDeque<Command>,
        now: Instant,
    ) -> bool {
        if !taken {
            self.command(Command::HandlesGone, now);
            return false;
        }
        for command in batch.drain(..) {
            self.command(command, now);
        }
        true
    }

    /// The connection `conn` is open.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        log::connected(conn);
        self.core.handle_connected(conn, now);
    }

    /// Bytes arrived on `conn`.
    pub fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        if !data.is_empty() {
            self.unacknowledged = Some(conn);
        }
        self.core.handle_data(conn, data, now);
    }

    /// The connection whose received answers wait, not yet handled (the core handles
    /// at most `Config::frames_per_input` per input): the adapter calls
    /// [`handle_data`](Self::handle_data) for it with no new bytes to go on, and reads
    /// no more from it meanwhile.
    pub fn buffered_input(&self) -> Option<ConnId> {
        self.core.buffered_input()
    }

    /// The connection `conn` failed to open, broke, or was closed by the peer; `cause`
    /// says why (logged, and kept by the core for the errors callers get).
    pub fn handle_closed(&mut self, conn: ConnId, cause: &std::io::Error, now: Instant) {
        log::conn_died(conn, cause);
        self.unwritten.forget(conn);
        self.forget_unacknowledged(conn);
        self.core
            .handle_failed(conn, crate::tcp::failure(cause), now);
    }

    /// `n` more bytes of what [`Step::Transmit`] handed over for `conn` were written.
    pub fn handle_written(&mut self, conn: ConnId, n: usize, now: Instant) {
        self.unwritten.written(conn, n, now);
        if n > 0 {
            // Every segment carries the acknowledgement of all that was received.
            self.forget_unacknowledged(conn);
        }
    }

    /// The connection that received bytes since the adapter last wrote on it (reported
    /// by [`handle_written`](Self::handle_written)), once (then `None` until more bytes
    /// arrive). An adapter asks before it waits for input, and acknowledges at once on
    /// that connection
    /// ([`tcp::acknowledge_promptly`](crate::tcp::acknowledge_promptly)): a server that
    /// keeps Nagle's algorithm on holds its next answer until then, and the kernel's
    /// delayed ACK would make it wait ~40 ms. When a request follows the answers, as it
    /// does in a busy client, the segment that carries it acknowledges them and nothing
    /// more is sent: no system call, and no bare ACK for both kernels to handle. A write
    /// handed out but not yet taken by the socket acknowledges nothing.
    pub fn take_unacknowledged(&mut self) -> Option<ConnId> {
        self.unacknowledged.take()
    }

    fn forget_unacknowledged(&mut self, conn: ConnId) {
        if self.unacknowledged == Some(conn) {
            self.unacknowledged = None;
        }
    }

    /// The deadline from [`deadline`](Self::deadline) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((conn, waited)) = self.unwritten.stalled(now, self.write_stall_bound()) {
            log::write_stalled(conn, waited);
            self.unwritten.forget(conn);
            self.abandoned = Some(conn);
            let failure = IoFailure::Other(format!("took nothing written for {waited:?}"));
            self.core.handle_failed(conn, failure, now);
        }
        self.core.handle_timeout(now);
        let (expired, waiting) = std::mem::take(&mut self.connect_waiters)
            .into_iter()
            .partition(|(deadline, _)| deadline.is_some_and(|at| at <= now));
        self.connect_waiters = waiting;
        for (_, reply) in expired {
            reply.push(Err(Error::Timeout {
                outcome_unknown: false,
                cause: self.core.last_cause().cloned(),
            }));
        }
        if self
            .suspension
            .turns_lost(now, self.core.config().session_timeout)
        {
            log::lost(self.suspension.since(), now);
            self.publish(&SessionEvent::Lost);
        }
    }

    /// The one rule for deadlines, applied by every adapter loop after every input (not
    /// only when its timer fires, which a steady stream of input could postpone
    /// forever): whatever is due at `now` is handled now.
    pub fn handle_due(&mut self, now: Instant) {
        if self.deadline().is_some_and(|at| at <= now) {
            self.handle_timeout(now);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn deadline(&self) -> Option<Instant> {
        let waiters = self.connect_waiters.iter().filter_map(|(d, _)| *d).min();
        let lost = self.suspension.deadline(self.core.config().session_timeout);
        [self.core.poll_timeout(), waiters, lost]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next connection instruction or write, in the core's drain order. When it
    /// returns `None`, every event has been delivered and the adapter waits for the next
    /// input or [`deadline`](Self::deadline).
    pub fn next_step(&mut self, now: Instant) -> Option<Step> {
        if let Some(conn) = self.abandoned.take() {
            return Some(Step::Io(IoAction::Close { conn }));
        }
        if let Some(action) = self.core.poll_io() {
            match &action {
                IoAction::Connect { conn, addr } => {
                    self.status.count(Counter::ConnectAttempts, 1);
                    log::connecting(*conn, addr);
                }
                IoAction::Close { conn } => {
                    log::conn_dropped(*conn);
                    self.unwritten.forget(*conn);
                    self.forget_unacknowledged(*conn);
                }
                _ => {}
            }
            return Some(Step::Io(action));
        }
        if let Some(transmit) = self.core.poll_transmit() {
            self.unwritten
                .queued(transmit.conn, transmit.data.len(), now);
            return Some(Step::Transmit(transmit));
        }
        // Output only, for the log: what the core decided (redirects, backoffs,
        // Registers, ping verdicts).
        while let Some(diagnostic) = self.core.poll_diagnostic() {
            match diagnostic {
                Diagnostic::Redirect { .. } => self.status.count(Counter::Redirects, 1),
                Diagnostic::PingReleased { .. } | Diagnostic::LateWake => {
                    self.status.count(Counter::Rearms, 1);
                }
                _ => {}
            }
            log::decided(&diagnostic);
        }
        // Before routing: a caller woken by an event must see the session id it implies.
        self.status.set_sid(self.core.sid());
        while let Some(event) = self.core.poll_event() {
            self.route(event, now);
        }
        self.fail_fast_waiters();
        self.show_state();
        None
    }

    /// With `Options::fail_fast`, while no server is reachable, `wait_connected` fails
    /// at once with the core's cause, as operations do.
    fn fail_fast_waiters(&mut self) {
        if self.connect_waiters.is_empty() {
            return;
        }
        let Some(cause) = self.core.unreachable() else {
            return;
        };
        for (_, reply) in self.connect_waiters.drain(..) {
            reply.push(Err(Error::Unreachable {
                cause: cause.clone(),
            }));
        }
    }

    /// How many calls were answered since the last time this was asked (then zero): the
    /// callers woken meanwhile, who may be about to send their next requests.
    pub fn take_answered(&mut self) -> usize {
        std::mem::take(&mut self.answered)
    }

    /// Whether the client is closed and everything has been delivered: the adapter's
    /// loop ends (dropping the driver ends every remaining caller with `Closed`).
    pub fn is_finished(&self) -> bool {
        self.core.is_closed()
    }

    /// Stores the client's state for handles, when it changed.
    fn show_state(&mut self) {
        let state = match (self.core.state(), self.core.sid(), self.suspension.since()) {
            (SessionState::Connected, Some(sid), _) => ClientState::Connected { sid },
            (SessionState::Closing | SessionState::Closed, _, _) => ClientState::Closed,
            (SessionState::Idle, _, _) => ClientState::Idle,
            (_, _, Some(since)) => ClientState::Disconnected { since },
            _ => ClientState::Connecting,
        };
        if state != self.shown {
            self.shown = state;
            self.status.set_state(state);
        }
    }

    fn route(&mut self, event: Event, now: Instant) {
        match event {
            Event::Completed { id, result } => {
                let Some(call) = self.calls.remove(&id) else {
                    return;
                };
                let armed = match &result {
                    Ok(Reply::Node { watch, .. } | Reply::Exists { watch, .. }) => *watch,
                    _ => None,
                };
                if let (Some(wid), Some(sink)) = (armed, call.watch) {
                    if sink.is_closed() || call.reply.is_closed() {
                        self.core.unwatch(wid, now);
                    } else {
                        self.watches.insert(wid, sink);
                    }
                }
                // A caller that dropped its call wants no answer.
                let _ = call.reply.send(result);
                self.answered += 1;
            }
            Event::Watch { id, event } => {
                let Some(sink) = self.watches.get(&id) else {
                    return;
                };
                if sink.is_closed() {
                    self.watches.remove(&id);
                    self.core.unwatch(id, now);
                    return;
                }
                if event.inferred {
                    self.status.count(Counter::InferredEvents, 1);
                    log::inferred(&event);
                }
                // The core says which event is a watch's last (one-shot watches).
                let last = event.last;
                if !sink.push(Ok(event)) {
                    self.status.count(Counter::LaggedEvents, 1);
                    log::lagged("watch", 1);
                }
                if last {
                    self.watches.remove(&id);
                }
            }
            Event::WatchEnded { id, reason } => {
                if let Some(sink) = self.watches.remove(&id) {
                    sink.push(Err(WatchError::Ended(reason)));
                }
            }
            Event::Session(event) => self.route_session(event, now),
            _ => {}
        }
    }

    /// Hands a session event to the subscribers, counting what slow ones lose.
    fn publish(&mut self, event: &SessionEvent) {
        let dropped = self.status.publish(event);
        if dropped > 0 {
            self.status.count(Counter::LaggedEvents, dropped);
            log::lagged("session event", dropped);
        }
    }

    fn route_session(&mut self, event: pyxis_core::SessionEvent, now: Instant) {
        use pyxis_core::SessionEvent as Core;
        let event = match event {
            Core::Connected { sid } => {
                log::session_up(sid, self.suspension.since(), now);
                self.suspension.end();
                SessionEvent::Connected { sid }
            }
            Core::Disconnected => {
                self.status.count(Counter::Reconnects, 1);
                log::suspended(self.core.sid());
                self.suspension.begin(now);
                SessionEvent::Suspended
            }
            Core::Expired { old_sid } => {
                self.status.count(Counter::Expirations, 1);
                log::expired(old_sid, self.close_on_expiry);
                if self.close_on_expiry {
                    self.core.close(now);
                }
                SessionEvent::Expired { old_sid }
            }
            Core::WatchesRearmed => SessionEvent::WatchesRearmed,
            Core::Closed => {
                self.suspension.end();
                SessionEvent::Closed
            }
            other => {
                log::unknown_session_event(&other);
                return;
            }
        };
        // The state first: a subscriber woken by the event must see the state it implies.
        // Subscribers before waiters: a waiter woken below may subscribe at once, and
        // must not then receive the event that woke it.
        self.show_state();
        self.publish(&event);
        match &event {
            SessionEvent::Connected { sid } => {
                for (_, reply) in self.connect_waiters.drain(..) {
                    reply.push(Ok(*sid));
                }
            }
            SessionEvent::Closed => {
                for (_, reply) in self.connect_waiters.drain(..) {
                    reply.push(Err(Error::Closed));
                }
                // Dropping the senders tells the waiters the client is closed.
                self.closers.clear();
            }
            _ => {}
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // However the loop ended, session-event streams end and `state` says closed.
        self.status.close();
    }
}

/// The [`Stats`](crate::Stats) counter an operation counts under.
fn counter_of(op: &Op) -> Counter {
    match op {
        Op::Create { .. } => Counter::Creates,
        Op::Delete { .. } => Counter::Deletes,
        Op::Write { .. } => Counter::Writes,
        Op::Read { .. } => Counter::Reads,
        Op::Exists { .. } => Counter::Exists,
        _ => Counter::Unregisters,
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::time::Duration;

    use pyxis_core::{EventMask, WatchSpec};

    use super::*;
    use crate::queue::channel;

    fn driver(now: Instant) -> Driver {
        Driver::new(Config::new(["127.0.0.1:9"]), now).expect("valid config")
    }

    /// Drains every step, returning the connection instructions seen.
    fn drain(d: &mut Driver, now: Instant) -> Vec<Step> {
        std::iter::from_fn(|| d.next_step(now)).collect()
    }

    #[test]
    fn bytes_read_are_owed_an_acknowledgement_until_a_write_carries_it() {
        let now = Instant::now();
        let mut d = driver(now);
        let conn = match drain(&mut d, now).as_slice() {
            [Step::Io(IoAction::Connect { conn, .. })] => *conn,
            other => panic!("{other:?}"),
        };
        d.handle_connected(conn, now);
        assert_eq!(d.take_unacknowledged(), None, "nothing read yet");
        // Part of a frame's length: bytes the kernel acknowledges all the same.
        d.handle_data(conn, &[0], now);
        let register = match drain(&mut d, now).as_slice() {
            [Step::Transmit(transmit)] => transmit.data.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            d.take_unacknowledged(),
            Some(conn),
            "the Register is handed out, not written"
        );
        d.handle_data(conn, &[0], now);
        d.handle_written(conn, 0, now);
        assert_eq!(d.take_unacknowledged(), Some(conn), "nothing was written");
        assert_eq!(d.take_unacknowledged(), None, "owed once");
        d.handle_data(conn, &[], now);
        assert_eq!(d.take_unacknowledged(), None, "no new bytes");
        d.handle_data(conn, &[0], now);
        d.handle_written(conn, register, now);
        assert_eq!(d.take_unacknowledged(), None, "the write carried it");
        d.handle_data(conn, &[0], now);
        d.handle_closed(conn, &std::io::ErrorKind::UnexpectedEof.into(), now);
        assert_eq!(d.take_unacknowledged(), None, "the connection is gone");
    }

    #[test]
    fn client_side_failures_reach_the_caller_without_a_round_trip() {
        let now = Instant::now();
        let mut d = driver(now);
        assert!(matches!(
            drain(&mut d, now).as_slice(),
            [Step::Io(IoAction::Connect { .. })]
        ));
        let (reply, answer) = oneshot::channel();
        let op = Op::Read {
            path: "no-slash".into(),
            show_hidden: None,
            watch: None,
        };
        d.command(
            Command::Call {
                op,
                reply,
                watch: None,
            },
            now,
        );
        assert!(drain(&mut d, now).is_empty());
        assert!(matches!(
            answer.try_recv(),
            Ok(Err(Error::InvalidPath { .. }))
        ));
        assert_eq!(
            answer.try_recv().err(),
            Some(oneshot::TryRecvError::Disconnected),
            "completed exactly once"
        );
    }

    #[test]
    fn the_core_hands_over_the_turn_the_loop_asked_for() {
        let now = Instant::now();
        for parallel in [false, true] {
            let turn = frames_per_turn(parallel);
            let d = Driver::with_options(["127.0.0.1:9"], &Options::new(), turn, now)
                .expect("valid options");
            assert_eq!(
                d.core.config().frames_per_input.map(NonZeroUsize::get),
                Some(turn)
            );
        }
        assert!(
            frames_per_turn(true) < frames_per_turn(false),
            "callers on other workers get their answers in smaller turns"
        );
    }

    #[test]
    fn answered_calls_are_counted_until_taken() {
        let now = Instant::now();
        let mut d = driver(now);
        drain(&mut d, now);
        let mut answers = Vec::new();
        for path in ["bad-1", "bad-2"] {
            let (reply, answer) = oneshot::channel();
            let op = Op::Exists {
                path: path.into(),
                watch: None,
            };
            let command = Command::Call {
                op,
                reply,
                watch: None,
            };
            d.command(command, now);
            answers.push(answer);
        }
        assert_eq!(
            d.take_answered(),
            0,
            "not answered before the steps are drained"
        );
        drain(&mut d, now);
        assert!(answers.iter().all(|a| a.try_recv().is_ok()));
        assert_eq!(d.take_answered(), 2);
        assert_eq!(d.take_answered(), 0, "taking resets the count");
    }

    #[test]
    fn wait_connected_times_out_at_its_deadline() {
        let now = Instant::now();
        let mut d = driver(now);
        drain(&mut d, now);
        let (reply, answer) = channel(1);
        let deadline = now + Duration::from_millis(5);
        let timeout = Duration::from_millis(5);
        d.command(Command::WaitConnected { timeout, reply }, now);
        assert!(d.deadline().is_some_and(|at| at <= deadline));
        d.handle_timeout(now + Duration::from_millis(1));
        assert_eq!(answer.try_recv(), None, "not before its deadline");
        d.handle_timeout(deadline);
        let timeout = Error::Timeout {
            outcome_unknown: false,
            cause: None,
        };
        assert_eq!(answer.try_recv(), Some(Ok(Err(timeout))));
    }

    #[test]
    fn close_ends_callers_watches_and_subscribers() {
        let now = Instant::now();
        let mut d = driver(now);
        drain(&mut d, now);
        let (session_tx, session) = channel(4);
        d.status().subscribe(session_tx);
        let (reply, answer) = oneshot::channel();
        let (watch_tx, watch) = channel(4);
        let op = Op::Exists {
            path: "/svc".into(),
            watch: Some(WatchSpec::new("/svc", EventMask::ALL)),
        };
        d.command(
            Command::Call {
                op,
                reply,
                watch: Some(watch_tx),
            },
            now,
        );
        let (done, closed) = channel(1);
        d.command(Command::Close { done }, now);
        drain(&mut d, now);
        assert!(d.is_finished());
        assert!(matches!(answer.try_recv(), Ok(Err(Error::Closed))));
        assert_eq!(session.try_recv(), Some(Ok(SessionEvent::Closed)));
        assert_eq!(
            closed.recv_timeout(Duration::ZERO),
            Ok(None),
            "close waiter released"
        );
        drop(d);
        assert_eq!(
            watch.recv_timeout(Duration::ZERO),
            Ok(None),
            "watch queue ended"
        );
    }
}
