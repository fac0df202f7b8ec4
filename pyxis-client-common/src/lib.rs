//! # pyxis-client-common: what the Pyxis runtime adapters share
//!
//! `pyxis-tokio`, `pyxis-async-std` and `pyxis-blocking` are thin loops that move bytes,
//! timers and commands between a runtime and the sans-IO [`pyxis_core::Client`]. Everything
//! in them that does not depend on the runtime lives here, once:
//!
//! - the API, re-exported by every adapter: [`AsyncClient`] and [`BlockingClient`]
//!   (identical method for method; async operations return a [`Call`], sent when the
//!   method is called), [`Options`], [`ReadOptions`], [`ConnectError`], [`Watch`],
//!   [`SessionEvents`] and [`SessionEvent`], [`ClientState`], [`Stats`];
//! - the plumbing, under the hidden `__private` module and **not API**: the driver (the
//!   core plus the routing of its events to callers, watches and subscribers), the
//!   adapter loops (async over a small runtime trait, and blocking), the command
//!   channel, the bounded never-blocking event queues, the socket read buffer, the TCP
//!   options (`TCP_NODELAY`, quick ACKs after reads).
//!
//! ## The adapter loop
//!
//! ```text
//! loop {
//!     while let Some(step) = driver.next_step(now) { connect / close / write it }
//!     if driver.is_finished() { break }
//!     wait for: a command, a connection event, or driver.deadline()
//!     feed it: driver.command / handle_connected / handle_data / handle_closed / handle_timeout
//! }
//! ```
//!
//! ## Slow consumers
//!
//! The driver never waits for the application. Each watch and each session-event
//! subscriber has its own queue of at most [`Options::event_queue_bound`] unread events;
//! when it is full the **oldest** unread event is discarded, and the consumer's next item
//! is a `Lagged(n)` error counting the discarded events, followed by the newest ones that
//! were kept. Pings, other watches and other callers are never delayed.
//!
//! ## Tracing
//!
//! With the `tracing` feature (on by default) the client logs through `tracing` under
//! the target `pyxis`: sessions established, resumed, suspended, lost and expired,
//! every connection that dies, with its cause, and every re-registration of all watches
//! the core decides on (a held ping released early, an answer read overdue, a late
//! wake-up) at INFO or WARN (quiet while a session is steady); every connection attempt
//! and the core's other decisions (redirects followed, backoff delays, Registers sent,
//! liveness probes; `pyxis_core::Diagnostic`) at DEBUG. [`AsyncClient::stats`] counts
//! the same. Errors carry the last cause as well (`Error::cause`), logging or not.
//!
//! This crate has no async runtime dependency (the blocking loop, behind the `blocking`
//! feature, waits in `mio`); it is not meant to be used directly by applications (use an
//! adapter), but its types are re-exported by each of them.

mod api;
mod call;
mod handle;
mod log;
mod options;
mod session;
mod status;
mod watch;

#[doc(hidden)]
pub mod async_loop;
#[cfg(feature = "blocking")]
#[doc(hidden)]
pub mod blocking_loop;
#[doc(hidden)]
pub mod driver;
#[doc(hidden)]
pub mod inbox;
#[doc(hidden)]
pub mod queue;
#[doc(hidden)]
pub mod read_buffer;
#[doc(hidden)]
pub mod tcp;

#[cfg(feature = "scenarios")]
pub mod scenarios;

pub use api::{AsyncClient, BlockingClient};
pub use call::Call;
pub use options::{ConnectError, Options, ReadOptions};
pub use queue::{Lagged, Timeout};
pub use session::SessionEvent;
pub use status::{ClientState, Stats};
pub use watch::{SessionEvents, Watch, WatchError};

pub use bytes::Bytes;
pub use pyxis_core::{CreateMode, Error, EventMask, EventType, Node, WatchEvent, WatchId};

/// Plumbing shared by the sibling adapter crates (`pyxis-tokio`, `pyxis-async-std`,
/// `pyxis-blocking`). **Not API**: nothing here is promised, and any of it may change in
/// any release. Applications use an adapter's `Client`.
#[doc(hidden)]
pub mod __private {
    pub use crate::async_loop::{self, AsyncRuntime};
    #[cfg(feature = "blocking")]
    pub use crate::blocking_loop;
    pub use crate::driver::{self, Command, Driver, Step};
    pub use crate::handle::{CommandSink, Handle};
    pub use crate::inbox::{self, command_channel, AsyncCommands, CommandInbox};
    pub use crate::queue;
    pub use crate::read_buffer;
    pub use crate::status::Status;
    pub use crate::tcp;
    pub use pyxis_core::{ConnId, IoAction, Transmit};
}
