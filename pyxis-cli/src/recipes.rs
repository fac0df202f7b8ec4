//! The recipe commands: `lock` (run a command while holding a lock) and `elect` (take
//! part in an election and print each change of leadership until Ctrl-C), each one
//! session of a `pyxis-tokio` client and one `pyxis-recipes` recipe.
//!
//! Owns: running the child command under the lock and printing leadership changes. Must
//! never implement a recipe (locking, leases, elections are `pyxis-recipes`'), nor let
//! the child run on once the lock is known lost.

use std::time::{Duration, SystemTime};

use pyxis_recipes::{Election, Leadership, Lock};
use pyxis_tokio::Client;

use crate::args::{ElectArgs, LockArgs};
use crate::commands::print;
use crate::exit::CliError;
use crate::output;

/// A recipe's failure on `path` as the CLI reports it.
fn recipe_error(op: &'static str, path: &str, error: pyxis_recipes::Error) -> CliError {
    match error {
        pyxis_recipes::Error::Client(source) => CliError::request(op, path, source),
        other => CliError::Recipe {
            op,
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// The exit code a finished child reports (128 + the signal that ended it, as shells do).
fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return u8::try_from((128 + signal) & 0xff).unwrap_or(1);
        }
    }
    1
}

/// `pyxis lock NAME -- COMMAND...`: takes the lock at `NAME` (waiting up to `--wait`),
/// runs the command, releases the lock when it exits, and ends with its exit code. The
/// command is killed (and the lock released) on Ctrl-C or SIGTERM, and killed if the
/// lock is lost while it runs (exit code 6).
pub async fn lock(client: &Client, args: LockArgs) -> Result<(), CliError> {
    let interrupted = crate::interrupt()?;
    tokio::pin!(interrupted);
    let wait = args.wait.unwrap_or(Duration::MAX);
    let lock = Lock::new(client, &args.name);
    let guard = tokio::select! {
        guard = lock.acquire(wait) => guard.map_err(|e| recipe_error("lock", &args.name, e))?,
        () = &mut interrupted => return Err(CliError::Exit(130)),
    };
    let Some((program, rest)) = args.command.split_first() else {
        return Err(CliError::Usage("lock: no command to run".into()));
    };
    let mut child = match tokio::process::Command::new(program)
        .args(rest)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let _ = guard.release().await;
            return Err(CliError::Usage(format!("cannot run {program}: {e}")));
        }
    };
    let outcome = tokio::select! {
        status = child.wait() => status.map(exit_code).map_err(CliError::from),
        () = guard.lost() => {
            let _ = child.kill().await;
            Err(CliError::Recipe {
                op: "lock",
                path: args.name.clone(),
                reason: "lost while the command ran (session lost or expired); the command was killed".into(),
            })
        }
        () = &mut interrupted => {
            let _ = child.kill().await;
            Ok(130)
        }
    };
    let released = guard.release().await;
    match outcome? {
        0 => released.map_err(|e| recipe_error("lock", &args.name, e)),
        code => Err(CliError::Exit(code)),
    }
}

/// `pyxis elect NAME`: joins the election at `NAME` and prints every change of this
/// candidate's leadership (a line, or NDJSON with `--json`) until Ctrl-C or SIGTERM, then
/// resigns.
pub async fn elect(client: &Client, json: bool, args: ElectArgs) -> Result<(), CliError> {
    let interrupted = crate::interrupt()?;
    tokio::pin!(interrupted);
    let id = args.id.unwrap_or_default();
    let election = Election::join(client, &args.name, id.clone())
        .map_err(|e| recipe_error("elect", &args.name, e))?;
    let mut changes = election.events();
    // Registered: scripts (and the tests) wait for this line on stderr.
    eprintln!("candidate for {}", output::escape(&args.name));
    loop {
        tokio::select! {
            () = &mut interrupted => break,
            change = changes.next() => {
                let Some(change) = change else {
                    return Err(CliError::Recipe {
                        op: "elect",
                        path: args.name,
                        reason: "the candidacy ended (client closed)".into(),
                    });
                };
                let leads = match change {
                    Ok(Leadership::Elected) => true,
                    Ok(_) => false,
                    // Changes were dropped (this loop fell behind): say where it stands.
                    Err(_) => election.is_leader(),
                };
                let state = if leads { "elected" } else { "not leader" };
                let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
                if json {
                    let line = serde_json::json!({
                        "time": time,
                        "path": args.name,
                        "leadership": state,
                        "session": client.sid().map(output::sid),
                    });
                    print(&format!("{line}\n"))?;
                } else {
                    print(&format!("{time} {state}\n"))?;
                }
            }
        }
    }
    election
        .resign()
        .await
        .map_err(|e| recipe_error("elect", &args.name, e))
}
