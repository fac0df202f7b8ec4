//! # pyxis-cli: the `pyxis` command line
//!
//! Browse and change a Pyxis tree (`ls`, `get`, `create`, `set`, `rm`, `tree`), stream its
//! events (`watch`), inspect the cluster (`sessions`, `leader`), run a local test cluster
//! (`dev`) and benchmark the client against a raw-frame floor (`bench`). Install with
//! `cargo install --path pyxis-cli`; the binary is `pyxis`.
//!
//! The server list comes from `--addrs` or `PYXIS_ADDRS` (default `127.0.0.1:7000`).
//! Output is a table by default and JSON with `--json`; errors go to stderr with the exit
//! codes of [`EXIT_CODES_HELP`]:
//!
//! ```
//! use pyxis_cli::exit::ExitStatus;
//! assert_eq!(ExitStatus::NotFound.code(), 3);
//! assert!(pyxis_cli::EXIT_CODES_HELP.contains("3  not found"));
//! ```
//!
//! The library half exists so the benches and tests can reuse the pieces; the binary is a
//! thin `main` around [`run`].

pub mod args;
pub mod bench;
pub mod commands;
pub mod dev;
pub mod exit;
pub mod leader;
pub mod output;
pub mod walk;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::{CliError, ExitStatus};

/// The exit codes, as printed at the end of `pyxis --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other failure (server internal error, protocol violation, local i/o)
  2  usage: malformed command line or option values
  3  not found: the node (or a create's parent) does not exist
  4  exists: the node already exists
  5  invalid argument: bad path, data too large, node has children, parent ephemeral,
     change under /pyxis
  6  connection: cluster unreachable, timeout, no leader, session lost";

/// Parses the command line, runs the command, reports any error on stderr, and returns
/// the exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with code 0; usage errors to stderr with code 2.
        Err(e) => e.exit(),
    };
    match execute(cli) {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => {
            eprintln!("pyxis: {e}");
            e.exit_status().into()
        }
    }
}

/// Starts listening for Ctrl-C (SIGINT) now and returns a future that completes on it.
/// Registering before a command announces itself means a Ctrl-C sent right after the
/// announcement ends the command gracefully instead of killing the process.
pub fn interrupt() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        Ok(async move {
            signal.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Runs a parsed command line to completion.
pub fn execute(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Bench(args) => bench::run(&cli.global, &args),
        command => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                match command {
                    Command::Dev(args) => dev::run(&args, cli.global.json).await,
                    other => commands::run(&cli.global, other).await,
                }
            })
        }
    }
}
