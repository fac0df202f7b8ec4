//! `pyxis bench failover`: how long after a leader move the next write succeeds.
//!
//! Owns: the move/write loop and [`FailoverReport`]. Must never tune the client: it uses
//! the default options (default backoff), which is what the target is about.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyxis_testkit::TestCluster;
use serde::Serialize;

use crate::bench::adapter::tokio_client as connect;
use crate::exit::CliError;

/// A write that fails (outcome unknown across the move) is retried for at most this long.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

/// Leader move → next successful write, over several moves.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    /// Moves timed.
    pub moves: usize,
    /// Median, ms.
    pub median_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// Fastest, ms.
    pub min_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Writes that failed and were retried (outcome unknown across a move).
    pub failed_writes: u64,
    /// Target: median ≤ 100 ms.
    pub target_ok: bool,
    /// Every sample, ms, in move order.
    pub samples_ms: Vec<f64>,
}

impl FailoverReport {
    /// The human rendering.
    pub fn human(&self) -> String {
        format!(
            "leader move -> next successful write, {} moves (embedded 3-node cluster, default backoff)\n\
             median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms; writes retried: {}\n\
             target: median <= 100 ms: {}\n",
            self.moves,
            self.median_ms,
            self.p90_ms,
            self.min_ms,
            self.max_ms,
            self.failed_writes,
            if self.target_ok { "ok" } else { "MISSED" },
        )
    }
}

/// The value at quantile `q` of sorted `values` (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Moves the leader `moves` times, timing each move until a write succeeds.
pub async fn run(cluster: &Arc<TestCluster>, moves: u32) -> Result<FailoverReport, CliError> {
    let addrs = cluster.addrs();
    let client = connect(&addrs).await?;
    let path = super::data_root("failover");
    client
        .create(
            &path,
            bytes::Bytes::new(),
            pyxis_tokio::CreateMode::Ephemeral,
        )
        .await
        .map_err(|e| CliError::request("bench failover", &path, e))?;
    let mut samples = Vec::new();
    let mut failed_writes = 0;
    for i in 0..moves {
        // Settle: a write on the current leader succeeds before the move.
        client
            .write(&path, "before")
            .await
            .map_err(|e| CliError::request("bench failover", &path, e))?;
        let to = (i as usize + 1) % addrs.len();
        let control = Arc::clone(cluster);
        let start = Instant::now();
        tokio::task::spawn_blocking(move || control.move_leader(to))
            .await
            .map_err(|e| CliError::Bench(e.to_string()))?
            .map_err(|e| CliError::Bench(format!("move leader: {e}")))?;
        loop {
            match client.write(&path, format!("after move {i}")).await {
                Ok(()) => break,
                Err(e) if start.elapsed() > WRITE_DEADLINE => {
                    return Err(CliError::request("bench failover", &path, e))
                }
                Err(_) => failed_writes += 1,
            }
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    client.close().await;
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let median_ms = quantile(&sorted, 0.5);
    Ok(FailoverReport {
        moves: samples.len(),
        median_ms,
        p90_ms: quantile(&sorted, 0.9),
        min_ms: sorted.first().copied().unwrap_or(f64::NAN),
        max_ms: sorted.last().copied().unwrap_or(f64::NAN),
        failed_writes,
        target_ok: median_ms <= 100.0,
        samples_ms: samples,
    })
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(quantile(&v, 0.5), 5.0);
        assert_eq!(quantile(&v, 0.9), 9.0);
        assert_eq!(quantile(&v, 1.0), 10.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
