//! # pyxis-client-common: what the Pyxis runtime adapters share
//!
//! `pyxis-tokio`, `pyxis-async-std` and `pyxis-blocking` are thin loops that move bytes,
//! timers and commands between a runtime and the sans-IO [`pyxis_core::Client`]. Everything
//! in them that does not depend on the runtime lives here, once:
//!
//! - [`Options`], [`ReadOptions`], [`ConnectError`]: what an application chooses;
//! - [`Driver`]: the core plus the routing of its events (completions to the callers
//!   waiting for them, watch events to [`Watch`]es, session events to [`SessionEvents`]
//!   subscribers), fed by the adapter's loop through [`Driver::command`], the `handle_*`
//!   inputs and [`Driver::next_step`];
//! - [`AsyncClient`] and [`BlockingClient`]: the public API, identical method for method;
//! - [`async_loop`]: the adapter loop of the async adapters, generic over [`AsyncRuntime`];
//! - [`inbox`]: the async adapters' command channel, waking the driver only when parked;
//! - [`queue`]: the bounded, never-blocking queues from the driver to the application;
//! - [`read_buffer`]: the socket read buffer, small while idle, grown for bursts.
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
//! This crate has no runtime dependency; it is not meant to be used directly by
//! applications (use an adapter), but its types are re-exported by each of them.

mod api;
pub mod async_loop;
pub mod driver;
mod handle;
pub mod inbox;
mod options;
pub mod queue;
pub mod read_buffer;
mod status;
mod watch;

#[cfg(feature = "scenarios")]
pub mod scenarios;

pub use api::{AsyncClient, BlockingClient};
pub use async_loop::AsyncRuntime;
pub use driver::{Command, Driver, Step};
pub use handle::{CommandSink, Handle};
pub use inbox::{command_channel, AsyncCommands, CommandInbox};
pub use options::{ConnectError, Options, ReadOptions};
pub use queue::{Lagged, Timeout};
pub use status::Status;
pub use watch::{SessionEvents, Watch, WatchError};

pub use pyxis_core::{
    ConnId, CreateMode, Error, EventMask, EventType, IoAction, Node, SessionEvent, Transmit,
    WatchEvent, WatchId,
};
