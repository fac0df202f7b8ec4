//! # pyxis-tokio: the Pyxis client for tokio
//!
//! A thin adapter: one driver task owns the sans-IO [`pyxis_core::Client`], the TCP
//! connection and a timer, and moves bytes, deadlines and commands between tokio and the
//! core. Every protocol decision (leader discovery, session, pings, retries, watches)
//! is the core's; the API, the event routing and the loop itself are shared with the
//! other adapters through `pyxis-client-common`: this crate only supplies tokio's TCP
//! and timer (`pyxis_client_common::AsyncRuntime`) and spawns the task.
//!
//! ```no_run
//! use pyxis_tokio::{Client, CreateMode, EventMask, Options};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect(["10.0.0.1:7000", "10.0.0.2:7000"], Options::default()).await?;
//! client.create("/services", "", CreateMode::Persistent).await.ok();
//! let mut watch = client.watch("/services", EventMask::CHILDREN, false).await?;
//! client.create_ephemeral("/services/web-1", "10.0.0.9:8080").await?;
//! if let Some(Ok(event)) = watch.next().await {
//!     println!("{event}"); // children /services
//! }
//! println!("{:?}", client.read("/services").await?.children);
//! client.close().await; // unregisters: /services/web-1 is deleted
//! # Ok(())
//! # }
//! ```
//!
//! ## Unread events
//!
//! A slow consumer never stalls the connection. Each [`Watch`] and [`SessionEvents`]
//! keeps at most [`Options::event_queue_bound`] unread events; past that the oldest are
//! discarded and the next item read is a `Lagged(n)` error counting them.

use std::future::Future;
use std::io;
use std::ops::Deref;
use std::time::Instant;

use pyxis_client_common::__private::{async_loop, tcp, AsyncRuntime};
pub use pyxis_client_common::{
    AsyncClient, Bytes, Call, ClientState, ConnectError, CreateMode, Error, EventMask, EventType,
    Lagged, Node, Options, ReadOptions, SessionEvent, SessionEvents, Stats, Watch, WatchError,
    WatchEvent,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::runtime::RuntimeFlavor;

/// A Pyxis client on tokio. Clones share one connection and session; dropping the last
/// clone closes the session in the background. Every operation is a method of
/// [`AsyncClient`], which this derefs to.
#[derive(Debug, Clone)]
pub struct Client {
    api: AsyncClient,
}

impl Client {
    /// Starts a client for these servers (`host:port`) on the current tokio runtime.
    /// Returns once the driver task runs, without waiting for the session: operations
    /// wait for it (up to their deadline), or use
    /// [`wait_connected`](AsyncClient::wait_connected).
    ///
    /// Fails if the server list or options are invalid, or if called outside a tokio
    /// runtime. The runtime needs its I/O and time drivers (`enable_all`, or the
    /// `#[tokio::main]` / `#[tokio::test]` defaults).
    pub async fn connect<I, S>(addrs: I, options: Options) -> Result<Client, ConnectError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Client::connect_on::<Tokio, _, _>(addrs, options).await
    }

    /// Like [`connect`](Self::connect), with the TCP and the clock of `R` in place of
    /// tokio's own: a simulated network and virtual time (`pyxis-turmoil`). The driver
    /// task is spawned on the current tokio runtime all the same.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    #[doc(hidden)]
    pub async fn connect_on<R, I, S>(addrs: I, options: Options) -> Result<Client, ConnectError>
    where
        R: AsyncRuntime,
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let (api, driver) = async_loop::start::<R, _, _>(addrs, &options)?;
        runtime.spawn(driver);
        Ok(Client { api })
    }
}

impl Deref for Client {
    type Target = AsyncClient;

    fn deref(&self) -> &AsyncClient {
        &self.api
    }
}

/// tokio's TCP and timer, for the shared adapter loop. Public but hidden, like
/// [`Client::connect_on`], so that tests and benchmarks can wrap it in a runtime that
/// changes one of its parts.
#[doc(hidden)]
pub struct Tokio;

impl AsyncRuntime for Tokio {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    async fn connect(addr: String) -> io::Result<(OwnedReadHalf, OwnedWriteHalf)> {
        let stream = TcpStream::connect(addr).await?;
        tcp::configure(&stream);
        Ok(stream.into_split())
    }

    async fn read(reader: &mut OwnedReadHalf, buf: &mut [u8]) -> io::Result<usize> {
        reader.read(buf).await
    }

    fn acknowledge(reader: &OwnedReadHalf) {
        tcp::acknowledge_promptly(reader.as_ref());
    }

    fn write<'a>(
        writer: &'a mut OwnedWriteHalf,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        writer.write(data)
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(deadline.into())
    }

    fn parallel() -> bool {
        tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_multi_thread_runtime_runs_the_callers_in_parallel() {
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        assert!(!current.block_on(async { Tokio::parallel() }));
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a runtime");
        assert!(multi.block_on(async { Tokio::parallel() }));
        assert!(multi.block_on(async {
            tokio::spawn(async { Tokio::parallel() })
                .await
                .expect("joined")
        }));
        assert!(!Tokio::parallel(), "outside any runtime");
    }
}
