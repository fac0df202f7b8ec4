//! # pyxis-core: the Pyxis client protocol as a sans-IO state machine
//!
//! One [`Client`] value holds the whole client side of the Pyxis protocol (leader
//! discovery, the session and its ping long poll, pipelined requests, watches). It does
//! no I/O: it consumes bytes, connection events and timer ticks, and produces frames,
//! connection instructions, a next deadline and events. It never reads a clock (every
//! method takes `now`), never touches a socket or a thread, and draws every random number
//! (start address, backoff jitter) from [`Config::seed`]: the same inputs with the same
//! seed give the same outputs, byte for byte. Runtime adapters (tokio, async-std/smol,
//! blocking) and the deterministic simulator drive it.
//!
//! ## Driving a `Client`
//!
//! The methods of [`Client`] come in four groups:
//!
//! | group | methods |
//! |---|---|
//! | getters | [`state`](Client::state), [`sid`](Client::sid), [`config`](Client::config), [`is_closed`](Client::is_closed), [`last_cause`](Client::last_cause), [`unreachable`](Client::unreachable) |
//! | inputs (adapter) | [`handle_connected`](Client::handle_connected), [`handle_data`](Client::handle_data), [`handle_closed`](Client::handle_closed) / [`handle_failed`](Client::handle_failed), [`handle_timeout`](Client::handle_timeout) |
//! | commands (application) | [`submit`](Client::submit), [`watch`](Client::watch), [`unwatch`](Client::unwatch), [`close`](Client::close) |
//! | outputs | [`poll_io`](Client::poll_io), [`poll_transmit`](Client::poll_transmit), [`poll_event`](Client::poll_event), [`poll_timeout`](Client::poll_timeout) |
//!
//! After **every** input or command (and after `Client::new`) the adapter drains the
//! outputs in this order:
//!
//! 1. `poll_io` until `None`: open the connections asked for (`Connect`; report the
//!    result with `handle_connected` or `handle_closed`) and close the ones dropped
//!    (`Close`; no `handle_closed` is needed for them);
//! 2. `poll_transmit` until `None`: each [`Transmit`] holds every frame ready for the
//!    current connection, to be written in one go;
//! 3. `poll_event` until `None`: hand events to the application (never block the loop on
//!    a slow consumer: that would starve the ping and expire the session);
//! 4. `poll_timeout`: arm one timer for that instant and call `handle_timeout` when it
//!    passes (a `None` means only inputs can change anything).
//!    [`poll_timeout_reason`](Client::poll_timeout_reason) also names the deadline
//!    ([`TimerReason`]), for logs, and [`poll_diagnostic`](Client::poll_diagnostic)
//!    yields what the core decided ([`Diagnostic`]: redirects, backoffs, Registers,
//!    ping verdicts), output only.
//!
//! The `now` passed in must never go backwards (request deadlines are kept in
//! submission order on that assumption; debug builds assert it).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use pyxis_core::{Client, Config, IoAction, Op};
//!
//! /// `now` comes from the adapter's clock; the core never reads one.
//! fn start(now: Instant) -> Client {
//!     let mut client = Client::new(Config::new(["127.0.0.1:7000"]), now).unwrap();
//!     let Some(IoAction::Connect { conn, addr }) = client.poll_io() else { unreachable!() };
//!     assert_eq!(addr, "127.0.0.1:7000");
//!     client.handle_connected(conn, now);
//!     let register = client.poll_transmit().unwrap(); // the Register frame, for `conn`
//!     assert_eq!(register.conn, conn);
//!     // An operation submitted before the session is up waits for it.
//!     let _id = client.submit(Op::Exists { path: "/svc".into(), watch: None }, now);
//!     assert!(client.poll_event().is_none());
//!     assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(2))); // connect timeout
//!     client
//! }
//! # let _ = start;
//! ```
//!
//! ## Guarantees
//!
//! - **Each operation completes exactly once** ([`Event::Completed`]), at the latest at
//!   its deadline (`request_timeout`, default 10 s, which carries a request through a
//!   leader election of a few seconds).
//! - **Waiting for a session**: an operation submitted while connecting, registering or
//!   reconnecting waits (up to its deadline) and goes out once the session is up.
//! - **Connection loss**: reads and stats in flight are retried on the next connection;
//!   create/delete/write/unregister in flight whose answer can no longer arrive (the
//!   connection closed, broke or went silent) complete with
//!   `ConnectionLoss { outcome_unknown: true }` and are never retried (they may have
//!   committed). A kNotLeader answer means the follower applied nothing: the operation,
//!   write or not, is retried at the leader. A kAgain answer completes a write with
//!   `Again { outcome_unknown: true }` and retries a read. After a kNotLeader or kAgain
//!   the connection is kept until every other write in flight on it has its own answer
//!   (at most `ping_grace`), so each is told what happened to it (see the `session`
//!   module's fault policy).
//! - **Read-your-writes**: the server answers reads at once and writes after the Raft
//!   commit, so a read pipelined behind an unanswered write could miss it ([protocol](pyxis_proto::protocol)
//!   §1). A read or exists submitted after a create/delete/write/unregister is held until
//!   every such earlier write is answered; writes pipeline among themselves (the server
//!   commits them in order). Nothing submitted after an `Op::Unregister` is sent before
//!   it is answered.
//! - **Client-side checks, no round trip**: malformed paths (`Error::InvalidPath`),
//!   create data over 1 MiB and write data of 1 MiB or more (`Error::DataTooLarge`), and
//!   anything submitted to a closing or closed client (`Error::Closed`).
//! - **Watches** (see [`Client::watch`] and the `watch` field of `Op::Read`/`Op::Exists`):
//!   several application watches may share a path; the server gets one registration per
//!   path, registered with a stat so the core knows the node's state. Its mask is the
//!   union of the application masks plus every node event type (the server keeps one
//!   watch per path and does not merge masks, [protocol](pyxis_proto::protocol) §6, so a registration must
//!   already cover any watch added while it is set; events nobody asked for are only
//!   re-armed, never delivered); it is recursive if any watch on the path is. An event goes to exactly the watches whose mask has
//!   its type (descendants' events only to recursive ones); a one-shot watch gets at most
//!   one event, marked `last`, and is spent; the registration is re-armed for the rest. After every (re)connect every
//!   path is re-registered and the fresh stat compared with what was last seen
//!   (existence ⇒ Create/Delete, version ⇒ Modify, children ⇒ Children, another owner,
//!   a lower version or other data at the same version ⇒ deleted and created again):
//!   what was missed is delivered with `inferred: true` (a deletion, reported or missed,
//!   reaches a watch not listening for Delete as the Modify/Children change it is for
//!   it; see the `watches` module). Below a recursive watch, each re-arm after an event
//!   first re-checks the node the event named and its parent (and a reconnect every
//!   descendant seen), so changes in the subtree between an event and its re-arm are
//!   inferred too, at a cost bounded by what the watch has seen; what stays unknowable
//!   is listed in the `watches` module. An event for a path with no application watch left is
//!   dropped. A recursive watch added while a non-recursive registration is set on its
//!   path gets the recursive registration at the next re-arm (after that registration
//!   fires, or after a reconnect).
//! - **Session**: `Connected { sid }` after each successful Register, followed by
//!   `Expired { old_sid }` when the previous session was found gone (the other requests
//!   of that session in flight are told `SessionExpired` on the same connection, which
//!   is kept for the new Register). A request is never carried into another session:
//!   every operation submitted before `Expired` is reported and not yet sent then
//!   (queued while disconnected or registering, or refused and queued again) completes
//!   with `SessionExpired` instead of going out in the new session (an `Op::Unregister`
//!   with `Done`: its session is over); operations submitted before the first session
//!   go out in it. `Disconnected` when
//!   an up connection is lost (the core then reconnects with the same sid). Register
//!   asks for the session timeout T in whole milliseconds (an `int32`, saturating). A
//!   ping is outstanding while connected (re-sent at once after an answer carrying an
//!   event or after a held ping released early, and at most every 500 ms after any
//!   other empty or failed one, so a server that does not hold pings cannot cause a
//!   tight loop). A held ping released early (a leader change, perhaps back to this
//!   node, which drops every watch) and an input handled more than half a second (at
//!   most `ping_grace`) past the deadline asked for (a paused process) re-register every
//!   watch, with the gap check (not while an `Op::Unregister` is in flight: ending the
//!   session answers its held ping at once). Every such re-registration of every watch,
//!   whatever its cause (and after each `Connected` when there are watches), is told
//!   once as `WatchesRearmed`: the gap check covers only the nodes the watches hold a
//!   baseline of, so whatever mirrors more re-reads on it. A server that holds pings shorter than asked (session
//!   bounds below T) is told from releases by its repeating hold, which is learned: it
//!   costs one re-registration of every watch, then one per real leader change.
//!   Liveness: a ping's bound is T (at most 120 s, the server's largest) plus
//!   `ping_grace`, counted from its sending or the last complete answer, whichever is
//!   later; when it passes, a probe ping replaces the held one (the server answers a
//!   replaced ping at once, which proves the connection alive; the probe then takes over
//!   as an ordinary ping), and only a probe unanswered within `ping_grace` declares the
//!   connection dead (after T + 2 × `ping_grace` without a complete answer). A server
//!   that raises T (its bounds are [5 s, 120 s] by default) and holds each ping longer
//!   than asked is thus probed once per round trip, and a hold seen never widens the
//!   bound. See the `ping` module.
//! - **Backoff never restarts on a bare Register**: the backoff and the redirect count
//!   start over only once a ping was answered without error, so a server that accepts
//!   Register and then fails or redirects every request is retried with growing delays.
//! - **Close**: [`Client::close`] sends Unregister (also while a session is being
//!   resumed, behind its Register, between connections, on a connection opened at
//!   once for it, and while a Register without sid is in flight, to the session its
//!   answer names) and follows kNotLeader answers to the leader and retries after
//!   kAgain or a lost connection (with backoff) until the server answers ok or
//!   kSessionExpired, at most `close_timeout`; if that passes first (or a Register
//!   without sid whose answer did not arrive, or was kAgain, may have made a session
//!   that still lives), `Session(CloseUnconfirmed { sid })` says a session may outlive
//!   the client until the server expires it. Then it closes the connection, completes every pending
//!   operation with `Error::Closed` (a write still in flight with
//!   `ConnectionLoss { outcome_unknown: true }`), ends every watch with
//!   `WatchEnded { reason: Closed }` and emits `Session(Closed)` once. After that only
//!   the immediate `Closed` completions of later commands are emitted.
//! - **Hostile input**: a malformed frame, a bad checksum or an undecodable payload
//!   closes that connection and reconnects with the sid kept; nothing from the network
//!   panics, and frames longer than `max_frame_len` are refused before allocation.
//! - **Errors say why**: the last reason no session could be had (a failed connect as
//!   the adapter reports it with [`Client::handle_failed`], kAgain, kNotLeader, a
//!   timeout, a malformed answer; a [`Cause`] naming the server) is kept until a session
//!   is up ([`Client::last_cause`]) and carried by `Error::Timeout` and
//!   `Error::ConnectionLoss`. With [`Config::fail_fast`], once every listed server has
//!   failed in turn with no session between, the operations waiting for a session, and
//!   those submitted until one is up again, complete at once with
//!   `Error::Unreachable { cause }`.
//!
//! ## Tests
//!
//! Every behaviour above has a test of its own, shipped with the crate in `tests/`
//! (`behaviours.rs`, `causes.rs`, `conformance.rs`, `faults.rs`, `liveness.rs`, `properties.rs`,
//! `recursive_watches.rs`, `watch_gaps.rs`): scripted exchanges with a small in-test server
//! peer that decodes what the core transmits and answers with frames built by pyxis-proto,
//! on a virtual clock; conformance with the original Go client's golden frames and the real
//! server's answers; whole-client properties (determinism, random interleavings).
//!
//! One gap no test can close: a leader change landing while the server holds no ping of
//! the client (one in flight, or a paused process that wakes before its deadline) is not
//! detectable, as the protocol carries no leader term (see the `ping` module).

mod arms;
mod cause;
mod client;
mod config;
mod diagnostic;
mod discovery;
mod error;
mod ops;
mod ping;
mod reply;
mod requests;
mod session;
mod types;
mod watches;

pub use cause::{Cause, CauseKind, IoFailure};
pub use client::Client;
pub use config::{Backoff, Config, ConfigError, MAX_CONFIG_DURATION, MIN_SESSION_TIMEOUT};
pub use diagnostic::Diagnostic;
pub use error::Error;
pub use types::*;
