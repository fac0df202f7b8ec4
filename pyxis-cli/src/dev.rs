//! `pyxis dev`: a local test cluster for development, served until Ctrl-C.
//!
//! Owns: starting a `pyxis-testkit` [`TestCluster`] on loopback, printing its addresses
//! (a table, or JSON with `--json`) and waiting for Ctrl-C. Must never pretend to be a
//! production server: it is the testkit's model, and it says so.

use std::io::Write as _;

use pyxis_testkit::{RunnerConfig, TestCluster};
use serde::Serialize;

use crate::args::DevArgs;
use crate::exit::CliError;
use crate::output;

/// What `pyxis dev` prints once the cluster is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevView {
    /// Every node's client address, by index.
    pub addrs: Vec<String>,
    /// The leading node's index.
    pub leader: Option<usize>,
    /// The settings preset (`real-defaults` or `fast`).
    pub settings: &'static str,
}

impl DevView {
    /// The human rendering: a table of nodes and the `PYXIS_ADDRS` line to export.
    pub fn human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let role = if Some(i) == self.leader {
                    "leader"
                } else {
                    "follower"
                };
                vec![i.to_string(), addr.clone(), role.to_owned()]
            })
            .collect();
        format!(
            "pyxis dev: a local test cluster ({} settings; for development only)\n{}\nexport PYXIS_ADDRS={}\nserving until Ctrl-C\n",
            self.settings,
            output::table(&["NODE", "ADDRESS", "ROLE"], &rows),
            self.addrs.join(",")
        )
    }
}

/// Starts the cluster, prints its addresses, and serves until Ctrl-C.
pub async fn run(args: &DevArgs, json: bool) -> Result<(), CliError> {
    let (config, settings) = if args.fast {
        (RunnerConfig::fast(), "fast")
    } else {
        (RunnerConfig::real_defaults(), "real-defaults")
    };
    let nodes = usize::from(args.nodes);
    let cluster = tokio::task::spawn_blocking(move || TestCluster::try_start(nodes, config))
        .await
        .map_err(|e| CliError::Dev(e.to_string()))?
        .map_err(|e| CliError::Dev(e.to_string()))?;
    let view = DevView {
        addrs: cluster.addrs(),
        leader: Some(0),
        settings,
    };
    let text = if json {
        // One line, so a parent process can read it with a single line read.
        let mut line = serde_json::to_string(&view).map_err(|e| CliError::Dev(e.to_string()))?;
        line.push('\n');
        line
    } else {
        view.human()
    };
    let interrupted = crate::interrupt()?;
    {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
    }
    interrupted.await;
    tokio::task::spawn_blocking(move || cluster.shutdown())
        .await
        .map_err(|e| CliError::Dev(e.to_string()))?;
    Ok(())
}
