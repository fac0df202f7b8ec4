//! `pyxis bench rewatch`: how long the client takes to re-register N watches after a
//! leader move (which drops every server-side watch), measured until the server model
//! holds all N again; the floor is the same N stat+watch frames pipelined on one raw
//! connection.
//!
//! Owns: arming the watches, the move, polling the model, and [`RewatchReport`]. Must
//! never count a watch as re-armed on the client's word: only the model's view counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyxis_core::EventMask;
use pyxis_testkit::TestCluster;
use serde::Serialize;

use crate::bench::adapter::tokio_client as connect;
use crate::bench::failover::quantile;
use crate::bench::floor::RawSession;
use crate::exit::CliError;

/// How long the re-registration may take before the run is declared failed.
const REARM_DEADLINE: Duration = Duration::from_secs(120);
/// How often the model is asked how many watches it holds.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// Re-registration of N watches after a leader move.
#[derive(Debug, Clone, Serialize)]
pub struct RewatchReport {
    /// Watches held.
    pub watches: usize,
    /// Arming them the first time (one request each, awaited in turn), ms.
    pub first_arm_ms: f64,
    /// Leader moves timed in each variant.
    pub moves: usize,
    /// Leader move (followed by one read) → all N held by the new leader, median, ms.
    pub rearm_ms: f64,
    /// The slowest of those, ms.
    pub rearm_max_ms: f64,
    /// The same with no traffic after the move (the session's ping finds the new
    /// leader), median, ms.
    pub rearm_idle_ms: f64,
    /// The slowest of those, ms.
    pub rearm_idle_max_ms: f64,
    /// The floor: N stat+watch frames pipelined in one write on a fresh raw session,
    /// median, ms.
    pub floor_ms: f64,
    /// `rearm_ms / floor_ms`.
    pub ratio: f64,
}

impl RewatchReport {
    /// The human rendering.
    pub fn human(&self) -> String {
        format!(
            "re-registering {} watches after a leader move (embedded 3-node cluster)\n\
             medians of {} moves each\n\
             client: {:.1} ms ({:.2} µs per watch; max {:.1} ms) from the move (and one read) until the new leader holds all of them\n\
             idle:   {:.1} ms (max {:.1} ms) with no traffic after the move (the ping finds the new leader)\n\
             floor:  {:.1} ms for the same stat+watch frames pipelined on one raw connection\n\
             ratio:  {:.2}x   (first arm, one awaited call per watch: {:.1} ms)\n",
            self.watches,
            self.moves,
            self.rearm_ms,
            self.rearm_ms * 1000.0 / self.watches.max(1) as f64,
            self.rearm_max_ms,
            self.rearm_idle_ms,
            self.rearm_idle_max_ms,
            self.floor_ms,
            self.ratio,
            self.first_arm_ms,
        )
    }
}

/// How many of `paths` the model holds a watch on for `sid`.
fn held(cluster: &TestCluster, sid: u64, paths: &Arc<Vec<String>>) -> Result<usize, CliError> {
    let paths = Arc::clone(paths);
    cluster
        .with_model(move |m, _| paths.iter().filter(|p| m.has_watch(sid, p)).count())
        .map_err(|e| CliError::Bench(e.to_string()))
}

/// Arms `count` watches, moves the leader `moves` times in each variant (idle, then
/// followed by a read), and times their re-registration.
pub async fn run(
    cluster: &Arc<TestCluster>,
    count: usize,
    moves: usize,
) -> Result<RewatchReport, CliError> {
    let addrs = cluster.addrs();
    let root = super::data_root("rewatch");
    let paths: Arc<Vec<String>> = Arc::new((0..count).map(|i| format!("{root}/w{i}")).collect());

    // Floor first, each time on a fresh session (its watches are dropped with it).
    let mut floors = Vec::with_capacity(moves);
    for _ in 0..moves.max(1) {
        let mut raw = RawSession::open(&addrs).await?;
        let armed = raw
            .arm_watches(&paths, pyxis_proto::event_type::CREATE)
            .await?;
        floors.push(ms(armed));
        raw.close().await;
    }

    let client = connect(&addrs).await?;
    let sid = client
        .sid()
        .ok_or_else(|| CliError::Bench("no session id".into()))?;
    let start = Instant::now();
    let mut watches = Vec::with_capacity(count);
    for path in paths.iter() {
        let watch = client
            .watch(path, EventMask::CREATE, false)
            .await
            .map_err(|e| CliError::request("bench rewatch", path, e))?;
        watches.push(watch);
    }
    let first_arm = start.elapsed();
    let control = Arc::clone(cluster);
    let check = Arc::clone(&paths);
    let before = tokio::task::spawn_blocking(move || held(&control, sid, &check))
        .await
        .map_err(|e| CliError::Bench(e.to_string()))??;
    if before != count {
        return Err(CliError::Bench(format!(
            "only {before} of {count} watches held before the move"
        )));
    }

    // First with no traffic (the session's ping finds the new leader), then with one read
    // sent right after the move (as any application traffic would).
    let mut idle = Vec::with_capacity(moves);
    let mut nudged = Vec::with_capacity(moves);
    for _ in 0..moves.max(1) {
        idle.push(ms(move_and_wait(cluster, sid, &paths, None).await?));
        nudged.push(ms(move_and_wait(cluster, sid, &paths, Some(&client)).await?));
    }
    drop(watches);
    client.close().await;
    for samples in [&mut floors, &mut idle, &mut nudged] {
        samples.sort_by(f64::total_cmp);
    }
    let rearm_ms = quantile(&nudged, 0.5);
    let floor_ms = quantile(&floors, 0.5);
    Ok(RewatchReport {
        watches: count,
        first_arm_ms: ms(first_arm),
        moves: nudged.len(),
        rearm_ms,
        rearm_max_ms: nudged.last().copied().unwrap_or(f64::NAN),
        rearm_idle_ms: quantile(&idle, 0.5),
        rearm_idle_max_ms: idle.last().copied().unwrap_or(f64::NAN),
        floor_ms,
        ratio: rearm_ms / floor_ms.max(1e-9),
    })
}

/// A duration in milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Moves the leader and waits until the model holds every watch of `sid` again; with
/// `nudge`, sends one read right after the move. Returns the time from the move.
async fn move_and_wait(
    cluster: &Arc<TestCluster>,
    sid: u64,
    paths: &Arc<Vec<String>>,
    nudge: Option<&pyxis_tokio::Client>,
) -> Result<Duration, CliError> {
    let control = Arc::clone(cluster);
    let start = Instant::now();
    tokio::task::spawn_blocking(move || {
        let leader = control.leader().unwrap_or(0);
        let to = (leader + 1) % control.addrs().len();
        control.move_leader(to)
    })
    .await
    .map_err(|e| CliError::Bench(e.to_string()))?
    .map_err(|e| CliError::Bench(format!("move leader: {e}")))?;
    if let Some(client) = nudge {
        // Its outcome does not matter: it only makes the client talk to the cluster.
        let _ = client.exists("/").await;
    }
    let control = Arc::clone(cluster);
    let check = Arc::clone(paths);
    tokio::task::spawn_blocking(move || -> Result<Duration, CliError> {
        loop {
            if held(&control, sid, &check)? == check.len() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > REARM_DEADLINE {
                return Err(CliError::Bench(format!(
                    "watches not re-armed within {REARM_DEADLINE:?}"
                )));
            }
            std::thread::sleep(POLL_EVERY);
        }
    })
    .await
    .map_err(|e| CliError::Bench(e.to_string()))?
}
