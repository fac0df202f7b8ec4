//! What the client logs, through `tracing` (feature `tracing`, on by default): one
//! function per kind of record, so the wording and level of each is decided here once.
//! Target `pyxis`. INFO and above are quiet while a session is steady: they tell of
//! sessions established, resumed, suspended, lost and expired, of connections that die,
//! of inferred watch events and of dropped events, and of the core's rare verdicts
//! (a held ping released early or a late wake-up: every watch registered again); DEBUG
//! adds every connection attempt and the core's per-attempt decisions (redirects
//! followed, backoff delays, Registers sent, liveness probes).
//!
//! Owns: the records' text, fields and levels. Must never decide anything, read a clock
//! or allocate when the level is disabled (tracing's macros check the level first).
//! Without the feature every function is empty.

#![cfg_attr(not(feature = "tracing"), allow(unused_variables))]

use std::fmt::Display;
use std::time::{Duration, Instant};

use pyxis_core::{Config, ConnId, Diagnostic, WatchEvent};

/// Runs a tracing macro when the feature is on.
macro_rules! record {
    ($level:ident, $($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        {
            tracing::$level!(target: "pyxis", $($arg)*);
        }
    }};
}

pub(crate) fn started(config: &Config) {
    record!(debug, servers = ?config.addrs, session_timeout = ?config.session_timeout, "client started");
}

pub(crate) fn connecting(conn: ConnId, addr: &str) {
    record!(debug, conn = conn.0, addr, "connecting");
}

pub(crate) fn connected(conn: ConnId) {
    record!(debug, conn = conn.0, "connection open");
}

pub(crate) fn conn_died(conn: ConnId, cause: &dyn Display) {
    record!(info, conn = conn.0, %cause, "connection closed");
}

pub(crate) fn conn_dropped(conn: ConnId) {
    record!(
        info,
        conn = conn.0,
        cause = "given up by the client (bad frame, liveness, redirect or close)",
        "connection closed"
    );
}

pub(crate) fn session_up(sid: u64, suspended_since: Option<Instant>, now: Instant) {
    if let Some(since) = suspended_since {
        let after: Duration = now.saturating_duration_since(since);
        record!(
            info,
            sid = format_args!("{sid:#x}"),
            ?after,
            "session resumed"
        );
    } else {
        record!(info, sid = format_args!("{sid:#x}"), "session established");
    }
}

pub(crate) fn suspended(sid: Option<u64>) {
    record!(warn, sid = ?sid, "connection to the leader lost; resuming the session");
}

pub(crate) fn lost(since: Option<Instant>, now: Instant) {
    let for_ = since.map(|s| now.saturating_duration_since(s));
    record!(warn, disconnected_for = ?for_, "session probably expired (disconnected past the session timeout)");
}

pub(crate) fn expired(old_sid: u64, closing: bool) {
    record!(
        warn,
        old_sid = format_args!("{old_sid:#x}"),
        closing,
        "session expired"
    );
}

pub(crate) fn inferred(event: &WatchEvent) {
    record!(info, path = %event.path, kind = ?event.kind, "watch event inferred after a reconnect");
}

pub(crate) fn lagged(what: &str, dropped: u64) {
    record!(
        warn,
        what,
        dropped,
        "consumer too slow: oldest unread events dropped"
    );
}

pub(crate) fn decided(diagnostic: &Diagnostic) {
    match diagnostic {
        Diagnostic::Redirect { from, to, delay } => {
            record!(debug, %from, %to, ?delay, "redirected to the leader");
        }
        Diagnostic::Backoff {
            addr,
            delay,
            attempt,
        } => record!(debug, %addr, ?delay, attempt, "backing off before the next attempt"),
        Diagnostic::Register { addr, resume } => match resume {
            Some(sid) => record!(
                debug,
                %addr,
                sid = format_args!("{sid:#x}"),
                "registering to resume the session"
            ),
            None => record!(debug, %addr, "registering a new session"),
        },
        Diagnostic::PingReleased { early: true } => record!(
            info,
            "held ping released early (leader change?): re-registering every watch"
        ),
        Diagnostic::PingReleased { early: false } => record!(
            info,
            "ping answer read long after any hold: re-registering every watch"
        ),
        Diagnostic::LateWake => record!(
            info,
            "woke long past the deadline (paused?): re-registering every watch"
        ),
        Diagnostic::PingProbe => {
            record!(debug, "nothing read within the liveness bound: probing");
        }
        other => record!(debug, ?other, "core decision"),
    }
}

pub(crate) fn unknown_session_event(event: &pyxis_core::SessionEvent) {
    record!(debug, ?event, "session event not shown to applications");
}

pub(crate) fn write_stalled(conn: ConnId, waited: Duration) {
    record!(
        warn,
        conn = conn.0,
        ?waited,
        "the server takes none of what we write; giving the connection up"
    );
}
