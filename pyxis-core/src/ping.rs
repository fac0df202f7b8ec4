//! The ping long poll: one ping held by the server at a time, re-pinged on every answer,
//! events dispatched, and the liveness check that tells a dead connection from a server
//! that simply holds the ping longer than we asked.
//!
//! Owns: [`Pinger`], the ping as a sub-state machine (the outstanding ping, a ping
//! replaced by a liveness probe, the pacing of the next ping, the session's last refresh
//! as the server saw it, the longest hold seen, the server's own shorter hold once
//! learned, late wake-ups). Its fields are private; its methods take the inputs (a ping
//! sent, an answer and what it carried, requests or a write sent, an answer frame read,
//! a timer, an input's instant) and return a [`Verdict`] (re-ping now,
//! pace until, probe, dead, and whether to re-register every watch) that `Client` only
//! applies: it sends the ping or the arms, or hands `Dead` to the fault policy. Must
//! never read a clock, pick addresses, send anything or complete application operations.
//!
//! ## Liveness
//!
//! The server answers an idle ping about T − 1 s after the session's last refresh, where
//! T is the session timeout *after the server's clamp* ([protocol](pyxis_proto::protocol) §5: [5 s, 120 s] by
//! default). The core only knows the T it asked for: a server with a higher minimum
//! holds the ping longer, and a busy session's requests keep refreshing it, so its ping
//! may be held as long as they do. The liveness bound is therefore:
//!
//! - the requested T (at most [`MAX_HOLD`], the server's largest) plus `ping_grace`,
//! - counted from the ping's sending or from the last answer received, whichever is later
//!   (answers to other requests prove the connection alive; bytes of a frame that is
//!   never finished prove nothing).
//!
//! When it passes, the connection is not given up at once: a second ping is sent as a
//! probe. A new ping replaces the held one, which the server answers at once, empty:
//! that answer proves the connection alive, and the probe is an ordinary ping from then
//! on, its bound counted from that answer. If nothing comes back within another
//! `ping_grace`, the connection is dead. A silent connection is thus given up
//! T + 2 × `ping_grace` after the last answer received (9 s by default); the idle round
//! trip of T − 1 s stays well inside the first bound.
//!
//! A longer hold seen never widens the bound: it may be one the server keeps (then each
//! ping is probed once its bound passes, and the probe takes over the hold: still one ping
//! per round trip, and one answer at least every T + `ping_grace`), or only look like one
//! (an answer read late after a pause too short to be told from a timer firing late),
//! and either way a stall right after it must be given up T + 2 × `ping_grace` after
//! the last answer. The longest hold seen only keeps an answer held that long from
//! counting as read long after any hold (see Late wake-ups).
//!
//! ## Early empty answers
//!
//! An empty answer well before the idle hold (sooner than T − 2 s, and never under
//! T / 2, after the session's last refresh: the ping's sending, or a later request's,
//! as every request the server reads refreshes the session and pushes the hold out)
//! means the server released every held ping: a leadership change, possibly one that
//! ended on this same node and silently dropped every watch.
//!
//! The last refresh is the latest request the server can have read when it wrote the
//! answer. It reads a connection's requests in order and answers a stat or a read as
//! soon as it reads it, and the connection's answers come in the order it writes them:
//! a request it had read is the ping, a write (answered only after the commit), or one
//! sent before the last answer frame read before this one (whatever that frame
//! answered). A stat sent since, its answer still to come, was not read yet: one sent a
//! moment before the server's own hold ended is no refresh, and counted from it that
//! hold would look like a release right after a request, which teaches no hold. A write
//! still unanswered cannot be told apart that way (the server may have read it long
//! before it answers), so it counts as read: a release right after it is never missed,
//! and against a server holding pings shorter than asked, a write sent a moment before
//! that hold ended can cost one more re-registration of every watch.
//! If the ping before was held normally (or this is the connection's first), the core
//! re-registers every watch (a no-op where one is still set), compares the fresh stats
//! with its baselines, and pings again at once, to learn without delay whether this node
//! still leads. A second early answer in a row that was not held either (under
//! [`MIN_PING_INTERVAL`]) only shows a server that does not hold pings: it is paced and
//! re-registers nothing. Nor does an early answer while an `Op::Unregister` is in flight:
//! ending the session answers its held ping at once, which tells nothing of the server's
//! hold either.
//!
//! ## A server that holds pings shorter than asked
//!
//! A server whose session bounds are below the T asked for (bounds [1 s, 3 s], say)
//! answers every idle ping "early". A release by a leader change happens once, at no
//! particular moment; a server's own hold repeats: so a second early answer in a row held
//! about as long as the first (within [`HOLD_TOLERANCE`], the server's expiry rounding
//! plus slack) is the server's hold, not a release, if each of the two can be one (and
//! both were held, or neither: a server answering at once never holds, and one that
//! holds never answers a fresh ping at once): a hold of at least
//! [`SHORTEST_LEARNED_HOLD`] (1.3 s) with no longer spell without a request (give or
//! take the tolerance) while the ping was held, or a ping not held at all (answered
//! within the pacing interval, no request read meanwhile). A shorter hold is never taken
//! for the server's: once learned, only an answer [`HOLD_TOLERANCE`] sooner than it
//! would count as early, which leaves under 0.2 s (under the tolerance, nothing) in
//! which to see a release; such a server costs a re-registration of every watch per
//! idle ping instead, which keeps every watch. The hold is the cluster's: answers in a
//! row go on across a new connection or session, except an answer at once, which a
//! release on each of two connections in a row (leadership moving to each node the
//! client just reached) would look like too. "In a row" counts empty answers only: an
//! answer carrying an event was ended by the event, which tells nothing of a release;
//! but it shows the server held that ping, through every spell without a request until
//! the event. Across such answers, only two holds the client can learn are compared, and
//! only if no ping answered by an event was held through a longer spell than either (the
//! server's own hold would have answered it empty first); a server that answers at once
//! never holds a ping until an event. On a busy session a release comes a moment after
//! some request, every time: two in a row look alike, but they are neither, and the
//! spells the pings in between were held through tell them apart. It re-registers
//! nothing, and from then on an answer counts as early only if it comes back
//! [`HOLD_TOLERANCE`] sooner than that learned hold. A ping held through a spell without a request well past the
//! learned hold (by more than [`EARLY_MARGIN`]), whatever answered it, shows the guess
//! wrong, and it is forgotten. Such a server thus costs one re-registration of every
//! watch (the first early answer, taken for a release), and afterwards one per real
//! leader change.
//!
//! ## Late wake-ups
//!
//! An input handled more than [`LATE_WAKE`] (half a second, at most `ping_grace`) past
//! the deadline the core asked for means the process was paused or starved: leadership may have left and come back meanwhile,
//! and the early answer that told of it is read only now, when it looks like an idle one
//! (or never came, if no ping was held). Every watch is then re-registered as above,
//! once: the inputs that follow within [`LATE_WAKE`] of one another (the turns of a
//! bounded input, several reads, the timer) are the same wake-up.
//!
//! Likewise, an answer read more than a second after the longest hold known (the
//! requested T, or a longer hold already seen), counted from the last refresh,
//! re-registers every watch: the process may have been paused past a release and read
//! it only now (the first answer of a server that holds longer than asked does so once,
//! then its hold is known), or, if it carries an event, paused with it unread while no
//! ping was held, through a leader change nothing else would tell of.
//!
//! A release (or an answer read long after any hold) read before any answer to a
//! re-registration of every watch already sent on the connection re-registers nothing
//! more: the server wrote it before it handled those requests (a connection's answers
//! come in the order the server writes them, and it answers a stat at once), so they
//! were registered after whatever it tells of. A timer and a ping answer that both
//! waited through a pause thus cost one re-registration, not two.
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
use crate::diagnostic::Diagnostic;
use crate::reply::{classify, Answer};
use crate::requests::Purpose;
use crate::session::Fault;
use crate::types::TimerReason;

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

/// How far apart the holds of two early answers in a row may be for the second to show
/// the server's own hold rather than another release: the server rounds expiry to its
/// check interval (1 s), plus network slack.
pub(crate) const HOLD_TOLERANCE: Duration = Duration::from_millis(1100);

/// The shortest hold from a refresh taken for a server's own. Once a hold is learned,
/// only an answer [`HOLD_TOLERANCE`] sooner than it is early: a shorter hold would leave
/// under 0.2 s in which a release can still be seen (under the tolerance, none at all).
/// A server holds an idle ping T − 1 s ± 0.5 s after a refresh
/// ([protocol](pyxis_proto::protocol) §5), so only one whose largest session timeout is
/// under about 2.8 s holds this short; two releases in a row this soon after a request
/// are releases, however alike.
pub(crate) const SHORTEST_LEARNED_HOLD: Duration = Duration::from_millis(1300);

/// The longest a server holds a ping: its largest session timeout ([protocol](pyxis_proto::protocol) §9).
pub(crate) const MAX_HOLD: Duration =
    Duration::from_millis(pyxis_proto::limits::MAX_SESSION_TIMEOUT_MS as u64);

/// The ping the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ping {
    xid: u64,
    sent: Instant,
    /// No answer by then: probe (or, for a probe, give the connection up).
    deadline: Instant,
    /// Sent to replace a ping whose liveness bound passed.
    probe: bool,
    /// The longest the session went without a refresh while this ping was held, up to
    /// the last request sent: a server holding pings for less than that (give or take
    /// [`HOLD_TOLERANCE`]) would have answered then.
    quiet: Duration,
}

/// What a ping's answer carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PingAnswer {
    /// No event, no error: the server released the ping (its hold ended, or it let go of
    /// every held ping).
    Empty,
    /// A watch event (already dispatched by the caller).
    Event,
    /// A final error (not a fault: those go to the fault policy instead).
    Failed,
    /// No event, no error, while an `Op::Unregister` is in flight: ending the session
    /// answers its held ping at once, which tells nothing of the server's hold.
    SessionEnding,
}

/// What the client does about the ping next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing now.
    Wait,
    /// Send the next ping now.
    PingNow,
    /// The next ping is paced: due at this instant (kept by the pinger; its deadline).
    PaceUntil(Instant),
    /// Send a probe now, replacing the held ping.
    Probe,
    /// The connection is dead.
    Dead,
}

/// A [`Pinger`] decision.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Re-register every watch and compare the fresh stats with the baselines: the
    /// server may have dropped them all (a leader change, perhaps back to this node).
    pub rearm_all: bool,
    /// Why, when `rearm_all`: an early answer (a release), not one read long after any
    /// hold (for the log only).
    pub released: bool,
    /// The answer proved the session healthy (backoff and redirects start over).
    pub healthy: bool,
    /// What to do about the next ping.
    pub action: Action,
}

impl Verdict {
    const WAIT: Verdict = Verdict {
        rearm_all: false,
        released: false,
        healthy: false,
        action: Action::Wait,
    };

    fn act(action: Action) -> Verdict {
        Verdict {
            action,
            ..Verdict::WAIT
        }
    }
}

/// The ping long poll's state (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Pinger {
    /// The session timeout asked for, at most [`MAX_HOLD`].
    asked: Duration,
    /// `Config::ping_grace`.
    grace: Duration,
    /// The ping held by the server.
    current: Option<Ping>,
    /// A ping replaced by a probe, (xid, sent); its (empty) answer proves the
    /// connection alive.
    replaced: Option<(u64, Instant)>,
    /// When the next ping is due (pacing), while none is outstanding.
    due: Option<Instant>,
    /// Longest hold seen for an empty answer, from the session's last refresh (at most
    /// [`MAX_HOLD`]).
    hold: Duration,
    /// When the last answer to a request in flight was read (a complete frame).
    last_rx: Option<Instant>,
    /// When requests were last handed out to be written (each refreshes the session
    /// once the server reads it).
    last_tx: Option<Instant>,
    /// `last_tx` when the last answer frame was read (see `refreshed`).
    tx_before_rx: Option<Instant>,
    /// When the last request went out whose answer the server defers: a ping (held) or a
    /// write (answered after the commit). See `refreshed`.
    deferred_tx: Option<Instant>,
    /// How long the last empty answer was held (from the last refresh), if it was early,
    /// whether its ping was not held at all, and whether the server's own hold could have
    /// ended it (see `answered`): only such an answer can show that hold a second time.
    last_early: Option<(Duration, bool, bool)>,
    /// Whether pings were answered by an event (or an error) since the last empty
    /// answer, and the longest spell without a refresh that one of them was held through
    /// without an empty answer: a server whose own hold is shorter would have answered
    /// empty then.
    held_quiet: Option<Duration>,
    /// Every watch was re-registered on this connection and no answer was read since.
    rearm_unanswered: bool,
    /// The server's own hold, shorter than asked, once two early answers in a row agreed.
    short_hold: Option<Duration>,
    /// The input being handled came far past the deadline the core asked for: every
    /// watch is re-registered once it is handled.
    late_wake: bool,
    /// When the last late wake-up was handled: pings sent before it teach no hold.
    woke_late_at: Option<Instant>,
    /// When the last input began: the process was running then.
    last_input: Option<Instant>,
}

impl Pinger {
    /// A pinger for a session asking for `asked` (clamped to [`MAX_HOLD`]) with `grace`.
    pub(crate) fn new(asked: Duration, grace: Duration) -> Pinger {
        Pinger {
            asked: asked.min(MAX_HOLD),
            grace,
            current: None,
            replaced: None,
            due: None,
            hold: Duration::ZERO,
            last_rx: None,
            last_tx: None,
            tx_before_rx: None,
            deferred_tx: None,
            last_early: None,
            held_quiet: None,
            rearm_unanswered: false,
            short_hold: None,
            late_wake: false,
            woke_late_at: None,
            last_input: None,
        }
    }

    /// The next instant the ping needs attention, and why.
    #[inline]
    pub(crate) fn deadline(&self) -> Option<(Instant, TimerReason)> {
        let held = self.current.map(|p| {
            let reason = if p.probe {
                TimerReason::PingProbe
            } else {
                TimerReason::PingLiveness
            };
            (p.deadline, reason)
        });
        let due = self.due.map(|d| (d, TimerReason::PingDue));
        match (held, due) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Whether `xid` is the held ping or one a probe replaced.
    pub(crate) fn owns(&self, xid: u64) -> bool {
        self.current.is_some_and(|p| p.xid == xid) || self.replaced.is_some_and(|r| r.0 == xid)
    }

    /// How long a ping may go unanswered on a quiet connection: the requested session
    /// timeout plus the grace (never a longer hold seen: see the module docs).
    fn bound(&self) -> Duration {
        self.asked + self.grace
    }

    /// An empty answer held (from the last refresh) less than this is early. The server
    /// answers an idle ping when the session's expiry bucket comes up, about
    /// T − interval after the last refresh ([protocol](pyxis_proto::protocol) §5, interval 1 s, expiry rounded
    /// to it), so a held ping comes back no sooner than about T − 1.5 s after it. The
    /// bound is T − 2 s, never under T / 2; or, once the server's shorter hold is known,
    /// that hold less [`HOLD_TOLERANCE`].
    fn early_bound(&self) -> Duration {
        match self.short_hold {
            Some(hold) => hold.saturating_sub(HOLD_TOLERANCE),
            None => (self.asked / 2).max(self.asked.saturating_sub(EARLY_MARGIN)),
        }
    }

    /// Whether the answer to a ping sent at `sent` tells how long the server holds
    /// pings (not if the process was paused meanwhile).
    fn learns_from(&self, sent: Instant) -> bool {
        self.woke_late_at.is_none_or(|at| sent >= at)
    }

    /// A ping (`xid`) was sent at `now`.
    pub(crate) fn sent(&mut self, xid: u64, now: Instant) {
        self.due = None;
        self.deferred_tx = Some(now);
        self.current = Some(Ping {
            xid,
            sent: now,
            deadline: now + self.bound(),
            probe: false,
            quiet: Duration::ZERO,
        });
    }

    /// A probe (`xid`) was sent at `now` to replace the held ping; returns the xid of an
    /// older replaced ping to forget.
    pub(crate) fn probe_sent(&mut self, xid: u64, now: Instant) -> Option<u64> {
        let old = self.current.take().and_then(|held| {
            self.replaced
                .replace((held.xid, held.sent))
                .map(|(old, _)| old)
        });
        self.due = None;
        self.deferred_tx = Some(now);
        self.current = Some(Ping {
            xid,
            sent: now,
            deadline: now + self.grace,
            probe: true,
            quiet: Duration::ZERO,
        });
        old
    }

    /// Requests were handed out to be written at `now` (each refreshes the session once
    /// the server reads it).
    #[inline]
    pub(crate) fn note_tx(&mut self, now: Instant) {
        if let Some(p) = self.current.as_mut() {
            let from = self.last_tx.map_or(p.sent, |tx| tx.max(p.sent));
            // Subtracts only when the spell is longer than the longest so far (an
            // addition and a comparison are cheaper on every request).
            if from
                .checked_add(p.quiet)
                .is_some_and(|longest| now > longest)
            {
                p.quiet = now.saturating_duration_since(from);
            }
        }
        self.last_tx = Some(now);
    }

    /// A write (create, delete, write, unregister) was handed out to be written at
    /// `now`: the server answers it only after the commit, and may have read it (and
    /// refreshed the session) long before (see `refreshed`).
    #[inline]
    pub(crate) fn note_write(&mut self, now: Instant) {
        self.deferred_tx = Some(now);
    }

    /// A complete answer frame was read at `now`; `in_flight`: it answers a request in
    /// flight (not a forgotten or unknown xid), which proves the connection alive.
    #[inline]
    pub(crate) fn note_rx(&mut self, now: Instant, in_flight: bool) {
        // Whatever it answers (a forgotten xid too), the server may have read every
        // request sent before it by the time it writes its next answer.
        self.tx_before_rx = self.last_tx;
        if in_flight {
            self.last_rx = Some(now);
            self.rearm_unanswered = false;
        }
    }

    /// The latest the session can have been refreshed (by a request sent then) when the
    /// server wrote an answer, read now, to a ping sent at `sent`: the server holds an
    /// idle ping from the last refresh. It reads a connection's requests in order and
    /// answers a stat or a read as soon as it reads it, and a connection's answers come
    /// in the order it writes them: a request it had read when it wrote this answer is
    /// the ping, one whose answer it defers (a write, answered after the commit; a
    /// probe, held), or one that went out before the last frame read before this one. A
    /// stat sent since that frame, its answer still to come, was not read yet, and
    /// neither refreshed the session nor pushed the hold out (see the module docs). This
    /// is the one place the refresh an answer is measured from is decided.
    fn refreshed(&self, sent: Instant) -> Instant {
        [self.tx_before_rx, self.deferred_tx]
            .into_iter()
            .flatten()
            .fold(sent, Instant::max)
    }

    /// Every watch was re-registered (the requests are handed out to be written).
    pub(crate) fn rearmed(&mut self) {
        self.rearm_unanswered = true;
    }

    /// Stops the long poll; returns the xids still in flight (their answers are to be
    /// ignored).
    ///
    /// What the answers showed of the server's hold (the last early answer if the server
    /// held its ping, the spells pings were held through since, a hold learned) is kept:
    /// it is the cluster's, and the next connection or session is compared with it.
    pub(crate) fn stop(&mut self) -> [Option<u64>; 2] {
        self.due = None;
        self.rearm_unanswered = false;
        // A ping answered at once is compared on its own connection only: a server
        // answering at once does so again at once, while releases on two connections
        // in a row (leadership moving to each node the client just reached) would look
        // alike.
        self.last_early = self.last_early.filter(|&(_, unheld, _)| !unheld);
        [
            self.current.take().map(|p| p.xid),
            self.replaced.take().map(|(xid, _)| xid),
        ]
    }

    /// A ping was held through `spell` without a refresh before it was answered: a
    /// learned hold that this outlasts by more than [`EARLY_MARGIN`] is no hold the
    /// server keeps (its hold would have answered the ping empty first), only a guess
    /// from releases that looked alike, and is forgotten. This is the one place a
    /// learned hold is given up, whatever answered the ping.
    fn forget_a_hold_outlasted(&mut self, spell: Duration) {
        if self.short_hold.is_some_and(|h| spell > h + EARLY_MARGIN) {
            self.short_hold = None;
        }
    }

    /// The ping `xid` was answered at `now` with `answer` (faults were handed to the
    /// fault policy instead).
    pub(crate) fn answered(&mut self, xid: u64, answer: PingAnswer, now: Instant) -> Verdict {
        let empty = answer == PingAnswer::Empty;
        if let Some((_, sent)) = self.replaced.filter(|r| r.0 == xid) {
            // The connection is alive (and the server held the ping longer than the
            // bound, or the process was paused): the probe is an ordinary ping from now
            // on, its bound running from this answer, a complete frame.
            self.replaced = None;
            // A ping sent before a late wake-up was "held" through the pause too. The
            // hold runs from the session's last refresh: a busy session's requests keep
            // its ping held longer, which says nothing of an idle one.
            if empty && self.learns_from(sent) {
                let refreshed = self.refreshed(sent);
                self.hold = self
                    .hold
                    .max(now.saturating_duration_since(refreshed).min(MAX_HOLD));
            }
            let bound = self.bound();
            if let Some(p) = self.current.as_mut().filter(|p| p.probe) {
                p.deadline = now + bound;
                p.probe = false;
            }
            return Verdict::WAIT;
        }
        let Some(answered) = self.current.filter(|p| p.xid == xid) else {
            return Verdict::WAIT;
        };
        self.current = None;
        if answer == PingAnswer::SessionEnding {
            return Verdict {
                healthy: true,
                action: self.next_ping(answered.sent, false, now),
                ..Verdict::WAIT
            };
        }
        // The server holds an idle ping from the session's last refresh.
        let refreshed = self.refreshed(answered.sent);
        let since_refresh = now.saturating_duration_since(refreshed);
        // An answer read well after any hold known (before this one teaches a longer
        // one): the process may have slept through a release, or, with the answer
        // already waiting to be read (an event), through a leader change while no ping
        // was held.
        let overdue =
            answer != PingAnswer::Failed && since_refresh > self.asked.max(self.hold) + LATE_SLACK;
        if empty && self.learns_from(answered.sent) {
            self.hold = self.hold.max(since_refresh.min(MAX_HOLD));
        }
        let mut verdict = Verdict {
            healthy: answer != PingAnswer::Failed,
            ..Verdict::WAIT
        };
        let mut at_once = answer == PingAnswer::Event;
        let longest_spell = answered.quiet.max(since_refresh);
        self.forget_a_hold_outlasted(longest_spell);
        if !empty {
            // An event (or an error) ended this ping, not the server's hold, nor a
            // release: the comparison of empty answers in a row goes on across it, and
            // it shows how long the server held a ping without its hold ending (not
            // across a pause, which stretches every spell).
            let spell = if self.learns_from(answered.sent) && !self.late_wake {
                longest_spell
            } else {
                Duration::ZERO
            };
            self.held_quiet = Some(self.held_quiet.unwrap_or_default().max(spell));
            verdict.rearm_all = overdue && !self.late_wake;
        } else {
            let early = since_refresh < self.early_bound();
            // The server's own hold could have ended this ping only if the ping was not
            // held at all (a server answering at once: back within the pacing interval,
            // no request read meanwhile), or if that hold is one a server keeps and the
            // client can learn (not under SHORTEST_LEARNED_HOLD) and no longer spell
            // without a refresh passed without an answer while this ping was held. A
            // release right after a request on a busy session is neither.
            let held = now.saturating_duration_since(answered.sent);
            let unheld = held < MIN_PING_INTERVAL && refreshed == answered.sent;
            let own_hold = unheld
                || (since_refresh >= SHORTEST_LEARNED_HOLD
                    && answered.quiet <= since_refresh + HOLD_TOLERANCE);
            // A second early answer held about as long as the one before is the server's
            // own hold, if both can be; anything else early is a release. Pings answered by
            // events in between leave the comparison to two holds the server keeps
            // (each at least the pacing interval, and neither shorter than a spell
            // without a refresh that a ping in between was held through): the events
            // show the server held those pings, which one answering at once never does.
            let between = self.held_quiet.take();
            let repeated = early
                && own_hold
                && self
                    .last_early
                    .is_some_and(|(prev, prev_unheld, prev_own_hold)| {
                        prev_own_hold
                            && unheld == prev_unheld
                            && prev.abs_diff(since_refresh) <= HOLD_TOLERANCE
                            && between.is_none_or(|spell| {
                                !unheld
                                    && !prev_unheld
                                    && prev >= SHORTEST_LEARNED_HOLD
                                    && spell <= prev.max(since_refresh)
                            })
                    });
            if repeated {
                // A server answering at once holds nothing to learn: it stays early.
                let prev = self.last_early.map_or(since_refresh, |(prev, ..)| prev);
                self.short_hold =
                    Some(prev.min(since_refresh)).filter(|h| *h >= SHORTEST_LEARNED_HOLD);
            }
            let released = early && !repeated;
            self.last_early = early.then_some((since_refresh, unheld, own_hold));
            verdict.rearm_all = (released || overdue) && !self.late_wake;
            verdict.released = released;
            // Find out at once whether this node still leads.
            at_once |= released;
        }
        // Read before any answer to a re-registration of every watch sent on this
        // connection: the server wrote this answer before it handled those requests (a
        // connection's answers come in the order the server writes them, and it answers
        // a stat at once), so they were registered after whatever this answer tells of.
        verdict.rearm_all &= !self.rearm_unanswered;
        verdict.action = self.next_ping(answered.sent, at_once, now);
        verdict
    }

    /// When the ping after one sent at `sent` and answered at `now` goes out: at once if
    /// `at_once` or the pacing interval has passed, else paced until it has.
    fn next_ping(&mut self, sent: Instant, at_once: bool, now: Instant) -> Action {
        let due = sent + MIN_PING_INTERVAL;
        if at_once || due <= now {
            Action::PingNow
        } else {
            self.due = Some(due);
            Action::PaceUntil(due)
        }
    }

    /// The ping's deadline may have passed at `now`: a paced ping falls due, or the held
    /// ping's liveness bound passed. An answer read since the ping was sent proves the
    /// connection alive (a busy session's ping may be held for as long as requests keep
    /// refreshing it): the bound then runs from that answer. Otherwise a probe replaces
    /// the ping, and a probe's bound passing means the connection is dead.
    pub(crate) fn timeout(&mut self, now: Instant) -> Verdict {
        if self.due.is_some_and(|d| d <= now) {
            return Verdict::act(Action::PingNow);
        }
        let Some(held) = self.current.filter(|p| p.deadline <= now) else {
            return Verdict::WAIT;
        };
        // A connection that has answered nothing for T + grace is probed (a probe is
        // answered at once, and the replaced ping's answer renews the bound), so a stall
        // is abandoned within T + 2 × grace of its last complete frame.
        let renewed = self
            .last_rx
            .filter(|rx| *rx > held.sent)
            .map(|rx| rx + self.bound());
        if let (Some(deadline), Some(p)) = (renewed.filter(|d| *d > now), self.current.as_mut()) {
            p.deadline = deadline;
            p.probe = false;
            return Verdict::WAIT;
        }
        Verdict::act(if held.probe {
            Action::Dead
        } else {
            Action::Probe
        })
    }

    /// Called before each input at `now`, with the deadline the core had asked for and
    /// whether a session is up: whether `now` is more than [`LATE_WAKE`] (at most
    /// `ping_grace`) past it, and past the last input. The process was paused or starved
    /// meanwhile, so leadership may have left this node and come back, silently
    /// dropping every watch, with the early ping answer that told of it read only now
    /// (or never sent). An input soon after another found the process running: the
    /// deadline stays past until the timer is handled, and the inputs read before (the
    /// turns of one bounded input, several reads) are one wake-up.
    pub(crate) fn begin_input(&mut self, now: Instant, asked: Option<Instant>, up: bool) {
        let tolerance = LATE_WAKE.min(self.grace);
        let since = asked.map(|asked| self.last_input.map_or(asked, |last| last.max(asked)));
        self.last_input = Some(now);
        // `since + tolerance < now` rather than a subtraction: cheaper on every input.
        let late = up
            && since
                .and_then(|since| since.checked_add(tolerance))
                .is_some_and(|limit| now > limit);
        self.late_wake = late;
        if late {
            self.woke_late_at = Some(now);
        }
    }

    /// Called after each input: whether it was a late wake-up, after which every watch
    /// is re-registered (as after an early ping answer).
    #[must_use]
    pub(crate) fn end_input(&mut self) -> bool {
        std::mem::take(&mut self.late_wake)
    }
}

impl Client {
    /// Sends a ping now.
    pub(crate) fn send_ping(&mut self, now: Instant) {
        let xid = self.send_ping_frame();
        self.session.ping.sent(xid, now);
    }

    fn send_ping_frame(&mut self) -> u64 {
        let xid = self.requests.send(Purpose::Ping);
        self.send_frame(&rpc::Request {
            sid: self.session.sid,
            xid: Some(xid),
            ping: Some(rpc::PingRequest {}),
            ..Default::default()
        });
        xid
    }

    /// Ends the long poll (connection or session gone, closing); late answers are ignored.
    pub(crate) fn stop_pinging(&mut self) {
        for xid in self.session.ping.stop().into_iter().flatten() {
            self.requests.forget(xid);
        }
    }

    /// Applies a verdict of the pinger while the session is up.
    fn apply_ping_verdict(&mut self, verdict: Verdict, now: Instant) {
        if verdict.healthy {
            self.discovery.on_healthy();
        }
        if !self.phase.is_up() {
            return;
        }
        if verdict.rearm_all {
            self.rearm_after_suspected_drop(Diagnostic::PingReleased {
                early: verdict.released,
            });
        }
        match verdict.action {
            Action::Wait | Action::PaceUntil(_) => {}
            Action::PingNow => self.send_ping(now),
            Action::Probe => {
                self.diagnostics.push(Diagnostic::PingProbe);
                let xid = self.send_ping_frame();
                if let Some(old) = self.session.ping.probe_sent(xid, now) {
                    self.requests.forget(old);
                }
            }
            Action::Dead => self.on_fault(Fault::Timeout, now),
        }
    }

    /// An answer to the held ping or to one a probe replaced: its event is dispatched,
    /// a fault goes to the fault policy, and the pinger decides the rest.
    pub(crate) fn on_ping_answer(&mut self, rsp: &mut rpc::Response, now: Instant) {
        let Some(xid) = rsp.xid.filter(|x| self.session.ping.owns(*x)) else {
            return;
        };
        let answer = match classify(rsp, "") {
            Answer::Fault(fault) => return self.on_fault(fault, now),
            Answer::Final(_) => PingAnswer::Failed,
            Answer::Success => match rsp.watch.take() {
                Some(event) => {
                    let watched = rsp.path.take().unwrap_or_else(|| event.path.clone());
                    self.on_watch_fired(&watched, &event.path, event.r#type);
                    PingAnswer::Event
                }
                None if self.requests.unregister_in_flight() => PingAnswer::SessionEnding,
                None => PingAnswer::Empty,
            },
        };
        let verdict = self.session.ping.answered(xid, answer, now);
        self.apply_ping_verdict(verdict, now);
    }

    /// Called before each input (see [`Pinger::begin_input`]).
    pub(crate) fn begin_input(&mut self, now: Instant) {
        self.clock(now);
        let up = self.phase.is_up();
        // Only a session that is up can wake late: the deadline is looked up only then.
        let asked = if up { self.poll_timeout() } else { None };
        self.session.ping.begin_input(now, asked, up);
    }

    /// Called after each input: after a late wake-up with the session still up on this
    /// connection, re-registers every watch and compares the fresh stats with the
    /// baselines (as after an early ping answer).
    pub(crate) fn end_input(&mut self) {
        if self.session.ping.end_input() && self.phase.is_up() {
            self.rearm_after_suspected_drop(Diagnostic::LateWake);
        }
    }

    /// The server may have dropped every watch while the session stayed up: every watch
    /// is re-registered, unless an `Op::Unregister` is in flight (ending the session
    /// answers its held ping at once, and the next session registers every watch
    /// anyway). `why` is recorded for the log when it is.
    fn rearm_after_suspected_drop(&mut self, why: Diagnostic) {
        if !self.requests.unregister_in_flight() {
            self.diagnostics.push(why);
            self.rearm_every_watch();
            self.session.ping.rearmed();
        }
    }

    /// Acts on the ping's deadlines while the session is up.
    pub(crate) fn on_ping_timeout(&mut self, now: Instant) {
        let verdict = self.session.ping.timeout(now);
        self.apply_ping_verdict(verdict, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);
    const GRACE: Duration = Duration::from_secs(2);

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A pinger with ping 1 sent at `t0`.
    fn pinging() -> (Pinger, Instant) {
        let t0 = Instant::now();
        let mut p = Pinger::new(T, GRACE);
        p.sent(1, t0);
        (p, t0)
    }

    #[test]
    fn a_held_answer_repings_at_once_and_rearms_nothing() {
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + s(4));
        assert_eq!(
            v,
            Verdict {
                rearm_all: false,
                released: false,
                healthy: true,
                action: Action::PingNow
            }
        );
        assert_eq!(p.answered(1, PingAnswer::Empty, t0 + s(4)), Verdict::WAIT);
    }

    #[test]
    fn an_early_answer_is_a_release_rearms_and_repings() {
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + s(1));
        assert!(v.rearm_all && v.released);
        assert_eq!(v.action, Action::PingNow);
        // Measured from the last request the server read (its answer is in): a refresh
        // pushes the hold out.
        p.sent(2, t0 + s(1));
        p.note_tx(t0 + s(3));
        p.note_rx(t0 + ms(3020), true);
        let v = p.answered(2, PingAnswer::Empty, t0 + s(6));
        assert!(!v.rearm_all, "held 3 s from the last refresh: not early");
    }

    #[test]
    fn a_short_server_hold_is_learned_after_one_rearm() {
        // The server keeps 3 s of the 5 asked: it answers 2 s after each refresh.
        let (mut p, mut at) = pinging();
        let mut rearms = 0;
        for xid in 1..20 {
            if xid > 1 {
                p.sent(xid, at);
            }
            at += s(2);
            let v = p.answered(xid, PingAnswer::Empty, at);
            rearms += u32::from(v.rearm_all);
            assert_eq!(v.action, Action::PingNow);
        }
        assert_eq!(rearms, 1);
        // A real release afterwards is still seen.
        p.sent(30, at);
        let v = p.answered(30, PingAnswer::Empty, at + ms(200));
        assert!(v.rearm_all);
    }

    #[test]
    fn a_short_server_hold_is_learned_across_events_on_a_busy_session() {
        // Sim seed 317381008784: the server keeps 3 s of the 5 asked and answers an idle
        // ping 2 s after the last refresh; between two such answers, pings are answered
        // by events a moment after a request. The events say nothing of a release:
        // the second empty answer still shows the server's hold.
        let (mut p, mut at) = pinging();
        let mut rearms = 0;
        let mut xid = 1;
        for round in 0..10 {
            if round > 0 {
                p.sent(xid, at);
            }
            at += ms(300);
            p.note_tx(at);
            at += ms(1900 + 100 * (round % 3));
            let v = p.answered(xid, PingAnswer::Empty, at);
            rearms += u32::from(v.rearm_all);
            assert_eq!(v.action, Action::PingNow);
            for _ in 0..3 {
                xid += 1;
                p.sent(xid, at);
                at += ms(400);
                p.note_tx(at);
                at += ms(100);
                let v = p.answered(xid, PingAnswer::Event, at);
                assert!(!v.rearm_all);
                assert_eq!(v.action, Action::PingNow);
            }
            xid += 1;
        }
        assert_eq!(rearms, 1);
        // A real release afterwards is still seen.
        p.sent(xid, at);
        p.note_tx(at + ms(100));
        let v = p.answered(xid, PingAnswer::Empty, at + ms(200));
        assert!(v.rearm_all && v.released);
    }

    #[test]
    fn an_event_held_longer_than_an_early_answer_shows_the_next_one_is_a_release() {
        // Sim seed 138 (with early answers compared across events): a ping released at
        // once, a ping held 2.3 s without a request until an event came, then a ping
        // released at once by a leader change. The event showed the server holds pings:
        // the second release is one too, not a server answering at once.
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(50));
        assert!(v.rearm_all && v.released);
        p.sent(2, t0 + ms(50));
        p.note_tx(t0 + ms(50));
        let v = p.answered(2, PingAnswer::Event, t0 + ms(2350));
        assert!(!v.rearm_all);
        p.sent(3, t0 + ms(2350));
        let v = p.answered(3, PingAnswer::Empty, t0 + ms(2400));
        assert!(v.rearm_all && v.released);
        assert_eq!(v.action, Action::PingNow);
        // Likewise against a short hold: early answers 1.5 s from the refresh, but an
        // event held 3 s without a refresh between them.
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(1500));
        assert!(v.rearm_all);
        p.sent(2, t0 + ms(1500));
        let v = p.answered(2, PingAnswer::Event, t0 + ms(4500));
        assert!(!v.rearm_all);
        p.sent(3, t0 + ms(4500));
        let v = p.answered(3, PingAnswer::Empty, t0 + ms(6000));
        assert!(v.rearm_all && v.released);
    }

    #[test]
    fn releases_on_a_busy_session_with_events_between_are_not_taken_for_a_hold() {
        // Sim seed 11725086160996: a ping released at once, a ping held 0.8 s (requests
        // meanwhile) until an event, then a ping released at once by a leader change
        // back to this node. The event showed the server holds pings: the second
        // release is one too, not a server answering at once.
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(40));
        assert!(v.rearm_all && v.released);
        p.sent(2, t0 + ms(40));
        p.note_tx(t0 + ms(390));
        let v = p.answered(2, PingAnswer::Event, t0 + ms(840));
        assert!(!v.rearm_all);
        p.sent(3, t0 + ms(840));
        let v = p.answered(3, PingAnswer::Empty, t0 + ms(890));
        assert!(
            v.rearm_all && v.released,
            "a release, not a server answering at once"
        );
        // Sim seed 11725086156385: releases 0.62 s and 0.53 s after a request, with a
        // ping held through a 1 s spell without a request until an event in between:
        // the server's own hold would have answered that ping empty.
        let (mut p, t0) = pinging();
        p.note_tx(t0 + ms(300));
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(920));
        assert!(v.rearm_all && v.released);
        p.sent(2, t0 + ms(920));
        let v = p.answered(2, PingAnswer::Event, t0 + ms(1920));
        assert!(!v.rearm_all);
        p.sent(3, t0 + ms(1920));
        p.note_tx(t0 + ms(2000));
        let v = p.answered(3, PingAnswer::Empty, t0 + ms(2530));
        assert!(
            v.rearm_all && v.released,
            "a release, not the server's hold"
        );
    }

    #[test]
    fn a_release_right_after_a_request_cannot_teach_a_hold_to_the_next_release() {
        // Sim seed 40000006253: the leadership came back to the client's own node twice,
        // 1.5 s apart, on a busy session. The first release came 0.23 s after the last
        // request (its ping held 0.94 s), the second 0.85 s after the last request: about
        // as long, but a hold under the pacing interval from a refresh, of a ping that was
        // held, is no hold a server keeps, so the second is a release too.
        let (mut p, t0) = pinging();
        p.note_tx(t0 + ms(66));
        p.note_tx(t0 + ms(534));
        p.note_tx(t0 + ms(714));
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(943));
        assert!(v.rearm_all && v.released);
        p.sent(2, t0 + ms(955));
        p.note_tx(t0 + ms(955));
        p.note_tx(t0 + ms(1125));
        p.note_tx(t0 + ms(1569));
        let v = p.answered(2, PingAnswer::Empty, t0 + ms(2416));
        assert!(v.rearm_all && v.released, "{v:?}");
    }

    #[test]
    fn two_releases_too_soon_after_a_request_to_be_told_from_a_hold_teach_none() {
        // Sim seed 549866190163: during a storm of leader changes, two pings of a busy
        // session were released 0.52 s and 0.57 s after its last request. Taken for the
        // server's own hold, they left no answer early (the hold less the tolerance is
        // nothing), and a leader change back to the same node 1 s later, which dropped
        // every watch, went unseen. A hold that short leaves no room to see a release:
        // it is never learned, and each such answer stays a release.
        let (mut p, t0) = pinging();
        p.note_tx(t0 + ms(100));
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(619));
        assert!(v.rearm_all && v.released);
        p.sent(2, t0 + ms(620));
        p.note_tx(t0 + ms(700));
        let v = p.answered(2, PingAnswer::Empty, t0 + ms(1268));
        assert!(v.rearm_all && v.released, "a release, not a hold: {v:?}");
        p.sent(3, t0 + ms(1270));
        p.note_tx(t0 + ms(2300));
        let v = p.answered(3, PingAnswer::Empty, t0 + ms(2464));
        assert!(v.rearm_all && v.released, "{v:?}");
    }

    #[test]
    fn a_hold_runs_from_the_last_request_the_server_read_before_it_answered() {
        // Sim seed 55555001801: against a server holding pings 1.5 to 2.5 s after the
        // last refresh (session bounds [1 s, 3 s]), a stat went out 15 ms before the
        // hold ended, and its answer came after the ping's: the server had not read it
        // (it answers a stat at once, and a connection's answers come in the order it
        // writes them), so the hold ran 1.55 s from the request before. Counted from the
        // stat, the answer looked like a release right after a request, no hold a server
        // keeps; the next early answer had nothing to be compared with, and every watch
        // was re-registered twice.
        let (mut p, t0) = pinging();
        p.note_tx(t0 + ms(100));
        p.note_rx(t0 + ms(120), true);
        p.note_tx(t0 + ms(1630));
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(1645));
        assert!(v.rearm_all && v.released, "the first early answer: {v:?}");
        p.sent(2, t0 + ms(1645));
        // The stat's answer, after the ping's.
        p.note_rx(t0 + ms(1660), true);
        let v = p.answered(2, PingAnswer::Empty, t0 + ms(3700));
        assert!(
            !v.rearm_all,
            "the server's hold, as long as the first: {v:?}"
        );
    }

    /// A pinger that learned a server hold of 2 s, its ping 3 sent at the returned
    /// instant.
    fn pinging_with_a_learned_hold_of_2_s() -> (Pinger, Instant) {
        let (mut p, t0) = pinging();
        let _ = p.answered(1, PingAnswer::Empty, t0 + s(2));
        p.sent(2, t0 + s(2));
        let _ = p.answered(2, PingAnswer::Empty, t0 + s(4));
        p.sent(3, t0 + s(4));
        assert_eq!(p.early_bound(), ms(900));
        (p, t0 + s(4))
    }

    #[test]
    fn a_write_sent_since_the_last_answer_read_may_have_refreshed_the_session() {
        // A write is answered after the commit: its answer still to come does not show
        // that the server had not read it. A ping answered 0.3 s after it is early.
        let (mut p, at) = pinging_with_a_learned_hold_of_2_s();
        p.note_tx(at + ms(100));
        p.note_rx(at + ms(120), true);
        p.note_write(at + ms(1600));
        p.note_tx(at + ms(1600));
        let v = p.answered(3, PingAnswer::Empty, at + ms(1900));
        assert!(v.rearm_all && v.released, "{v:?}");
    }

    #[test]
    fn a_frame_read_for_a_forgotten_request_shows_what_the_server_had_read() {
        // An answer whose xid is no longer in flight (an arm sent before a
        // re-registration of every watch) was still written after the server read the
        // requests sent before it: a ping answered 0.4 s after them is early.
        let (mut p, at) = pinging_with_a_learned_hold_of_2_s();
        p.note_tx(at + ms(1500));
        p.note_rx(at + ms(1520), false);
        let v = p.answered(3, PingAnswer::Empty, at + ms(1900));
        assert!(v.rearm_all && v.released, "{v:?}");
    }

    #[test]
    fn a_ping_held_by_an_event_longer_than_the_learned_hold_unlearns_it() {
        // A hold learned from two early answers 2 s after a request, then a ping held
        // through 5 s without a request until an event: the server's own hold would
        // have answered it empty first, so the hold was a guess, and a release 1 s
        // after a request is early again.
        let (mut p, mut at) = pinging();
        for xid in 1..4 {
            if xid > 1 {
                p.sent(xid, at);
            }
            at += s(2);
            let _ = p.answered(xid, PingAnswer::Empty, at);
        }
        p.sent(4, at);
        let v = p.answered(4, PingAnswer::Empty, at + s(1));
        assert!(!v.rearm_all, "the learned hold: 1 s is not early");
        at += s(1);
        p.sent(5, at);
        at += s(5);
        let v = p.answered(5, PingAnswer::Event, at);
        assert!(!v.rearm_all);
        p.sent(6, at);
        p.note_tx(at + ms(100));
        let v = p.answered(6, PingAnswer::Empty, at + ms(1100));
        assert!(v.rearm_all && v.released, "{v:?}");
    }

    #[test]
    fn the_hold_is_compared_across_a_stop_and_a_session_ending_teaches_nothing() {
        // Sim seeds 1000001555 and 1000002580: against a server holding pings 2 s, the
        // first early answer is taken for a release; the long poll then stops (a new
        // connection, or a new session after the old one's Unregister released its held
        // ping at once). The next early answer, held as long, shows the server's hold.
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + s(2));
        assert!(v.rearm_all && v.released);
        p.sent(2, t0 + s(2));
        let v = p.answered(2, PingAnswer::SessionEnding, t0 + ms(2010));
        assert!(!v.rearm_all && v.healthy);
        assert_eq!(v.action, Action::PaceUntil(t0 + ms(2500)));
        assert_eq!(p.stop(), [None, None]);
        p.sent(3, t0 + s(3));
        let v = p.answered(3, PingAnswer::Empty, t0 + s(5));
        assert!(!v.rearm_all, "the server's hold: {v:?}");
        // And learned: 1.2 s from a refresh is no longer early, 0.5 s is.
        p.sent(4, t0 + s(5));
        assert!(!p.answered(4, PingAnswer::Empty, t0 + ms(6200)).rearm_all);
        p.sent(5, t0 + ms(6200));
        assert!(p.answered(5, PingAnswer::Empty, t0 + ms(6700)).rearm_all);
    }

    #[test]
    fn a_ping_answered_at_once_after_a_held_early_one_is_a_release() {
        // A server holding pings 1.3 s never answers a fresh ping at once (the ping
        // refreshes the session): the answer at once is a release, however close the
        // two holds are.
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(1300));
        assert!(v.rearm_all && v.released);
        p.sent(2, t0 + ms(1300));
        let v = p.answered(2, PingAnswer::Empty, t0 + ms(1500));
        assert!(v.rearm_all && v.released, "{v:?}");
    }

    #[test]
    fn answers_at_once_on_two_connections_are_two_releases() {
        // Sim seed 600000001902: leadership moved twice, 0.8 s apart, each time to the
        // node the client had just connected to, and each release answered a ping sent
        // a moment before. A server answering at once shows itself twice on one
        // connection; across a new connection, the first answer at once is a release.
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(300));
        assert!(v.rearm_all && v.released);
        assert!(p.stop().iter().all(Option::is_none));
        p.sent(2, t0 + ms(800));
        let v = p.answered(2, PingAnswer::Empty, t0 + ms(1100));
        assert!(v.rearm_all && v.released, "{v:?}");
    }

    #[test]
    fn a_ping_answered_at_once_and_a_held_one_teach_no_hold() {
        // Sim seed 40000013326: a leader change released a ping 0.19 s after it was sent
        // with no request since (as a server answering at once would), and the next one,
        // held 0.67 s, 0.52 s after the last request. A server answering at once never
        // holds a ping, so the second is a release too.
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0 + ms(190));
        assert!(v.rearm_all && v.released);
        p.sent(2, t0 + ms(198));
        p.note_tx(t0 + ms(198));
        p.note_tx(t0 + ms(348));
        let v = p.answered(2, PingAnswer::Empty, t0 + ms(867));
        assert!(v.rearm_all && v.released, "{v:?}");
    }

    #[test]
    fn a_release_read_before_any_answer_to_a_rearm_rearms_nothing_more() {
        let (mut p, t0) = pinging();
        p.rearmed();
        let v = p.answered(1, PingAnswer::Empty, t0 + s(1));
        assert!(!v.rearm_all, "the re-registration sent before covers it");
        assert_eq!(v.action, Action::PingNow);
        // An answer read since: a later release is one the re-registration did not see.
        p.sent(2, t0 + s(1));
        p.note_rx(t0 + ms(1010), true);
        let v = p.answered(2, PingAnswer::Empty, t0 + ms(3500));
        assert!(v.rearm_all && v.released);
    }

    #[test]
    fn a_server_answering_at_once_is_paced_and_rearms_once() {
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Empty, t0);
        assert!(v.rearm_all);
        p.sent(2, t0);
        let v = p.answered(2, PingAnswer::Empty, t0 + ms(1));
        assert!(!v.rearm_all);
        assert_eq!(v.action, Action::PaceUntil(t0 + ms(500)));
        assert_eq!(p.deadline(), Some((t0 + ms(500), TimerReason::PingDue)));
        assert_eq!(p.timeout(t0 + ms(500)).action, Action::PingNow);
    }

    #[test]
    fn a_failed_answer_is_paced_and_not_healthy() {
        let (mut p, t0) = pinging();
        let v = p.answered(1, PingAnswer::Failed, t0 + ms(10));
        assert!(!v.healthy && !v.rearm_all);
        assert_eq!(v.action, Action::PaceUntil(t0 + ms(500)));
    }

    #[test]
    fn silence_probes_then_declares_the_connection_dead() {
        let (mut p, t0) = pinging();
        assert_eq!(
            p.deadline(),
            Some((t0 + T + GRACE, TimerReason::PingLiveness))
        );
        assert_eq!(p.timeout(t0 + s(6)), Verdict::WAIT);
        assert_eq!(p.timeout(t0 + T + GRACE).action, Action::Probe);
        let probe_at = t0 + T + GRACE;
        assert_eq!(p.probe_sent(2, probe_at), None);
        assert_eq!(
            p.deadline(),
            Some((probe_at + GRACE, TimerReason::PingProbe))
        );
        assert_eq!(p.timeout(probe_at + GRACE).action, Action::Dead);
    }

    #[test]
    fn an_answer_to_another_request_renews_the_bound() {
        let (mut p, t0) = pinging();
        p.note_rx(t0 + s(5), true);
        assert_eq!(p.timeout(t0 + T + GRACE), Verdict::WAIT);
        assert_eq!(
            p.deadline(),
            Some((t0 + s(5) + T + GRACE, TimerReason::PingLiveness))
        );
    }

    #[test]
    fn the_replaced_pings_answer_proves_the_connection_alive() {
        let (mut p, t0) = pinging();
        let probe_at = t0 + T + GRACE;
        assert_eq!(p.timeout(probe_at).action, Action::Probe);
        assert_eq!(p.probe_sent(2, probe_at), None);
        assert!(p.owns(1) && p.owns(2));
        let answered_at = probe_at + ms(5);
        p.note_rx(answered_at, true);
        assert_eq!(p.answered(1, PingAnswer::Empty, answered_at), Verdict::WAIT);
        // The probe is an ordinary ping now, its bound counted from that answer.
        assert_eq!(
            p.deadline(),
            Some((answered_at + T + GRACE, TimerReason::PingLiveness))
        );
        let v = p.answered(2, PingAnswer::Empty, probe_at + s(4));
        assert_eq!(v.action, Action::PingNow);
    }

    #[test]
    fn a_hold_seen_longer_than_asked_never_widens_the_bound() {
        // Sim seed 11725086159089: an answer read 7.4 s after its ping (a pause too short
        // to count as a late wake-up) was taken for a hold, and the next ping was allowed
        // 7.4 s + grace: a stall right after that answer was kept past T + 2 x grace.
        let (mut p, t0) = pinging();
        let read_at = t0 + ms(7400);
        p.note_rx(read_at, true);
        let v = p.answered(1, PingAnswer::Empty, read_at);
        assert!(v.rearm_all, "read long after any hold known");
        p.sent(2, read_at);
        assert_eq!(
            p.deadline(),
            Some((read_at + T + GRACE, TimerReason::PingLiveness))
        );
        // A server that holds 9 s: every ping is probed once its bound passes, and the
        // probe takes over; the bound always runs from the last answer.
        let (mut held, mut at) = (2, read_at + T + GRACE);
        for probe in 3..12 {
            assert_eq!(p.timeout(at).action, Action::Probe);
            assert_eq!(p.probe_sent(probe, at), None);
            at += ms(5);
            p.note_rx(at, true);
            assert_eq!(p.answered(held, PingAnswer::Empty, at), Verdict::WAIT);
            assert_eq!(
                p.deadline(),
                Some((at + T + GRACE, TimerReason::PingLiveness))
            );
            held = probe;
            at += T + GRACE;
        }
    }

    #[test]
    fn a_replaced_pings_answer_read_after_a_pause_does_not_extend_the_probe() {
        // Sim seed 7159005300675: the process slept through its ping's answer; on waking
        // it probed, then read that answer (which came in time). The answer shows no
        // long hold, so the probe keeps the ordinary bound: a connection stalled since
        // is given up T + 2 × grace after that last complete frame, not MAX_HOLD later.
        let (mut p, t0) = pinging();
        let asked = p.deadline().map(|(at, _)| at);
        let woke = t0 + s(20);
        p.begin_input(woke, asked, true);
        assert_eq!(p.timeout(woke).action, Action::Probe);
        assert_eq!(p.probe_sent(2, woke), None);
        assert!(p.end_input());
        p.begin_input(woke, p.deadline().map(|(at, _)| at), true);
        p.note_rx(woke, true);
        assert_eq!(p.answered(1, PingAnswer::Empty, woke), Verdict::WAIT);
        assert!(!p.end_input());
        assert_eq!(
            p.deadline(),
            Some((woke + T + GRACE, TimerReason::PingLiveness))
        );
        assert_eq!(p.timeout(woke + T + GRACE).action, Action::Probe);
        assert_eq!(p.probe_sent(3, woke + T + GRACE), None);
        assert_eq!(p.timeout(woke + T + GRACE + GRACE).action, Action::Dead);
    }

    #[test]
    fn a_late_wake_up_rearms_after_the_input_and_teaches_no_hold() {
        let (mut p, t0) = pinging();
        let asked = p.deadline().map(|(at, _)| at);
        p.begin_input(t0 + s(20), asked, true);
        let v = p.answered(1, PingAnswer::Empty, t0 + s(20));
        assert!(!v.rearm_all, "left to end_input");
        assert!(p.end_input());
        assert!(!p.end_input());
        p.sent(2, t0 + s(20));
        assert_eq!(
            p.deadline(),
            Some((t0 + s(20) + T + GRACE, TimerReason::PingLiveness)),
            "the pause taught no hold"
        );
        p.begin_input(t0 + s(20), asked, false);
        assert!(!p.end_input(), "no session up: nothing to re-register");
    }

    #[test]
    fn inputs_right_after_a_late_wake_up_are_the_same_wake_up() {
        // The deadline asked for stays past until the timer is handled: the inputs
        // read meanwhile (the turns of one bounded input, or several reads) found the
        // process running, not paused again.
        let (mut p, t0) = pinging();
        let asked = p.deadline().map(|(at, _)| at);
        p.begin_input(t0 + s(20), asked, true);
        assert!(p.end_input());
        p.begin_input(t0 + s(20), asked, true);
        assert!(!p.end_input(), "the same instant");
        p.begin_input(t0 + s(20) + ms(400), asked, true);
        assert!(!p.end_input(), "within LATE_WAKE of the last input");
        p.begin_input(t0 + s(25), asked, true);
        assert!(p.end_input(), "paused again since the last input");
    }
}
