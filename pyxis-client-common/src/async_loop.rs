//! The adapter loop of the async adapters, written once over a small [`AsyncRuntime`]
//! trait (connect, read, write, sleep): `pyxis-tokio` and `pyxis-async-std` only
//! implement that trait and spawn the loop [`start`] returns on their runtime.
//!
//! Owns: the loop that feeds the [`Driver`] (commands, connection events, bytes,
//! deadlines) and performs its steps (connect, close, write, and the acknowledgement
//! owed before it waits). Writes never hold up the loop: the bytes of a `Transmit` are
//! written as far as the socket takes them at once, and the rest waits in the loop's
//! outbox, written whenever the socket is ready again, raced against commands, reads
//! and the timer like any other input; the driver gives the connection up if the peer
//! takes nothing for too long. Must never make a
//! protocol decision (no retry, no xid, no frame parsing) and never await the
//! application: the only awaits are the socket, the timer and the command channel.
//! Racing uses `futures-lite` combinators, which work under every runtime.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_lite::future;

use crate::driver::{self, Driver, Step};
use crate::handle::Handle;
use crate::inbox::{command_channel, CommandInbox};
use crate::read_buffer::ReadBuffer;
use crate::{AsyncClient, ConnectError, Options};
use pyxis_core::{ConnId, IoAction};

/// Commands taken from the channel at most per turn of the loop.
const COMMAND_BATCH: usize = 256;

/// What an async runtime provides to the adapter loop.
pub trait AsyncRuntime: 'static {
    /// The reading half of the runtime's TCP stream.
    type Reader: Send + 'static;
    /// The writing half of the runtime's TCP stream.
    type Writer: Send + 'static;

    /// Connects to `addr` (`host:port`, resolved by the runtime), with the options of
    /// [`tcp::configure`](crate::tcp::configure) set on a real socket, and splits the
    /// stream into its halves.
    fn connect(
        addr: String,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send + 'static;

    /// Reads what is available into `buf` (0: the peer closed). Must be cancel safe.
    fn read<'a>(
        reader: &'a mut Self::Reader,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Acknowledges at once what was read, on a real socket
    /// ([`tcp::acknowledge_promptly`](crate::tcp::acknowledge_promptly)). The loop calls
    /// it before it waits, when no write followed the bytes read
    /// ([`Driver::take_unacknowledged`]). The default does nothing, for a runtime
    /// without a kernel's TCP.
    fn acknowledge(reader: &Self::Reader) {
        let _ = reader;
    }

    /// Writes some of `data` once the socket takes any, returning how much. Must be
    /// cancel safe: a write dropped before it completes has written nothing.
    fn write<'a>(
        writer: &'a mut Self::Writer,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Whether the tasks the loop wakes may run on other threads while the loop goes on
    /// (a multi-thread runtime), asked once when a client starts; it sets how many
    /// answers a turn of the loop hands over
    /// ([`frames_per_turn`](crate::driver::frames_per_turn)). The default is `false`,
    /// which the async-std adapter keeps although its loop runs on a thread of its own:
    /// smaller turns did no better there ([`FRAMES_PER_TURN`](crate::driver::FRAMES_PER_TURN)).
    fn parallel() -> bool {
        false
    }

    /// Completes at `deadline`, an instant of [`now`](Self::now)'s clock.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;

    /// The runtime's clock: every instant the loop hands the core and every deadline it
    /// sleeps until comes from here. The system clock unless the runtime's time is
    /// virtual (a simulator's), which must then be the only clock the loop sees.
    fn now() -> Instant {
        Instant::now()
    }
}

type Connecting<R> = Pin<
    Box<
        dyn Future<Output = io::Result<(<R as AsyncRuntime>::Reader, <R as AsyncRuntime>::Writer)>>
            + Send,
    >,
>;

/// The connection the core asked for, if any (the core uses one at a time).
struct Link<R: AsyncRuntime> {
    conn: Option<ConnId>,
    connecting: Option<Connecting<R>>,
    reader: Option<R::Reader>,
    writer: Option<R::Writer>,
    /// What is still to be written on it, oldest first.
    outbox: VecDeque<Bytes>,
}

/// What woke the loop.
enum Input<R: AsyncRuntime> {
    /// Commands were taken into the batch (`false`: every handle is gone).
    Commands(bool),
    Connected(ConnId, R::Reader, R::Writer),
    Data(ConnId, usize),
    Wrote(ConnId, usize),
    Closed(ConnId, io::Error),
    Timeout,
}

impl<R: AsyncRuntime> Link<R> {
    fn none() -> Link<R> {
        Link {
            conn: None,
            connecting: None,
            reader: None,
            writer: None,
            outbox: VecDeque::new(),
        }
    }

    /// Drops the connection (closing the socket) and what was left to write on it.
    fn drop_conn(&mut self) {
        *self = Link::none();
    }

    /// The next event of the connection's reading side, or of its opening; pending
    /// forever when there is none. Cancel safe: a read that loses the race has consumed
    /// nothing.
    async fn next_read(
        conn: Option<ConnId>,
        connecting: &mut Option<Connecting<R>>,
        reader: &mut Option<R::Reader>,
        buf: &mut [u8],
    ) -> Input<R> {
        let Some(conn) = conn else {
            return future::pending().await;
        };
        if let Some(connecting) = connecting {
            return match connecting.await {
                Ok((reader, writer)) => Input::Connected(conn, reader, writer),
                Err(e) => Input::Closed(conn, e),
            };
        }
        match reader {
            Some(reader) => match R::read(reader, buf).await {
                Ok(0) => Input::Closed(conn, io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => Input::Data(conn, n),
                Err(e) => Input::Closed(conn, e),
            },
            None => future::pending().await,
        }
    }

    /// The next progress of the outbox; pending forever when there is nothing to write.
    async fn next_write(
        conn: Option<ConnId>,
        writer: &mut Option<R::Writer>,
        outbox: &VecDeque<Bytes>,
    ) -> Input<R> {
        match (conn, writer, outbox.front()) {
            (Some(conn), Some(writer), Some(data)) => match R::write(writer, data).await {
                Ok(0) => Input::Closed(conn, io::ErrorKind::WriteZero.into()),
                Ok(n) => Input::Wrote(conn, n),
                Err(e) => Input::Closed(conn, e),
            },
            _ => future::pending().await,
        }
    }

    /// Takes `n` written bytes off the outbox.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.outbox.front_mut() else {
                return;
            };
            let take = n.min(front.len());
            front.advance(take);
            n -= take;
            if front.is_empty() {
                self.outbox.pop_front();
            }
        }
    }
}

/// Builds a client for these servers (`host:port`) and the loop that drives it, for an
/// async adapter to spawn on its runtime: the client works once the loop runs.
///
/// # Errors
///
/// The server list or options are invalid.
pub fn start<R, I, S>(
    addrs: I,
    options: &Options,
) -> Result<(AsyncClient, impl Future<Output = ()> + Send + 'static), ConnectError>
where
    R: AsyncRuntime,
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let turn = driver::frames_per_turn(R::parallel());
    let driver = Driver::with_options(addrs, options, turn, R::now())?;
    let (commands, inbox) = command_channel();
    let handle = Handle::new(Arc::new(commands), driver.status(), options);
    Ok((AsyncClient::new(handle), run::<R>(driver, inbox)))
}

/// Runs the client until it is closed (by `close`, or by the last handle being dropped).
pub async fn run<R: AsyncRuntime>(mut driver: Driver, commands: CommandInbox) {
    let mut link = Link::<R>::none();
    let mut buf = ReadBuffer::new();
    let mut handles_open = true;
    // The commands taken in one turn; its capacity is swapped with the channel's queue.
    let mut batch = VecDeque::new();
    // The armed timer and the instant it fires. It is kept while the driver's deadline
    // does not move earlier (the usual case: the oldest request's deadline only moves
    // later), instead of being created again on every turn.
    let mut timer = None;
    let mut turn: u64 = 0;
    // Callers answered whose next request has not come yet (see the yield below).
    let mut unsent = 0;
    // The clock, read once each time the loop resumes (after the race, and after each
    // yield to the callers): nothing in between waits (a write is one attempt), so a
    // turn's inputs and steps share one instant, and the path from an answer to the
    // next request's write reads the clock twice instead of at every call (each read
    // is a measurable share of a request's cost at one request in flight).
    let mut now = R::now();
    loop {
        while let Some(step) = driver.next_step(now) {
            perform(step, &mut link, &mut driver, now).await;
        }
        if driver.is_finished() {
            // Commands queued meanwhile are dropped with their reply senders, which their
            // callers see as `Closed`; later sends fail at once.
            commands.close();
            return;
        }
        // The callers just answered run before the loop reads on or waits: their next
        // requests then leave together, at once, and the server works on them while
        // the loop handles the answers still buffered (the core hands over at most
        // `driver::frames_per_turn` per input). Otherwise the server would idle while the
        // client handles a whole read of answers, and the client while the server
        // answers a whole write of requests.
        let woken = driver.take_answered();
        if woken > 0 && handles_open {
            future::yield_now().await;
            let taken = future::poll_once(poll_fn(|cx| {
                commands.poll_take(cx, &mut batch, COMMAND_BATCH)
            }))
            .await;
            now = R::now();
            if let Some(taken) = taken {
                let sent = batch.len();
                handles_open = driver.apply_commands(taken, &mut batch, now);
                unsent = woken.saturating_sub(sent);
                continue;
            }
            unsent = woken;
        }
        if let Some(conn) = driver.buffered_input() {
            driver.handle_data(conn, &[], now);
            driver.handle_due(now);
            continue;
        }
        if let (Some(conn), Some(reader)) = (driver.take_unacknowledged(), &link.reader) {
            if link.conn == Some(conn) {
                R::acknowledge(reader);
            }
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
        let Link {
            conn,
            connecting,
            reader,
            writer,
            outbox,
        } = &mut link;
        let read = Link::<R>::next_read(*conn, connecting, reader, buf.space());
        let write = Link::<R>::next_write(*conn, writer, outbox);
        // `race_with_seed` polls the ready branches in random order, so that neither a
        // stream of commands nor a chatty server nor a slow reader can starve the others
        // or the timer. The order is drawn from a seed that changes every turn, not from
        // a thread's entropy, so that the same inputs give the same order (a simulation
        // replays).
        turn = turn.wrapping_add(1);
        let io = future::race_with_seed(read, write, turn.rotate_left(17));
        let inner = future::race_with_seed(command, io, turn);
        let input = future::race_with_seed(inner, alarm, !turn).await;
        now = R::now();
        match input {
            Input::Commands(taken) => {
                // Everything queued was taken at once, so that requests submitted
                // together leave in one write (bounded, so that a flood cannot starve
                // the socket).
                let (woken, sent) = (std::mem::take(&mut unsent), batch.len());
                handles_open = driver.apply_commands(taken, &mut batch, now);
                if handles_open && sent < woken {
                    // Fewer requests than the callers answered and not heard from yet:
                    // on a multi-thread runtime the loop runs as soon as the first of
                    // them submits (tokio runs a task woken by a worker next on that
                    // worker), before the others had their turn. Let them run once, so
                    // their requests leave in the same write instead of one write each.
                    future::yield_now().await;
                    let more = future::poll_once(poll_fn(|cx| {
                        commands.poll_take(cx, &mut batch, COMMAND_BATCH)
                    }))
                    .await;
                    now = R::now();
                    if let Some(taken) = more {
                        handles_open = driver.apply_commands(taken, &mut batch, now);
                    }
                }
            }
            Input::Connected(conn, reader, writer) => {
                link.connecting = None;
                link.reader = Some(reader);
                link.writer = Some(writer);
                driver.handle_connected(conn, now);
            }
            Input::Data(conn, n) => {
                driver.handle_data(conn, buf.filled(n), now);
                buf.fit(n);
            }
            Input::Wrote(conn, n) => {
                link.consume(n);
                driver.handle_written(conn, n, now);
            }
            Input::Closed(conn, cause) => {
                link.drop_conn();
                driver.handle_closed(conn, &cause, now);
            }
            Input::Timeout => {
                // The armed timer may be for an earlier deadline than the driver's now
                // (the deadline moved later meanwhile): then only re-arm.
                timer = None;
            }
        }
        // The one rule for deadlines, whatever woke the loop.
        driver.handle_due(now);
    }
}

/// Carries out one step of the core at `now`. A write goes out at once as far as the
/// socket takes it (one attempt, never waiting); the rest waits in the outbox.
async fn perform<R: AsyncRuntime>(
    step: Step,
    link: &mut Link<R>,
    driver: &mut Driver,
    now: Instant,
) {
    match step {
        Step::Io(IoAction::Connect { conn, addr }) => {
            *link = Link::none();
            link.conn = Some(conn);
            link.connecting = Some(Box::pin(R::connect(addr)));
        }
        Step::Io(IoAction::Close { conn }) if link.conn == Some(conn) => link.drop_conn(),
        Step::Transmit(transmit) => {
            if link.conn != Some(transmit.conn) {
                return;
            }
            let mut data = transmit.data;
            if link.outbox.is_empty() {
                if let Some(writer) = &mut link.writer {
                    match future::poll_once(R::write(writer, &data)).await {
                        Some(Ok(n)) if n > 0 => {
                            data.advance(n.min(data.len()));
                            driver.handle_written(transmit.conn, n, now);
                        }
                        Some(Ok(_)) => {
                            let cause = io::Error::from(io::ErrorKind::WriteZero);
                            link.drop_conn();
                            driver.handle_closed(transmit.conn, &cause, now);
                            return;
                        }
                        Some(Err(cause)) => {
                            link.drop_conn();
                            driver.handle_closed(transmit.conn, &cause, now);
                            return;
                        }
                        // The socket takes nothing now: the loop writes it when it can.
                        None => {}
                    }
                }
            }
            if !data.is_empty() {
                link.outbox.push_back(data);
            }
        }
        _ => {}
    }
}
