//! The I/O loop of a runner: one tokio current-thread runtime on one thread per cluster,
//! owning the model, the listeners and every connection.
//!
//! Owns: accepting, reading into the model, writing its outputs with a per-connection
//! output bound, timers from `poll_timeout`, and the commands of the test thread. Must
//! never apply protocol rules itself (that is the model's job), nor let one connection
//! grow memory without bound: reads are back-pressured through a bounded channel and a
//! connection whose queued output passes the cap is dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::model::{ClusterModel, ConnId, ControlError, Output};

use super::RunnerError;

/// A closure run on the driver with the model and the current instant.
pub(crate) type ModelJob = Box<dyn FnOnce(&mut ClusterModel, Instant) + Send>;

/// What the test thread asks of the driver.
pub(crate) enum Command {
    Model(ModelJob),
    Kill(usize, std::sync::mpsc::SyncSender<Result<(), RunnerError>>),
    Restart(usize, std::sync::mpsc::SyncSender<Result<(), RunnerError>>),
    Shutdown,
}

/// Limits of the I/O loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_output_per_conn: usize,
    pub(crate) max_conns_per_node: usize,
}

enum NetEvent {
    Accepted(usize, TcpStream),
    Data(ConnId, Bytes),
    Closed(ConnId),
}

enum WriterMsg {
    Bytes(Bytes),
    Close,
}

struct ConnHandle {
    node: usize,
    writer_tx: mpsc::UnboundedSender<WriterMsg>,
    queued: Arc<AtomicUsize>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl ConnHandle {
    /// Drops the connection at once (reset if possible), nothing flushed.
    fn abort(self) {
        self.reader.abort();
        self.writer.abort();
    }

    /// Flushes what is queued, then closes the write side.
    fn close_gracefully(self) {
        self.reader.abort();
        // If the writer is gone the socket is already closed.
        let _ = self.writer_tx.send(WriterMsg::Close);
    }
}

const READ_CHUNK: usize = 64 * 1024;
const NET_QUEUE: usize = 64;
/// Bytes gathered from the output queue into one socket write.
const WRITE_COALESCE: usize = 256 * 1024;

/// Binds a listener (std sets `SO_REUSEADDR` on Unix, so a killed node's port can be
/// bound again while old connections linger in TIME_WAIT).
pub(crate) fn bind_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr)
}

struct Driver {
    model: ClusterModel,
    /// Where each node listens (rebound there on a restart).
    listen: Vec<SocketAddr>,
    acceptors: Vec<Option<JoinHandle<()>>>,
    conns: BTreeMap<ConnId, ConnHandle>,
    next_conn: u64,
    net_tx: mpsc::Sender<NetEvent>,
    limits: Limits,
}

/// Runs the loop until `Shutdown` or until every command sender is gone.
pub(crate) async fn run(
    model: ClusterModel,
    listeners: Vec<std::net::TcpListener>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    limits: Limits,
) {
    let (net_tx, mut net_rx) = mpsc::channel(NET_QUEUE);
    let listen = listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
        })
        .collect();
    let mut driver = Driver {
        model,
        listen,
        acceptors: Vec::new(),
        conns: BTreeMap::new(),
        next_conn: 1,
        net_tx,
        limits,
    };
    for (node, listener) in listeners.into_iter().enumerate() {
        let acceptor = driver.spawn_acceptor(node, listener);
        driver.acceptors.push(acceptor);
    }
    loop {
        let deadline = driver.model.poll_timeout();
        let sleep_until = deadline
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            event = net_rx.recv() => {
                if let Some(event) = event {
                    driver.on_net(event);
                }
            }
            command = commands.recv() => match command {
                Some(Command::Shutdown) | None => break,
                Some(command) => driver.on_command(command).await,
            },
            () = tokio::time::sleep_until(sleep_until) => {
                driver.model.handle_timeout(Instant::now());
            }
        }
        driver.flush();
    }
    for acceptor in driver.acceptors.iter_mut().filter_map(Option::take) {
        acceptor.abort();
    }
    for (_, conn) in std::mem::take(&mut driver.conns) {
        conn.abort();
    }
}

impl Driver {
    fn spawn_acceptor(
        &self,
        node: usize,
        listener: std::net::TcpListener,
    ) -> Option<JoinHandle<()>> {
        if listener.set_nonblocking(true).is_err() {
            return None;
        }
        let listener = TcpListener::from_std(listener).ok()?;
        let net_tx = self.net_tx.clone();
        Some(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if net_tx.send(NetEvent::Accepted(node, stream)).await.is_err() {
                            break;
                        }
                    }
                    // Out of descriptors and the like: wait a little, keep serving.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }))
    }

    fn on_net(&mut self, event: NetEvent) {
        let now = Instant::now();
        match event {
            NetEvent::Accepted(node, stream) => self.accept(node, stream, now),
            NetEvent::Data(conn, bytes) => self.model.handle_data(conn, &bytes, now),
            NetEvent::Closed(conn) => {
                if let Some(handle) = self.conns.remove(&conn) {
                    handle.close_gracefully();
                }
                self.model.handle_close(conn, now);
            }
        }
    }

    fn accept(&mut self, node: usize, stream: TcpStream, now: Instant) {
        let open = self.conns.values().filter(|c| c.node == node).count();
        if open >= self.limits.max_conns_per_node || !self.model.is_up(node) {
            return; // dropping the stream closes it
        }
        let _ = stream.set_nodelay(true);
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let (mut read_half, mut write_half) = stream.into_split();
        let net_tx = self.net_tx.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match read_half.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let chunk = Bytes::copy_from_slice(&buf[..n]);
                        if net_tx.send(NetEvent::Data(conn, chunk)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = net_tx.send(NetEvent::Closed(conn)).await;
        });
        let (writer_tx, mut writer_rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer_queued = Arc::clone(&queued);
        let writer = tokio::spawn(async move {
            let mut out = Vec::new();
            while let Some(first) = writer_rx.recv().await {
                // Coalesce whatever is queued into one write.
                let mut closing = false;
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    match msg {
                        WriterMsg::Bytes(bytes) => out.extend_from_slice(&bytes),
                        WriterMsg::Close => {
                            closing = true;
                            break;
                        }
                    }
                    if out.len() < WRITE_COALESCE {
                        next = writer_rx.try_recv().ok();
                    }
                }
                if !out.is_empty() {
                    if write_half.write_all(&out).await.is_err() {
                        break;
                    }
                    writer_queued.fetch_sub(out.len(), Ordering::Relaxed);
                    out.clear();
                }
                if closing {
                    let _ = write_half.shutdown().await;
                    break;
                }
            }
        });
        self.conns.insert(
            conn,
            ConnHandle {
                node,
                writer_tx,
                queued,
                reader,
                writer,
            },
        );
        self.model.handle_connect(node, conn, now);
    }

    async fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Model(job) => job(&mut self.model, now),
            Command::Kill(node, reply) => {
                let result = self.kill(node, now).await;
                let _ = reply.send(result);
            }
            Command::Restart(node, reply) => {
                let result = self.restart(node, now);
                let _ = reply.send(result);
            }
            Command::Shutdown => {}
        }
    }

    /// Kills a node; returns once its listener and connections are really closed.
    async fn kill(&mut self, node: usize, now: Instant) -> Result<(), RunnerError> {
        let mut closing = Vec::new();
        if let Some(acceptor) = self.acceptors.get_mut(node).and_then(Option::take) {
            acceptor.abort();
            closing.push(acceptor);
        }
        self.model.kill_node(node, now)?;
        // Reset rather than close: the peer sees a broken connection, as on a crash.
        let doomed: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.node == node)
            .map(|(id, _)| *id)
            .collect();
        for conn in doomed {
            if let Some(handle) = self.conns.remove(&conn) {
                handle.reader.abort();
                handle.writer.abort();
                closing.push(handle.reader);
                closing.push(handle.writer);
            }
            self.model.handle_close(conn, now);
        }
        // An aborted task drops its socket when the runtime next polls it.
        for task in closing {
            let _ = task.await;
        }
        Ok(())
    }

    fn restart(&mut self, node: usize, now: Instant) -> Result<(), RunnerError> {
        let Some(&addr) = self.listen.get(node) else {
            return Err(ControlError::NoSuchNode(node).into());
        };
        if self.acceptors.get(node).is_some_and(Option::is_some) {
            return Ok(()); // already up
        }
        let listener = bind_listener(addr)?;
        let acceptor = self.spawn_acceptor(node, listener);
        if let Some(slot) = self.acceptors.get_mut(node) {
            *slot = acceptor;
        }
        self.model.restart_node(node, now)?;
        Ok(())
    }

    /// Writes the model's outputs.
    fn flush(&mut self) {
        while let Some(output) = self.model.poll_output() {
            match output {
                Output::Send { conn, bytes } => {
                    let Some(handle) = self.conns.get(&conn) else {
                        continue;
                    };
                    let len = bytes.len();
                    let queued = handle.queued.fetch_add(len, Ordering::Relaxed) + len;
                    let overflow = queued > self.limits.max_output_per_conn;
                    if overflow || handle.writer_tx.send(WriterMsg::Bytes(bytes)).is_err() {
                        // A client that does not read its answers is disconnected.
                        if let Some(handle) = self.conns.remove(&conn) {
                            handle.abort();
                        }
                        self.model.handle_close(conn, Instant::now());
                    }
                }
                Output::Close { conn } => {
                    if let Some(handle) = self.conns.remove(&conn) {
                        handle.close_gracefully();
                    }
                }
            }
        }
    }
}
