//! # pyxis-async-std: the Pyxis client for async-std and smol
//!
//! Built on the async-io family (`async-net`, `async-io`, `futures-lite`,
//! `async-channel`) that async-std and smol both run on, so one crate serves both (and
//! any other executor). A thin adapter: one driver thread owns the sans-IO
//! [`pyxis_core::Client`], the TCP connection and a timer, under `async_io::block_on`,
//! and needs no executor from the application. Every protocol decision is the core's;
//! the API, the event routing and the loop are shared with the other adapters through
//! `pyxis-client-common`: this crate only supplies the async-io TCP and timer and
//! starts the thread.
//!
//! ```no_run
//! use pyxis_async_std::{Client, CreateMode, EventMask, Options};
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let client = Client::connect(["10.0.0.1:7000"], Options::default()).await?;
//!     client.create("/config", "v1", CreateMode::Persistent).await.ok();
//!     let (node, mut watch) = client.read_and_watch("/config", EventMask::MODIFY).await?;
//!     println!("config v{}: {:?}", node.version, node.data);
//!     if let Some(Ok(event)) = watch.next().await {
//!         println!("{event}");
//!     }
//!     client.close().await;
//!     Ok(())
//! })
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

use async_net::TcpStream;
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use pyxis_client_common::__private::{async_loop, tcp, AsyncRuntime};
pub use pyxis_client_common::{
    AsyncClient, Bytes, Call, ClientState, ConnectError, CreateMode, Error, EventMask, EventType,
    Lagged, Node, Options, ReadOptions, SessionEvent, SessionEvents, Stats, Watch, WatchError,
    WatchEvent,
};

/// A Pyxis client for async-std, smol or any executor. Clones share one connection and
/// session; dropping the last clone closes the session in the background. Every
/// operation is a method of [`AsyncClient`], which this derefs to.
#[derive(Debug, Clone)]
pub struct Client {
    api: AsyncClient,
}

impl Client {
    /// Starts a client for these servers (`host:port`) on a new driver thread. Returns
    /// once the driver runs, without waiting for the session: operations wait for it (up
    /// to their deadline), or use [`wait_connected`](AsyncClient::wait_connected).
    ///
    /// Fails if the server list or options are invalid or the thread cannot be spawned.
    pub async fn connect<I, S>(addrs: I, options: Options) -> Result<Client, ConnectError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (api, driver) = async_loop::start::<AsyncIo, _, _>(addrs, &options)?;
        std::thread::Builder::new()
            .name("pyxis-driver".into())
            .spawn(move || async_io::block_on(driver))?;
        Ok(Client { api })
    }
}

impl Deref for Client {
    type Target = AsyncClient;

    fn deref(&self) -> &AsyncClient {
        &self.api
    }
}

/// The async-io family's TCP and timer, for the shared adapter loop.
struct AsyncIo;

impl AsyncRuntime for AsyncIo {
    type Reader = TcpStream;
    type Writer = TcpStream;

    async fn connect(addr: String) -> io::Result<(TcpStream, TcpStream)> {
        let stream = TcpStream::connect(addr.as_str()).await?;
        tcp::configure(&stream);
        // Both halves share one socket (async-net streams are reference counted).
        Ok((stream.clone(), stream))
    }

    async fn read(reader: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        reader.read(buf).await
    }

    fn acknowledge(reader: &TcpStream) {
        tcp::acknowledge_promptly(reader);
    }

    fn write<'a>(
        writer: &'a mut TcpStream,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        writer.write(data)
    }

    async fn sleep_until(deadline: Instant) {
        async_io::Timer::at(deadline).await;
    }
}
