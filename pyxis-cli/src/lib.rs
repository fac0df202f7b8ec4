//! # pyxis-cli: the `pyxis` command line
//!
//! Browse and change a Pyxis tree (`ls`, `get`, `create`, `set`, `rm`, `tree`), stream its
//! events (`watch`), inspect the cluster (`sessions`, `leader`), run a command under a lock
//! (`lock`) or stand in an election (`elect`), run a local test cluster
//! (`dev`) and benchmark the client against a raw-frame floor (`bench`); print shell
//! completions (`completions`) and its manual page (`man`). Install with
//! `cargo install pyxis-cli` (or `cargo install --path pyxis-cli` from a checkout); the
//! binary is `pyxis`.
//!
//! The server list comes from `--addrs` or `PYXIS_ADDRS` (default `127.0.0.1:7000`).
//! Output is a table by default and JSON with `--json`; text that comes from the server
//! (paths, node data, error reasons) is printed with control characters escaped (see
//! [`output::escape`]). Errors go to stderr with the exit codes of [`EXIT_CODES_HELP`]:
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
pub mod recipes;
pub mod walk;

use std::process::ExitCode;

use std::io::Write as _;

use clap::{CommandFactory as _, FromArgMatches as _};

use crate::args::{Cli, Command};
use crate::exit::{CliError, ExitStatus};

/// The exit codes, as printed at the end of `pyxis --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success, also when standard output is closed early (pyxis ls / | head -1)
  1  other failure: server internal error (also: set on a read-only /pyxis node),
     protocol violation, local i/o
  2  usage: malformed command line or option values
  3  not found: the node (or a create's parent) does not exist
  4  exists: the node already exists
  5  invalid argument: bad path, data too large, node has children, parent ephemeral,
     create or rm under /pyxis
  6  connection: cluster unreachable, timeout, no leader, session lost
     (also: a lock not free within --wait, or lost while its command ran)
pyxis lock exits with its command's exit code (128 + signal if it was killed).

Ctrl-C (SIGINT) and SIGTERM end a command gracefully: its session is closed, so the
ephemeral node of create --ephemeral is deleted at once.";

/// Parses the command line, runs the command, reports any error on stderr, and returns
/// the exit code.
pub fn run() -> ExitCode {
    let mut cli = match command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        // Help and version go to stdout with code 0; usage errors to stderr with code 2.
        Err(e) => e.exit(),
    };
    cli.global.fill_from_env();
    match execute(cli) {
        Ok(()) => ExitStatus::Success.into(),
        // The reader of our output went away (`| head -1`): nothing left to say, as with
        // other Unix tools; see EXIT_CODES_HELP.
        Err(CliError::StdoutClosed) => ExitStatus::Success.into(),
        // `pyxis lock`'s command failed: its own exit code, nothing more to say.
        Err(CliError::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            // The message may carry server-supplied text (reasons, paths): escaped, so
            // it stays one line and cannot drive the terminal.
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "pyxis: {}", output::escape(&e.to_string()));
            if let Some(hint) = e.hint() {
                let _ = writeln!(stderr, "hint: {hint}");
            }
            e.exit_status().into()
        }
    }
}

/// The global options each subcommand ignores, hidden from its help, completions and
/// manual page: `dev` serves its own cluster, `bench` sets its own deadline for each
/// phase, `completions` and `man` only print.
const IGNORED_GLOBALS: &[(&str, &[&str])] = &[
    ("dev", &["timeout"]),
    ("bench", &["timeout"]),
    ("completions", &["addrs", "json", "timeout"]),
    ("man", &["addrs", "json", "timeout"]),
];

/// The command line grammar as parsed: [`Cli`], with the global options a subcommand
/// ignores hidden from that subcommand's help (see `IGNORED_GLOBALS`).
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    for (name, ignored) in IGNORED_GLOBALS {
        // A subcommand that already has an argument of a global's name does not receive
        // the global: give it a hidden copy (same parser, default and environment
        // variable, so the parsed values stay the same).
        let copies: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|arg| ignored.contains(&arg.get_id().as_str()))
            .map(|arg| arg.clone().global(false).hide(true))
            .collect();
        command = command.mut_subcommand(name, |sub| sub.args(copies));
    }
    // dev reads --addrs as the addresses to listen on, not servers to reach: its own
    // copy, with its own help.
    let listen = command
        .get_arguments()
        .find(|arg| arg.get_id() == "addrs")
        .map(|arg| arg.clone().global(false).help(DEV_ADDRS_HELP));
    if let Some(listen) = listen {
        command = command.mut_subcommand("dev", |sub| sub.arg(listen));
    }
    command
}

/// The help of `--addrs` under `pyxis dev`.
const DEV_ADDRS_HELP: &str = "Addresses the nodes listen on, ip:port separated by commas \
     (one node each) [env: PYXIS_ADDRS]";

/// Starts listening for Ctrl-C (SIGINT) and SIGTERM now and returns a future that
/// completes on either. Registering before a command announces itself means a signal sent
/// right after the announcement ends the command gracefully (closing its session) instead
/// of killing the process.
pub fn interrupt() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Prints the client's log (`tracing`, target `pyxis`) on stderr as `-v` / `-vv` ask,
/// or as `RUST_LOG` says when it is set; nothing otherwise.
fn start_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => match verbose {
            0 => return,
            1 => EnvFilter::new("pyxis=info"),
            _ => EnvFilter::new("pyxis=debug"),
        },
    };
    // Fails only when a subscriber is set already (a second `execute` in one process).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs a parsed command line to completion.
pub fn execute(cli: Cli) -> Result<(), CliError> {
    start_logging(cli.global.verbose);
    match cli.command {
        Command::Bench(args) => bench::run(&cli.global, &args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "pyxis", &mut script);
            output::write_stdout(&script)
        }
        Command::Man { out_dir: None } => {
            let mut page = Vec::new();
            // As generate_to does: no page for the help subcommand, so none is cited.
            clap_mangen::Man::new(command().disable_help_subcommand(true)).render(&mut page)?;
            output::write_stdout(&page)
        }
        Command::Man { out_dir: Some(dir) } => {
            clap_mangen::generate_to(command(), &dir)?;
            output::write_stdout(
                format!("wrote the manual pages to {}\n", dir.display()).as_bytes(),
            )
        }
        command => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                match command {
                    Command::Dev(args) => dev::run(&args, &cli.global).await,
                    other => commands::run(&cli.global, other).await,
                }
            })
        }
    }
}
