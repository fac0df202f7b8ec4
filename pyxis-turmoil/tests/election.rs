//! The election example's service (`examples/simulated_election/service.rs`) under
//! random faults, over many seeds: three instances and a three-node Pyxis cluster as
//! turmoil hosts; the leading instance's host is cut off from the cluster, and instances
//! and Pyxis nodes crash and restart, the Pyxis leader moves and no-leader windows open,
//! at times drawn from the seed.
//!
//! The service's promises, checked on every seed:
//! - at most one instance acts as leader at any instant of virtual time;
//! - after the faults stop, every instance is registered again under `/services` and
//!   exactly one leads, the one holding `/election/leader`.
//!
//! A failing seed prints the command that replays it alone with its trace:
//! `PYXIS_TURMOIL_SEED=<seed> cargo test -p pyxis-turmoil --test election -- --nocapture`.
//! `PYXIS_TURMOIL_SEEDS=<n>` runs n seeds instead of the default, and
//! `PYXIS_TURMOIL_FIRST_SEED=<f>` starts them at f instead of 0 (CI runs a range that moves
//! with every commit this way).

#[path = "../examples/simulated_election/service.rs"]
mod service;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pyxis_tokio::Options;
use pyxis_turmoil::{connect, since_start, Cluster};
use service::{Instance, Report, LEADER, SERVICES};
use turmoil::Sim;

/// Seeds run by default.
const SEEDS: u64 = 300;
/// turmoil's step: messages move and hosts run in steps of this much virtual time.
const TICK: Duration = Duration::from_millis(50);
const NAMES: [&str; 3] = ["svc-0", "svc-1", "svc-2"];

/// Who led when, and everything else that happened, in the order it happened.
#[derive(Clone, Default)]
struct Ledger(Rc<RefCell<LedgerInner>>);

#[derive(Default)]
struct LedgerInner {
    /// (instant, instance, leads) for every change of role.
    roles: Vec<(Duration, String, bool)>,
    trace: Vec<String>,
}

impl Report for Ledger {
    fn leading(&self, name: &str, leading: bool) {
        let at = since_start(pyxis_turmoil::now());
        let mut inner = self.0.borrow_mut();
        inner.roles.push((at, name.to_owned(), leading));
        let what = if leading { "leads" } else { "steps down" };
        inner.trace.push(format!("{at:?} {name} {what}"));
    }
}

impl Ledger {
    fn note(&self, at: Duration, what: String) {
        self.0.borrow_mut().trace.push(format!("{at:?} {what}"));
    }

    /// The instance acting as leader last, by the order of the log (for choosing whom
    /// to cut off).
    fn current(&self) -> Option<String> {
        let inner = self.0.borrow();
        NAMES
            .iter()
            .find(|name| {
                inner
                    .roles
                    .iter()
                    .rev()
                    .find(|(_, n, _)| n == *name)
                    .is_some_and(|(_, _, leads)| *leads)
            })
            .map(|n| (*n).to_owned())
    }

    /// `name`'s host crashed at `at`: if it was leading, it stopped then.
    fn crashed(&self, name: &str, at: Duration) {
        if self.leads(name) {
            let mut inner = self.0.borrow_mut();
            inner.roles.push((at, name.to_owned(), false));
            inner
                .trace
                .push(format!("{at:?} {name} stops leading: its host crashed"));
        }
    }

    fn leads(&self, name: &str) -> bool {
        let inner = self.0.borrow();
        let last = inner.roles.iter().rev().find(|(_, n, _)| n == name);
        last.is_some_and(|(_, _, leads)| *leads)
    }

    /// Every instance's leading intervals, `[from, to)`; `to` is `None` while it leads.
    fn intervals(&self) -> Vec<(String, Duration, Option<Duration>)> {
        let mut roles = self.0.borrow().roles.clone();
        // Hosts run one after the other over the same step of time: order by instant.
        roles.sort_by_key(|(at, _, _)| *at);
        let mut intervals: Vec<(String, Duration, Option<Duration>)> = Vec::new();
        for (at, name, leads) in roles {
            if leads {
                intervals.push((name, at, None));
            } else if let Some(open) = intervals
                .iter_mut()
                .rev()
                .find(|(n, _, to)| *n == name && to.is_none())
            {
                open.2 = Some(at);
            }
        }
        intervals
    }

    /// Two instances that acted as leader at the same instant, if any.
    fn overlap(&self) -> Option<String> {
        let intervals = self.intervals();
        for (i, (a, a_from, a_to)) in intervals.iter().enumerate() {
            for (b, b_from, b_to) in &intervals[i + 1..] {
                let a_end = a_to.unwrap_or(Duration::MAX);
                let b_end = b_to.unwrap_or(Duration::MAX);
                if a != b && *b_from < a_end && *a_from < b_end {
                    return Some(format!(
                        "{a} led {a_from:?}..{a_to:?} while {b} led {b_from:?}..{b_to:?}"
                    ));
                }
            }
        }
        None
    }
}

/// A fault and when it starts and ends.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Cut the leading instance off from every Pyxis node.
    PartitionLeader,
    /// Crash instance `n`, restart it at the end.
    CrashInstance(usize),
    /// Crash Pyxis node `n`, restart it at the end.
    CrashNode(usize),
}

/// A Pyxis fault that happens at one instant.
#[derive(Debug, Clone, Copy)]
enum Instant {
    /// Move the Pyxis leader to node `n`.
    MoveLeader(usize),
    /// No Pyxis leader for this long.
    NoLeader(Duration),
}

/// The simulation, the cluster and the instant faults still to come.
struct World<'a, 's> {
    sim: Sim<'s>,
    cluster: &'a Cluster,
    ledger: &'a Ledger,
    instants: Vec<(Duration, Instant)>,
}

impl World<'_, '_> {
    /// Steps the simulation until `until`, applying the instant faults that fall due.
    fn run_until(&mut self, until: Duration) -> Result<(), String> {
        while self.sim.elapsed() < until {
            self.sim.step().map_err(|e| e.to_string())?;
            let now = self.sim.elapsed();
            while let Some(&(at, fault)) = self.instants.first() {
                if at > now {
                    break;
                }
                self.instants.remove(0);
                let done = match fault {
                    Instant::MoveLeader(n) => self.cluster.move_leader(n).is_ok(),
                    Instant::NoLeader(gap) => {
                        self.cluster.no_leader_for(gap);
                        true
                    }
                };
                self.ledger.note(now, format!("{fault:?} ({done})"));
            }
        }
        Ok(())
    }
}

/// One seed's run: its trace, and why it failed if it did.
struct Outcome {
    trace: Vec<String>,
    failure: Option<String>,
}

/// Runs the service under the faults drawn from `seed`; `lease` replaces the
/// instances' own lease.
fn run(seed: u64, lease: Option<Duration>) -> Outcome {
    let ledger = Ledger::default();
    let failure = scenario(seed, lease, &ledger).err();
    let trace = ledger.0.borrow().trace.clone();
    Outcome { trace, failure }
}

fn scenario(seed: u64, lease: Option<Duration>, ledger: &Ledger) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(TICK)
        .build();
    let cluster = Cluster::add(&mut sim, 3);
    for (i, name) in NAMES.into_iter().enumerate() {
        add_instance(
            &mut sim,
            &cluster,
            name,
            seed ^ ((i as u64 + 1) << 40),
            lease,
            ledger,
        );
    }
    let nodes = cluster.hosts().to_vec();

    // Three faults one after the other, the first a partition of the leader, and two
    // instant Pyxis faults anywhere in between.
    let mut faults = vec![Fault::PartitionLeader];
    for _ in 0..2 {
        faults.push(match rng.u8(0..3) {
            0 => Fault::PartitionLeader,
            1 => Fault::CrashInstance(rng.usize(0..NAMES.len())),
            _ => Fault::CrashNode(rng.usize(0..nodes.len())),
        });
    }
    let mut at = Duration::from_millis(rng.u64(3_000..6_000));
    let mut plan = Vec::new();
    for fault in faults {
        let lasts = Duration::from_millis(rng.u64(1_000..7_000));
        plan.push((at, fault, lasts));
        at += lasts + Duration::from_millis(rng.u64(0..2_000));
    }
    let faults_end = at;
    let move_at = Duration::from_millis(rng.u64(2_000..faults_end.as_millis() as u64));
    let move_to = rng.usize(0..nodes.len());
    let gap_at = Duration::from_millis(rng.u64(2_000..faults_end.as_millis() as u64));
    let gap = Duration::from_millis(rng.u64(200..3_000));
    // Long enough after the last fault for every instance to register again. The slowest
    // case is a connection a partition left half-dead (turmoil loses what crossed the cut
    // and stalls the stream behind it): the client gives it up the longest ping hold
    // it has seen plus twice the 2 s ping grace after the last bytes received (seed 29:
    // a 9 s hold, given up 13.25 s after the last bytes), then finds its session expired
    // and registers anew.
    let end = faults_end + Duration::from_secs(20);

    let mut instants = vec![
        (move_at, Instant::MoveLeader(move_to)),
        (gap_at, Instant::NoLeader(gap)),
    ];
    instants.sort_by_key(|(at, _)| *at);
    let mut world = World {
        sim,
        cluster: &cluster,
        ledger,
        instants,
    };
    let mut partitioned: Option<String> = None;
    for (start, fault, lasts) in plan {
        world.run_until(start)?;
        let sim = &mut world.sim;
        let now = sim.elapsed();
        let target = match fault {
            Fault::PartitionLeader => {
                let name = ledger.current().unwrap_or_else(|| NAMES[0].to_owned());
                cluster.partition(sim, &name);
                partitioned = Some(name.clone());
                name
            }
            Fault::CrashInstance(n) => {
                ledger.crashed(NAMES[n], now);
                sim.crash(NAMES[n]);
                NAMES[n].to_owned()
            }
            Fault::CrashNode(n) => {
                sim.crash(nodes[n].as_str());
                nodes[n].clone()
            }
        };
        ledger.note(now, format!("{fault:?} {target} for {lasts:?}"));
        world.run_until(start + lasts)?;
        let sim = &mut world.sim;
        match fault {
            Fault::PartitionLeader => {
                if let Some(name) = partitioned.take() {
                    cluster.repair(sim, &name);
                }
            }
            Fault::CrashInstance(_) | Fault::CrashNode(_) => sim.bounce(target.as_str()),
        }
        ledger.note(sim.elapsed(), format!("{target} healed"));
    }
    world.run_until(end)?;

    if let Some(overlap) = ledger.overlap() {
        return Err(format!("two leaders: {overlap}"));
    }
    let leading: Vec<String> = ledger
        .intervals()
        .into_iter()
        .filter(|(_, _, to)| to.is_none())
        .map(|(name, _, _)| name)
        .collect();
    // In creation order, as the original server lists children: compared as a set.
    let mut registered = cluster
        .node(SERVICES)
        .map(|n| n.children)
        .unwrap_or_default();
    registered.sort();
    let holder = cluster.node(LEADER).map(|n| n.data);
    for line in cluster.with_model(|model, _| {
        model
            .applied_ops()
            .map(|op| {
                let at = since_start(op.at);
                format!("{at:?} pyxis {:?} {} {:#x}", op.kind, op.path, op.sid)
            })
            .collect::<Vec<_>>()
    }) {
        ledger.0.borrow_mut().trace.push(line);
    }
    ledger.note(
        end,
        format!("end: leading {leading:?}, registered {registered:?}"),
    );
    if registered != NAMES {
        return Err(format!("registrations did not come back: {registered:?}"));
    }
    match (leading.as_slice(), holder) {
        ([leader], Some(data)) if data == leader.as_bytes() => Ok(()),
        (leading, holder) => Err(format!(
            "after the faults: leading {leading:?}, {LEADER} holds {holder:?}"
        )),
    }
}

/// Adds instance `name` as a turmoil host; each start (and restart) makes a new client.
fn add_instance(
    sim: &mut Sim<'_>,
    cluster: &Cluster,
    name: &'static str,
    seed: u64,
    lease: Option<Duration>,
    ledger: &Ledger,
) {
    let (addrs, ledger) = (cluster.addrs(), ledger.clone());
    let starts = Rc::new(std::cell::Cell::new(0u64));
    sim.host(name, move || {
        let (addrs, ledger, starts) = (addrs.clone(), ledger.clone(), Rc::clone(&starts));
        async move {
            starts.set(starts.get() + 1);
            let options = Options::new().seed(seed ^ starts.get());
            let timeout = options.session_timeout;
            let client = connect(addrs, options).await?;
            let mut instance = Instance::new(name, client, timeout, ledger);
            if let Some(lease) = lease {
                instance = instance.with_lease(lease);
            }
            instance.run().await;
            Ok(())
        }
    });
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn at_most_one_leader_and_registrations_come_back_under_faults() {
    let seeds: Vec<u64> = match env_u64("PYXIS_TURMOIL_SEED") {
        Some(seed) => vec![seed],
        None => {
            let first = env_u64("PYXIS_TURMOIL_FIRST_SEED").unwrap_or(0);
            let count = env_u64("PYXIS_TURMOIL_SEEDS").unwrap_or(SEEDS);
            (first..first.saturating_add(count)).collect()
        }
    };
    let replay = seeds.len() == 1;
    // Each seed is a simulation of its own on one thread; two threads share the seeds.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = [0, 1]
            .map(|worker| {
                let seeds = &seeds;
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for &seed in seeds.iter().skip(worker).step_by(2) {
                        let outcome = run(seed, None);
                        if replay {
                            println!("seed {seed}:\n{}", outcome.trace.join("\n"));
                        }
                        if let Some(why) = outcome.failure {
                            failed.push(format!(
                                "seed {seed}: {why}\n  replay: PYXIS_TURMOIL_SEED={seed} cargo test -p pyxis-turmoil --test election -- --nocapture"
                            ));
                        }
                    }
                    failed
                })
            })
            .into();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["a worker panicked".into()])
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [3, 11] {
        let first = run(seed, None);
        let second = run(seed, None);
        assert!(first.failure.is_none(), "seed {seed}: {:?}", first.failure);
        assert!(
            first.trace.iter().any(|line| line.ends_with("leads")),
            "seed {seed}: nobody ever led:\n{}",
            first.trace.join("\n")
        );
        assert_eq!(first.trace, second.trace, "seed {seed} did not replay");
    }
}

#[test]
fn a_lease_longer_than_the_session_is_caught() {
    // An instance that keeps leading for 10 s after its last answer outlives its 5 s
    // session when cut off: the check must see two leaders.
    let caught = (0..5)
        .map(|seed| run(seed, Some(Duration::from_secs(10))))
        .filter(|outcome| {
            outcome
                .failure
                .as_deref()
                .is_some_and(|why| why.starts_with("two leaders"))
        })
        .count();
    assert!(caught > 0, "no seed of 5 showed the unsafe lease");
}
