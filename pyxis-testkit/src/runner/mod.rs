//! Loopback runners: [`TestCluster`] (N nodes) and [`TestServer`] (one node) serve the
//! [model](crate::model) over TCP on `127.0.0.1`.
//!
//! Owns: binding, the background I/O thread and the synchronous control surface a test
//! uses (leadership moves, kill/restart, no-leader windows, session expiry, delayed or
//! dropped answers, garbage on connections, inspection). Must never apply protocol rules
//! itself, block a caller's async runtime beyond a short control round trip, or outlive
//! its handle: dropping it stops the thread and closes every socket.
//!
//! Each cluster runs one thread (a tokio current-thread runtime inside), whatever the
//! number of nodes or connections, so test suites can run many clusters in parallel. The
//! API is synchronous and works from plain `#[test]`s, tokio, async-std or smol tests.
//!
//! This is for tests, examples and local development; production clusters are real Pyxis
//! servers.

mod driver;

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::model::{AppliedOp, ClusterModel, ControlError, ModelConfig, NodeSnapshot};
use driver::{bind_listener, Command, Limits};

/// How long a control waits for the I/O thread before giving up.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for the I/O thread to finish.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// A runner control that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// Binding or re-binding a listener failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The model refused the control (no such node, node down).
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The runner is shut down (or its thread died).
    #[error("the test cluster is stopped")]
    Stopped,
}

/// Runner settings beyond the model's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunnerConfig {
    /// The model's settings (node addresses are filled in from the bound ports).
    pub model: ModelConfig,
    /// Output queued for one connection beyond which it is dropped (a client that does
    /// not read its answers).
    pub max_output_per_conn: usize,
    /// Open connections per node beyond which new ones are closed at once.
    pub max_conns_per_node: usize,
    /// Where node `i` listens (`listen[i]`); a node without an entry gets a free port on
    /// `127.0.0.1`. Each node advertises the address it is bound to.
    pub listen: Vec<SocketAddr>,
}

impl RunnerConfig {
    /// [`ModelConfig::fast`] with 64 MiB of output and 1 024 connections per node.
    pub fn fast() -> Self {
        Self::with_model(ModelConfig::fast())
    }

    /// [`ModelConfig::real_defaults`] ([protocol](pyxis_proto::protocol) §9) with the same I/O
    /// limits.
    pub fn real_defaults() -> Self {
        Self::with_model(ModelConfig::real_defaults())
    }

    /// The given model settings with the default I/O limits.
    pub fn with_model(model: ModelConfig) -> Self {
        Self {
            model,
            max_output_per_conn: 64 * 1024 * 1024,
            max_conns_per_node: 1024,
            listen: Vec::new(),
        }
    }
}

/// A Pyxis cluster of N nodes on loopback, sharing one replicated state; node 0 leads at
/// start.
///
/// ```
/// use pyxis_proto::{encode_request, FrameDecoder, ErrorType, rpc::{Request, RegisterRequest}};
/// use pyxis_testkit::TestCluster;
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
///
/// let cluster = TestCluster::start(3);
/// let addrs = cluster.addrs();
/// assert_eq!(addrs.len(), 3);
///
/// // A follower redirects to the leader's address.
/// let mut follower = TcpStream::connect(&addrs[1]).unwrap();
/// let register = Request { xid: Some(1), register: Some(RegisterRequest { timeout: Some(5000) }),
/// ..Default::default() }; follower.write_all(&encode_request(&register)).unwrap();
/// let mut decoder = FrameDecoder::new();
/// let answer = loop {
///     if let Some(answer) = decoder.next_response().unwrap() { break answer; }
///     let mut buf = [0u8; 256];
///     let n = follower.read(&mut buf).unwrap();
///     assert!(n > 0, "closed");
///     decoder.extend(&buf[..n]);
/// };
/// let err = answer.err.unwrap();
/// assert_eq!(err.r#type, ErrorType::KNotLeader as i32);
/// assert_eq!(err.data.unwrap(), addrs[0].as_bytes());
///
/// // Controls: move leadership, inspect.
/// cluster.move_leader(2).unwrap();
/// assert_eq!(cluster.leader(), Some(2));
/// cluster.shutdown();
/// ```
pub struct TestCluster {
    addrs: Vec<String>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
    /// Signalled by the I/O thread when it has finished (behind a mutex so the handle is
    /// `Sync` and can be shared by tasks).
    done: Mutex<Receiver<()>>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl TestCluster {
    /// Starts `nodes` nodes with [`RunnerConfig::fast`] settings.
    ///
    /// # Panics
    /// If loopback ports cannot be bound (use [`try_start`](Self::try_start) to handle it).
    pub fn start(nodes: usize) -> Self {
        match Self::try_start(nodes, RunnerConfig::fast()) {
            Ok(cluster) => cluster,
            Err(e) => panic!("cannot start a test cluster on 127.0.0.1: {e}"),
        }
    }

    /// Starts `nodes` nodes (at least one) with the given settings.
    pub fn try_start(nodes: usize, config: RunnerConfig) -> io::Result<Self> {
        let count = nodes.max(1);
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let listeners = (0..count)
            .map(|i| bind_listener(config.listen.get(i).copied().unwrap_or(loopback)))
            .collect::<io::Result<Vec<_>>>()?;
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.to_string()))
            .collect::<io::Result<Vec<_>>>()?;
        // The runner reads the wall clock (the model never does): session ids are made
        // from it as the original server makes them, so a restarted `pyxis dev` or a
        // later test cluster never hands out an id an earlier one did.
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut model_config = config.model.clone().with_wall_clock(wall);
        model_config.addrs = addrs.clone();
        let limits = Limits {
            max_output_per_conn: config.max_output_per_conn,
            max_conns_per_node: config.max_conns_per_node,
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (done_tx, done) = sync_channel(1);
        let (started_tx, started) = sync_channel::<io::Result<()>>(1);
        // The runtime is built and dropped on its own thread, never in the caller's
        // (possibly async) context.
        let thread = std::thread::Builder::new()
            .name("pyxis-testkit".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(()));
                let model = ClusterModel::new(model_config, count, Instant::now());
                runtime.block_on(driver::run(model, listeners, command_rx, limits));
                drop(runtime);
                let _ = done_tx.send(());
            })?;
        match started.recv_timeout(CONTROL_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("the test cluster thread did not start")),
        }
        Ok(Self {
            addrs,
            commands,
            thread: Some(thread),
            done: Mutex::new(done),
        })
    }

    /// Client addresses (`127.0.0.1:port`) of every node, by index.
    pub fn addrs(&self) -> Vec<String> {
        self.addrs.clone()
    }

    /// The address of node `n`.
    pub fn addr(&self, n: usize) -> Option<&str> {
        self.addrs.get(n).map(String::as_str)
    }

    /// Runs `f` on the model, on the I/O thread, and returns its result.
    pub fn with_model<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ClusterModel, Instant) -> R + Send + 'static,
    ) -> Result<R, RunnerError> {
        let (tx, rx) = sync_channel(1);
        let job = Box::new(move |model: &mut ClusterModel, now: Instant| {
            let _ = tx.send(f(model, now));
        });
        self.commands
            .send(Command::Model(job))
            .map_err(|_| RunnerError::Stopped)?;
        rx.recv_timeout(CONTROL_TIMEOUT)
            .map_err(|_| RunnerError::Stopped)
    }

    fn node_command(
        &self,
        make: impl FnOnce(SyncSender<Result<(), RunnerError>>) -> Command,
    ) -> Result<(), RunnerError> {
        let (tx, rx) = sync_channel(1);
        self.commands
            .send(make(tx))
            .map_err(|_| RunnerError::Stopped)?;
        rx.recv_timeout(CONTROL_TIMEOUT)
            .map_err(|_| RunnerError::Stopped)?
    }

    /// The current leader (`None` during a no-leader window).
    pub fn leader(&self) -> Option<usize> {
        self.with_model(|m, _| m.leader()).ok().flatten()
    }

    /// Moves leadership to node `to` at once.
    pub fn move_leader(&self, to: usize) -> Result<(), RunnerError> {
        self.with_model(move |m, now| m.move_leader(to, now))?
            .map_err(Into::into)
    }

    /// Moves leadership to node `to` after a no-leader window of `gap`.
    pub fn move_leader_after_gap(&self, to: usize, gap: Duration) -> Result<(), RunnerError> {
        self.with_model(move |m, now| m.move_leader_after_gap(to, gap, now))?
            .map_err(Into::into)
    }

    /// Opens a no-leader window of `gap` (every node answers kAgain); the same leader is
    /// elected again when it ends.
    pub fn no_leader_for(&self, gap: Duration) -> Result<(), RunnerError> {
        self.with_model(move |m, now| m.start_election_gap(gap, now))
    }

    /// Kills node `n`: its listener closes and its connections are dropped. A killed
    /// leader is replaced after the configured election gap.
    pub fn kill(&self, n: usize) -> Result<(), RunnerError> {
        self.node_command(|tx| Command::Kill(n, tx))
    }

    /// Restarts node `n` on the same port.
    pub fn restart(&self, n: usize) -> Result<(), RunnerError> {
        self.node_command(|tx| Command::Restart(n, tx))
    }

    /// Expires session `sid` now; returns whether it was alive.
    pub fn expire_session(&self, sid: u64) -> Result<bool, RunnerError> {
        self.with_model(move |m, now| m.expire_session(sid, now))
    }

    /// Live session ids.
    pub fn sessions(&self) -> Result<Vec<u64>, RunnerError> {
        self.with_model(|m, _| m.sessions())
    }

    /// The node at `path` (`None` if missing or the runner is stopped).
    pub fn node(&self, path: &str) -> Option<NodeSnapshot> {
        let path = path.to_owned();
        self.with_model(move |m, _| m.node(&path)).ok().flatten()
    }

    /// The applied-operation history, oldest first.
    pub fn applied_ops(&self) -> Result<Vec<AppliedOp>, RunnerError> {
        self.with_model(|m, _| m.applied_ops().cloned().collect())
    }

    /// Adds `delay` to the commit delay of writes received from now on.
    pub fn delay_answers(&self, delay: Duration) -> Result<(), RunnerError> {
        self.with_model(move |m, _| m.set_extra_commit_delay(delay))
    }

    /// While on, requests are processed but no answer is sent.
    pub fn drop_answers(&self, drop: bool) -> Result<(), RunnerError> {
        self.with_model(move |m, _| m.set_drop_answers(drop))
    }

    /// Sends `garbage` on every open connection of node `n`.
    pub fn send_garbage(&self, n: usize, garbage: &[u8]) -> Result<(), RunnerError> {
        let garbage = Bytes::copy_from_slice(garbage);
        self.with_model(move |m, _| m.inject_garbage(n, garbage))?
            .map_err(Into::into)
    }

    /// Stops the I/O thread and closes every socket (also done on drop). Waits at most
    /// ten seconds.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = self.commands.send(Command::Shutdown);
        let finished = match self.done.lock() {
            Ok(done) => done.recv_timeout(SHUTDOWN_TIMEOUT).is_ok(),
            Err(poisoned) => poisoned.into_inner().recv_timeout(SHUTDOWN_TIMEOUT).is_ok(),
        };
        // A thread that did not finish in time is left detached rather than hanging the test.
        if finished {
            let _ = thread.join();
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A one-node Pyxis server on loopback: a [`TestCluster`] of one node (every cluster
/// control is available through `Deref`).
///
/// ```
/// use pyxis_testkit::TestServer;
///
/// let server = TestServer::start();
/// let addr = server.addr();
/// assert!(addr.starts_with("127.0.0.1:"));
/// assert!(server.node("/pyxis").is_some());
/// ```
#[derive(Debug)]
pub struct TestServer {
    cluster: TestCluster,
}

impl TestServer {
    /// Starts one node with [`RunnerConfig::fast`] settings.
    ///
    /// # Panics
    /// If a loopback port cannot be bound (use [`try_start`](Self::try_start)).
    pub fn start() -> Self {
        Self {
            cluster: TestCluster::start(1),
        }
    }

    /// Starts one node with the given settings.
    pub fn try_start(config: RunnerConfig) -> io::Result<Self> {
        Ok(Self {
            cluster: TestCluster::try_start(1, config)?,
        })
    }

    /// The client address, `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        self.cluster.addrs.first().cloned().unwrap_or_default()
    }

    /// The cluster underneath.
    pub fn cluster(&self) -> &TestCluster {
        &self.cluster
    }

    /// Stops the server (also done on drop).
    pub fn shutdown(self) {
        self.cluster.shutdown();
    }
}

impl std::ops::Deref for TestServer {
    type Target = TestCluster;

    fn deref(&self) -> &TestCluster {
        &self.cluster
    }
}
