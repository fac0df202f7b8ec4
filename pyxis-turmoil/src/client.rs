//! The tokio client on turmoil's network and clock.
//!
//! Owns: [`connect`], and the [`AsyncRuntime`] that hands the shared adapter loop
//! turmoil's `TcpStream` and the simulation's virtual clock. Must never decide anything
//! about the protocol (the core does) nor read the system clock.

use std::future::Future;
use std::io;
use std::time::Instant;

use pyxis_client_common::__private::AsyncRuntime;
use pyxis_tokio::{Client, ConnectError, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::clock;

/// Starts a [`pyxis_tokio::Client`] whose connections are turmoil TCP streams and whose
/// time is the simulation's. Call it from a turmoil host or client (`Sim::host`,
/// `Sim::client`); the addresses are `host:port` of simulated hosts, for instance
/// [`Cluster::addrs`](crate::Cluster::addrs). Everything else is the ordinary client:
/// code that takes a `pyxis_tokio::Client` runs unchanged.
///
/// Set [`Options::seed`] (for instance from the host's name): without it the client
/// draws its seed from the operating system and the run does not replay.
///
/// Fails if the server list or options are invalid, or outside a tokio runtime (every
/// turmoil host runs in one).
pub async fn connect<I, S>(addrs: I, options: Options) -> Result<Client, ConnectError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Client::connect_on::<Turmoil, _, _>(addrs, options).await
}

/// turmoil's TCP and the simulation clock, for the shared adapter loop.
struct Turmoil;

impl AsyncRuntime for Turmoil {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    async fn connect(addr: String) -> io::Result<(OwnedReadHalf, OwnedWriteHalf)> {
        Ok(TcpStream::connect(addr).await?.into_split())
    }

    fn read<'a>(
        reader: &'a mut OwnedReadHalf,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        reader.read(buf)
    }

    fn write<'a>(
        writer: &'a mut OwnedWriteHalf,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        writer.write(data)
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(deadline.saturating_duration_since(clock::now()))
    }

    fn now() -> Instant {
        clock::now()
    }
}
