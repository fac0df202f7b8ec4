//! # pyxis-testkit: a Pyxis server for tests, examples and local development
//!
//! The real Pyxis server is a replicated C++/Raft system. This crate is an independent
//! implementation of everything a client can observe of it (`PROTOCOL.md` §1, §3–§9),
//! built on `pyxis-proto` only — never on the client core — so the two check each other.
//! It is for tests, examples and local development; production clusters are real Pyxis
//! servers.
//!
//! - [`model`]: the server as a sans-IO, deterministic state machine
//!   ([`model::ClusterModel`]): connections' bytes and ticks in, frames out, time passed
//!   in. A simulator drives it on a virtual clock.
//! - [`TestCluster`] / [`TestServer`]: the model served over TCP on `127.0.0.1:0`, one
//!   background thread per cluster, with a synchronous control API (move leadership,
//!   kill/restart a node, no-leader windows, expire a session, delay or drop answers,
//!   send garbage, inspect nodes) usable from plain, tokio, async-std and smol tests.
//!
//! ```
//! use pyxis_testkit::TestCluster;
//! use std::time::Duration;
//!
//! let cluster = TestCluster::start(3);          // fast settings, node 0 leads
//! let addrs: Vec<String> = cluster.addrs();      // "127.0.0.1:port" per node
//! cluster.move_leader(1).unwrap();
//! cluster.no_leader_for(Duration::from_millis(100)).unwrap(); // every node answers kAgain
//! cluster.kill(2).unwrap();
//! cluster.restart(2).unwrap();                  // same port
//! assert!(cluster.node("/").unwrap().children.contains(&"pyxis".to_string()));
//! # drop(addrs);
//! ```
//!
//! ## Settings
//!
//! [`model::ModelConfig::fast`] (the runners' default): sessions 200 ms..120 s checked
//! every 50 ms, 1 ms commit delay, 200 ms election gap after a killed leader.
//! [`model::ModelConfig::real_defaults`]: the real server's (`PROTOCOL.md` §9) — 5 s..120 s,
//! 1 s check interval, 64 MiB frame cap.
//!
//! ## Throughput
//!
//! `cargo bench -p pyxis-testkit --bench loopback` prints how many pipelined reads per
//! second a `TestServer` answers on one loopback connection, next to a raw frame-echo
//! floor measured in the same run. On the 2-core development machine (1 000 000 reads,
//! other builds running): about 1.2–1.3 million reads/s, against a floor of about
//! 4 million (ratio ≈ 0.3); other benches compare against it.
//!
//! ## Rules and their tests
//!
//! Model tests (`tests/model_*.rs`) drive [`model::ClusterModel`] with frames built by
//! `pyxis-proto`; runner tests (`tests/runner.rs`) use real loopback sockets.
//!
//! | PROTOCOL.md | rule | tests |
//! |---|---|---|
//! | §1 | bad tag/checksum/length, undecodable payload, missing required field: close without answer | `model_protocol::bad_frames_close_the_connection_without_answer`, `runner::a_bad_frame_closes_the_connection`, `runner::a_huge_frame_header_is_refused_without_allocation` |
//! | §1 | frames split across reads or coalesced; a truncated frame waits | `model_protocol::frames_split_across_reads_and_coalesced`, `model_protocol::truncated_frame_waits_for_more` |
//! | §1 | no xid → answered with xid 0 | `model_protocol::request_without_xid_is_answered_with_xid_zero` |
//! | §1 | reads answered at once, writes after commit, writes in order | `model_protocol::reads_overtake_pipelined_writes_and_writes_stay_in_order`, `runner::pipelined_reads_overtake_writes_over_tcp` |
//! | §3 | dispatch order (register, session check, writes, ping, read, stat, watch) | `model_protocol::dispatch_takes_the_first_operation_present` |
//! | §3 | register without sid; timeout clamped | `model_protocol::register_clamps_the_timeout`, `model_protocol::register_answer_matches_the_golden_frame` |
//! | §3 | register with live sid / unknown sid (no err.data) / sid 0 | `model_protocol::register_with_live_sid_keeps_it_and_unknown_sid_is_expired_without_data` |
//! | §3 | dead sid → kSessionExpired "session expired" | `model_protocol::requests_with_a_dead_sid_are_session_expired` |
//! | §3 | empty request answered empty | `model_protocol::empty_request_is_answered_empty` |
//! | §3 | stat = serialized Node, read = raw data | `model_protocol::stat_returns_a_serialized_node_and_read_raw_data`, `model_protocol::stat_root_and_fresh_node_match_golden_frames` |
//! | §3 | unregister ends the session (ephemerals, watches, held ping) | `model_protocol::unregister_ends_the_session_and_answers_the_held_ping`, `model_watches::a_session_end_drops_its_watches` |
//! | §3 | stat+watch on missing registers; read+watch on missing does not | `model_watches::stat_with_watch_on_a_missing_node_registers_a_creation_watch`, `model_watches::read_with_watch_on_a_missing_node_registers_nothing` |
//! | §3 | sessions not tied to connections | `model_sessions::a_new_ping_replaces_the_held_one_which_is_answered_empty_at_once`, `model_protocol::bad_frames_close_the_connection_without_answer` |
//! | §4 | follower → kNotLeader with the leader's address | `model_cluster::followers_answer_not_leader_with_the_leader_address`, `runner::followers_redirect_and_leadership_moves` |
//! | §4 | no leader → kAgain "try again" | `model_cluster::no_leader_window_answers_again_everywhere_then_recovers`, `runner::no_leader_window_answers_again` |
//! | §4 | in-flight writes on a leadership change → kAgain (applied or not) | `model_cluster::in_flight_writes_fail_with_again_on_a_move` |
//! | §5 | expiry about T after the last refresh, rounded to the interval | `model_sessions::session_expires_about_t_after_the_last_refresh_rounded_to_the_interval`, `runner::session_expires_on_its_own_and_a_held_ping_comes_back` |
//! | §5 | every request but unregister refreshes; re-register does not | `model_sessions::every_request_but_unregister_refreshes`, `model_sessions::re_register_does_not_refresh` |
//! | §5 | held ping answered empty about T − interval after refresh | `model_sessions::held_ping_is_answered_empty_about_t_minus_interval_after_refresh` |
//! | §5 | held ping answered on a pending event | `model_sessions::held_ping_is_answered_when_an_event_arrives` |
//! | §5 | one ping per session; the replaced one answered empty at once | `model_sessions::a_new_ping_replaces_the_held_one_which_is_answered_empty_at_once` |
//! | §5 | one event per ping answer, ordered by watched path | `model_sessions::pending_events_go_one_per_ping_ordered_by_watched_path` |
//! | §5 | expiry deletes ephemerals with Delete and Children events | `model_sessions::expiry_deletes_ephemeral_nodes_with_their_events`, `model_sessions::expire_session_control_ends_it_now`, `runner::expire_session_fires_watches_on_ephemerals` |
//! | §5 | leadership change: held pings answered, timers restarted, sessions kept | `model_cluster::leader_move_answers_held_pings_drops_watches_and_keeps_sessions`, `model_cluster::leader_move_restarts_every_session_timer` |
//! | §5 | session ids large, never 0 | `model_sessions::sids_are_large_and_never_zero` |
//! | §6 | one-shot watches | `model_watches::watches_are_one_shot` |
//! | §6 | one watch per (session, path); masks not merged | `model_watches::registering_again_while_set_is_a_no_op_and_masks_are_not_merged`, `model_watches::mask_filters_event_types` |
//! | §6 | Create on node + Children on parent; Modify on write | `model_watches::create_raises_create_on_the_node_and_children_on_the_parent`, `model_watches::write_raises_modify_with_the_golden_frame` |
//! | §6 | ancestors match recursive watches only, up to `/` | `model_watches::ancestors_match_only_recursive_watches`, `model_watches::a_recursive_watch_on_root_sees_children_events_of_deep_parents` |
//! | §6 | watch alone registers on any well-formed path | `model_watches::watch_alone_registers_on_any_path_and_checks_syntax` |
//! | §6 | a leader change drops watches; an event handed to a dead connection's ping is lost | `model_cluster::leader_move_answers_held_pings_drops_watches_and_keeps_sessions`, `model_sessions::an_event_handed_to_a_ping_on_a_dead_connection_is_lost` |
//! | §8 | path syntax and length | `model_store::paths_are_checked` |
//! | §8 | create `/` invalid; kExist with the path | `model_store::create_of_root_is_invalid_and_existing_is_kexist` |
//! | §8 | parent must exist (kNotFound parent) and be persistent | `model_store::parent_must_exist_and_be_persistent` |
//! | §8 | delete with children; delete missing | `model_store::delete_rules` |
//! | §8 | 1 MiB data cap; whole node ≤ 1 MiB on write | `model_store::data_size_limits` |
//! | §2/§8 | versions, owner sid, flags, children | `model_store::versions_owner_and_flags_are_recorded` |
//! | §8 | `/pyxis` read-only (create/delete kInvalidArgument, write kInternal) | `model_store::proc_tree_is_read_only` |
//! | §8 | `/pyxis/cluster/{leader,addrlist}`, `/pyxis/session[/sid]`, `/pyxis/db`, root lists `pyxis` | `model_store::proc_tree_shows_cluster_sessions_and_db` |
//! | §9 | real defaults | `model_cluster::real_defaults_follow_protocol_section_9` |
//! | runner | kill/restart (same port, state kept), killed leader replaced after the gap | `runner::kill_and_restart_keep_the_port_and_the_state`, `runner::killed_leader_is_replaced_after_the_election_gap`, `model_cluster::killing_the_leader_closes_its_connections_and_elects_another_after_the_gap`, `model_cluster::single_node_kill_and_restart_keeps_the_state` |
//! | runner | delayed / dropped answers, garbage, output bound, many clusters | `runner::delayed_and_dropped_answers`, `runner::garbage_reaches_the_clients_of_a_node`, `runner::a_client_that_never_reads_is_disconnected`, `runner::many_clusters_in_parallel_start_and_stop`, `model_cluster::extra_commit_delay_and_dropped_answers`, `model_cluster::garbage_is_sent_on_every_connection_of_a_node` |
//! | model | determinism: same inputs, same bytes | `model_cluster::same_inputs_give_the_same_outputs` |

pub mod model;
pub mod runner;

pub use runner::{RunnerConfig, RunnerError, TestCluster, TestServer};
