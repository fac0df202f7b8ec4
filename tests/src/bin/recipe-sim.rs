//! `recipe-sim`: the recipes of `pyxis-recipes` under faults in a turmoil simulation,
//! checked by the oracles of `pyxis_sim::recipes`.
//!
//! ```text
//! recipe-sim [--seeds N] [--first-seed S] [--threads T] [--broken VARIANT]
//! recipe-sim --seed S [--broken VARIANT]     # one seed, with its trace
//! ```
//!
//! Exits 1 if any seed fails (each failure printed with the command that replays it);
//! with `--broken`, exits 1 unless some seed is caught by the oracle meant to catch it.

use std::process::ExitCode;

use pyxis_sim::recipes::{run, Broken, Report};

struct Args {
    first: u64,
    seeds: u64,
    threads: usize,
    one: Option<u64>,
    broken: Broken,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        first: 0,
        seeds: 20,
        threads: 2,
        one: None,
        broken: Broken::Nothing,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--seeds" => args.seeds = number(value()?)?,
            "--first-seed" => args.first = number(value()?)?,
            "--threads" => args.threads = number(value()?)?.max(1) as usize,
            "--seed" => args.one = Some(number(value()?)?),
            "--broken" => args.broken = value()?.parse()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn replay(seed: u64, broken: Broken) -> String {
    let variant = match broken {
        Broken::Nothing => String::new(),
        other => format!(" --broken {other}"),
    };
    format!("cargo run --release -p pyxis-sim --bin recipe-sim -- --seed {seed}{variant}")
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("recipe-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let seeds: Vec<u64> = match args.one {
        Some(seed) => vec![seed],
        None => (args.first..args.first.saturating_add(args.seeds)).collect(),
    };
    // Each seed is a simulation of its own on one thread.
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.threads)
            .map(|worker| {
                let seeds = &seeds;
                let broken = args.broken;
                let threads = args.threads;
                scope.spawn(move || {
                    seeds
                        .iter()
                        .skip(worker)
                        .step_by(threads)
                        .map(|&seed| run(seed, broken))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    if args.one.is_some() {
        for report in &reports {
            println!("seed {}:\n{}", report.seed, report.trace.join("\n"));
        }
    }
    let failed: Vec<&Report> = reports.iter().filter(|r| r.failure.is_some()).collect();
    for report in &failed {
        if let Some((oracle, why)) = &report.failure {
            println!(
                "seed {} FAILED ({oracle:?}): {why}\n  replay: {}",
                report.seed,
                replay(report.seed, args.broken)
            );
        }
    }
    let (acquired, elected, passes) = reports.iter().fold((0, 0, 0), |(a, e, p), r| {
        (a + r.acquired, e + r.elected, p + r.passes)
    });
    println!(
        "{} seeds, {} failed ({} variant); {acquired} locks acquired, {elected} leaders elected, {passes} barrier passes",
        reports.len(),
        failed.len(),
        args.broken
    );
    if reports.len() != seeds.len() {
        println!("a worker panicked");
        return ExitCode::FAILURE;
    }
    match args.broken {
        Broken::Nothing if failed.is_empty() => ExitCode::SUCCESS,
        Broken::Nothing => ExitCode::FAILURE,
        broken => {
            let Some(&(_, meant)) = Broken::VARIANTS.iter().find(|(b, _)| *b == broken) else {
                return ExitCode::FAILURE;
            };
            let caught = failed
                .iter()
                .any(|r| r.failure.as_ref().is_some_and(|f| f.0 == meant));
            if caught {
                println!("the {meant:?} oracle caught the {broken} variant");
                ExitCode::SUCCESS
            } else {
                println!("the {meant:?} oracle did NOT catch the {broken} variant");
                ExitCode::FAILURE
            }
        }
    }
}
