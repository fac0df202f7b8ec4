//! `pyxis dev`: a local test cluster for development, served until Ctrl-C.
//!
//! Owns: its arguments, choosing where the nodes listen (`--addrs`, a `--port` base, or
//! `127.0.0.1:7000` and up when those are free, else free ports), starting a
//! `pyxis-testkit` [`TestCluster`] there with the chosen settings and commit delay,
//! printing its addresses (a table with the `PYXIS_ADDRS` line, or JSON with `--json`)
//! and waiting for Ctrl-C. Must never pretend to be a production server: it is the
//! testkit's model, and it says so.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use pyxis_testkit::{RunnerConfig, TestCluster};
use serde::Serialize;

use crate::args::{parse_duration, GlobalArgs};
use crate::exit::CliError;
use crate::output;

/// The first port `pyxis dev` tries when neither `--addrs` nor `--port` is given (the
/// real server's default client port).
pub const DEFAULT_PORT: u16 = 7000;

/// Arguments of `pyxis dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Number of nodes (node 0 leads at start) [default: 3, or as many as --addrs names].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub nodes: Option<u16>,
    /// Listen on ports BASE, BASE+1, ... of 127.0.0.1, before --addrs or PYXIS_ADDRS
    /// (which name the addresses to listen on). With none of them: 127.0.0.1:7000 and up
    /// when they are free, else free ports.
    #[arg(long, value_name = "BASE")]
    pub port: Option<u16>,
    /// Time each write waits for its commit. Real clusters: one node commits in about
    /// 0.1 ms; three nodes take about 50 ms per sequential write (commits ride the 50 ms
    /// Raft heartbeat; pipelined writes commit together), so try --commit-delay 50ms to see
    /// what a real cluster does to a program.
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    pub commit_delay: Duration,
    /// Use the fast test settings (200 ms minimum session timeout, 50 ms expiry checks)
    /// instead of the real server's defaults.
    #[arg(long)]
    pub fast: bool,
}

/// Where the nodes of a `pyxis dev` cluster listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Node `i` listens on `addrs[i]`.
    pub addrs: Vec<SocketAddr>,
    /// Whether free ports may be used instead when these cannot be bound (the default
    /// ports only; addresses the user gave must be bound or the command fails).
    pub fallback: bool,
}

/// Chooses the listen addresses: a `--port` base, else `--addrs` (they set the node count;
/// `--nodes` must agree), else the default ports with a fallback to free ones.
///
/// # Errors
///
/// An address that is not `ip:port`, a node count that disagrees with `--addrs`, or a
/// port range past 65535.
pub fn listen_addrs(
    addrs: Option<&[String]>,
    port: Option<u16>,
    nodes: Option<u16>,
) -> Result<Listen, CliError> {
    if let Some(list) = addrs.filter(|l| port.is_none() && !l.is_empty()) {
        let parsed = list
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>()
                    .map_err(|e| CliError::Usage(format!("--addrs {a}: {e} (dev needs ip:port)")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(n) = nodes.filter(|&n| usize::from(n) != parsed.len()) {
            return Err(CliError::Usage(format!(
                "--nodes {n} but --addrs names {} addresses",
                parsed.len()
            )));
        }
        return Ok(Listen {
            addrs: parsed,
            fallback: false,
        });
    }
    let count = nodes.unwrap_or(3);
    let base = port.unwrap_or(DEFAULT_PORT);
    let addrs = (0..count)
        .map(|i| {
            base.checked_add(i)
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                .ok_or_else(|| CliError::Usage(format!("--port {base}: {count} nodes pass 65535")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Listen {
        addrs,
        fallback: port.is_none(),
    })
}

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
///
/// # Errors
///
/// Bad arguments, addresses that cannot be bound, or output that cannot be written.
pub async fn run(args: &DevArgs, global: &GlobalArgs) -> Result<(), CliError> {
    let json = global.json;
    let (mut config, settings) = if args.fast {
        (RunnerConfig::fast(), "fast")
    } else {
        (RunnerConfig::real_defaults(), "real-defaults")
    };
    config.model.commit_delay = args.commit_delay;
    let listen = listen_addrs(global.addrs.as_deref(), args.port, args.nodes)?;
    let nodes = listen.addrs.len();
    config.listen = listen.addrs.clone();
    let fallback = listen.fallback.then(|| {
        let mut free = config.clone();
        free.listen.clear();
        free
    });
    let started = tokio::task::spawn_blocking(move || {
        match (TestCluster::try_start(nodes, config), fallback) {
            (Err(e), Some(free)) => {
                eprintln!(
                    "pyxis dev: 127.0.0.1:{DEFAULT_PORT} and up are not free ({e}); using free ports"
                );
                TestCluster::try_start(nodes, free)
            }
            (result, _) => result,
        }
    });
    let listed = listen
        .addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let cluster = started
        .await
        .map_err(|e| CliError::Dev(e.to_string()))?
        .map_err(|e| CliError::Dev(format!("cannot listen on {listed}: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn listen_addresses_come_from_port_addrs_or_the_default() {
        let default = listen_addrs(None, None, None).unwrap();
        assert_eq!(default.addrs, [addr(7000), addr(7001), addr(7002)]);
        assert!(default.fallback);
        let based = listen_addrs(None, Some(8000), Some(2)).unwrap();
        assert_eq!(
            (based.addrs, based.fallback),
            (vec![addr(8000), addr(8001)], false)
        );
        let given = ["127.0.0.1:9000".to_owned(), "127.0.0.1:9005".to_owned()];
        let listed = listen_addrs(Some(&given), None, None).unwrap();
        assert_eq!(
            (listed.addrs, listed.fallback),
            (vec![addr(9000), addr(9005)], false)
        );
        // --port wins over an address list (which may come from PYXIS_ADDRS).
        assert_eq!(
            listen_addrs(Some(&given), Some(8000), Some(1))
                .unwrap()
                .addrs,
            [addr(8000)]
        );
        assert!(listen_addrs(Some(&given), None, Some(3)).is_err());
        assert!(listen_addrs(Some(&["localhost".to_owned()]), None, None).is_err());
        assert!(listen_addrs(None, Some(65535), Some(2)).is_err());
    }
}
