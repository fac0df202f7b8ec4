//! # pyxis-core: the Pyxis client protocol as a sans-IO state machine
//!
//! (API CONTRACT — the implementation fills this in; see the issue.)
//!
//! `Client` (in `client.rs`) exposes exactly:
//! - getters: `state() -> SessionState`, `sid() -> Option<u64>`, `config() -> &Config`
//! - commands: `submit(op: Op, now: Instant) -> RequestId`,
//!   `watch(spec: WatchSpec, now: Instant) -> WatchId`, `unwatch(id: WatchId, now: Instant)`,
//!   `close(now: Instant)`
//! - inputs: `handle_connected(conn: ConnId, now)`, `handle_data(conn: ConnId, data: &[u8], now)`,
//!   `handle_closed(conn: ConnId, now)`, `handle_timeout(now)`
//! - outputs: `poll_transmit() -> Option<Transmit>`, `poll_io() -> Option<IoAction>`,
//!   `poll_timeout() -> Option<Instant>`, `poll_event() -> Option<Event>`
//! - `Client::new(config: Config, now: Instant) -> Client` (config errors: empty address
//!   list is allowed to be reported as ConfigError).
//! - `is_closed() -> bool`: true once `SessionEvent::Closed` has been emitted.

mod error;
mod types;

pub use error::Error;
pub use types::*;
