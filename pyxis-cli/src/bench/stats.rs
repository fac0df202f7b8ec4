//! Latency and throughput bookkeeping for the benchmarks.
//!
//! Owns: [`Recorder`] (an HDR histogram of per-operation latencies plus counters),
//! [`Summary`] (what is reported) and [`Ratios`] against the floor. Must never measure
//! anything itself: callers time operations and record them.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded exactly (longer ones are clamped to it): one minute, in ns.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Per-operation latencies and counts of one side of a run.
#[derive(Debug, Clone)]
pub struct Recorder {
    histogram: Histogram<u64>,
    /// Operations that completed with an error.
    pub errors: u64,
    /// Time spent issuing operations (summed over phases).
    pub elapsed: Duration,
    /// CPU time used meanwhile (summed over phases; `None` once a phase was not measured).
    pub cpu: Option<Duration>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder (1 ns .. 60 s, 3 significant digits).
    pub fn new() -> Recorder {
        // Constant bounds that hdrhistogram accepts (1 ≤ low, high ≥ 2·low, 3 digits).
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .expect("constant histogram bounds are valid");
        Recorder {
            histogram,
            errors: 0,
            elapsed: Duration::ZERO,
            cpu: Some(Duration::ZERO),
        }
    }

    /// Records one completed operation.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram
            .saturating_record(ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Adds another recorder's operations (e.g. another task's or another round's).
    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms have the same bounds, so adding cannot fail; if it did, the
        // counts would be visibly short in the report.
        let _ = self.histogram.add(&other.histogram);
        self.errors += other.errors;
    }

    /// Adds a phase's length and CPU time (`None`: not measured, which sticks).
    pub fn add_phase(&mut self, elapsed: Duration, cpu: Option<Duration>) {
        self.elapsed += elapsed;
        self.cpu = self.cpu.zip(cpu).map(|(total, phase)| total + phase);
    }

    /// Adds one phase: the recorders of its tasks or sessions, its length and the CPU
    /// time it used.
    pub fn pool(&mut self, recorders: &[Recorder], elapsed: Duration, cpu: Option<Duration>) {
        for recorder in recorders {
            self.merge(recorder);
        }
        self.add_phase(elapsed, cpu);
    }

    /// Operations recorded.
    pub fn ops(&self) -> u64 {
        self.histogram.len()
    }

    /// The reported figures.
    pub fn summary(&self) -> Summary {
        let us = |q: f64| self.histogram.value_at_quantile(q) as f64 / 1000.0;
        let seconds = self.elapsed.as_secs_f64();
        let ops = self.ops();
        Summary {
            ops,
            errors: self.errors,
            seconds,
            ops_per_sec: if seconds > 0.0 {
                ops as f64 / seconds
            } else {
                0.0
            },
            mean_us: self.histogram.mean() / 1000.0,
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: self.histogram.max() as f64 / 1000.0,
            cpu_per_op_us: self
                .cpu
                .filter(|_| ops > 0)
                .map(|cpu| cpu.as_secs_f64() * 1e6 / ops as f64),
        }
    }
}

/// What one side of a load run achieved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Operations completed.
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Measured time, seconds.
    pub seconds: f64,
    /// Throughput.
    pub ops_per_sec: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// 99.9th percentile latency, µs.
    pub p999_us: f64,
    /// Largest latency, µs.
    pub max_us: f64,
    /// CPU time per operation, µs (scope in the report; `None` if not measured).
    pub cpu_per_op_us: Option<f64>,
}

/// The client's figures divided by the floor's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratios {
    /// Client throughput ÷ floor throughput (target ≥ 0.8).
    pub throughput: f64,
    /// Client p50 ÷ floor p50.
    pub p50: f64,
    /// Client p99 ÷ floor p99 (target ≤ 1.5).
    pub p99: f64,
    /// Client p99.9 ÷ floor p99.9.
    pub p999: f64,
}

/// Throughput target with requests pipelined (more than one in flight): at least this
/// fraction of the floor.
pub const THROUGHPUT_TARGET: f64 = 0.8;
/// Throughput target with one request in flight, where nothing hides the client's own
/// time per request: at least this fraction of the floor.
pub const SINGLE_THROUGHPUT_TARGET: f64 = 0.9;

/// The throughput target at `concurrency` requests in flight.
pub fn throughput_target(concurrency: usize) -> f64 {
    if concurrency <= 1 {
        SINGLE_THROUGHPUT_TARGET
    } else {
        THROUGHPUT_TARGET
    }
}
/// Latency target: p99 at most this multiple of the floor's.
pub const P99_TARGET: f64 = 1.5;

impl Ratios {
    /// `client` relative to `floor`.
    pub fn of(client: &Summary, floor: &Summary) -> Ratios {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        Ratios {
            throughput: ratio(client.ops_per_sec, floor.ops_per_sec),
            p50: ratio(client.p50_us, floor.p50_us),
            p99: ratio(client.p99_us, floor.p99_us),
            p999: ratio(client.p999_us, floor.p999_us),
        }
    }

    /// Whether the throughput target at `concurrency` requests in flight is met.
    pub fn throughput_ok(&self, concurrency: usize) -> bool {
        self.throughput >= throughput_target(concurrency)
    }

    /// Whether the p99 target is met.
    pub fn p99_ok(&self) -> bool {
        self.p99 <= P99_TARGET
    }
}

/// A latency in µs for a table: `812µs`, `1.25ms`.
pub fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.0}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_ratios_come_from_the_recorded_values() {
        let mut floor = Recorder::new();
        let mut client = Recorder::new();
        for i in 1..=1000u64 {
            floor.record(Duration::from_micros(i));
            client.record(Duration::from_micros(2 * i));
        }
        floor.add_phase(Duration::from_secs(1), Some(Duration::from_millis(10)));
        client.add_phase(Duration::from_secs(1), Some(Duration::from_millis(10)));
        client.add_phase(Duration::from_secs(1), Some(Duration::from_millis(30)));
        let (f, c) = (floor.summary(), client.summary());
        assert_eq!(f.ops, 1000);
        assert_eq!(f.cpu_per_op_us.map(f64::round), Some(10.0));
        assert_eq!(c.cpu_per_op_us.map(f64::round), Some(40.0));
        let mut unmeasured = Recorder::new();
        unmeasured.add_phase(Duration::from_secs(1), Some(Duration::from_secs(1)));
        unmeasured.add_phase(Duration::from_secs(1), None);
        assert_eq!(unmeasured.cpu, None);
        assert!((f.p50_us - 500.0).abs() < 1.0, "{}", f.p50_us);
        assert!((f.p99_us - 990.0).abs() < 1.5, "{}", f.p99_us);
        let r = Ratios::of(&c, &f);
        assert!((r.throughput - 0.5).abs() < 1e-9);
        assert!((r.p99 - 2.0).abs() < 0.01);
        assert!(!r.throughput_ok(64) && !r.p99_ok());
        let close = Ratios {
            throughput: 0.85,
            ..r
        };
        assert!(close.throughput_ok(64), "0.85x meets 0.8x pipelined");
        assert!(
            !close.throughput_ok(1),
            "0.85x misses 0.9x with one in flight"
        );
        let mut merged = Recorder::new();
        merged.merge(&floor);
        merged.merge(&client);
        assert_eq!(merged.ops(), 2000);
        assert_eq!(micros(1500.0), "1.50ms");
        assert_eq!(micros(15.2), "15µs");
    }
}
