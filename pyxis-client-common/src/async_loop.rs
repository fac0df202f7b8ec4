//! The adapter loop of the async adapters, written once over a small [`AsyncRuntime`]
//! trait (connect, read, write, sleep): `pyxis-tokio` and `pyxis-async-std` only
//! implement that trait and start [`run`] on their runtime.
//!
//! Owns: the loop that feeds the [`Driver`] (commands, connection events, bytes,
//! deadlines) and performs its steps (connect, close, one `write_all` per `Transmit`).
//! Must never make a protocol decision (no retry, no xid, no frame parsing) and never
//! await the application: the only awaits are the socket, the timer and the command
//! channel. Racing uses `futures-lite` combinators, which work under every runtime.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_lite::future::{self, FutureExt as _};

use crate::driver::{Command, Driver, Step};
use crate::handle::CommandSink;
use pyxis_core::{ConnId, IoAction};

/// The read buffer's size while reads are small (what an idle client holds).
const READ_MIN: usize = 1024;
/// The read buffer's largest size, reached by doubling while reads fill it.
const READ_MAX: usize = 64 * 1024;
/// Reads in a row that fit [`READ_MIN`] before a grown buffer shrinks back.
const SHRINK_AFTER: u32 = 16;
/// Commands taken from the channel at most per turn of the loop.
const COMMAND_BATCH: usize = 256;
/// A write that takes longer than this means the connection is dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What an async runtime provides to the adapter loop.
pub trait AsyncRuntime: 'static {
    /// The runtime's TCP stream.
    type Stream: Send + 'static;

    /// Connects to `addr` (`host:port`, resolved by the runtime) with `TCP_NODELAY` set.
    fn connect(addr: String) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static;

    /// Reads what is available into `buf` (0: the peer closed). Must be cancel safe.
    fn read<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Writes all of `data`.
    fn write_all<'a>(
        stream: &'a mut Self::Stream,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;

    /// Completes at `deadline`.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;
}

/// A command channel for [`run`]: the sender goes into the client [`Handle`](crate::Handle).
pub fn command_channel() -> (AsyncCommands, async_channel::Receiver<Command>) {
    let (tx, rx) = async_channel::unbounded();
    (AsyncCommands(tx), rx)
}

/// The command channel's sending end, as the client handles see it.
pub struct AsyncCommands(async_channel::Sender<Command>);

impl CommandSink for AsyncCommands {
    fn send(&self, command: Command) -> bool {
        self.0.try_send(command).is_ok()
    }
}

type Connecting<S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send>>;

/// The connection the core asked for, if any (the core uses one at a time).
enum Link<R: AsyncRuntime> {
    None,
    Connecting(ConnId, Connecting<R::Stream>),
    Up(ConnId, R::Stream),
}

/// What woke the loop.
enum Input<S> {
    Command(Option<Command>),
    Connected(ConnId, S),
    Data(ConnId, usize),
    Closed(ConnId),
    Timeout,
}

impl<R: AsyncRuntime> Link<R> {
    fn conn(&self) -> Option<ConnId> {
        match self {
            Link::None => None,
            Link::Connecting(conn, _) | Link::Up(conn, _) => Some(*conn),
        }
    }

    /// The next event of the connection; pending forever when there is none. Cancel
    /// safe: a read that loses the race has consumed nothing.
    async fn next(&mut self, buf: &mut [u8]) -> Input<R::Stream> {
        match self {
            Link::None => future::pending().await,
            Link::Connecting(conn, connecting) => match connecting.await {
                Ok(stream) => Input::Connected(*conn, stream),
                Err(_) => Input::Closed(*conn),
            },
            Link::Up(conn, stream) => match R::read(stream, buf).await {
                Ok(0) | Err(_) => Input::Closed(*conn),
                Ok(n) => Input::Data(*conn, n),
            },
        }
    }
}

/// Runs the client until it is closed (by `close`, or by the last handle being dropped).
pub async fn run<R: AsyncRuntime>(mut driver: Driver, commands: async_channel::Receiver<Command>) {
    let mut link = Link::<R>::None;
    let mut buf = ReadBuffer::new();
    let mut handles_open = true;
    // The armed timer and the instant it fires. It is kept while the driver's deadline
    // does not move earlier (the usual case: the oldest request's deadline only moves
    // later), instead of being created again on every turn.
    let mut timer = None;
    loop {
        while let Some(step) = driver.next_step(Instant::now()) {
            perform(step, &mut link, &mut driver).await;
        }
        if driver.is_finished() {
            // Commands queued meanwhile are dropped with their reply senders, which their
            // callers see as `Closed`; later sends fail at once.
            commands.close();
            while commands.try_recv().is_ok() {}
            return;
        }
        match (driver.deadline(), &timer) {
            (None, _) => timer = None,
            (Some(at), Some((armed, _))) if *armed <= at => {}
            (Some(at), _) => timer = Some((at, Box::pin(R::sleep_until(at)))),
        }
        let command = async {
            if handles_open {
                Input::Command(commands.recv().await.ok())
            } else {
                future::pending().await
            }
        };
        let alarm = async {
            match &mut timer {
                Some((_, sleep)) => sleep.as_mut().await,
                None => future::pending::<()>().await,
            }
            Input::Timeout
        };
        // `race` polls the ready branches in random order, so that neither a stream of
        // commands nor a chatty server can starve the other or the timer.
        let input = future::race(future::race(command, link.next(buf.space())), alarm).await;
        let now = Instant::now();
        match input {
            Input::Command(Some(command)) => {
                driver.command(command, now);
                // Take what else is queued, so that requests submitted together leave
                // in one write (bounded, so that a flood cannot starve the socket).
                for _ in 1..COMMAND_BATCH {
                    match commands.try_recv() {
                        Ok(command) => driver.command(command, now),
                        Err(_) => break,
                    }
                }
            }
            Input::Command(None) => {
                handles_open = false;
                driver.command(Command::HandlesGone, now);
            }
            Input::Connected(conn, stream) => {
                link = Link::Up(conn, stream);
                driver.handle_connected(conn, now);
            }
            Input::Data(conn, n) => {
                driver.handle_data(conn, buf.filled(n), now);
                buf.fit(n);
            }
            Input::Closed(conn) => {
                link = Link::None;
                driver.handle_closed(conn, now);
            }
            Input::Timeout => {
                // The armed timer may be for an earlier deadline than the driver's now
                // (the deadline moved later meanwhile): then only re-arm.
                timer = None;
                if driver.deadline().is_some_and(|at| at <= now) {
                    driver.handle_timeout(now);
                }
            }
        }
    }
}

/// The socket read buffer: small while the traffic is (an idle client holds only
/// [`READ_MIN`] bytes), doubled up to [`READ_MAX`] whenever a read fills it, so that
/// large frames arrive in few reads, and shrunk back after [`SHRINK_AFTER`] reads in a
/// row that would have fit the small size.
struct ReadBuffer {
    bytes: Vec<u8>,
    small_reads: u32,
}

impl ReadBuffer {
    fn new() -> ReadBuffer {
        ReadBuffer {
            bytes: vec![0; READ_MIN],
            small_reads: 0,
        }
    }

    /// Where the next read goes.
    fn space(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The first `n` bytes read.
    fn filled(&self, n: usize) -> &[u8] {
        &self.bytes[..n.min(self.bytes.len())]
    }

    /// Adapts the size to a read of `n` bytes, once they have been consumed.
    fn fit(&mut self, n: usize) {
        let len = self.bytes.len();
        if n >= len && len < READ_MAX {
            self.bytes.resize((len * 2).min(READ_MAX), 0);
            self.small_reads = 0;
        } else if len > READ_MIN && n <= READ_MIN {
            self.small_reads += 1;
            if self.small_reads >= SHRINK_AFTER {
                self.bytes.truncate(READ_MIN);
                self.bytes.shrink_to_fit();
                self.small_reads = 0;
            }
        } else {
            self.small_reads = 0;
        }
    }
}

/// Carries out one step of the core.
async fn perform<R: AsyncRuntime>(step: Step, link: &mut Link<R>, driver: &mut Driver) {
    match step {
        Step::Io(IoAction::Connect { conn, addr }) => {
            *link = Link::Connecting(conn, Box::pin(R::connect(addr)));
        }
        Step::Io(IoAction::Close { conn }) if link.conn() == Some(conn) => *link = Link::None,
        Step::Transmit(transmit) => {
            let Link::Up(conn, stream) = link else {
                return;
            };
            if *conn != transmit.conn {
                return;
            }
            let write = async { R::write_all(stream, &transmit.data).await.is_ok() };
            let expire = async {
                R::sleep_until(Instant::now() + WRITE_TIMEOUT).await;
                false
            };
            if !write.or(expire).await {
                let conn = *conn;
                *link = Link::None;
                driver.handle_closed(conn, Instant::now());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_buffer_grows_when_filled_and_shrinks_after_small_reads() {
        let mut buf = ReadBuffer::new();
        assert_eq!(buf.space().len(), READ_MIN);
        // Full reads double it, up to the largest size.
        let mut sizes = Vec::new();
        for _ in 0..10 {
            let n = buf.space().len();
            buf.fit(n);
            sizes.push(buf.space().len());
        }
        assert_eq!(sizes[0], 2 * READ_MIN);
        assert_eq!(*sizes.last().unwrap_or(&0), READ_MAX);
        // A large read in between keeps it; only a run of small reads shrinks it.
        for _ in 0..SHRINK_AFTER - 1 {
            buf.fit(10);
        }
        buf.fit(READ_MAX / 2);
        for _ in 0..SHRINK_AFTER - 1 {
            buf.fit(10);
        }
        assert_eq!(
            buf.space().len(),
            READ_MAX,
            "not yet {SHRINK_AFTER} in a row"
        );
        buf.fit(10);
        assert_eq!(buf.space().len(), READ_MIN);
        assert_eq!(buf.filled(3).len(), 3);
    }
}
