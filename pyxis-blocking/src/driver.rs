//! The driver thread and the connection reader threads of the blocking adapter.
//!
//! One driver thread owns the [`Driver`] (and through it the core client) and waits on
//! one channel, with a timeout taken from `Driver::deadline`: commands from client
//! handles and events from the connection's reader thread arrive there, so a submitted
//! request goes out the moment it is sent (no polling, no sleep ticks). The reader thread
//! of a connection (std::net has no readiness API) connects, then reads and hands each
//! chunk over, waiting for the driver to take it before reading more (memory stays
//! bounded whatever the server sends). Writes happen on the driver thread, one
//! `write_all` per `Transmit`.
//!
//! Owns: the threads, sockets, channel and timeout. Must never make a protocol decision
//! (no retry, no xid, no frame parsing) and never wait for the application.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant};

use pyxis_client_common::__private::read_buffer::ReadBuffer;
use pyxis_client_common::__private::{Command, CommandSink, ConnId, Driver, IoAction, Step};

/// Inputs taken from the channel at most per turn of the loop.
const INPUT_BATCH: usize = 256;
/// A write that takes longer than this means the connection is dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the driver thread waits for.
pub(crate) enum Input {
    Command(Command),
    /// The reader connected; the stream is a clone for writing, the sender lets the
    /// reader read on.
    Connected(ConnId, TcpStream, SyncSender<()>),
    Data(ConnId, Vec<u8>),
    Closed(ConnId),
}

/// The command side of the driver's channel, as the client handles see it.
pub(crate) struct Commands(pub(crate) Sender<Input>);

impl CommandSink for Commands {
    fn send(&self, command: Command) -> bool {
        self.0.send(Input::Command(command)).is_ok()
    }
}

/// A connection the core asked for: writable once its reader reports it connected.
#[derive(Default)]
struct Conn {
    stream: Option<TcpStream>,
    read_on: Option<SyncSender<()>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Wakes the reader blocked in `read` so that its thread ends.
        if let Some(stream) = &self.stream {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// The driver thread's state.
pub(crate) struct Loop {
    pub(crate) driver: Driver,
    pub(crate) inbox: Receiver<Input>,
    /// Handed to reader threads.
    pub(crate) to_self: Sender<Input>,
    pub(crate) connect_timeout: Duration,
}

impl Loop {
    /// Runs the client until it is closed (by `close`, or the last handle dropped).
    pub(crate) fn run(mut self) {
        let mut conns: HashMap<ConnId, Conn> = HashMap::new();
        loop {
            while let Some(step) = self.driver.next_step(Instant::now()) {
                self.perform(step, &mut conns);
            }
            if self.driver.is_finished() {
                return;
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
            let Some(input) = input else {
                self.driver.handle_timeout(now);
                continue;
            };
            // Take the commands queued behind it (bounded), so that requests submitted
            // together leave in one write.
            let mut next = Some(input);
            let mut taken = 0;
            while let Some(input) = next.take() {
                let is_command = matches!(input, Input::Command(_));
                self.handle(input, now, &mut conns);
                taken += 1;
                if is_command && taken < INPUT_BATCH {
                    next = self.inbox.try_recv().ok();
                }
            }
        }
    }

    /// Feeds one input to the driver.
    fn handle(&mut self, input: Input, now: Instant, conns: &mut HashMap<ConnId, Conn>) {
        match input {
            Input::Command(command) => self.driver.command(command, now),
            Input::Connected(conn, stream, read_on) => {
                if let Some(entry) = conns.get_mut(&conn) {
                    entry.stream = Some(stream);
                    entry.read_on = Some(read_on);
                    self.driver.handle_connected(conn, now);
                } else {
                    // The core gave up on it meanwhile.
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            Input::Data(conn, data) => {
                if let Some(read_on) = conns.get(&conn).and_then(|c| c.read_on.clone()) {
                    self.driver.handle_data(conn, &data, now);
                    let _ = read_on.try_send(());
                }
            }
            Input::Closed(conn) => {
                if conns.remove(&conn).is_some() {
                    self.driver.handle_closed(conn, &"connection ended", now);
                }
            }
        }
    }

    /// Carries out one step of the core.
    fn perform(&mut self, step: Step, conns: &mut HashMap<ConnId, Conn>) {
        match step {
            Step::Io(IoAction::Connect { conn, addr }) => {
                conns.insert(conn, Conn::default());
                let to_self = self.to_self.clone();
                let timeout = self.connect_timeout;
                let spawned = std::thread::Builder::new()
                    .name("pyxis-reader".into())
                    .spawn(move || read_connection(conn, &addr, timeout, &to_self));
                if spawned.is_err() {
                    conns.remove(&conn);
                    self.driver.handle_closed(
                        conn,
                        &"no thread for the connection",
                        Instant::now(),
                    );
                }
            }
            Step::Io(IoAction::Close { conn }) => {
                conns.remove(&conn);
            }
            Step::Transmit(transmit) => {
                let Some(stream) = conns
                    .get_mut(&transmit.conn)
                    .and_then(|c| c.stream.as_mut())
                else {
                    return;
                };
                if let Err(e) = stream.write_all(&transmit.data) {
                    conns.remove(&transmit.conn);
                    self.driver.handle_closed(transmit.conn, &e, Instant::now());
                }
            }
            _ => {}
        }
    }
}

/// Opens a TCP connection to `addr`, trying each resolved address within `timeout`.
fn open(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
    for target in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&target, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A connection's reader thread: connects, then hands over what it reads, one chunk at
/// a time, until the socket or the driver is gone.
fn read_connection(conn: ConnId, addr: &str, timeout: Duration, to_driver: &Sender<Input>) {
    let opened = open(addr, timeout).and_then(|stream| {
        // Small frames must not wait for Nagle; failing to set it only costs latency.
        let _ = stream.set_nodelay(true);
        let writer = stream.try_clone()?;
        writer.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok((stream, writer))
    });
    let Ok((mut stream, writer)) = opened else {
        let _ = to_driver.send(Input::Closed(conn));
        return;
    };
    let (read_on, may_read) = mpsc::sync_channel(1);
    if to_driver
        .send(Input::Connected(conn, writer, read_on))
        .is_err()
    {
        return;
    }
    let mut buf = ReadBuffer::new();
    loop {
        let n = match stream.read(buf.space()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
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
    }
    let _ = to_driver.send(Input::Closed(conn));
}
