//! The adapter loop of the blocking adapter, beside the async one: a driver thread, and
//! per open connection a reader thread and a writer thread (`std::net` has no readiness
//! API, so whatever may block gets its own thread and the driver thread never does).
//!
//! The driver thread owns the [`Driver`] and waits on one channel, with a timeout taken
//! from `Driver::deadline`: commands from client handles, and from a connection's
//! threads what they read, what they wrote and how they ended. A submitted request goes
//! out the moment it is sent (no polling, no sleep ticks). The reader thread connects,
//! then reads and hands each chunk over, waiting for the driver to take it before
//! reading more (memory stays bounded whatever the server sends). The writer thread
//! writes what the driver hands it and reports each chunk written, so a peer that reads
//! slowly or never delays nothing but its own bytes; the driver gives it up by the same
//! rule as the async loop's (`Driver::write_stall_bound`). After every input the loop
//! applies the one rule for deadlines (`Driver::handle_due`), so a steady stream of
//! input cannot starve the timers.
//!
//! Owns: the threads, sockets, channel and timeout. Must never make a protocol decision
//! (no retry, no xid, no frame parsing), never wait for the application, and never
//! block the driver thread on a socket.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyxis_core::{ConnId, IoAction};

use crate::driver::{Command, Driver, Step, FRAMES_PER_TURN};
use crate::handle::{CommandSink, Handle};
use crate::read_buffer::ReadBuffer;
use crate::tcp;
use crate::{BlockingClient, ConnectError, Options};

/// Inputs taken from the channel at most per turn of the loop.
const INPUT_BATCH: usize = 256;

/// What the driver thread waits for.
enum Input {
    Command(Command),
    /// The reader connected: a handle on the socket (to shut it down), where to hand
    /// bytes to write, and the sender that lets the reader read on.
    Connected(ConnId, TcpStream, Sender<Bytes>, SyncSender<()>),
    Data(ConnId, Vec<u8>),
    Wrote(ConnId, usize),
    Closed(ConnId, io::Error),
}

/// The command side of the driver's channel, as the client handles see it.
struct Commands(Sender<Input>);

impl CommandSink for Commands {
    fn send(&self, command: Command) -> bool {
        self.0.send(Input::Command(command)).is_ok()
    }
}

/// A connection the core asked for: writable once its reader reports it connected.
#[derive(Default)]
struct Conn {
    socket: Option<TcpStream>,
    write: Option<Sender<Bytes>>,
    read_on: Option<SyncSender<()>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Wakes the reader blocked in `read` and the writer blocked in `write`, so that
        // their threads end.
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Builds a client for these servers (`host:port`) and starts its driver thread.
///
/// # Errors
///
/// The server list or options are invalid, or the thread cannot be spawned.
pub fn start<I, S>(addrs: I, options: &Options) -> Result<BlockingClient, ConnectError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let driver = Driver::with_options(addrs, options, FRAMES_PER_TURN, Instant::now())?;
    let (to_self, inbox) = mpsc::channel();
    let handle = Handle::new(
        Arc::new(Commands(to_self.clone())),
        driver.status(),
        options,
    );
    let driver_loop = Loop {
        driver,
        inbox,
        to_self,
        connect_timeout: options.connect_timeout,
        conns: HashMap::new(),
    };
    std::thread::Builder::new()
        .name("pyxis-driver".into())
        .spawn(move || driver_loop.run())?;
    Ok(BlockingClient::new(handle))
}

/// The driver thread's state.
struct Loop {
    driver: Driver,
    inbox: Receiver<Input>,
    /// Handed to connection threads.
    to_self: Sender<Input>,
    connect_timeout: Duration,
    conns: HashMap<ConnId, Conn>,
}

impl Loop {
    /// Runs the client until it is closed (by `close`, or the last handle dropped).
    fn run(mut self) {
        loop {
            while let Some(step) = self.driver.next_step(Instant::now()) {
                self.perform(step);
            }
            if self.driver.is_finished() {
                return;
            }
            let owed = self.driver.take_unacknowledged();
            if let Some(socket) = owed.and_then(|conn| self.conns.get(&conn)?.socket.as_ref()) {
                tcp::acknowledge_promptly(socket);
            }
            let input = match self.driver.deadline() {
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    match self.inbox.recv_timeout(wait) {
                        Ok(input) => Some(input),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match self.inbox.recv() {
                    Ok(input) => Some(input),
                    Err(_) => return,
                },
            };
            let now = Instant::now();
            // Take what is queued behind it (bounded), so that requests submitted
            // together leave in one write.
            let mut next = input;
            let mut taken = 0;
            while let Some(input) = next.take() {
                self.handle(input, now);
                taken += 1;
                if taken < INPUT_BATCH {
                    next = self.inbox.try_recv().ok();
                }
            }
            // The one rule for deadlines, whatever woke the loop (input that never stops
            // coming must not postpone them).
            self.driver.handle_due(now);
        }
    }

    /// Feeds one input to the driver.
    fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Command(command) => self.driver.command(command, now),
            Input::Connected(conn, socket, write, read_on) => {
                if let Some(entry) = self.conns.get_mut(&conn) {
                    entry.socket = Some(socket);
                    entry.write = Some(write);
                    entry.read_on = Some(read_on);
                    self.driver.handle_connected(conn, now);
                } else {
                    // The core gave up on it meanwhile.
                    let _ = socket.shutdown(Shutdown::Both);
                }
            }
            Input::Data(conn, data) => {
                if let Some(read_on) = self.conns.get(&conn).and_then(|c| c.read_on.clone()) {
                    self.driver.handle_data(conn, &data, now);
                    // The core hands over a bounded number of answers per input: their
                    // callers are woken (their threads run meanwhile) and what is due
                    // written before the rest is handled.
                    while let Some(held) = self.driver.buffered_input() {
                        while let Some(step) = self.driver.next_step(now) {
                            self.perform(step);
                        }
                        self.driver.handle_data(held, &[], now);
                    }
                    let _ = read_on.try_send(());
                }
            }
            Input::Wrote(conn, n) => self.driver.handle_written(conn, n, now),
            Input::Closed(conn, cause) => {
                if self.conns.remove(&conn).is_some() {
                    self.driver.handle_closed(conn, &cause, now);
                }
            }
        }
    }

    /// Carries out one step of the core; never blocks.
    fn perform(&mut self, step: Step) {
        match step {
            Step::Io(IoAction::Connect { conn, addr }) => {
                self.conns.insert(conn, Conn::default());
                let to_self = self.to_self.clone();
                let timeout = self.connect_timeout;
                let spawned = std::thread::Builder::new()
                    .name("pyxis-reader".into())
                    .spawn(move || read_connection(conn, &addr, timeout, &to_self));
                if let Err(cause) = spawned {
                    self.conns.remove(&conn);
                    self.driver.handle_closed(conn, &cause, Instant::now());
                }
            }
            Step::Io(IoAction::Close { conn }) => {
                self.conns.remove(&conn);
            }
            Step::Transmit(transmit) => {
                let Some(write) = self
                    .conns
                    .get(&transmit.conn)
                    .and_then(|c| c.write.as_ref())
                else {
                    return;
                };
                // The writer thread is gone only after it reported the connection closed.
                let _ = write.send(transmit.data);
            }
            _ => {}
        }
    }
}

/// Opens a TCP connection to `addr`, trying each resolved address within `timeout`.
fn open(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{addr} resolved to no address"),
    );
    for target in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&target, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = io::Error::new(e.kind(), format!("{target}: {e}")),
        }
    }
    Err(last)
}

/// A connection's reader thread: connects, starts the writer thread, then hands over
/// what it reads, one chunk at a time, until the socket or the driver is gone.
fn read_connection(conn: ConnId, addr: &str, timeout: Duration, to_driver: &Sender<Input>) {
    let opened = open(addr, timeout).and_then(|stream| {
        tcp::configure(&stream);
        let socket = stream.try_clone()?;
        let writer = stream.try_clone()?;
        Ok((stream, socket, writer))
    });
    let (mut stream, socket, writer) = match opened {
        Ok(opened) => opened,
        Err(cause) => {
            let _ = to_driver.send(Input::Closed(conn, cause));
            return;
        }
    };
    let (write, to_write) = mpsc::channel();
    let reports = to_driver.clone();
    let spawned = std::thread::Builder::new()
        .name("pyxis-writer".into())
        .spawn(move || write_connection(conn, writer, &to_write, &reports));
    if let Err(cause) = spawned {
        let _ = to_driver.send(Input::Closed(conn, cause));
        return;
    }
    let (read_on, may_read) = mpsc::sync_channel(1);
    if to_driver
        .send(Input::Connected(conn, socket, write, read_on))
        .is_err()
    {
        return;
    }
    let mut buf = ReadBuffer::new();
    let cause = loop {
        let n = match stream.read(buf.space()) {
            Ok(0) => break io::ErrorKind::UnexpectedEof.into(),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break e,
        };
        if to_driver
            .send(Input::Data(conn, buf.filled(n).to_vec()))
            .is_err()
        {
            return;
        }
        buf.fit(n);
        // The driver drops its sender when it closes the connection.
        if may_read.recv().is_err() {
            return;
        }
    };
    let _ = to_driver.send(Input::Closed(conn, cause));
}

/// A connection's writer thread: writes each chunk the driver hands it, reporting it
/// written, until the driver drops the connection or a write fails.
fn write_connection(
    conn: ConnId,
    mut stream: TcpStream,
    chunks: &Receiver<Bytes>,
    to_driver: &Sender<Input>,
) {
    while let Ok(chunk) = chunks.recv() {
        if let Err(cause) = stream.write_all(&chunk) {
            let _ = to_driver.send(Input::Closed(conn, cause));
            return;
        }
        if to_driver.send(Input::Wrote(conn, chunk.len())).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use pyxis_core::WatchId;

    use super::*;
    use crate::queue::channel;

    /// Input that never stops coming must not postpone deadlines: once the deadline
    /// rule ran only when the channel wait timed out, so a steady stream of commands
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
        let (to_self, inbox) = mpsc::channel();
        let sink = to_self.clone();
        let driver_loop = Loop {
            driver,
            inbox,
            to_self,
            connect_timeout: options.connect_timeout,
            conns: HashMap::new(),
        };
        let driver_thread = std::thread::spawn(move || driver_loop.run());
        let flooding = Arc::new(AtomicBool::new(true));
        let flood = {
            let (sink, flooding) = (Commands(sink.clone()), flooding.clone());
            std::thread::spawn(move || {
                let mut n = 1_000_000;
                while flooding.load(Ordering::Relaxed) {
                    n += 1;
                    sink.send(Command::Unwatch(WatchId(n)));
                }
            })
        };
        let (reply, answer) = channel(1);
        Commands(sink.clone()).send(Command::WaitConnected {
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
        Commands(sink).send(Command::HandlesGone);
        drop(answer);
        driver_thread.join().ok();
    }
}
