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
//! | getters | [`state`](Client::state), [`sid`](Client::sid), [`config`](Client::config), [`is_closed`](Client::is_closed) |
//! | inputs (adapter) | [`handle_connected`](Client::handle_connected), [`handle_data`](Client::handle_data), [`handle_closed`](Client::handle_closed), [`handle_timeout`](Client::handle_timeout) |
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
//!    ([`TimerReason`]), for logs.
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
//!   commit, so a read pipelined behind an unanswered write could miss it (PROTOCOL.md
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
//!   watch per path and does not merge masks, PROTOCOL.md §6, so a registration must
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
//!   `Expired { old_sid }` when the previous session was found gone; `Disconnected` when
//!   an up connection is lost (the core then reconnects with the same sid). Register
//!   asks for the session timeout T in whole milliseconds (an `int32`, saturating). A
//!   ping is outstanding while connected (re-sent at once after an answer carrying an
//!   event or after a held ping released early, and at most every 500 ms after any
//!   other empty or failed one, so a server that does not hold pings cannot cause a
//!   tight loop). A held ping released early (a leader change, perhaps back to this
//!   node, which drops every watch) and an input handled more than half a second (at
//!   most `ping_grace`) past the deadline asked for (a paused process) re-register every
//!   watch, with the gap check. A server that holds pings shorter than asked (session
//!   bounds below T) is told from releases by its repeating hold, which is learned: it
//!   costs one re-registration of every watch, then one per real leader change.
//!   Liveness: the server may raise T (its
//!   bounds are [5 s, 120 s] by default) and then holds each ping longer than asked, so a
//!   ping's bound is the larger of T and the longest hold seen, plus `ping_grace`; when it
//!   passes, a probe ping replaces the held one (the server answers a replaced ping at
//!   once, which proves the connection alive and gives the probe up to 120 s), and only
//!   a probe unanswered within `ping_grace` declares the connection dead (after
//!   T + 2 × `ping_grace` without a complete answer). See the `ping` module.
//! - **Backoff never restarts on a bare Register**: the backoff and the redirect count
//!   start over only once a ping was answered without error, so a server that accepts
//!   Register and then fails or redirects every request is retried with growing delays.
//! - **Close**: [`Client::close`] sends Unregister (also while a session is being
//!   resumed, behind its Register, and between connections, on a connection opened at
//!   once for it) and follows kNotLeader answers to the leader and retries after kAgain
//!   or a lost connection (with backoff) until the server answers ok or
//!   kSessionExpired, at most `close_timeout`; if that passes first,
//!   `Session(CloseUnconfirmed { sid })` says the session may outlive the client until
//!   the server expires it. Then it closes the connection, completes every pending
//!   operation with `Error::Closed` (a write still in flight with
//!   `ConnectionLoss { outcome_unknown: true }`), ends every watch with
//!   `WatchEnded { reason: Closed }` and emits `Session(Closed)` once. After that only
//!   the immediate `Closed` completions of later commands are emitted.
//! - **Hostile input**: a malformed frame, a bad checksum or an undecodable payload
//!   closes that connection and reconnects with the sid kept; nothing from the network
//!   panics, and frames longer than `max_frame_len` are refused before allocation.
//!
//! ## Behaviours and their tests
//!
//! Each behaviour of the design has its own scripted-exchange test in
//! `tests/behaviours.rs` (the whole-client properties are in `tests/properties.rs`), run
//! against a small in-test server peer (`tests/support`) that decodes what the core
//! transmits and answers with frames built by pyxis-proto, on a virtual clock:
//!
//! | # | behaviour | test |
//! |---|---|---|
//! | 1 | seeded start, redirects, backoff, no hot loop | `b01_discovery_follows_redirects_with_backoff`, `b01_redirect_to_itself_is_bounded`, `b01_redirect_loop_between_two_servers_is_bounded`, `b01_connect_timeout_covers_connect_and_register` |
//! | 2 | register with timeout/sid; expired sid ⇒ new session, `Expired` after `Connected` | `b02_register_resumes_and_reports_expiry` |
//! | 3 | ping long poll, event dispatch, liveness | `b03_ping_long_poll_and_liveness` |
//! | 4 | pipelining, out-of-order answers, unknown xids | `b04_pipelined_out_of_order_unknown_xid` |
//! | 5 | waiting for the session, completing once | `b05_requests_wait_for_the_session` |
//! | 6 | connection loss: reads retried, writes unknown | `b06_connection_loss_retries_reads_fails_writes` |
//! | 7 | watch fan-out, union registration, re-arm | `b07_watch_fan_out_and_rearm`, `b07_watch_added_while_registered_is_covered` |
//! | 8 | missed changes inferred after reconnect | `b08_missed_changes_are_inferred_after_reconnect` |
//! | 9 | close | `b09_close_unregisters_and_ends_everything` |
//! | 10 | malformed frames | `b10_malformed_frames_reconnect_with_sid` |
//! | 11 | read-your-writes | `b11_reads_wait_for_earlier_writes` |
//! | 12 | riding through an election | `b12_request_rides_through_an_election` |
//! | – | same seed ⇒ same outputs | `determinism_same_seed_same_outputs` |
//! | – | 10 000 random interleavings | `random_interleavings_complete_every_request` |
//! | – | `Op::Unregister` ends the session, the client stays usable | `unregister_ends_the_session_and_the_client_stays_usable` |
//! | – | no clock, thread or socket in the source | `source_uses_no_clock_thread_or_socket` |
//!
//! `tests/conformance.rs` (frames and answers) and `tests/liveness.rs` (ping, backoff,
//! close) check the core against real servers and the Go client rather
//! than our own test server:
//!
//! | what | test |
//! |---|---|
//! | every request frame is the Go client's golden frame (sid/xid substituted; a watch mask may be wider, see Watches) | `golden_request_frames_match_the_go_client`, `golden_register_with_sid_and_timeouts` |
//! | golden answers (nodes, errors with/without data, ping events) | `golden_answers_map_to_results` |
//! | golden malformed frames: connection given up, session kept, reads retried | `golden_malformed_frames_close_the_connection_and_keep_the_session` |
//! | `err` of type kNone is success | `err_with_type_none_is_success` |
//! | an answer without xid is xid 0 (never ours): ignored | `answer_without_xid_is_xid_zero_and_ignored` |
//! | ping event without `Response.path` | `ping_event_without_response_path_goes_to_the_event_path` |
//! | Node fields absent ⇒ defaults; `flags & 1`; `_` children | `stat_with_missing_node_fields_gets_defaults` |
//! | unknown error codes kept; on the ping, no hot loop | `unknown_error_codes_are_kept` |
//! | a server answering pings at once is paced | `ping_answered_at_once_is_paced` |
//! | an early empty answer re-pings at once and re-arms; a second in a row is paced; a server never holding pings costs bounded pings and arms | `an_early_empty_answer_repings_at_once_and_a_second_one_is_paced`, `a_server_answering_every_ping_at_once_costs_a_bounded_number_of_pings_and_arms` |
//! | kNotLeader without data / with a hostname | `not_leader_without_data_falls_back_to_the_list`, `not_leader_with_a_hostname_is_followed` |
//! | Register answer without sid (new / resumed session); sid change | `register_answer_without_sid`, `sid_change_on_resume_reports_expiry` |
//! | a replaced ping answered late; duplicate answers; unwatched paths | `replaced_ping_answered_late_is_harmless`, `duplicate_answers_are_ignored`, `events_for_paths_never_watched_are_dropped` |
//! | liveness with a server holding longer than asked; a silent connection; idle round trip T − 1 s | `ping_liveness_tolerates_a_server_holding_longer`, `ping_liveness_declares_a_silent_connection_dead`, `idle_ping_round_trip_is_about_t_minus_one_second` |
//! | kAgain everywhere; sessions failing right after Register | `again_on_register_backs_off_on_every_server`, `sessions_failing_right_after_register_back_off` |
//! | a busy session's ping held by refreshes; a requested timeout above the server's maximum | `busy_session_ping_held_by_refreshes_is_not_declared_dead`, `huge_requested_timeout_uses_the_server_maximum_as_bound` |
//! | Unregister answered kSessionExpired: done, no new session | `unregister_of_an_expired_session_succeeds_without_a_new_session` |
//! | durations too long to add to `now` (over a year) refused by `Client::new` | `durations_too_long_to_add_to_now_are_refused` |
//! | a pause does not inflate the learned hold (liveness stays T + 2 × grace) | `a_pause_does_not_teach_a_longer_hold` |
//! | requests after close; close while resuming a session or between connections unregisters it | `requests_after_close_complete_closed_and_nothing_follows`, `close_while_resuming_unregisters_the_session`, `close_between_connections_unregisters_on_a_new_connection` |
//!
//! `tests/faults.rs` covers the fault policy (what kNotLeader, kAgain, kSessionExpired
//! and a stalled connection do to the requests in flight, to `close` and to the ping):
//!
//! | what | test |
//! |---|---|
//! | every pipelined write answered kNotLeader is retried at the leader; only writes whose answer can no longer arrive are unknown | `pipelined_writes_answered_not_leader_are_all_retried_at_the_leader`, `writes_behind_a_not_leader_answer_keep_their_own_answers`, `a_connection_that_never_answers_the_writes_behind_a_not_leader_is_given_up` |
//! | writes behind a kAgain answer keep their own answers | `writes_behind_an_again_answer_keep_their_own_answers` |
//! | liveness counts answers, not bytes: a peer trickling a frame it never finishes is given up after T + 2 × `ping_grace` and the next server tried | `a_peer_trickling_an_unfinished_frame_is_abandoned_and_the_next_server_tried` |
//! | a server holding pings shorter than asked (bounds [1 s, 3 s]): 200 idle watches cost at most 2 × 200 registrations in 20 s | `a_server_holding_pings_shorter_than_asked_costs_at_most_one_rearm` |
//!
//! The ping's decisions are unit-tested on its state machine, `Pinger`, directly (the
//! `ping::tests` module: held and early answers, a learned short hold, pacing, probe and
//! dead, a renewed bound, a replaced ping's answer, late wake-ups).
//! | close follows kNotLeader, retries kAgain with backoff, says when the deadline won | `close_follows_not_leader_to_the_leader`, `close_during_a_no_leader_window_retries_until_a_leader_answers`, `close_tells_the_application_when_the_unregister_was_not_confirmed` |
//!
//! `tests/watch_gaps.rs` (scripted exchanges) and `tests/recursive_watches.rs` (the core
//! against the pyxis-testkit server model, with a second client making the changes)
//! cover watched changes no server event reports, and what a watch is told of them:
//!
//! | behaviour | test |
//! |---|---|
//! | a change between an event and its re-arm is inferred | `a_change_between_an_event_and_its_rearm_is_inferred`, `a_creation_followed_by_a_write_before_the_rearm_is_inferred`, `a_child_change_between_a_children_event_and_its_rearm_is_inferred` |
//! | a leader change back to the same node (early ping answer) re-arms every watch | `an_early_empty_ping_answer_rearms_every_watch`, `an_early_release_is_measured_from_the_last_request`, `an_idle_empty_ping_answer_rearms_nothing` |
//! | a paused process re-arms every watch | `a_late_wake_up_with_a_ping_answer_rearms_every_watch`, `a_late_wake_up_with_a_timeout_rearms_every_watch`, `a_wake_up_half_a_second_late_rearms_every_watch`, `an_empty_answer_read_long_after_the_known_hold_rearms_every_watch`, `a_timely_wake_up_rearms_nothing` |
//! | a deletion, missed or reported, reaches every mask (Modify/Children for watches not listening for Delete) | `a_deletion_missed_while_disconnected_is_told_through_each_mask`, `a_deletion_reported_by_the_server_is_told_to_a_watch_not_listening_for_delete`, `a_deletion_of_a_node_whose_children_went_unreported_tells_children_watches` |
//! | a creation missed brings its writes and children; a re-creation is found by owner, lower version or other data at the same version | `a_creation_missed_with_later_writes_and_children_infers_them_all`, `a_node_recreated_while_disconnected_is_inferred_even_at_the_same_version` |
//! | a one-shot watch gets at most one event, marked `last` | `a_one_shot_watch_gets_at_most_one_event_marked_last` |
//! | a descendant's Create/Delete on a recursive registration stands for its parent's Children event, at any depth | `a_child_event_on_a_recursive_registration_stands_for_the_parents_children_event`, `a_recursive_watch_reports_every_event_of_the_subtree_one_step_at_a_time` |
//! | changes below a recursive watch between an event and its re-arm are found by re-checks in the re-arm batch (children found are told created, children gone deleted); a reconnect re-checks every descendant seen | `changes_below_a_recursive_watch_between_an_event_and_its_rearm_are_inferred`, `a_recursive_watch_rechecks_what_it_has_seen_below_and_after_a_reconnect` |
//!
//! The simulator (`pyxis-sim`) checks the same against many clients and faults, and
//! keeps seeds that once broke a watch as regressions (`watch_regression_seeds_hold_every_oracle`).
//! A leader change landing while the server holds no ping of the client (one in flight,
//! or a paused process that wakes before its deadline) is not detectable: the protocol
//! carries no leader term (see the `ping` module).

mod arms;
mod client;
mod config;
mod discovery;
mod error;
mod ops;
mod ping;
mod reply;
mod requests;
mod session;
mod types;
mod watches;

pub use client::Client;
pub use config::{Backoff, Config, ConfigError, MAX_CONFIG_DURATION, MIN_SESSION_TIMEOUT};
pub use error::Error;
pub use types::*;
