//! The adapter loop of the blocking adapter, beside the async one: one driver thread
//! that reads and writes its non-blocking sockets itself, and sleeps in the operating
//! system's readiness API (`mio`: epoll, kqueue, IOCP) until a socket is ready, a
//! command arrives or the core's next deadline comes. A connection is opened by a
//! thread of its own (name lookup and `connect` block in `std`), which hands the socket
//! over and ends.
//!
//! Every turn of the loop performs the core's steps, then makes one bounded move on each
//! kind of input without waiting: the answers the core still holds (it hands over
//! `FRAMES_PER_TURN` per input) or else one read, the outbox as far as the socket takes
//! it, one batch of commands, the connections opened. Only when none of them moved does
//! it wait. So no input can starve another, and after every turn the loop applies the
//! one rule for deadlines (`Driver::handle_due`): a steady stream of input cannot
//! postpone the timers either. A request is written the moment it is taken (no sleep
//! ticks); a caller's thread wakes the loop only when it waits for commands (the
//! channel of [`inbox`](crate::inbox)). The loop reads no more while the core holds
//! answers, into a buffer of bounded size, so memory stays bounded whatever the server
//! sends. What the socket does not take waits in the connection's outbox, written when
//! the socket is ready again; the driver gives the connection up if the peer takes
//! nothing for too long (`Driver::write_stall_bound`).
//!
//! Owns: the driver thread, the poller, the sockets and their readiness, the outboxes,
//! and the connection threads. Must never make a protocol decision (no retry, no xid,
//! no frame parsing), never wait for the application, and never block the driver
//! thread on a socket or a name lookup.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use mio::net::TcpStream;
use mio::{Events, Interest, Token};
use pyxis_core::{ConnId, IoAction};

use crate::driver::{Driver, Step, FRAMES_PER_TURN};
use crate::handle::Handle;
use crate::inbox::{command_channel, AsyncCommands, CommandInbox};
use crate::read_buffer::ReadBuffer;
use crate::tcp;
use crate::{BlockingClient, ConnectError, Options};

/// Commands taken from the channel at most per turn of the loop.
const COMMAND_BATCH: usize = 256;
/// Readiness events taken per wait.
const EVENTS: usize = 16;
/// The poller's token for [`LoopWaker`]; connections count up from 0.
const WAKE: Token = Token(usize::MAX);

/// Wakes the driver thread out of its wait: a command was queued while it waited for
/// commands, or a connection thread is done.
struct LoopWaker(mio::Waker);

impl Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // It fails only when the poller is gone, and then nobody waits.
        let _ = self.0.wake();
    }
}

/// What a connection thread hands the driver: the socket, non-blocking and with the
/// options of [`tcp::configure`] set, or why there is none.
struct Opened {
    conn: ConnId,
    socket: io::Result<std::net::TcpStream>,
}

/// A connection the core asked for.
struct Conn {
    token: Token,
    /// `None` until its thread has opened it.
    stream: Option<TcpStream>,
    /// What is still to be written on it, oldest first.
    outbox: VecDeque<Bytes>,
    /// It may have bytes to read (the poller said so and no read has found it empty).
    readable: bool,
    /// It may take bytes (the poller said so and no write has found it full).
    writable: bool,
}

/// Builds a client for these servers (`host:port`) and starts its driver thread.
///
/// # Errors
///
/// The server list or options are invalid, or the poller or the thread cannot be
/// created.
pub fn start<I, S>(addrs: I, options: &Options) -> Result<BlockingClient, ConnectError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let driver = Driver::with_options(addrs, options, FRAMES_PER_TURN, Instant::now())?;
    let status = driver.status();
    let (commands, _thread) = spawn(driver, options.connect_timeout)?;
    Ok(BlockingClient::new(Handle::new(
        Arc::new(commands),
        status,
        options,
    )))
}

/// Starts the driver thread for `driver`; returns the sending end of its command
/// channel and the thread, which ends once the client is closed.
fn spawn(driver: Driver, connect_timeout: Duration) -> io::Result<(AsyncCommands, JoinHandle<()>)> {
    let poll = mio::Poll::new()?;
    let waker = Arc::new(LoopWaker(mio::Waker::new(poll.registry(), WAKE)?));
    let (commands, inbox) = command_channel();
    let (to_self, opened) = mpsc::channel();
    let driver_loop = Loop {
        driver,
        poll,
        waker,
        inbox,
        to_self,
        opened,
        connect_timeout,
        conns: HashMap::new(),
        next_token: 0,
        buf: ReadBuffer::new(),
    };
    let thread = std::thread::Builder::new()
        .name("pyxis-driver".into())
        .spawn(move || driver_loop.run())?;
    Ok((commands, thread))
}

/// The driver thread's state.
struct Loop {
    driver: Driver,
    poll: mio::Poll,
    waker: Arc<LoopWaker>,
    inbox: CommandInbox,
    /// Handed to connection threads.
    to_self: Sender<Opened>,
    opened: Receiver<Opened>,
    connect_timeout: Duration,
    conns: HashMap<ConnId, Conn>,
    next_token: usize,
    buf: ReadBuffer,
}

impl Loop {
    /// Runs the client until it is closed (by `close`, or the last handle dropped).
    fn run(mut self) {
        let waker = Waker::from(self.waker.clone());
        let mut cx = Context::from_waker(&waker);
        let mut events = Events::with_capacity(EVENTS);
        // The commands taken in one turn; its capacity is swapped with the channel's.
        let mut batch = VecDeque::new();
        let mut handles_open = true;
        let mut now = Instant::now();
        loop {
            while let Some(step) = self.driver.next_step(now) {
                self.perform(step, now);
            }
            if self.driver.is_finished() {
                // Commands queued meanwhile are dropped with their reply senders, which
                // their callers see as `Closed`; later sends fail at once.
                self.inbox.close();
                return;
            }
            let mut moved = match self.driver.buffered_input() {
                Some(conn) => {
                    self.driver.handle_data(conn, &[], now);
                    true
                }
                None => self.read(now),
            };
            moved |= self.flush(now);
            if handles_open {
                if let Poll::Ready(taken) = self.inbox.poll_take(&mut cx, &mut batch, COMMAND_BATCH)
                {
                    handles_open = self.driver.apply_commands(taken, &mut batch, now);
                    moved = true;
                }
            }
            moved |= self.take_opened(now);
            if !moved {
                self.wait(&mut events);
            }
            now = Instant::now();
            // The one rule for deadlines, whatever woke the loop.
            self.driver.handle_due(now);
        }
    }

    /// Waits for a socket, a command (the inbox holds the loop's waker once a take found
    /// none) or a connection thread, until the driver's deadline.
    fn wait(&mut self, events: &mut Events) {
        if let Some(conn) = self.driver.take_unacknowledged() {
            if let Some(stream) = self.conns.get(&conn).and_then(|c| c.stream.as_ref()) {
                tcp::acknowledge_promptly(stream);
            }
        }
        let timeout = self
            .driver
            .deadline()
            .map(|at| at.saturating_duration_since(Instant::now()));
        if let Err(e) = self.poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                // The poller itself failed (it does not, short of a broken system): wait
                // as the deadline says, so that the timers still run and no loop spins.
                std::thread::sleep(timeout.unwrap_or(Duration::from_millis(100)));
            }
            return;
        }
        for event in events.iter() {
            let token = event.token();
            let Some(conn) = self.conns.values_mut().find(|c| c.token == token) else {
                continue;
            };
            // An error or a hang-up is found by the next read or write.
            conn.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
            conn.writable |= event.is_writable() || event.is_write_closed() || event.is_error();
        }
    }

    /// Reads once from a connection that may have bytes, and hands them to the driver.
    /// Returns whether anything happened (bytes, or the connection's end).
    fn read(&mut self, now: Instant) -> bool {
        let Some((&conn, entry)) = self
            .conns
            .iter_mut()
            .find(|(_, c)| c.readable && c.stream.is_some())
        else {
            return false;
        };
        let Some(stream) = entry.stream.as_mut() else {
            return false;
        };
        let space = self.buf.space();
        let room = space.len();
        match stream.read(space) {
            Ok(0) => self.fail(conn, io::ErrorKind::UnexpectedEof.into(), now),
            Ok(n) => {
                // A short read emptied the socket: the poller reports the next bytes.
                // (Not on Windows, where readiness is emulated and only a read that
                // finds nothing re-arms it.)
                if n < room && !cfg!(windows) {
                    entry.readable = false;
                }
                self.driver.handle_data(conn, self.buf.filled(n), now);
                self.buf.fit(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.readable = false;
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.fail(conn, e, now),
        }
        true
    }

    /// Writes the outboxes as far as their sockets take them. Returns whether any bytes
    /// went out or a connection ended.
    fn flush(&mut self, now: Instant) -> bool {
        let mut moved = false;
        let mut failed = Vec::new();
        for (&conn, entry) in &mut self.conns {
            let Some(stream) = entry.stream.as_mut() else {
                continue;
            };
            while entry.writable {
                let Some(front) = entry.outbox.front_mut() else {
                    break;
                };
                match stream.write(front) {
                    Ok(0) => {
                        failed.push((conn, io::ErrorKind::WriteZero.into()));
                        break;
                    }
                    Ok(n) => {
                        moved = true;
                        // A short write filled the socket: the poller reports room again.
                        if n < front.len() && !cfg!(windows) {
                            entry.writable = false;
                        }
                        front.advance(n.min(front.len()));
                        if front.is_empty() {
                            entry.outbox.pop_front();
                        }
                        self.driver.handle_written(conn, n, now);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => entry.writable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failed.push((conn, e));
                        break;
                    }
                }
            }
        }
        for (conn, cause) in failed {
            moved = true;
            self.fail(conn, cause, now);
        }
        moved
    }

    /// Takes the sockets the connection threads opened (or why they could not). Returns
    /// whether there were any.
    fn take_opened(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Ok(Opened { conn, socket }) = self.opened.try_recv() {
            moved = true;
            // Gone: the core gave up on it meanwhile, and dropping the socket closes it.
            let Some(entry) = self.conns.get_mut(&conn) else {
                continue;
            };
            let registry = self.poll.registry();
            let registered = socket.and_then(|socket| {
                let mut stream = TcpStream::from_std(socket);
                registry.register(
                    &mut stream,
                    entry.token,
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(stream)
            });
            match registered {
                Ok(stream) => {
                    entry.stream = Some(stream);
                    entry.writable = true;
                    self.driver.handle_connected(conn, now);
                }
                Err(cause) => {
                    self.conns.remove(&conn);
                    self.driver.handle_closed(conn, &cause, now);
                }
            }
        }
        moved
    }

    /// Drops `conn` (closing its socket) and tells the driver why it ended.
    fn fail(&mut self, conn: ConnId, cause: io::Error, now: Instant) {
        self.close(conn);
        self.driver.handle_closed(conn, &cause, now);
    }

    /// Drops `conn`, closing its socket, with what was left to write on it.
    fn close(&mut self, conn: ConnId) {
        if let Some(Conn {
            stream: Some(mut stream),
            ..
        }) = self.conns.remove(&conn)
        {
            let _ = self.poll.registry().deregister(&mut stream);
        }
    }

    /// Carries out one step of the core; never blocks.
    fn perform(&mut self, step: Step, now: Instant) {
        match step {
            Step::Io(IoAction::Connect { conn, addr }) => {
                let token = Token(self.next_token);
                // Wraps only after usize::MAX connections, long after the old ones closed.
                self.next_token = (self.next_token + 1) % WAKE.0;
                self.conns.insert(
                    conn,
                    Conn {
                        token,
                        stream: None,
                        outbox: VecDeque::new(),
                        readable: false,
                        writable: false,
                    },
                );
                let (to_self, waker) = (self.to_self.clone(), self.waker.clone());
                let timeout = self.connect_timeout;
                let spawned = std::thread::Builder::new()
                    .name("pyxis-connect".into())
                    .spawn(move || {
                        let socket = open(&addr, timeout);
                        if to_self.send(Opened { conn, socket }).is_ok() {
                            waker.wake_by_ref();
                        }
                    });
                if let Err(cause) = spawned {
                    self.conns.remove(&conn);
                    self.driver.handle_closed(conn, &cause, now);
                }
            }
            Step::Io(IoAction::Close { conn }) => self.close(conn),
            Step::Transmit(transmit) => {
                let Some(entry) = self.conns.get_mut(&transmit.conn) else {
                    return;
                };
                entry.outbox.push_back(transmit.data);
                // Out at once, as far as the socket takes it.
                self.flush(now);
            }
            _ => {}
        }
    }
}

/// Opens a TCP connection to `addr`, trying each resolved address within `timeout`, and
/// makes it ready for the poller: non-blocking, with the options of [`tcp::configure`].
fn open(addr: &str, timeout: Duration) -> io::Result<std::net::TcpStream> {
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{addr} resolved to no address"),
    );
    for target in addr.to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&target, timeout) {
            Ok(stream) => {
                stream.set_nonblocking(true)?;
                tcp::configure(&stream);
                return Ok(stream);
            }
            Err(e) => last = io::Error::new(e.kind(), format!("{target}: {e}")),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use pyxis_core::WatchId;

    use super::*;
    use crate::driver::Command;
    use crate::handle::CommandSink;
    use crate::queue::channel;

    /// Input that never stops coming must not postpone deadlines: once the deadline
    /// rule ran only when the wait for input timed out, so a steady stream of commands
    /// kept `wait_connected` (and every request deadline and the ping) from ever firing.
    #[test]
    fn a_steady_stream_of_input_does_not_starve_the_timers() {
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let options = Options::new().seed(1);
        let driver = Driver::with_options([closed_port], &options, FRAMES_PER_TURN, Instant::now())
            .unwrap_or_else(|e| panic!("{e}"));
        let (commands, driver_thread) =
            spawn(driver, options.connect_timeout).unwrap_or_else(|e| panic!("{e}"));
        let commands = Arc::new(commands);
        let flooding = Arc::new(AtomicBool::new(true));
        let flood = {
            let (commands, flooding) = (commands.clone(), flooding.clone());
            std::thread::spawn(move || {
                let mut n = 1_000_000;
                while flooding.load(Ordering::Relaxed) {
                    n += 1;
                    commands.send(Command::Unwatch(WatchId(n)));
                }
            })
        };
        let (reply, answer) = channel(1);
        commands.send(Command::WaitConnected {
            timeout: Duration::from_millis(200),
            reply,
        });
        let got = answer.recv_timeout(Duration::from_secs(30));
        flooding.store(false, Ordering::Relaxed);
        flood.join().ok();
        assert!(
            matches!(
                got,
                Ok(Some(Ok(Err(pyxis_core::Error::Timeout {
                    outcome_unknown: false,
                    ..
                }))))
            ),
            "{got:?}"
        );
        commands.send(Command::HandlesGone);
        drop(answer);
        driver_thread.join().ok();
    }
}
