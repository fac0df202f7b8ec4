//! The ping long poll: one ping held by the server at a time, re-pinged on every answer,
//! events dispatched, and the liveness check that tells a dead connection from a server
//! that simply holds the ping longer than we asked.
//!
//! Owns: [`Pinger`] (the outstanding ping, a ping replaced by a liveness probe, the pacing
//! of the next ping, and the longest hold seen), sending pings and settling their
//! answers. Must never read a clock, pick addresses or complete application operations.
//!
//! ## Liveness
//!
//! The server answers an idle ping about T − 1 s after the session's last refresh, where
//! T is the session timeout *after the server's clamp* (PROTOCOL.md §5: [5 s, 120 s] by
//! default). The core only knows the T it asked for: a server with a higher minimum
//! holds the ping longer, and a busy session's requests keep refreshing it, so its ping
//! may be held as long as they do. The liveness bound is therefore:
//!
//! - the requested T (at most [`MAX_HOLD`], the server's largest) or the longest hold
//!   seen for an empty answer, whichever is larger, plus `ping_grace`,
//! - counted from the ping's sending or from the last answer received, whichever is later
//!   (answers to other requests prove the connection alive; bytes of a frame that is
//!   never finished prove nothing).
//!
//! When it passes, the connection is not given up at once: a second ping is sent as a
//! probe. A new ping replaces the held one, which the server answers at once, empty:
//! that answer proves the connection alive (the held time is learned, and the probe is
//! given up to [`MAX_HOLD`]; its own answer teaches the real hold). If nothing comes
//! back within another `ping_grace`, the connection is dead. A silent connection is thus
//! given up T + 2 × `ping_grace` after the last answer received (9 s by default); the
//! idle round trip of T − 1 s stays well inside the first bound.
//!
//! ## Early empty answers
//!
//! An empty answer well before the idle hold (sooner than T − 2 s, and never under
//! T / 2, after the ping or any later request was sent: every request refreshes the
//! session and pushes the hold out) means the server released every held ping: a leadership
//! change, possibly one that ended on this same node and silently dropped every watch.
//! If the ping before was held normally (or this is the connection's first), the core
//! re-registers every watch (a no-op where one is still set), compares the fresh stats
//! with its baselines, and pings again at once, to learn without delay whether this node
//! still leads. A second early answer in a row that was not held either (under
//! [`MIN_PING_INTERVAL`]) only shows a server that does not hold pings: it is paced and
//! re-registers nothing.
//!
//! ## Late wake-ups
//!
//! An input handled more than [`LATE_WAKE`] (half a second, at most `ping_grace`) past
//! the deadline the core asked for means the process was paused or starved: leadership may have left and come back meanwhile,
//! and the early answer that told of it is read only now, when it looks like an idle one
//! (or never came, if no ping was held). Every watch is then re-registered as above.
//!
//! Likewise, an empty answer read more than a second after the longest hold known (the
//! requested T, or a longer hold already seen), counted from the last request sent,
//! re-registers every watch: the process may have been paused past a release and read
//! it only now (the first answer of a server that holds longer than asked does so once,
//! then its hold is known).
//!
//! A leader change that lands while no ping is held by the server (one in flight, or
//! paced) releases nothing and cannot be seen by the client: the protocol carries no
//! leader term.
//!
//! ## Pacing
//!
//! An answer carrying an event, and an early empty answer acted on, are followed by the
//! next ping at once. Any other empty or failed answer that comes back sooner than
//! [`MIN_PING_INTERVAL`] after its ping was sent (a server that does not hold pings, or
//! answers them with an error) delays the next ping to that interval, so the core never
//! pings in a tight loop.

use std::time::{Duration, Instant};

use pyxis_proto::rpc;

use crate::client::Client;
use crate::reply::{classify, Answer};
use crate::requests::Purpose;
use crate::session::Fault;

/// Shortest time between sending a ping and sending the next one, unless the answer
/// carried an event.
pub(crate) const MIN_PING_INTERVAL: Duration = Duration::from_millis(500);

/// How much sooner than the session timeout an idle ping may be answered and still
/// count as held (the server's expiry interval, 1 s, plus its rounding and slack).
pub(crate) const EARLY_MARGIN: Duration = Duration::from_secs(2);

/// How late past the deadline it asked for an input may come before the core takes
/// it for a wake-up from a pause (a timer firing late on a busy machine stays well
/// under it; a re-registration too many costs one stat per watch).
pub(crate) const LATE_WAKE: Duration = Duration::from_millis(500);

/// How much later than the longest hold known an empty answer may be read before the
/// core suspects it slept through a release (a paused process reads it only then).
pub(crate) const LATE_SLACK: Duration = Duration::from_secs(1);

/// The longest a server holds a ping: its largest session timeout (PROTOCOL.md §9).
pub(crate) const MAX_HOLD: Duration =
    Duration::from_millis(pyxis_proto::limits::MAX_SESSION_TIMEOUT_MS as u64);

/// The ping the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ping {
    pub xid: u64,
    pub sent: Instant,
    /// No answer by then: probe (or, for a probe, give the connection up).
    pub deadline: Instant,
    /// Sent to replace a ping whose liveness bound passed.
    pub probe: bool,
}

/// The ping long poll's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pinger {
    /// The ping held by the server.
    pub current: Option<Ping>,
    /// A ping replaced by a probe, (xid, sent); its (empty) answer proves the
    /// connection alive.
    pub replaced: Option<(u64, Instant)>,
    /// When the next ping is due (pacing), while none is outstanding.
    pub due: Option<Instant>,
    /// Longest hold seen for an empty answer (at most [`MAX_HOLD`]).
    pub hold: Duration,
    /// When the last answer to a request in flight was read (a complete frame).
    pub last_rx: Option<Instant>,
    /// When requests were last handed out to be written (each refreshes the session).
    pub last_tx: Option<Instant>,
    /// The last empty answer came back early, so the server is not holding pings: a
    /// further early answer that was not held either is paced, not acted on.
    pub unheld: bool,
    /// The input being handled came far past the deadline the core asked for: every
    /// watch is re-registered once it is handled.
    pub late_wake: bool,
    /// When the last late wake-up was handled: pings sent before it teach no hold.
    pub woke_late_at: Option<Instant>,
}

impl Pinger {
    /// The next instant the ping needs attention.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.current.map(|p| p.deadline), self.due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the answer to a ping sent at `sent` tells how long the server holds
    /// pings (not if the process was paused meanwhile).
    pub(crate) fn learns_from(&self, sent: Instant) -> bool {
        self.woke_late_at.is_none_or(|at| sent >= at)
    }

    /// Stops the long poll; returns the xids still in flight (their answers are to be
    /// ignored).
    pub(crate) fn stop(&mut self) -> [Option<u64>; 2] {
        self.due = None;
        self.unheld = false;
        [
            self.current.take().map(|p| p.xid),
            self.replaced.take().map(|(xid, _)| xid),
        ]
    }
}

impl Client {
    /// Sends a ping now, with its liveness deadline.
    pub(crate) fn send_ping(&mut self, now: Instant) {
        let xid = self.requests.send(Purpose::Ping);
        self.send_frame(&rpc::Request {
            sid: self.session.sid,
            xid: Some(xid),
            ping: Some(rpc::PingRequest {}),
            ..Default::default()
        });
        let deadline = now + self.ping_bound();
        self.session.ping.due = None;
        self.session.ping.current = Some(Ping {
            xid,
            sent: now,
            deadline,
            probe: false,
        });
    }

    /// How long a ping may go unanswered on a quiet connection: the requested session
    /// timeout (at most the server's largest) or the longest hold seen, whichever is
    /// larger, plus the grace.
    fn ping_bound(&self) -> Duration {
        let asked = self.config.session_timeout.min(MAX_HOLD);
        asked.max(self.session.ping.hold) + self.config.ping_grace
    }

    /// An empty answer sooner than this after its ping was sent is early: the server
    /// answers an idle ping when the session's expiry bucket comes up, about
    /// T − interval after the last refresh (PROTOCOL.md §5, interval 1 s, expiry rounded
    /// to it), and the last refresh is no earlier than the last request sent; so a held
    /// ping comes back no sooner than about T − 1.5 s after that. The bound is T − 2 s, and
    /// never under T / 2.
    fn early_bound(&self) -> Duration {
        let t = self.config.session_timeout.min(MAX_HOLD);
        (t / 2).max(t.saturating_sub(EARLY_MARGIN))
    }

    /// Ends the long poll (connection or session gone, closing); late answers are ignored.
    pub(crate) fn stop_pinging(&mut self) {
        for xid in self.session.ping.stop().into_iter().flatten() {
            self.requests.forget(xid);
        }
    }

    /// An answer to the held ping or to one a probe replaced.
    pub(crate) fn on_ping_answer(&mut self, rsp: &mut rpc::Response, now: Instant) {
        let ping = &mut self.session.ping;
        let current = ping.current.filter(|p| Some(p.xid) == rsp.xid);
        let replaced = ping.replaced.filter(|(xid, _)| Some(*xid) == rsp.xid);
        if current.is_none() && replaced.is_none() {
            return;
        }
        let error = match classify(rsp, "") {
            Answer::Fault(fault) => return self.on_fault(fault, now),
            Answer::Success => None,
            Answer::Final(e) => Some(e),
        };
        let has_event = error.is_none() && rsp.watch.is_some();
        if let Some(event) = rsp.watch.take().filter(|_| error.is_none()) {
            let watched = rsp.path.take().unwrap_or_else(|| event.path.clone());
            self.on_watch_fired(&watched, &event.path, event.r#type);
        }
        let ping = &mut self.session.ping;
        if let Some((_, sent)) = replaced {
            // The connection is alive and the server held the ping longer than the bound:
            // the probe may be held up to the server's largest timeout; its answer tells.
            ping.replaced = None;
            // A ping sent before a late wake-up was "held" through the pause too.
            if error.is_none() && !has_event && ping.learns_from(sent) {
                ping.hold = ping.hold.max((now - sent).min(MAX_HOLD));
            }
            if let Some(p) = ping.current.as_mut().filter(|p| p.probe) {
                p.deadline = p.sent + MAX_HOLD + self.config.ping_grace;
                p.probe = false;
            }
            return;
        }
        let Some(answered) = current else { return };
        ping.current = None;
        // The server holds an idle ping from the session's last refresh: the latest
        // request sent is a lower bound for it.
        let refreshed = ping
            .last_tx
            .map_or(answered.sent, |tx| tx.max(answered.sent));
        let since_refresh = now.saturating_duration_since(refreshed);
        // An empty answer read well after any hold known (before this one teaches a
        // longer one): the process may have slept through a release.
        let expected = self.config.session_timeout.min(MAX_HOLD).max(ping.hold);
        let overdue = error.is_none() && !has_event && since_refresh > expected + LATE_SLACK;
        if error.is_none() {
            if !has_event && ping.learns_from(answered.sent) {
                ping.hold = ping.hold.max((now - answered.sent).min(MAX_HOLD));
            }
            self.discovery.on_healthy();
        }
        if !self.phase.is_up() {
            return;
        }
        let held_for = now - answered.sent;
        let mut at_once = has_event;
        if has_event {
            // Answers in a row are counted between events only.
            self.session.ping.unheld = false;
        } else if error.is_none() {
            let early = since_refresh < self.early_bound();
            let ping = &mut self.session.ping;
            // A ping held for a while (or the first early answer after held ones) was
            // released: act on it. One answered at once after an early answer only
            // shows a server that does not hold pings: pace, do not re-register again.
            let released = early && (!ping.unheld || held_for >= MIN_PING_INTERVAL);
            ping.unheld = early;
            if (released || overdue) && !ping.late_wake {
                self.rearm_after_early_release();
            }
            // Find out at once whether this node still leads.
            at_once |= released;
        }
        let due = answered.sent + MIN_PING_INTERVAL;
        if at_once || due <= now {
            self.send_ping(now);
        } else {
            self.session.ping.due = Some(due);
        }
    }

    /// An idle ping is held about T − 1 s; an empty answer long before that means the
    /// server let go of every held ping, as it does when it loses leadership (PROTOCOL.md
    /// §5). Leadership may have come back to this very node before our next request, and
    /// a leader change drops every watch (§6) without the connection noticing anything
    /// else. Registering a watch that is still set is a no-op, so re-register them all and
    /// compare each fresh stat with the baseline, as after a reconnect.
    fn rearm_after_early_release(&mut self) {
        self.rearm_every_watch();
    }

    /// Called before each input: whether `now` is more than [`LATE_WAKE`] (at most
    /// `ping_grace`) past the
    /// deadline the core asked for. The process was paused or starved meanwhile, so
    /// leadership may have left this node and come back, silently dropping every watch,
    /// with the early ping answer that told of it read only now (or never sent).
    pub(crate) fn begin_input(&mut self, now: Instant) {
        let tolerance = LATE_WAKE.min(self.config.ping_grace);
        let late = self.phase.is_up()
            && self
                .poll_timeout()
                .is_some_and(|asked| now.saturating_duration_since(asked) > tolerance);
        self.session.ping.late_wake = late;
        if late {
            self.session.ping.woke_late_at = Some(now);
        }
    }

    /// Called after each input: after a late wake-up with the session still up on this
    /// connection, re-registers every watch and compares the fresh stats with the
    /// baselines (as after an early ping answer).
    pub(crate) fn end_input(&mut self) {
        if std::mem::take(&mut self.session.ping.late_wake) && self.phase.is_up() {
            self.rearm_after_early_release();
        }
    }

    /// Acts on the ping's deadlines while the session is up: a paced ping falls due, or
    /// the held ping's liveness bound passed. Bytes received since the ping was sent
    /// prove the connection alive (a busy session's ping may be held for as long as
    /// requests keep refreshing it): the bound then runs from the last answer. Otherwise a
    /// probe replaces the ping, and a probe's bound passing means the connection is dead.
    pub(crate) fn on_ping_timeout(&mut self, now: Instant) {
        if self.session.ping.due.is_some_and(|d| d <= now) {
            return self.send_ping(now);
        }
        let bound = self.ping_bound();
        let ping = &mut self.session.ping;
        let Some(held) = ping.current.filter(|p| p.deadline <= now) else {
            return;
        };
        let renewed = ping
            .last_rx
            .filter(|rx| *rx > held.sent)
            .map(|rx| rx + bound);
        if let (Some(deadline), Some(p)) = (renewed.filter(|d| *d > now), ping.current.as_mut()) {
            p.deadline = deadline;
            p.probe = false;
            return;
        }
        if held.probe {
            return self.on_fault(Fault::Timeout, now);
        }
        if let Some((old, _)) = ping.replaced.replace((held.xid, held.sent)) {
            self.requests.forget(old);
        }
        self.send_ping(now);
        if let Some(p) = self.session.ping.current.as_mut() {
            p.probe = true;
            p.deadline = now + self.config.ping_grace;
        }
    }
}
