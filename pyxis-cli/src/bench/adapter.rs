//! Which adapter's client the load benchmark's client phase drives (`--adapter`).
//!
//! Owns: connecting a benchmark's clients (the `pyxis-tokio` one every mode uses for
//! setup and probes, and one of the chosen adapter for the load run), closing them, and
//! running one slot's
//! operations on it: a task awaiting the async API (`pyxis-tokio`, or `pyxis-async-std`,
//! whose futures run on any executor, here the benchmark's tokio runtime), or a thread
//! calling the blocking API (`pyxis-blocking`), as each adapter's users call it. Must
//! never decide what a slot sends or how it is timed: that is the shared
//! [`Schedule`](super::workload::Schedule) and the [client phase](super::load)'s
//! bookkeeping.

use std::time::Duration;

use pyxis_blocking::BlockingClient;
use pyxis_tokio::{AsyncClient, ConnectError, CreateMode, Options};
use serde::{Deserialize, Serialize};

use crate::bench::workload::OpKind;
use crate::exit::CliError;

/// The adapter under measurement. (Its variants' docs are `--help` text: no backticks.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adapter {
    /// pyxis-tokio: the loop is a task on the benchmark's runtime.
    Tokio,
    /// pyxis-async-std: the loop runs on its own driver thread; the callers are tasks on
    /// the benchmark's runtime.
    AsyncStd,
    /// pyxis-blocking: the loop runs on its own driver thread; each caller is a thread.
    Blocking,
}

impl Adapter {
    /// The crate's name, for the report.
    pub fn crate_name(self) -> &'static str {
        match self {
            Adapter::Tokio => "pyxis-tokio",
            Adapter::AsyncStd => "pyxis-async-std",
            Adapter::Blocking => "pyxis-blocking",
        }
    }

    /// The value of `--adapter` that names it (clap's, from the variant's name).
    pub fn flag(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }

    /// Whether the client's loop runs on the benchmark runtime's threads (else on a
    /// driver thread of its own, whose CPU time only the whole process's counts).
    pub fn runs_on_the_runtime(self) -> bool {
        self == Adapter::Tokio
    }
}

/// A connected client of one adapter; clones share its session.
#[derive(Debug, Clone)]
pub enum BenchClient {
    /// `pyxis-tokio` or `pyxis-async-std`.
    Async(AsyncClient),
    /// `pyxis-blocking`.
    Blocking(BlockingClient),
}

/// How long a new client may take to get its session.
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// A client that could not start.
fn not_started(e: ConnectError) -> CliError {
    CliError::Bench(e.to_string())
}

/// A client whose session did not come up within [`CONNECT_PATIENCE`].
fn no_session(addrs: &[String], e: pyxis_core::Error) -> CliError {
    CliError::Connect {
        addrs: addrs.join(","),
        waited: CONNECT_PATIENCE,
        reason: e.to_string(),
    }
}

/// A `pyxis-tokio` client with a session, for setup, probes and the tokio load run.
///
/// # Errors
///
/// [`CliError::Bench`] when the client cannot start, [`CliError::Connect`] when no
/// session comes up within 10 s.
pub async fn tokio_client(addrs: &[String]) -> Result<pyxis_tokio::Client, CliError> {
    let client = pyxis_tokio::Client::connect(addrs.to_vec(), Options::default())
        .await
        .map_err(not_started)?;
    client
        .wait_connected(CONNECT_PATIENCE)
        .await
        .map_err(|e| no_session(addrs, e))?;
    Ok(client)
}

impl BenchClient {
    /// Connects a client of `adapter` to `addrs` and waits for its session.
    ///
    /// # Errors
    ///
    /// [`CliError::Bench`] when the client cannot start, [`CliError::Connect`] when no
    /// session comes up within 10 s.
    pub async fn connect(adapter: Adapter, addrs: &[String]) -> Result<BenchClient, CliError> {
        let options = Options::default();
        let addrs_owned = addrs.to_vec();
        let client = match adapter {
            Adapter::Tokio => return Ok(BenchClient::Async((*tokio_client(addrs).await?).clone())),
            Adapter::AsyncStd => {
                let client = pyxis_async_std::Client::connect(addrs_owned, options)
                    .await
                    .map_err(not_started)?;
                BenchClient::Async((*client).clone())
            }
            Adapter::Blocking => {
                let client =
                    pyxis_blocking::Client::connect(addrs_owned, options).map_err(not_started)?;
                BenchClient::Blocking((*client).clone())
            }
        };
        match &client {
            BenchClient::Async(c) => c.wait_connected(CONNECT_PATIENCE).await,
            BenchClient::Blocking(c) => {
                let c = c.clone();
                blocking(move || c.wait_connected(CONNECT_PATIENCE)).await?
            }
        }
        .map_err(|e| no_session(addrs, e))?;
        Ok(client)
    }

    /// Ends the client's session.
    pub async fn close(&self) {
        match self {
            BenchClient::Async(c) => c.close().await,
            BenchClient::Blocking(c) => {
                let c = c.clone();
                let _ = blocking(move || c.close()).await;
            }
        }
    }
}

/// Runs `f` on a thread of the runtime's blocking pool.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, CliError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CliError::Bench(format!("blocking task: {e}")))
}

/// What one slot's operations touch: its node, its scratch node for create-delete, and
/// the data it writes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The node read and written.
    pub node: String,
    /// The node created and deleted.
    pub scratch: String,
    /// The data of each write or create.
    pub data: bytes::Bytes,
}

/// Runs one operation of `kind` on an async client; whether it succeeded.
pub async fn run_async(client: &AsyncClient, kind: OpKind, t: &Target) -> bool {
    match kind {
        OpKind::Read => client.read(&t.node).await.is_ok(),
        OpKind::Write => client.write(&t.node, t.data.clone()).await.is_ok(),
        OpKind::CreateDelete => {
            let created = client
                .create(&t.scratch, t.data.clone(), CreateMode::Persistent)
                .await
                .is_ok();
            client.delete(&t.scratch).await.is_ok() && created
        }
    }
}

/// Runs one operation of `kind` on a blocking client; whether it succeeded.
pub fn run_blocking(client: &BlockingClient, kind: OpKind, t: &Target) -> bool {
    match kind {
        OpKind::Read => client.read(&t.node).is_ok(),
        OpKind::Write => client.write(&t.node, t.data.clone()).is_ok(),
        OpKind::CreateDelete => {
            let created = client
                .create(&t.scratch, t.data.clone(), CreateMode::Persistent)
                .is_ok();
            client.delete(&t.scratch).is_ok() && created
        }
    }
}
