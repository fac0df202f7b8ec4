//! # pyxis-blocking: the Pyxis client for plain threads
//!
//! No async runtime: one driver thread that owns the sans-IO [`pyxis_core::Client`] and
//! reads and writes its non-blocking socket itself. It sleeps in the system's readiness
//! API (epoll, kqueue or IOCP, through `mio`) until a socket is ready, a command arrives
//! or the core's next deadline comes, so a request goes out the moment it is made: no
//! busy polling, no sleep ticks, and the driver thread never blocks on a socket. A
//! short-lived thread opens each connection (name lookup and `connect` block in `std`)
//! and hands the socket over. Every protocol decision is the core's; the API, the event
//! routing and the loop itself live in `pyxis-client-common`: this crate only starts
//! it.
//!
//! ```no_run
//! use std::time::Duration;
//! use pyxis_blocking::{Client, CreateMode, EventMask, Options};
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect(["10.0.0.1:7000"], Options::default())?;
//! client.create("/jobs", "", CreateMode::Persistent).ok();
//! let watch = client.watch("/jobs", EventMask::CHILDREN, false)?;
//! client.create("/jobs/1", "payload", CreateMode::Persistent)?;
//! if let Ok(Some(Ok(event))) = watch.recv_timeout(Duration::from_secs(10)) {
//!     println!("{event}"); // children /jobs
//! }
//! client.close();
//! # Ok(())
//! # }
//! ```
//!
//! ## Unread events
//!
//! A slow consumer never stalls the connection. Each [`Watch`] and [`SessionEvents`]
//! keeps at most [`Options::event_queue_bound`] unread events; past that the oldest are
//! discarded and the next item read is a `Lagged(n)` error counting them.

use std::ops::Deref;

use pyxis_client_common::__private::blocking_loop;
pub use pyxis_client_common::{
    BlockingClient, Bytes, ClientState, ConnectError, CreateMode, Error, EventMask, EventType,
    Lagged, Node, Options, ReadOptions, SessionEvent, SessionEvents, Stats, Timeout, Watch,
    WatchError, WatchEvent,
};

/// A blocking Pyxis client. Clones share one connection and session and may be used
/// from many threads at once (their requests are pipelined); dropping the last clone
/// closes the session in the background. Every operation is a method of
/// [`BlockingClient`], which this derefs to.
#[derive(Debug, Clone)]
pub struct Client {
    api: BlockingClient,
}

impl Client {
    /// Starts a client for these servers (`host:port`) on a new driver thread. Returns
    /// once the driver runs, without waiting for the session: operations wait for it (up
    /// to their deadline), or use [`wait_connected`](BlockingClient::wait_connected).
    ///
    /// # Errors
    ///
    /// The server list or options are invalid, or the thread cannot be spawned.
    pub fn connect<I, S>(addrs: I, options: Options) -> Result<Client, ConnectError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Ok(Client {
            api: blocking_loop::start(addrs, &options)?,
        })
    }
}

impl Deref for Client {
    type Target = BlockingClient;

    fn deref(&self) -> &BlockingClient {
        &self.api
    }
}
