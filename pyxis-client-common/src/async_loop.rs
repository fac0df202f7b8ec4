//! The adapter loop of the async adapters, written once over a small [`AsyncRuntime`]
//! trait (connect, read, write, sleep): `pyxis-tokio` and `pyxis-async-std` only
//! implement that trait and spawn the loop [`start`] returns on their runtime.
//!
//! Owns: the loop that feeds the [`Driver`] (commands, connection events, bytes,
//! deadlines) and performs its steps (connect, close, one `write_all` per `Transmit`).
//! Must never make a protocol decision (no retry, no xid, no frame parsing) and never
//! await the application: the only awaits are the socket, the timer and the command
//! channel. Racing uses `futures-lite` combinators, which work under every runtime.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::{self, FutureExt as _};

use crate::driver::{Command, Driver, Step};
use crate::handle::Handle;
use crate::inbox::{command_channel, CommandInbox};
use crate::read_buffer::ReadBuffer;
use crate::{AsyncClient, ConnectError, Options};
use pyxis_core::{ConnId, IoAction};

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

    /// Completes at `deadline`, an instant of [`now`](Self::now)'s clock.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;

    /// The runtime's clock: every instant the loop hands the core and every deadline it
    /// sleeps until comes from here. The system clock unless the runtime's time is
    /// virtual (a simulator's), which must then be the only clock the loop sees.
    fn now() -> Instant {
        Instant::now()
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
    /// Commands were taken into the batch (`false`: every handle is gone).
    Commands(bool),
    Connected(ConnId, S),
    Data(ConnId, usize),
    Closed(ConnId, io::Error),
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
                Err(e) => Input::Closed(*conn, e),
            },
            Link::Up(conn, stream) => match R::read(stream, buf).await {
                Ok(0) => Input::Closed(*conn, io::ErrorKind::UnexpectedEof.into()),
                Err(e) => Input::Closed(*conn, e),
                Ok(n) => Input::Data(*conn, n),
            },
        }
    }
}

/// Builds a client for these servers (`host:port`) and the loop that drives it, for an
/// async adapter to spawn on its runtime: the client works once the loop runs.
///
/// Fails if the server list or options are invalid.
pub fn start<R, I, S>(
    addrs: I,
    options: &Options,
) -> Result<(AsyncClient, impl Future<Output = ()> + Send + 'static), ConnectError>
where
    R: AsyncRuntime,
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let driver = Driver::with_options(addrs, options, R::now())?;
    let (commands, inbox) = command_channel();
    let handle = Handle::new(Arc::new(commands), driver.status(), options);
    Ok((AsyncClient::new(handle), run::<R>(driver, inbox)))
}

/// Runs the client until it is closed (by `close`, or by the last handle being dropped).
pub async fn run<R: AsyncRuntime>(mut driver: Driver, commands: CommandInbox) {
    let mut link = Link::<R>::None;
    let mut buf = ReadBuffer::new();
    let mut handles_open = true;
    // The commands taken in one turn; its capacity is swapped with the channel's queue.
    let mut batch = VecDeque::new();
    // The armed timer and the instant it fires. It is kept while the driver's deadline
    // does not move earlier (the usual case: the oldest request's deadline only moves
    // later), instead of being created again on every turn.
    let mut timer = None;
    let mut turn: u64 = 0;
    loop {
        while let Some(step) = driver.next_step(R::now()) {
            perform(step, &mut link, &mut driver).await;
        }
        if driver.is_finished() {
            // Commands queued meanwhile are dropped with their reply senders, which their
            // callers see as `Closed`; later sends fail at once.
            commands.close();
            return;
        }
        match (driver.deadline(), &timer) {
            (None, _) => timer = None,
            (Some(at), Some((armed, _))) if *armed <= at => {}
            (Some(at), _) => timer = Some((at, Box::pin(R::sleep_until(at)))),
        }
        let command = async {
            if handles_open {
                Input::Commands(
                    poll_fn(|cx| commands.poll_take(cx, &mut batch, COMMAND_BATCH)).await,
                )
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
        // `race_with_seed` polls the ready branches in random order, so that neither a stream of
        // commands nor a chatty server can starve the other or the timer.
        //
        // The order is drawn from a seed that changes every turn, not from a thread's
        // entropy, so that the same inputs give the same order (a simulation replays).
        turn = turn.wrapping_add(1);
        let inner = future::race_with_seed(command, link.next(buf.space()), turn);
        let input = future::race_with_seed(inner, alarm, !turn).await;
        let now = R::now();
        match input {
            Input::Commands(true) => {
                // Everything queued was taken at once, so that requests submitted
                // together leave in one write (bounded, so that a flood cannot starve
                // the socket).
                for command in batch.drain(..) {
                    driver.command(command, now);
                }
            }
            Input::Commands(false) => {
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
            Input::Closed(conn, cause) => {
                link = Link::None;
                driver.handle_closed(conn, &cause, now);
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
                R::sleep_until(R::now() + WRITE_TIMEOUT).await;
                false
            };
            if !write.or(expire).await {
                let conn = *conn;
                *link = Link::None;
                driver.handle_closed(conn, &"write failed or stalled", R::now());
            }
        }
        _ => {}
    }
}
