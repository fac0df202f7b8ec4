//! `pyxis bench`: end-to-end benchmarks of the client against a floor measured in the
//! same run.
//!
//! - `pyxis bench` (load): an op mix at concurrency C (callers sharing one client, or K
//!   clients, of the adapter `--adapter` names, [`adapter`]), alternating with the same
//!   requests as pre-encoded frames on raw pipelined connections, one per client (the
//!   floor, [`floor`]); prints both and their ratios. `--task-floor` adds a third side: the same frames sent by `C` tasks
//!   through channels to one connection task per session ([`task_floor`]), which
//!   separates the runtime's cost of `C` tasks from the client's own.
//! - `pyxis bench failover`: time from a leader move to the next successful write.
//! - `pyxis bench rewatch`: time to re-register N watches after a leader move, against a
//!   raw pipelined arm of the same watches.
//! - `pyxis bench memory`: resident memory of N idle clients in one process.
//!
//! By default the load runs against an embedded 3-node `TestCluster` with no commit
//! delay (so the client, not the server model, is what is measured); `--addrs` or
//! `PYXIS_ADDRS` point it at a real cluster instead.
//!
//! Owns: the bench grammar, choosing the target cluster and runtime, and printing the
//! reports. Must never be used as a correctness test: it reports, it does not assert.

pub mod adapter;
pub mod cpu;
pub mod failover;
pub mod floor;
pub mod load;
pub mod memory;
pub mod progress;
pub mod rewatch;
pub mod stats;
pub mod task_floor;
pub mod workload;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use pyxis_testkit::{RunnerConfig, TestCluster};

use crate::args::{parse_duration, GlobalArgs};
use crate::exit::CliError;
use crate::output;
use progress::{Progress, MIN_RUN_FOR_BAR};
use workload::Mix;

/// The root of a benchmark's nodes for `run` (`c8`, `failover`, `rewatch`): unique per
/// process, and a name real servers accept. The original server refuses to create any
/// path whose string starts with `/pyxis` (`/pyxis-bench-…` included).
///
/// ```
/// let root = pyxis_cli::bench::data_root("c8");
/// assert!(root.starts_with("/bench-") && root.ends_with("-c8"));
/// assert!(!root.starts_with("/pyxis"));
/// ```
pub fn data_root(run: &str) -> String {
    format!("/bench-{}-{run}", std::process::id())
}

/// Arguments of `pyxis bench`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// A measurement other than the load run.
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    /// Options of the load run (the default mode).
    #[command(flatten)]
    pub load: LoadArgs,
}

/// The benchmark modes beside the load run.
#[derive(Debug, Subcommand)]
pub enum BenchMode {
    /// Time from a leader move to the next successful write (embedded cluster only).
    Failover(FailoverArgs),
    /// Time to re-register watches after a leader move (embedded cluster only).
    Rewatch(RewatchArgs),
    /// Resident memory of idle clients in one process.
    Memory(MemoryArgs),
}

/// Options of the load run.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Op mix: read, write, create-delete, or weights like read=8,write=2.
    #[arg(long, default_value = "read", value_parser = Mix::parse)]
    pub mix: Mix,
    /// Requests in flight (tasks); several values run one after another.
    #[arg(short = 'c', long, default_value = "1,64", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=4096).map(usize::from))]
    pub concurrency: Vec<usize>,
    /// Clients the tasks share (task i uses client i mod K).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    pub clients: usize,
    /// Length of each measured phase (floor and client alike).
    #[arg(long, value_parser = parse_duration, default_value = "2s", conflicts_with = "ops")]
    pub duration: Option<Duration>,
    /// Operations per measured phase instead of a duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: Option<u64>,
    /// Floor/client phase pairs, alternated (their figures are pooled).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Bytes of data per write or create.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=1_000_000).map(|v| v as usize))]
    pub size: usize,
    /// Runtime worker threads for the client and the floor (1: a current-thread runtime).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64).map(usize::from))]
    pub threads: usize,
    /// Also run the task floor in each round: the same frames sent by C tasks through
    /// channels to one connection task per session, the plainest task-per-request design
    /// on the same runtime (reported with client / task floor).
    #[arg(long)]
    pub task_floor: bool,
    /// The adapter whose client is measured.
    #[arg(long, value_enum, default_value_t = adapter::Adapter::Tokio)]
    pub adapter: adapter::Adapter,
}

impl LoadArgs {
    /// The length of each phase: none when `--ops` bounds the phases instead.
    pub fn phase_duration(&self) -> Option<Duration> {
        if self.ops.is_some() {
            None
        } else {
            self.duration
        }
    }
}

/// Options of `pyxis bench failover`.
#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// Leader moves to time.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub moves: u32,
}

/// Options of `pyxis bench rewatch`.
#[derive(Debug, Args)]
pub struct RewatchArgs {
    /// Watches to hold.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub watches: u32,
    /// Leader moves to time in each variant (idle, and followed by a read).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub moves: u32,
}

/// Options of `pyxis bench memory`.
#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Idle clients to open.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,
    /// The adapter whose clients are measured.
    #[arg(long, value_enum, default_value_t = adapter::Adapter::Tokio)]
    pub adapter: adapter::Adapter,
    /// Internal: measure only this kind in this process (used by the parent run).
    #[arg(long, hide = true, value_enum)]
    pub kind: Option<memory::MemoryKind>,
}

/// Where the benchmark's cluster is.
pub enum Target {
    /// An embedded test cluster (started by the benchmark).
    Embedded(Arc<TestCluster>),
    /// The `--addrs` servers.
    Remote(Vec<String>),
}

impl Target {
    /// The client addresses.
    pub fn addrs(&self) -> Vec<String> {
        match self {
            Target::Embedded(cluster) => cluster.addrs(),
            Target::Remote(addrs) => addrs.clone(),
        }
    }

    /// A description for reports.
    pub fn describe(&self) -> String {
        match self {
            Target::Embedded(c) => format!("embedded test cluster ({} nodes)", c.addrs().len()),
            Target::Remote(addrs) => addrs.join(","),
        }
    }
}

/// Starts the embedded benchmark cluster: `nodes` nodes with the fast settings and no
/// commit delay, so that answers come as fast as the model can give them.
pub fn embedded_cluster(nodes: usize) -> Result<Arc<TestCluster>, CliError> {
    let mut config = RunnerConfig::fast();
    config.model.commit_delay = Duration::ZERO;
    config.model.history_limit = 1_000;
    TestCluster::try_start(nodes, config)
        .map(Arc::new)
        .map_err(|e| CliError::Bench(format!("cannot start the embedded cluster: {e}")))
}

/// Runs `pyxis bench`.
pub fn run(global: &GlobalArgs, args: &BenchArgs) -> Result<(), CliError> {
    let remote = global.addrs.as_ref().filter(|a| !a.is_empty()).cloned();
    let threads = args.load.threads;
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let text = match &args.mode {
        None => {
            let target = match remote {
                Some(addrs) => Target::Remote(addrs),
                None => Target::Embedded(embedded_cluster(3)?),
            };
            let load = &args.load;
            let pairs = 2 * u64::from(load.rounds) * load.concurrency.len() as u64;
            let long = match load.phase_duration() {
                Some(d) => u32::try_from(pairs)
                    .ok()
                    .and_then(|n| d.checked_mul(n))
                    .is_none_or(|total| total >= MIN_RUN_FOR_BAR),
                None => true,
            };
            let progress = Progress::new(long, pairs, load.phase_duration(), load.ops);
            let reports = runtime.block_on(load::run(&target.addrs(), load, &progress))?;
            drop(progress);
            if global.json {
                output::json(&serde_json::json!({
                    "target": target.describe(),
                    "threads": threads,
                    "runs": reports,
                }))
            } else {
                let mut text = format!("pyxis bench: {} against {}\n", load.mix, target.describe());
                for report in &reports {
                    text.push('\n');
                    text.push_str(&report.human());
                }
                text
            }
        }
        Some(BenchMode::Failover(f)) => {
            let cluster = embedded_only(remote, "failover")?;
            let report = runtime.block_on(failover::run(&cluster, f.moves))?;
            render(global.json, &report, failover::FailoverReport::human)
        }
        Some(BenchMode::Rewatch(r)) => {
            let cluster = embedded_only(remote, "rewatch")?;
            let report =
                runtime.block_on(rewatch::run(&cluster, r.watches as usize, r.moves as usize))?;
            render(global.json, &report, rewatch::RewatchReport::human)
        }
        Some(BenchMode::Memory(m)) => match (m.kind, remote) {
            (Some(kind), Some(addrs)) => {
                let measured = runtime.block_on(memory::measure(
                    &addrs,
                    kind,
                    m.adapter,
                    m.clients as usize,
                ))?;
                output::json(&measured)
            }
            (Some(_), None) => {
                return Err(CliError::Usage("bench memory --kind needs --addrs".into()))
            }
            (None, remote) => {
                let report = memory::run(remote, m.adapter, m.clients as usize)?;
                render(global.json, &report, memory::MemoryReport::human)
            }
        },
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn render<T: serde::Serialize>(json: bool, report: &T, human: impl Fn(&T) -> String) -> String {
    if json {
        output::json(report)
    } else {
        human(report)
    }
}

fn embedded_only(remote: Option<Vec<String>>, mode: &str) -> Result<Arc<TestCluster>, CliError> {
    match remote {
        Some(_) => Err(CliError::Usage(format!(
            "bench {mode} moves the leader, which needs the embedded cluster: drop --addrs/PYXIS_ADDRS"
        ))),
        None => embedded_cluster(3),
    }
}
