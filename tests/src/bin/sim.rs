//! The simulator's command line: many seeds in parallel for CI, or one seed replayed
//! with its full trace.
//!
//! ```text
//! sim --seeds 2000 --virtual-secs 60 [--first-seed N] [--threads 2] [--variant NAME]
//!     [--frames-per-input N|drawn|none]
//! sim --seed N [--virtual-secs 60] [--trace] [--variant NAME] [--frames-per-input ...]
//! ```
//! `--frames-per-input` bounds the answer frames one input hands each client core (a
//! number, `drawn`: each client process draws none, 1, 2 or the adapters' bound; default
//! `none`).
//! Exits 1 if any seed fails, after printing each failure with its replay command.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use pyxis_sim::{run_once, run_seed, InputTurns, KnownGap, RunReport, SimConfig, Stats, Variant};

struct Args {
    seeds: u64,
    first_seed: u64,
    seed: Option<u64>,
    virtual_secs: u64,
    threads: usize,
    trace: bool,
    variant: Variant,
    gaps: Vec<KnownGap>,
    input_turns: InputTurns,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seeds: 100,
        first_seed: 0,
        seed: None,
        virtual_secs: 60,
        threads: 2,
        trace: false,
        variant: Variant::Correct,
        gaps: Vec::new(),
        input_turns: InputTurns::Unbounded,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--seeds" => a.seeds = num(value("--seeds")?)?,
            "--first-seed" => a.first_seed = num(value("--first-seed")?)?,
            "--seed" => a.seed = Some(num(value("--seed")?)?),
            "--virtual-secs" => a.virtual_secs = num(value("--virtual-secs")?)?,
            "--threads" => a.threads = num(value("--threads")?)?.clamp(1, 64) as usize,
            "--variant" => a.variant = value("--variant")?.parse()?,
            "--frames-per-input" => a.input_turns = value("--frames-per-input")?.parse()?,
            "--trace" => a.trace = true,
            "--exercise-known-gaps" => a.gaps = KnownGap::ALL.to_vec(),
            "--exercise-gap" => {
                let n = num(value("--exercise-gap")?)?;
                let gap = KnownGap::from_number(n).ok_or(format!(
                    "no known gap {n} (gap 1 is fixed: default runs cover it)"
                ))?;
                if !a.gaps.contains(&gap) {
                    a.gaps.push(gap);
                }
            }
            "-h" | "--help" => {
                return Err("usage: sim --seeds N [--first-seed N] [--virtual-secs S] [--threads T] [--variant V] [--frames-per-input N|drawn|none] [--exercise-gap N]... [--exercise-known-gaps]\n       sim --seed N [--virtual-secs S] [--trace] [--variant V] [--frames-per-input N|drawn|none] [--exercise-gap N]...".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = args.seed {
        return replay(&args, seed);
    }
    many(&args)
}

fn replay(args: &Args, seed: u64) -> ExitCode {
    let mut config = SimConfig::new(seed, args.virtual_secs);
    config.variant = args.variant;
    config.exercise = args.gaps.clone();
    config.input_turns = args.input_turns;
    config.keep_all = args.trace;
    config.trace_tail = 60;
    let report = run_once(&config);
    for step in &report.all {
        println!("{step}");
    }
    println!(
        "trace hash {:#x}, stats {:?}",
        report.trace_hash, report.stats
    );
    if report.passed() {
        println!("seed {seed}: all oracles held");
        ExitCode::SUCCESS
    } else {
        println!("{}", report.failure_text());
        ExitCode::FAILURE
    }
}

fn many(args: &Args) -> ExitCode {
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let failures: Mutex<Vec<RunReport>> = Mutex::new(Vec::new());
    let totals: Mutex<Stats> = Mutex::new(Stats::default());
    std::thread::scope(|s| {
        for _ in 0..args.threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.seeds {
                    break;
                }
                let mut config = SimConfig::new(args.first_seed + i, args.virtual_secs);
                config.variant = args.variant;
                config.exercise = args.gaps.clone();
                config.input_turns = args.input_turns;
                let report = run_seed(&config);
                if let Ok(mut t) = totals.lock() {
                    add(&mut t, &report.stats);
                }
                if !report.passed() {
                    eprintln!("{}", report.failure_text());
                    if let Ok(mut f) = failures.lock() {
                        f.push(report);
                    }
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let failed = failures.lock().map(|f| f.len()).unwrap_or(0);
    let t = totals.lock().map(|t| t.clone()).unwrap_or_default();
    println!(
        "sim: {} seeds x {} virtual s ({}, frames per input {}), each run twice: {:.1} s wall, {:.1} seeds/s",
        args.seeds,
        args.virtual_secs,
        args.variant,
        args.input_turns,
        secs,
        args.seeds as f64 / secs.max(1e-9)
    );
    println!(
        "sim: {} ops ({} ok), {} faults, {} connects, {} expiries, {} watch events ({} inferred), {} writes answered kAgain, {} re-registrations of every watch, {} held inputs resumed, {} steps",
        t.submitted, t.succeeded, t.faults, t.connects, t.expiries, t.watch_events, t.inferred_events, t.again_writes, t.rearm_alls, t.resumed_inputs, t.steps
    );
    println!(
        "sim: {} passed, {} failed",
        args.seeds - failed as u64,
        failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn add(t: &mut Stats, s: &Stats) {
    t.submitted += s.submitted;
    t.succeeded += s.succeeded;
    t.watch_events += s.watch_events;
    t.inferred_events += s.inferred_events;
    t.faults += s.faults;
    t.connects += s.connects;
    t.expiries += s.expiries;
    t.again_writes += s.again_writes;
    t.rearm_alls += s.rearm_alls;
    t.resumed_inputs += s.resumed_inputs;
    t.steps += s.steps;
}
