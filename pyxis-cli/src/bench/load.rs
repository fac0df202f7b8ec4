//! The load benchmark: the client side (C callers sharing K clients of the adapter
//! under measurement, [`super::adapter`]), the alternation of floor and client phases,
//! and the report with ratios to the floor.
//!
//! Owns: setup and teardown of the benchmark's nodes, the client phase, the phase
//! alternation and [`LoadReport`]. Must never measure the floor itself (that is
//! [`super::floor`]) nor change what requests are sent (that is the shared [`Plan`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyxis_core::Error as PyxisError;
use pyxis_tokio::{Client, CreateMode};
use serde::Serialize;

use crate::bench::adapter::{self, Adapter, BenchClient, Target};
use crate::bench::cpu::CpuScope;
use crate::bench::floor::{self, RawSession};
use crate::bench::progress::Progress;
use crate::bench::stats::{micros, throughput_target, Ratios, Recorder, Summary, P99_TARGET};
use crate::bench::task_floor;
use crate::bench::workload::{self, Budget, Plan, Schedule};
use crate::bench::LoadArgs;
use crate::exit::CliError;
use crate::output;

/// The result of one load run at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Requests in flight.
    pub concurrency: usize,
    /// Clients the tasks share.
    pub clients: usize,
    /// The adapter measured.
    pub adapter: Adapter,
    /// The op mix.
    pub mix: String,
    /// Floor/client phase pairs run.
    pub rounds: u32,
    /// Whose CPU time the figures per operation are.
    pub cpu_scope: CpuScope,
    /// The raw-frame floor.
    pub floor: Summary,
    /// The client.
    pub client: Summary,
    /// Client ÷ floor.
    pub ratios: Ratios,
    /// The task floor, when it ran (`--task-floor`).
    pub task_floor: Option<Summary>,
    /// Client ÷ task floor, when it ran.
    pub task_ratios: Option<Ratios>,
    /// Throughput ≥ 0.9× floor with one request in flight, ≥ 0.8× with more.
    pub throughput_ok: bool,
    /// p99 ≤ 1.5× floor.
    pub p99_ok: bool,
}

impl LoadReport {
    /// The human rendering: one table with the floor, the client and the ratios.
    pub fn human(&self) -> String {
        let row = |name: &str, s: &Summary| {
            vec![
                name.to_owned(),
                format!("{:.0}", s.ops_per_sec),
                micros(s.p50_us),
                micros(s.p99_us),
                micros(s.p999_us),
                s.ops.to_string(),
                s.errors.to_string(),
                s.cpu_per_op_us
                    .map_or_else(|| "n/a".to_owned(), |us| format!("{us:.1}µs")),
            ]
        };
        let r = &self.ratios;
        let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
        let ratio_row = |name: &str, r: &Ratios, floor: &Summary| {
            let cpu = match (self.client.cpu_per_op_us, floor.cpu_per_op_us) {
                (Some(c), Some(f)) if f > 0.0 => format!("{:.2}x", c / f),
                _ => String::new(),
            };
            vec![
                name.to_owned(),
                format!("{:.2}x", r.throughput),
                format!("{:.2}x", r.p50),
                format!("{:.2}x", r.p99),
                format!("{:.2}x", r.p999),
                String::new(),
                String::new(),
                cpu,
            ]
        };
        let mut rows = vec![row("floor (raw frames)", &self.floor)];
        if let Some(tasks) = &self.task_floor {
            rows.push(row("task floor (C tasks, channels)", tasks));
        }
        rows.push(row(
            &format!("{} client", self.adapter.crate_name()),
            &self.client,
        ));
        rows.push(ratio_row("client / floor", r, &self.floor));
        if let (Some(tasks), Some(tr)) = (&self.task_floor, &self.task_ratios) {
            rows.push(ratio_row("client / task floor", tr, tasks));
        }
        format!(
            "concurrency {} on {} client(s), mix {}, {} round(s); CPU/op: {}\n{}target: throughput >= {}x floor: {} ({:.2}x); p99 <= {P99_TARGET}x floor: {} ({:.2}x)\n",
            self.concurrency,
            self.clients,
            self.mix,
            self.rounds,
            self.cpu_scope.describe(),
            output::table(
                &["", "ops/s", "p50", "p99", "p99.9", "ops", "errors", "CPU/op"],
                &rows
            ),
            throughput_target(self.concurrency),
            verdict(self.throughput_ok),
            r.throughput,
            verdict(self.p99_ok),
            r.p99,
        )
    }
}

/// Runs the load benchmark at each requested concurrency.
pub async fn run(
    addrs: &[String],
    args: &LoadArgs,
    progress: &Progress,
) -> Result<Vec<LoadReport>, CliError> {
    let mut reports = Vec::new();
    for &concurrency in &args.concurrency {
        let plan = Plan {
            mix: args.mix,
            concurrency,
            data: bytes::Bytes::from(vec![b'x'; args.size]),
            root: super::data_root(&format!("c{concurrency}")),
        };
        let admin = adapter::tokio_client(addrs).await?;
        setup(&admin, &plan).await?;
        let result = measure(addrs, args, &plan, progress).await;
        // Teardown even after a failed measurement; its own failure is secondary.
        let _ = teardown(&admin, &plan).await;
        admin.close().await;
        reports.push(result?);
    }
    Ok(reports)
}

async fn measure(
    addrs: &[String],
    args: &LoadArgs,
    plan: &Plan,
    progress: &Progress,
) -> Result<LoadReport, CliError> {
    let clients = args.clients.clamp(1, plan.concurrency);
    let mut handles = Vec::with_capacity(clients);
    for _ in 0..clients {
        handles.push(BenchClient::connect(args.adapter, addrs).await?);
    }
    // The floor runs the same way: K raw sessions, slot i on session i mod K.
    let mut raws = Vec::with_capacity(clients);
    for _ in 0..clients {
        raws.push(RawSession::open(addrs).await?);
    }
    // Warm every path up (connections, caches, allocator) before measuring.
    let warm = || Arc::new(Budget::new(None, Some(plan.concurrency as u64 * 20)));
    let idle = || Arc::new(AtomicU64::new(0));
    (raws, _, _) = floor_phase(raws, plan, warm(), idle()).await?;
    if args.task_floor {
        (raws, _, _) = task_floor::phase(raws, plan, warm(), idle()).await?;
    }
    client_phase(&handles, plan, warm(), idle()).await?;

    let scope = if args.adapter.runs_on_the_runtime() {
        CpuScope::for_threads(args.threads)
    } else {
        CpuScope::Process
    };
    let measured = || {
        Arc::new(Budget::new(
            args.phase_duration()
                .and_then(|d| Instant::now().checked_add(d)),
            args.ops,
        ))
    };
    let mut floor_total = Recorder::new();
    let mut task_total = Recorder::new();
    let mut client_total = Recorder::new();
    for round in 0..args.rounds {
        let label = format!("c={} round {}/{}", plan.concurrency, round + 1, args.rounds);
        let counter = progress.phase(&format!("{label}: floor"));
        let cpu = scope.now();
        let (back, sessions, elapsed) = floor_phase(raws, plan, measured(), counter).await?;
        raws = back;
        floor_total.pool(&sessions, elapsed, used_since(scope, cpu));
        if args.task_floor {
            let counter = progress.phase(&format!("{label}: task floor"));
            let cpu = scope.now();
            let (back, slots, elapsed) = task_floor::phase(raws, plan, measured(), counter).await?;
            raws = back;
            task_total.pool(&slots, elapsed, used_since(scope, cpu));
        }
        let counter = progress.phase(&format!("{label}: client"));
        let cpu = scope.now();
        let (tasks, elapsed) = client_phase(&handles, plan, measured(), counter).await?;
        client_total.pool(&tasks, elapsed, used_since(scope, cpu));
    }
    progress.finish_phase();
    for raw in raws {
        raw.close().await;
    }
    for handle in &handles {
        handle.close().await;
    }
    let floor = floor_total.summary();
    let client = client_total.summary();
    let ratios = Ratios::of(&client, &floor);
    let task_floor = args.task_floor.then(|| task_total.summary());
    let task_ratios = task_floor.as_ref().map(|tasks| Ratios::of(&client, tasks));
    Ok(LoadReport {
        concurrency: plan.concurrency,
        clients,
        adapter: args.adapter,
        mix: plan.mix.to_string(),
        rounds: args.rounds,
        cpu_scope: scope,
        floor,
        client,
        ratios,
        task_floor,
        task_ratios,
        throughput_ok: ratios.throughput_ok(plan.concurrency),
        p99_ok: ratios.p99_ok(),
    })
}

/// CPU time used by `scope` since it read `before`.
fn used_since(scope: CpuScope, before: Option<Duration>) -> Option<Duration> {
    Some(scope.now()?.saturating_sub(before?))
}

/// Creates the run's root and one node per slot (data of the configured size).
async fn setup(client: &Client, plan: &Plan) -> Result<(), CliError> {
    match client
        .create(&plan.root, bytes::Bytes::new(), CreateMode::Persistent)
        .await
    {
        Ok(()) | Err(PyxisError::Exists { .. }) => {}
        Err(e) => return Err(CliError::request("bench setup", &plan.root, e)),
    }
    for slot in 0..plan.concurrency {
        let node = plan.node(slot);
        match client
            .create(&node, plan.data.clone(), CreateMode::Persistent)
            .await
        {
            Ok(()) | Err(PyxisError::Exists { .. }) => {}
            Err(e) => return Err(CliError::request("bench setup", &node, e)),
        }
    }
    Ok(())
}

/// Removes what setup created (and any scratch node a failed run left).
async fn teardown(client: &Client, plan: &Plan) -> Result<(), CliError> {
    for slot in 0..plan.concurrency {
        for path in [plan.node(slot), plan.scratch(slot)] {
            match client.delete(&path).await {
                Ok(()) | Err(PyxisError::NotFound { .. }) => {}
                Err(e) => return Err(CliError::request("bench teardown", &path, e)),
            }
        }
    }
    client
        .delete(&plan.root)
        .await
        .map_err(|e| CliError::request("bench teardown", &plan.root, e))
}

/// One floor phase: one task per raw session (session k serves the slots client k
/// serves on the client side), so that a multi-thread runtime spreads them as it
/// spreads the clients. Returns the sessions, each one's recorder and the phase's
/// length (timed as the client phase is: from before the tasks start to the last one's
/// end).
async fn floor_phase(
    raws: Vec<RawSession>,
    plan: &Plan,
    budget: Arc<Budget>,
    progress: Arc<AtomicU64>,
) -> Result<(Vec<RawSession>, Vec<Recorder>, Duration), CliError> {
    let sessions = raws.len();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (k, mut raw) in raws.into_iter().enumerate() {
        let plan = plan.clone();
        let budget = Arc::clone(&budget);
        let progress = Arc::clone(&progress);
        tasks.spawn(async move {
            let result = floor::run(&mut raw, &plan, (k, sessions), &budget, &progress).await;
            (k, raw, result)
        });
    }
    let mut back = Vec::with_capacity(sessions);
    let mut recorders = Vec::with_capacity(sessions);
    while let Some(task) = tasks.join_next().await {
        let (k, raw, result) = task.map_err(|e| CliError::Bench(format!("floor task: {e}")))?;
        back.push((k, raw));
        recorders.push(result?);
    }
    let elapsed = start.elapsed();
    Ok((floor::in_session_order(back), recorders, elapsed))
}

/// One slot's bookkeeping in a client phase: its budget, its schedule, its recorder.
/// One clock read per operation, as on the floor: an operation's end is the next one's
/// start.
struct Slot {
    budget: Arc<Budget>,
    progress: Arc<AtomicU64>,
    schedule: Schedule,
    recorder: Recorder,
    started: Instant,
}

impl Slot {
    /// The next operation to run, or `None` once the budget is spent.
    fn next(&mut self) -> Option<workload::OpKind> {
        self.budget
            .take(self.started)
            .then(|| self.schedule.next_kind())
    }

    /// The operation begun at the last `next` ended now, successfully or not.
    fn done(&mut self, ok: bool) {
        let now = Instant::now();
        self.recorder.record(now - self.started);
        if !ok {
            self.recorder.errors += 1;
        }
        self.progress
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.started = now;
    }
}

/// One client phase: `plan.concurrency` callers, slot `i` on client `i % K`: tasks on
/// this runtime for an async adapter, threads for the blocking one. Returns each
/// caller's recorder and the phase's length; the recorders are made before the phase
/// starts and merged after it ends, as the floor's one recorder is, so that this
/// bookkeeping (large histograms) is not counted in the client's time or CPU.
async fn client_phase(
    clients: &[BenchClient],
    plan: &Plan,
    budget: Arc<Budget>,
    progress: Arc<AtomicU64>,
) -> Result<(Vec<Recorder>, Duration), CliError> {
    let mut recorders: Vec<Recorder> = (0..plan.concurrency).map(|_| Recorder::new()).collect();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..plan.concurrency {
        let mut run = Slot {
            budget: Arc::clone(&budget),
            progress: Arc::clone(&progress),
            schedule: Schedule::new(plan.mix, slot),
            recorder: recorders.pop().unwrap_or_default(),
            started: Instant::now(),
        };
        let target = Target {
            node: plan.node(slot),
            scratch: plan.scratch(slot),
            data: plan.data.clone(),
        };
        match clients[slot % clients.len()].clone() {
            BenchClient::Async(client) => tasks.spawn(async move {
                run.started = Instant::now();
                while let Some(kind) = run.next() {
                    let ok = adapter::run_async(&client, kind, &target).await;
                    run.done(ok);
                }
                run.recorder
            }),
            BenchClient::Blocking(client) => tasks.spawn_blocking(move || {
                run.started = Instant::now();
                while let Some(kind) = run.next() {
                    let ok = adapter::run_blocking(&client, kind, &target);
                    run.done(ok);
                }
                run.recorder
            }),
        };
    }
    let mut done = Vec::with_capacity(plan.concurrency);
    while let Some(task) = tasks.join_next().await {
        done.push(task.map_err(|e| CliError::Bench(format!("load task: {e}")))?);
    }
    Ok((done, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(ops_per_sec: f64, cpu_per_op_us: f64) -> Summary {
        Summary {
            ops: 1000,
            errors: 0,
            seconds: 1000.0 / ops_per_sec,
            ops_per_sec,
            mean_us: 100.0,
            p50_us: 90.0,
            p99_us: 200.0,
            p999_us: 300.0,
            max_us: 400.0,
            cpu_per_op_us: Some(cpu_per_op_us),
        }
    }

    fn report(task_floor: Option<Summary>) -> LoadReport {
        let (floor, client) = (summary(1000.0, 1.0), summary(800.0, 2.0));
        let ratios = Ratios::of(&client, &floor);
        LoadReport {
            concurrency: 64,
            clients: 1,
            adapter: Adapter::AsyncStd,
            mix: "read".to_owned(),
            rounds: 1,
            cpu_scope: CpuScope::Process,
            floor,
            client,
            ratios,
            task_floor,
            task_ratios: task_floor.map(|tasks| Ratios::of(&client, &tasks)),
            throughput_ok: ratios.throughput_ok(64),
            p99_ok: ratios.p99_ok(),
        }
    }

    #[test]
    fn the_table_shows_the_task_floor_and_the_client_against_it_only_when_it_ran() {
        let without = report(None).human();
        assert!(without.contains("client / floor"), "{without}");
        assert!(without.contains("pyxis-async-std client"), "{without}");
        assert!(!without.contains("task floor"), "{without}");

        let with = report(Some(summary(500.0, 4.0))).human();
        let line = |name: &str| {
            with.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} row in\n{with}"))
                .to_owned()
        };
        assert!(line("task floor (C tasks, channels)").contains("500"));
        // Client against the task floor: throughput 800 / 500, CPU 2 / 4.
        let against = line("client / task floor");
        assert!(
            against.contains("1.60x") && against.contains("0.50x"),
            "{against}"
        );
        // The verdict stays the raw floor's: 800 / 1000, not 800 / 500.
        assert!(with.contains("floor: ok (0.80x)"), "{with}");
    }
}
