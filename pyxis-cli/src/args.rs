//! The command line grammar: every subcommand, option and default, as clap derive types.
//!
//! Owns: [`Cli`], [`Command`] and the per-command argument structs, plus the parsers for
//! durations and server lists. Must never connect, print or decide an exit code: it only
//! describes what the user asked for.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bench::BenchArgs;

/// The server list used when neither `--addrs` nor `PYXIS_ADDRS` is given.
pub const DEFAULT_ADDRS: &str = "127.0.0.1:7000";

/// pyxis: browse, change and watch a Pyxis tree; run a local dev cluster; benchmark.
#[derive(Debug, Parser)]
#[command(name = "pyxis", version, about, long_about = None)]
#[command(after_help = crate::EXIT_CODES_HELP)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Servers to use, host:port separated by commas (any node: followers redirect)
    /// [env: PYXIS_ADDRS] [default: 127.0.0.1:7000; bench defaults to an embedded test
    /// cluster].
    // PYXIS_ADDRS is read by `fill_from_env`, not by clap: clap would list an option
    // set from the environment in every usage line, as if it were required.
    #[arg(long, global = true, value_delimiter = ',')]
    pub addrs: Option<Vec<String>>,
    /// Print JSON (one document, or one line per event for watch) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for the cluster (connecting, and each request), e.g. 5s, 500ms;
    /// more than zero.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Log what the client does on stderr: -v sessions, reconnects and their causes;
    /// -vv every connection attempt, redirect and backoff. RUST_LOG, when set, decides
    /// instead (e.g. RUST_LOG=pyxis=debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the children of a node.
    Ls {
        /// The node.
        #[arg(default_value = "/")]
        path: String,
        /// Also list children whose name starts with _ (hidden by default).
        #[arg(short, long)]
        all: bool,
    },
    /// Print a node's data and stat (version, flags, owner session, children).
    Get {
        /// The node.
        path: String,
        /// Write only the raw data bytes to stdout (no stat, no newline).
        #[arg(long, conflicts_with = "json")]
        raw: bool,
    },
    /// Create a node (its parent must exist, or use -p).
    Create {
        /// The node to create.
        path: String,
        /// Its data; - reads it from stdin; absent: no data.
        data: Option<String>,
        /// Make it ephemeral: it lives as long as this command's session, so the command
        /// holds the session until Ctrl-C or SIGTERM (or --hold).
        #[arg(short, long)]
        ephemeral: bool,
        /// With --ephemeral: hold the session this long instead of until Ctrl-C.
        #[arg(long, requires = "ephemeral", value_parser = parse_duration)]
        hold: Option<Duration>,
        /// Create missing parent nodes first (persistent, no data), like mkdir -p.
        #[arg(short, long)]
        parents: bool,
    },
    /// Replace a node's data (its version grows by one).
    Set {
        /// The node.
        path: String,
        /// The new data; - reads it from stdin.
        data: String,
    },
    /// Delete a node.
    Rm {
        /// The node.
        path: String,
        /// Delete its descendants first.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Print the tree under a node.
    Tree {
        /// The top of the tree.
        #[arg(default_value = "/")]
        path: String,
        /// Levels below the top to show (unlimited if absent).
        #[arg(long)]
        depth: Option<usize>,
        /// Also show children whose name starts with _.
        #[arg(short, long)]
        all: bool,
        /// Keep the tree in a local cache (pyxis-recipes' TreeCache) and print every
        /// change of it (added, changed, removed) with its time, until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
    },
    /// Stream a node's events with their time, re-arming after each, until Ctrl-C or
    /// --count.
    Watch(WatchArgs),
    /// List live sessions (the /pyxis/session proc tree).
    Sessions,
    /// Run a command while holding the lock NAME (an ephemeral node); exit with its exit
    /// code. No fairness among waiters (see pyxis-recipes' Lock).
    Lock(LockArgs),
    /// Stand as a candidate in the election NAME and print each change of leadership
    /// until Ctrl-C.
    Elect(ElectArgs),
    /// Print the current leader and the server list (/pyxis/cluster).
    Leader,
    /// Start a local test cluster, print its addresses and serve until Ctrl-C.
    Dev(DevArgs),
    /// Load a cluster and compare the client with a raw-frame floor (see pyxis bench --help).
    Bench(BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: pyxis completions bash > ~/.local/share/bash-completion/completions/pyxis;
    /// zsh: pyxis completions zsh > _pyxis in a directory of $fpath; fish: pyxis
    /// completions fish > ~/.config/fish/completions/pyxis.fish.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write all of them with --out-dir.
    ///
    /// The page of pyxis refers to one page per subcommand (pyxis-ls(1), ...): pyxis man
    /// --out-dir ~/.local/share/man/man1 writes them all, then man pyxis.
    Man {
        /// Write pyxis.1 and a page per subcommand into this directory instead of
        /// printing pyxis.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
}

/// Event types a `watch` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventKind {
    /// The node was created.
    Create,
    /// The node was deleted.
    Delete,
    /// The node's data was written.
    Modify,
    /// A child was created or deleted.
    Children,
}

/// Arguments of `pyxis watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The node to watch (it need not exist: its creation is an event).
    pub path: String,
    /// Also report events on descendants.
    #[arg(short, long)]
    pub recursive: bool,
    /// Event types to report (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub events: Vec<EventKind>,
    /// Stop after this many events.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// Arguments of `pyxis lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The lock's node (its missing parents are created).
    pub name: String,
    /// Give up (exit code 6) if the lock is not free within this long (default: wait
    /// forever).
    #[arg(long, value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// The command and its arguments, after --.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Arguments of `pyxis elect`.
#[derive(Debug, Args)]
pub struct ElectArgs {
    /// The election's node (its missing parents are created).
    pub name: String,
    /// Stored in the leader's node so others can see who leads.
    #[arg(long)]
    pub id: Option<String>,
}

pub use crate::dev::DevArgs;

/// The environment variable that holds the server list when `--addrs` is absent.
pub const ADDRS_ENV: &str = "PYXIS_ADDRS";

impl GlobalArgs {
    /// Takes the server list from `PYXIS_ADDRS` when `--addrs` is absent (split on commas,
    /// blanks dropped), as if it had been given on the command line.
    pub fn fill_from_env(&mut self) {
        if self.addrs.is_none() {
            if let Some(value) = std::env::var_os(ADDRS_ENV) {
                let list: Vec<String> = value
                    .to_string_lossy()
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect();
                if !list.is_empty() {
                    self.addrs = Some(list);
                }
            }
        }
    }

    /// The server list: `--addrs`, else `PYXIS_ADDRS`, else [`DEFAULT_ADDRS`].
    pub fn addrs(&self) -> Vec<String> {
        match &self.addrs {
            Some(addrs) if !addrs.is_empty() => addrs.clone(),
            _ => vec![DEFAULT_ADDRS.to_owned()],
        }
    }
}

/// Parses `--timeout`: a duration as [`parse_duration`] reads it, more than zero (a zero
/// wait could never succeed).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err("the timeout must be more than zero (e.g. 500ms, 5s)".to_owned());
    }
    Ok(duration)
}

/// Parses `250ms`, `5s`, `2m`, or a bare number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 500ms, 5s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s or m)"
            ))
        }
    };
    let duration = Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))?;
    if duration > MAX_DURATION {
        return Err(format!("{text:?} is longer than a year"));
    }
    Ok(duration)
}

/// The longest duration accepted on the command line (so that deadlines computed from it
/// cannot overflow).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("600000m").is_err(), "over a year");
        assert_eq!(parse_timeout("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("0ms").is_err());
    }

    #[test]
    fn the_grammar_is_consistent_and_addrs_split_on_commas() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["pyxis", "--addrs", "a:1,b:2", "ls", "/x"]).unwrap();
        assert_eq!(cli.global.addrs(), ["a:1", "b:2"]);
        assert!(matches!(cli.command, Command::Ls { ref path, all: false } if path == "/x"));
        assert!(Cli::try_parse_from(["pyxis", "watch", "/x", "--count", "0"]).is_err());
        assert!(Cli::try_parse_from(["pyxis", "create", "/x", "--hold", "1s"]).is_err());
    }
}
