//! The recipe commands: `lock` (run a command while holding a lock), `elect` (take
//! part in an election and print each change of leadership until Ctrl-C) and
//! `tree --follow` (a subtree cache, printed and then followed change by change), each
//! one session of a `pyxis-tokio` client and one `pyxis-recipes` recipe.
//!
//! Owns: running the child command under the lock, printing leadership changes and the
//! cache's tree and changes. Must never implement a recipe (locking, leases, elections,
//! the cache are `pyxis-recipes`'), nor let the child run on once the lock is known lost.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use pyxis_core::Node;
use pyxis_recipes::{CacheEvent, Election, Leadership, Lock, TreeCache};
use pyxis_tokio::Client;

use crate::args::{ElectArgs, LockArgs};
use crate::commands::print;
use crate::exit::CliError;
use crate::output::{self, TreeView};
use crate::walk::MAX_TREE_NODES;

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

/// `pyxis tree PATH --follow`: mirrors the subtree at `path` in a [`TreeCache`] (at most
/// [`MAX_TREE_NODES`] nodes), prints it as `tree` does once loaded, then one line per
/// change of the mirror (`<time> added|changed|removed <path>`, or NDJSON with
/// `--json`) until Ctrl-C or SIGTERM. Changes dropped because this loop fell behind are
/// reported as one `lagged` line with their number.
pub async fn follow_tree(
    client: &Client,
    json: bool,
    path: &str,
    depth: Option<usize>,
    all: bool,
) -> Result<(), CliError> {
    let interrupted = crate::interrupt()?;
    tokio::pin!(interrupted);
    let cache = TreeCache::watch(client, path, MAX_TREE_NODES)
        .map_err(|e| recipe_error("tree", path, e))?;
    let mut changes = cache.events();
    tokio::select! {
        loaded = cache.wait_loaded(Duration::MAX) => {
            loaded.map_err(|e| recipe_error("tree", path, e))?;
        }
        () = &mut interrupted => return Ok(()),
    }
    let snapshot = cache
        .snapshot()
        .map_err(|e| recipe_error("tree", path, e))?;
    let root = snapshot
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| path.to_owned());
    let tree = tree_view(&snapshot, &root, depth, all);
    if json {
        print(&format!(
            "{}\n",
            serde_json::to_string(&tree).unwrap_or_default()
        ))?;
    } else {
        print(&tree.human())?;
    }
    // Loaded: scripts (and the tests) wait for this line on stderr.
    eprintln!("following {}", output::escape(path));
    loop {
        let change = tokio::select! {
            () = &mut interrupted => return Ok(()),
            change = changes.next() => change,
        };
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let (what, changed) = match change {
            Some(Ok(CacheEvent::Added { path })) => ("added", path),
            Some(Ok(CacheEvent::Changed { path })) => ("changed", path),
            Some(Ok(CacheEvent::Removed { path })) => ("removed", path),
            Some(Err(lagged)) => ("lagged", lagged.0.to_string()),
            // Overflow, or the stream ended: the cache says why.
            Some(Ok(_)) | None => {
                return Err(match cache.snapshot() {
                    Err(e) => recipe_error("tree", path, e),
                    Ok(_) => CliError::Recipe {
                        op: "tree",
                        path: path.to_owned(),
                        reason: "the cache stopped (client closed)".into(),
                    },
                })
            }
        };
        if json {
            let key = if what == "lagged" { "dropped" } else { "path" };
            let line = serde_json::json!({ "time": time, "event": what, key: changed });
            print(&format!("{line}\n"))?;
        } else {
            print(&format!("{time} {what} {}\n", output::escape(&changed)))?;
        }
    }
}

/// The tree at `path` as mirrored, down to `depth` levels, hiding `_` children unless
/// `all` (as `tree` shows them).
fn tree_view(
    nodes: &BTreeMap<String, Node>,
    path: &str,
    depth: Option<usize>,
    all: bool,
) -> TreeView {
    let mut children: Vec<&String> = nodes
        .get(path)
        .map(|node| node.children.iter().collect())
        .unwrap_or_default();
    children.retain(|name| all || !name.starts_with('_'));
    children.sort();
    let truncated = depth == Some(0) && !children.is_empty();
    let children = if truncated {
        Vec::new()
    } else {
        children
            .into_iter()
            .map(|name| crate::walk::child_path(path, name))
            .filter(|child| nodes.contains_key(child))
            .map(|child| tree_view(nodes, &child, depth.map(|d| d - 1), all))
            .collect()
    };
    TreeView {
        path: path.to_owned(),
        children,
        truncated,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str, children: &[&str]) -> (String, Node) {
        let node = Node {
            path: path.to_owned(),
            data: Default::default(),
            children: children.iter().map(|c| (*c).to_owned()).collect(),
            flags: 0,
            version: 0,
            owner: 0,
        };
        (path.to_owned(), node)
    }

    #[test]
    fn the_followed_tree_honours_depth_and_hidden_names() {
        let nodes: BTreeMap<String, Node> = [
            node("/app", &["b", "_h", "a"]),
            node("/app/a", &["x"]),
            node("/app/a/x", &[]),
            node("/app/b", &[]),
            node("/app/_h", &[]),
        ]
        .into_iter()
        .collect();
        let full = tree_view(&nodes, "/app", None, false);
        assert_eq!(full.human(), "/app\n├── a\n│   └── x\n└── b\n");
        let all = tree_view(&nodes, "/app", None, true);
        assert_eq!(all.children[0].path, "/app/_h");
        let shallow = tree_view(&nodes, "/app", Some(1), false);
        assert_eq!(shallow.human(), "/app\n├── a …\n└── b\n");
    }
}
