//! `pyxis bench memory`: resident memory of N idle clients of one adapter (`--adapter`)
//! in one process, next to N raw registered connections (the floor).
//!
//! Owns: the cluster child process (`pyxis dev`, so the servers' memory is not counted),
//! one measuring child process per kind (`pyxis bench memory --kind raw|client`), reading
//! `/proc/self/statm`, and [`MemoryReport`]. Must never leave a child running: each is
//! killed or waited for on every path out. Connecting a client of the adapter is
//! [`BenchClient::connect`]'s.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use crate::bench::adapter::{Adapter, BenchClient};
use crate::bench::floor::RawSession;
use crate::exit::CliError;

/// Page size used to turn `statm` pages into bytes (x86-64 and aarch64 Linux default).
const PAGE_SIZE: u64 = 4096;

/// Resident memory of idle clients.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// The adapter whose clients were measured.
    pub adapter: Adapter,
    /// Clients opened.
    pub clients: usize,
    /// Resident growth per raw registered connection (the floor), bytes.
    pub raw_bytes_each: f64,
    /// Resident growth per idle client (connection, driver task or thread, session),
    /// bytes.
    pub client_bytes_each: f64,
    /// Resident set before the clients, bytes.
    pub baseline_bytes: u64,
}

impl MemoryReport {
    /// The human rendering.
    pub fn human(&self) -> String {
        format!(
            "resident memory of {} idle {} clients in one process (servers in a child process)\n\
             per client: {:.1} KiB; per raw registered connection (floor): {:.1} KiB; baseline {:.1} MiB\n",
            self.clients,
            self.adapter.crate_name(),
            self.client_bytes_each / 1024.0,
            self.raw_bytes_each / 1024.0,
            self.baseline_bytes as f64 / (1024.0 * 1024.0),
        )
    }
}

/// Resident set size of this process, from `/proc/self/statm` (second field, pages).
pub fn resident_bytes() -> Result<u64, CliError> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| CliError::Bench(format!("unexpected /proc/self/statm: {statm:?}")))?;
    Ok(pages * PAGE_SIZE)
}

/// A `pyxis dev` child, killed on drop.
struct DevChild(Child);

impl Drop for DevChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pyxis dev --nodes 1 --json` and reads its addresses.
fn start_dev() -> Result<(DevChild, Vec<String>), CliError> {
    let exe = std::env::current_exe()?;
    let mut child = DevChild(
        Command::new(exe)
            .args(["--json", "dev", "--nodes", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| CliError::Bench("dev child has no stdout".into()))?;
    let mut line = String::new();
    // One line of at most 64 KiB.
    BufReader::new(std::io::Read::take(stdout, 64 * 1024)).read_line(&mut line)?;
    let view: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| CliError::Bench(format!("dev printed {line:?}: {e}")))?;
    let addrs = view["addrs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty())
        .ok_or_else(|| CliError::Bench(format!("dev printed no addresses: {line:?}")))?;
    Ok((child, addrs))
}

/// What one measuring process holds open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MemoryKind {
    /// Raw registered connections (the floor).
    Raw,
    /// Idle clients of the adapter measured.
    Client,
}

/// One measuring process's result.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Measurement {
    /// The adapter whose clients the process opened (for `Client`).
    pub adapter: Adapter,
    /// Resident set before opening anything, bytes.
    pub baseline_bytes: u64,
    /// Resident growth per opened item, bytes.
    pub bytes_each: f64,
}

/// Measures one kind in this process: `count` items (clients of `adapter`, or raw
/// sessions) against `addrs`.
pub async fn measure(
    addrs: &[String],
    kind: MemoryKind,
    adapter: Adapter,
    count: usize,
) -> Result<Measurement, CliError> {
    // Warm-up: one of each, so lazily allocated runtime parts are in the baseline, not in
    // the first item's share.
    let warm = BenchClient::connect(adapter, addrs).await?;
    warm.close().await;
    RawSession::open(addrs).await?.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = resident_bytes()?;
    let after = match kind {
        MemoryKind::Raw => {
            let mut raws = Vec::with_capacity(count);
            for _ in 0..count {
                raws.push(RawSession::open(addrs).await?);
            }
            let after = resident_bytes()?;
            for raw in raws {
                raw.close().await;
            }
            after
        }
        MemoryKind::Client => {
            let mut clients = Vec::with_capacity(count);
            for _ in 0..count {
                clients.push(BenchClient::connect(adapter, addrs).await?);
            }
            // Let every driver settle into its idle state (ping held by the server).
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = resident_bytes()?;
            for client in &clients {
                client.close().await;
            }
            after
        }
    };
    Ok(Measurement {
        adapter,
        baseline_bytes: baseline,
        bytes_each: after.saturating_sub(baseline) as f64 / count.max(1) as f64,
    })
}

/// Runs `pyxis bench memory --kind <kind>` in a fresh process (so that memory freed by
/// one measurement and kept by the allocator cannot hide the next one's growth).
fn measure_in_child(
    addrs: &[String],
    kind: MemoryKind,
    adapter: Adapter,
    count: usize,
) -> Result<Measurement, CliError> {
    let exe = std::env::current_exe()?;
    let kind = match kind {
        MemoryKind::Raw => "raw",
        MemoryKind::Client => "client",
    };
    let out = Command::new(exe)
        .args(["--json", "--addrs", &addrs.join(","), "bench", "memory"])
        .args(["--clients", &count.to_string(), "--kind", kind])
        .args(["--adapter", &adapter.flag()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(CliError::Bench(format!(
            "memory measurement ({kind}) failed: {}",
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| CliError::Bench(format!("memory measurement ({kind}) printed bad JSON: {e}")))
}

/// Measures `count` raw sessions and `count` clients of `adapter`, each in its own
/// process, against `remote` or a `pyxis dev` child.
pub fn run(
    remote: Option<Vec<String>>,
    adapter: Adapter,
    count: usize,
) -> Result<MemoryReport, CliError> {
    let (_child, addrs) = match remote {
        Some(addrs) => (None, addrs),
        None => {
            let (child, addrs) = start_dev()?;
            (Some(child), addrs)
        }
    };
    let raw = measure_in_child(&addrs, MemoryKind::Raw, adapter, count)?;
    let client = measure_in_child(&addrs, MemoryKind::Client, adapter, count)?;
    Ok(MemoryReport {
        // What the measuring process says it opened.
        adapter: client.adapter,
        clients: count,
        raw_bytes_each: raw.bytes_each,
        client_bytes_each: client.bytes_each,
        baseline_bytes: client.baseline_bytes,
    })
}
