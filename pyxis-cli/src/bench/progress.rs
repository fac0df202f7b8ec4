//! The benchmark's progress bar (indicatif on stderr; hidden when stderr is not a
//! terminal or the run is short).
//!
//! Owns: [`Progress`], its phase counters and the ticker thread that redraws the bar.
//! Must never run on the measured runtime or take a lock on the measured path: phases
//! only bump an atomic counter, and a separate thread reads it ten times a second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Runs shorter than this get no bar.
pub const MIN_RUN_FOR_BAR: Duration = Duration::from_secs(3);
/// Bar units per phase.
const UNITS: u64 = 1000;

struct Phase {
    index: u64,
    label: String,
    start: Instant,
    done: Arc<AtomicU64>,
}

struct Shared {
    bar: ProgressBar,
    phase: Mutex<Option<Phase>>,
    stop: AtomicBool,
    phase_duration: Option<Duration>,
    phase_ops: Option<u64>,
}

/// A progress bar over a fixed number of phases, each bounded by a duration or an op
/// count.
pub struct Progress {
    shared: Option<Arc<Shared>>,
    ticker: Option<JoinHandle<()>>,
    next_index: Mutex<u64>,
}

impl Progress {
    /// A bar for `phases` phases of `phase_duration` or `phase_ops` each; `None` bar
    /// when `enabled` is false.
    pub fn new(
        enabled: bool,
        phases: u64,
        phase_duration: Option<Duration>,
        phase_ops: Option<u64>,
    ) -> Progress {
        if !enabled || phases == 0 {
            return Progress {
                shared: None,
                ticker: None,
                next_index: Mutex::new(0),
            };
        }
        let bar = ProgressBar::new(phases * UNITS);
        let style = ProgressStyle::with_template("{bar:30} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let shared = Arc::new(Shared {
            bar,
            phase: Mutex::new(None),
            stop: AtomicBool::new(false),
            phase_duration,
            phase_ops,
        });
        let ticker_shared = Arc::clone(&shared);
        let ticker = std::thread::Builder::new()
            .name("pyxis-bench-progress".into())
            .spawn(move || tick(&ticker_shared))
            .ok();
        Progress {
            shared: Some(shared),
            ticker,
            next_index: Mutex::new(0),
        }
    }

    /// Starts the next phase; the returned counter is bumped once per completed op.
    pub fn phase(&self, label: &str) -> Arc<AtomicU64> {
        let done = Arc::new(AtomicU64::new(0));
        let mut next = self
            .next_index
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = &self.shared {
            *shared.phase.lock().unwrap_or_else(PoisonError::into_inner) = Some(Phase {
                index: *next,
                label: label.to_owned(),
                start: Instant::now(),
                done: Arc::clone(&done),
            });
        }
        *next += 1;
        done
    }

    /// Marks the current phase finished.
    pub fn finish_phase(&self) {
        if let Some(shared) = &self.shared {
            *shared.phase.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.stop.store(true, Ordering::Relaxed);
        }
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        if let Some(shared) = &self.shared {
            shared.bar.finish_and_clear();
        }
    }
}

fn tick(shared: &Shared) {
    // Bounded by the owner: `Progress::drop` sets `stop` and joins.
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let guard = shared.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(phase) = guard.as_ref() else {
            continue;
        };
        let elapsed = phase.start.elapsed();
        let done = phase.done.load(Ordering::Relaxed);
        let fraction = match (shared.phase_duration, shared.phase_ops) {
            (Some(d), _) if !d.is_zero() => elapsed.as_secs_f64() / d.as_secs_f64(),
            (_, Some(ops)) if ops > 0 => done as f64 / ops as f64,
            _ => 0.0,
        };
        let units = (fraction.clamp(0.0, 1.0) * UNITS as f64) as u64;
        shared.bar.set_position(phase.index * UNITS + units);
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
        shared
            .bar
            .set_message(format!("{} {rate:.0} ops/s", phase.label));
    }
}
