//! A Pyxis cluster inside a turmoil simulation: one turmoil host per node, all sharing
//! the replicated state of one `pyxis-testkit` [`ClusterModel`].
//!
//! Owns: the node hosts' software (listen, accept, read into the model, write its
//! outputs, fire its timers), the routing of the model's outputs to the connection of
//! whichever node holds it, and [`Cluster`], the handle a test keeps. Must never apply a
//! protocol rule itself (the model does), read the system clock, or hold a borrow of the
//! shared state across an `.await`.
//!
//! What turmoil does to a node host is told to the model: a crash
//! (`Sim::crash`) kills the node (its connections close, a killed leader is replaced
//! after the election gap), and the host's restart (`Sim::bounce`) restarts it. Network
//! faults between clients and nodes (`partition`, `hold`, message loss) are turmoil's
//! own. Replication is not simulated: a partition between two node hosts changes
//! nothing; use [`Cluster::move_leader`] and [`Cluster::no_leader_for`] for what a
//! leader change or a lost quorum looks like to clients.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyxis_testkit::model::{ClusterModel, ConnId, ControlError, ModelConfig, NodeSnapshot, Output};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;
use turmoil::net::{TcpListener, TcpStream};
use turmoil::Sim;

use crate::clock;

/// Bytes read from a connection in one go.
const READ_CHUNK: usize = 16 * 1024;
/// How stale the cluster's idea of the time may get while nothing happens: a crash of a
/// node host, which cannot read the clock, kills the node at most this long before it.
const CLOCK_RESOLUTION: Duration = Duration::from_millis(50);

/// How a cluster is laid out in the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Number of nodes (hosts), at least one.
    pub nodes: usize,
    /// Node `n` is the turmoil host `"{host_prefix}-{n}"`.
    pub host_prefix: String,
    /// The port every node listens on.
    pub port: u16,
    /// The server model's settings (default: the real server's,
    /// [`ModelConfig::real_defaults`]). Its `addrs` are replaced by the hosts' addresses.
    pub model: ModelConfig,
}

impl ClusterConfig {
    /// `nodes` nodes named `pyxis-0`, `pyxis-1`, ... on port 7000, with the real server's
    /// timings (sessions of 5 s to 120 s checked every second, a 2 s election gap).
    pub fn new(nodes: usize) -> ClusterConfig {
        ClusterConfig {
            nodes: nodes.max(1),
            host_prefix: "pyxis".to_owned(),
            port: 7000,
            model: ModelConfig::real_defaults(),
        }
    }
}

/// The handle to a Pyxis cluster running as turmoil hosts. Cheap to clone; usable from
/// the test between `Sim::step`s and from inside simulated hosts and clients.
///
/// A control acts at the current simulated instant when called inside the simulation,
/// and at the last instant the cluster saw (at most 50 ms earlier while a node runs)
/// when called between steps.
///
/// ```
/// use std::time::Duration;
/// use pyxis_turmoil::{connect, Cluster};
///
/// let mut sim = turmoil::Builder::new().build();
/// let cluster = Cluster::add(&mut sim, 3);
/// let addrs = cluster.addrs();
/// sim.client("app", async move {
///     let client = connect(addrs, pyxis_tokio::Options::new().seed(1)).await?;
///     client.create("/jobs", "", pyxis_tokio::CreateMode::Persistent).await?;
///     client.close().await;
///     Ok(())
/// });
/// sim.run().unwrap();
/// assert!(cluster.node("/jobs").is_some());
/// ```
#[derive(Clone)]
pub struct Cluster {
    shared: Rc<Shared>,
    hosts: Rc<[String]>,
    port: u16,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("leader", &self.leader())
            .finish()
    }
}

impl Cluster {
    /// Adds `nodes` Pyxis nodes to `sim` with [`ClusterConfig::new`]'s layout.
    pub fn add(sim: &mut Sim<'_>, nodes: usize) -> Cluster {
        Cluster::add_with(sim, ClusterConfig::new(nodes))
    }

    /// Adds the nodes of `config` to `sim`: one host per node, node 0 leading.
    pub fn add_with(sim: &mut Sim<'_>, config: ClusterConfig) -> Cluster {
        let count = config.nodes.max(1);
        let hosts: Rc<[String]> = (0..count)
            .map(|n| format!("{}-{n}", config.host_prefix))
            .collect();
        let mut model = config.model;
        model.addrs = hosts
            .iter()
            .map(|h| format!("{h}:{}", config.port))
            .collect();
        let start = clock::now();
        let shared = Rc::new(Shared {
            model: RefCell::new(ClusterModel::new(model, count, start)),
            routes: RefCell::new(BTreeMap::new()),
            next_conn: Cell::new(1),
            last_seen: Cell::new(start),
            changed: Notify::new(),
        });
        for (n, host) in hosts.iter().enumerate() {
            let shared = Rc::clone(&shared);
            let port = config.port;
            sim.host(host.as_str(), move || serve(Rc::clone(&shared), n, port));
        }
        Cluster {
            shared,
            hosts,
            port: config.port,
        }
    }

    /// The nodes' client addresses (`host:port`), for [`connect`](crate::connect).
    pub fn addrs(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| format!("{h}:{}", self.port))
            .collect()
    }

    /// The turmoil host name of node `n` (for `Sim::crash`, `partition`, ...).
    pub fn host(&self, n: usize) -> Option<&str> {
        self.hosts.get(n).map(String::as_str)
    }

    /// Every node's host name, by index.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Cuts `host` off from every node of the cluster (turmoil's `Sim::partition` with
    /// each node's host): what it writes to them, and they to it, is lost until
    /// [`repair`](Self::repair).
    pub fn partition(&self, sim: &Sim<'_>, host: &str) {
        for node in self.hosts.iter() {
            sim.partition(host, node.as_str());
        }
    }

    /// Ends [`partition`](Self::partition): `host` reaches every node again.
    pub fn repair(&self, sim: &Sim<'_>, host: &str) {
        for node in self.hosts.iter() {
            sim.repair(host, node.as_str());
        }
    }

    /// The current leader, if any.
    pub fn leader(&self) -> Option<usize> {
        self.shared.model.borrow().leader()
    }

    /// Moves leadership to node `to` at once (held pings are answered, in-flight writes
    /// fail with `Again`, sessions are kept).
    ///
    /// # Errors
    ///
    /// [`ControlError`] if `to` does not exist or is down.
    pub fn move_leader(&self, to: usize) -> Result<(), ControlError> {
        self.shared.control(|model, now| model.move_leader(to, now))
    }

    /// Opens a no-leader window of `gap`: every node answers `Again` until it closes.
    pub fn no_leader_for(&self, gap: Duration) {
        self.shared
            .control(|model, now| model.start_election_gap(gap, now));
    }

    /// Expires session `sid` now, as the server does when it is not refreshed in time
    /// (its ephemeral nodes are deleted, with their events). Returns whether it was alive.
    pub fn expire_session(&self, sid: u64) -> bool {
        self.shared
            .control(|model, now| model.expire_session(sid, now))
    }

    /// Live session ids, ascending.
    pub fn sessions(&self) -> Vec<u64> {
        self.shared.model.borrow().sessions()
    }

    /// The node at `path` as a read would show it now.
    pub fn node(&self, path: &str) -> Option<NodeSnapshot> {
        self.shared.model.borrow().node(path)
    }

    /// Runs `f` on the model with the instant controls use: any other control or
    /// inspection of `pyxis-testkit`'s [`ClusterModel`]. What it makes the model send is
    /// delivered afterwards.
    pub fn with_model<T>(&self, f: impl FnOnce(&mut ClusterModel, Instant) -> T) -> T {
        self.shared.control(f)
    }
}

/// Where the model's output for one connection goes.
struct Route {
    writer: mpsc::UnboundedSender<Bytes>,
    reader: AbortHandle,
}

/// What every node host shares: the model, the connections, the clock it has seen.
struct Shared {
    model: RefCell<ClusterModel>,
    routes: RefCell<BTreeMap<ConnId, Route>>,
    next_conn: Cell<u64>,
    /// The latest instant given to the model: hosts run one after the other over the
    /// same stretch of virtual time, so the instants they see are made monotonic here.
    last_seen: Cell<Instant>,
    /// Signalled after every input, so the node hosts re-arm the model's timer.
    changed: Notify,
}

impl Shared {
    /// The model's time now: the simulated clock, never earlier than an instant it has
    /// already seen.
    fn now(&self) -> Instant {
        let now = clock::now().max(self.last_seen.get());
        self.last_seen.set(now);
        now
    }

    /// Feeds the model one input or control, then delivers what it sent.
    fn control<T>(&self, f: impl FnOnce(&mut ClusterModel, Instant) -> T) -> T {
        let now = self.now();
        let result = f(&mut self.model.borrow_mut(), now);
        self.deliver();
        self.changed.notify_waiters();
        result
    }

    /// Hands the model's outputs to their connections' writers.
    fn deliver(&self) {
        let outputs: Vec<Output> =
            std::iter::from_fn(|| self.model.borrow_mut().poll_output()).collect();
        let mut routes = self.routes.borrow_mut();
        for output in outputs {
            match output {
                Output::Send { conn, bytes } => {
                    if let Some(route) = routes.get(&conn) {
                        // A writer that is gone has already told the model it closed.
                        let _ = route.writer.send(bytes);
                    }
                }
                Output::Close { conn } => {
                    // The writer flushes what is queued, then closes its half.
                    if let Some(route) = routes.remove(&conn) {
                        route.reader.abort();
                    }
                }
                _ => {}
            }
        }
    }

    /// A client connected to node `node`: start its reader and writer.
    fn accept(self: &Rc<Self>, node: usize, stream: TcpStream) {
        let conn = ConnId(self.next_conn.get());
        self.next_conn.set(conn.0 + 1);
        let (mut read_half, mut write_half) = stream.into_split();
        let (writer, mut queued) = mpsc::unbounded_channel::<Bytes>();
        tokio::task::spawn_local(async move {
            while let Some(bytes) = queued.recv().await {
                if write_half.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let shared = Rc::clone(self);
        let reader = tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match read_half.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let data = &buf[..n];
                        shared.control(|model, now| model.handle_data(conn, data, now));
                    }
                }
            }
            shared.routes.borrow_mut().remove(&conn);
            shared.control(|model, now| model.handle_close(conn, now));
        });
        let route = Route {
            writer,
            reader: reader.abort_handle(),
        };
        self.routes.borrow_mut().insert(conn, route);
        self.control(|model, now| model.handle_connect(node, conn, now));
    }

    /// Fires the model's timers (commits, session checks, elections) when they are due,
    /// and keeps [`last_seen`](Self::last_seen) within [`CLOCK_RESOLUTION`] of the
    /// simulated time. Every running node runs this; the first to wake does the work.
    async fn fire_timers(&self) {
        loop {
            let changed = self.changed.notified();
            let now = self.now();
            let deadline = self.model.borrow().poll_timeout();
            let due = deadline.is_some_and(|at| at <= now + CLOCK_RESOLUTION);
            let wait = match deadline {
                Some(at) if due => at.saturating_duration_since(now),
                _ => CLOCK_RESOLUTION,
            };
            tokio::select! {
                biased;
                () = changed => {}
                () = tokio::time::sleep(wait) => {
                    if due {
                        self.control(|model, now| model.handle_timeout(now));
                    }
                }
            }
        }
    }
}

/// Marks node `n` up in the model while its host's software runs; a crash (which drops
/// the software) kills the node.
struct NodeUp {
    shared: Rc<Shared>,
    node: usize,
}

impl NodeUp {
    fn start(shared: Rc<Shared>, node: usize) -> NodeUp {
        if !shared.model.borrow().is_up(node) {
            // Only an unknown node fails, and the hosts are made from the model's nodes.
            let _ = shared.control(|model, now| model.restart_node(node, now));
        }
        NodeUp { shared, node }
    }
}

impl Drop for NodeUp {
    fn drop(&mut self) {
        // No clock can be read while turmoil tears the host down: the node dies at the
        // last instant the cluster saw (at most `CLOCK_RESOLUTION` ago).
        let at = self.shared.last_seen.get();
        let _ = self.shared.model.borrow_mut().kill_node(self.node, at);
        self.shared.deliver();
        self.shared.changed.notify_waiters();
    }
}

/// The software of node `n`'s host.
async fn serve(shared: Rc<Shared>, node: usize, port: u16) -> turmoil::Result {
    let _up = NodeUp::start(Rc::clone(&shared), node);
    let listener = TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).await?;
    let timers = Rc::clone(&shared);
    let _timers = AbortOnDrop(
        tokio::task::spawn_local(async move { timers.fire_timers().await }).abort_handle(),
    );
    loop {
        let (stream, _) = listener.accept().await?;
        shared.accept(node, stream);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
