//! The walking commands: `rm` (and `rm -r`) and `tree`.
//!
//! Owns: visiting a subtree through a client session level by level, with the reads of a
//! level (and the deletes of `rm -r`, deepest level first) pipelined up to [`WINDOW`] in
//! flight; holding at most [`MAX_TREE_NODES`] names at any time; marking children that
//! cannot be read (a name that is not a valid path, as `/pyxis/db` lists one; a read that
//! fails) and going on; and a progress line on stderr when it is a terminal. Must never
//! implement protocol behaviour (retries, redirects): the client does that; a walk only
//! asks and prints.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pyxis_core::{Error, Node};
use pyxis_proto::limits::check_path;
use pyxis_tokio::{Client, ReadOptions};
use tokio::task::JoinSet;

use crate::commands::print;
use crate::exit::CliError;
use crate::output::{self, TreeView};

/// Most nodes `tree` and `rm --recursive` hold at once, so a huge tree cannot exhaust
/// memory (`tree` shows the rest as truncated, `rm -r` refuses).
pub const MAX_TREE_NODES: usize = 100_000;

/// Requests of one level kept in flight together.
pub const WINDOW: usize = 256;

/// `pyxis rm [-r] <path>`: deletes and prints what it deleted.
pub async fn rm(client: &Client, json: bool, path: &str, recursive: bool) -> Result<(), CliError> {
    let removed = remove(client, path, recursive).await?;
    if json {
        print(&output::json(&serde_json::json!({ "removed": removed })))
    } else {
        print(&removed_text(&removed))
    }
}

/// What `rm` prints for the paths it removed: one line each, escaped as every name the
/// server hands out is.
fn removed_text(removed: &[String]) -> String {
    removed
        .iter()
        .map(|p| format!("removed {}\n", output::escape(p)))
        .collect()
}

/// `pyxis tree <path>`: walks the subtree and prints it.
pub async fn tree(
    client: &Client,
    json: bool,
    path: &str,
    depth: Option<usize>,
    all: bool,
) -> Result<(), CliError> {
    let tree = walk(client, path, depth, all).await?;
    if json {
        print(&output::json(&tree))
    } else {
        print(&tree.human())
    }
}

/// The path of child `name` of `parent`.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A progress line on stderr for long walks, shown only when stderr is a terminal.
fn progress(what: &str) -> ProgressBar {
    progress_bar(what, std::io::stderr().is_terminal())
}

fn progress_bar(what: &str, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {pos} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Runs `op` on every path of `paths` with at most [`WINDOW`] in flight, handing each
/// result to `done` (with the path's index) as it completes, so no more than a window of
/// answers is held.
async fn pipelined<T, F, Fut>(
    client: &Client,
    paths: &[String],
    op: F,
    mut done: impl FnMut(usize, Result<T, Error>),
) where
    T: Send + 'static,
    F: Fn(Client, String) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut next = 0;
    loop {
        while set.len() < WINDOW && next < paths.len() {
            let fut = op(client.clone(), paths[next].clone());
            let i = next;
            set.spawn(async move { (i, fut.await) });
            next += 1;
        }
        match set.join_next().await {
            Some(Ok((i, result))) => done(i, result),
            // A task cannot panic (it only awaits the client); a cancelled one is not
            // spawned here. Either way there is no answer to hand on.
            Some(Err(_)) => {}
            None => break,
        }
    }
}

fn read_options(all: bool) -> ReadOptions {
    if all {
        ReadOptions::show_hidden(true)
    } else {
        ReadOptions::default()
    }
}

/// One node met by a walk.
struct Entry {
    path: String,
    children: Vec<usize>,
    truncated: bool,
    /// Why the node could not be read (shown instead of its children).
    error: Option<String>,
    /// Deleted while the walk went on: not shown.
    gone: bool,
}

impl Entry {
    fn new(path: String) -> Self {
        Self {
            path,
            children: Vec::new(),
            truncated: false,
            error: None,
            gone: false,
        }
    }
}

/// The subtree under `root`, breadth first, at most `depth` levels below it and at most
/// [`MAX_TREE_NODES`] nodes. Children are sorted by name; a child whose name is not a
/// valid path, or whose read fails, is kept with the reason.
async fn collect(
    client: &Client,
    root: &str,
    depth: Option<usize>,
    all: bool,
    bar: &ProgressBar,
) -> Result<Vec<Entry>, CliError> {
    let mut entries = vec![Entry::new(root.to_owned())];
    let mut level = vec![0usize];
    let mut below = 0usize;
    while !level.is_empty() {
        let expand = depth.is_none_or(|d| below < d);
        let mut readable = Vec::new();
        for &id in &level {
            match check_path(&entries[id].path) {
                Ok(()) => readable.push(id),
                Err(e) if id == 0 => {
                    return Err(CliError::Usage(format!("{root}: {e}")));
                }
                Err(e) => entries[id].error = Some(format!("not a valid path: {e}")),
            }
        }
        let paths: Vec<String> = readable
            .iter()
            .map(|&id| entries[id].path.clone())
            .collect();
        let options = read_options(all);
        let mut next = Vec::new();
        let mut failure = None;
        pipelined(
            client,
            &paths,
            |c, p| async move { c.read_with(&p, options).await },
            |i, result: Result<Node, Error>| {
                let id = readable[i];
                bar.inc(1);
                match result {
                    Ok(node) => {
                        if !expand {
                            entries[id].truncated = !node.children.is_empty();
                            return;
                        }
                        let mut names = node.children;
                        names.sort();
                        let room = MAX_TREE_NODES.saturating_sub(entries.len());
                        if names.len() > room {
                            names.truncate(room);
                            entries[id].truncated = true;
                        }
                        for name in names {
                            let child = entries.len();
                            let path = child_path(&entries[id].path, &name);
                            entries.push(Entry::new(path));
                            entries[id].children.push(child);
                            next.push(child);
                        }
                    }
                    Err(e) if id == 0 => failure = Some(e),
                    // Deleted between its parent's listing and this read.
                    Err(Error::NotFound { .. }) => entries[id].gone = true,
                    Err(e) => entries[id].error = Some(e.to_string()),
                }
            },
        )
        .await;
        if let Some(e) = failure {
            return Err(CliError::request("tree", root, e));
        }
        level = next;
        below += 1;
    }
    Ok(entries)
}

fn view(entries: &[Entry], id: usize) -> TreeView {
    let e = &entries[id];
    TreeView {
        path: e.path.clone(),
        children: e
            .children
            .iter()
            .filter(|&&c| !entries[c].gone)
            .map(|&c| view(entries, c))
            .collect(),
        truncated: e.truncated,
        error: e.error.clone(),
    }
}

async fn walk(
    client: &Client,
    path: &str,
    depth: Option<usize>,
    all: bool,
) -> Result<TreeView, CliError> {
    let bar = progress("tree: nodes read");
    let entries = collect(client, path, depth, all, &bar).await;
    bar.finish_and_clear();
    // Recursion depth is bounded by the path length limit (4 095 bytes).
    Ok(view(&entries?, 0))
}

/// Deletes `path` (and, when `recursive`, its descendants first, deepest level first,
/// each level's deletes pipelined); returns the deleted paths in deletion order.
async fn remove(client: &Client, path: &str, recursive: bool) -> Result<Vec<String>, CliError> {
    if !recursive {
        client
            .delete(path)
            .await
            .map_err(|e| CliError::request("rm", path, e))?;
        return Ok(vec![path.to_owned()]);
    }
    let bar = progress("rm -r: nodes");
    let result = remove_all(client, path, &bar).await;
    bar.finish_and_clear();
    result
}

async fn remove_all(
    client: &Client,
    path: &str,
    bar: &ProgressBar,
) -> Result<Vec<String>, CliError> {
    bar.set_message("rm -r: nodes read");
    let entries = collect(client, path, None, true, bar).await?;
    if entries.len() >= MAX_TREE_NODES {
        return Err(CliError::Usage(format!(
            "rm -r {path}: more than {MAX_TREE_NODES} nodes"
        )));
    }
    if let Some(bad) = entries.iter().find(|e| e.error.is_some()) {
        return Err(CliError::Usage(format!(
            "rm -r {path}: cannot remove {}: {}",
            bad.path,
            bad.error.as_deref().unwrap_or_default()
        )));
    }
    // Levels by depth below `path`; deepest first, so every node goes after its children.
    let mut levels: Vec<Vec<usize>> = vec![vec![0]];
    while let Some(last) = levels.last() {
        let next: Vec<usize> = last
            .iter()
            .flat_map(|&id| entries[id].children.iter().copied())
            .filter(|&c| !entries[c].gone)
            .collect();
        if next.is_empty() {
            break;
        }
        levels.push(next);
    }
    bar.set_message("rm -r: nodes removed");
    bar.set_position(0);
    let mut removed = Vec::with_capacity(entries.len());
    for level in levels.iter().rev() {
        let paths: Vec<String> = level.iter().map(|&id| entries[id].path.clone()).collect();
        let mut outcome: Vec<Option<Result<(), Error>>> = vec![None; paths.len()];
        pipelined(
            client,
            &paths,
            |c, p| async move { c.delete(&p).await },
            |i, r| {
                bar.inc(1);
                outcome[i] = Some(r);
            },
        )
        .await;
        for (p, r) in paths.into_iter().zip(outcome) {
            match r {
                Some(Ok(())) => removed.push(p),
                // Removed by someone else meanwhile: the goal is reached.
                Some(Err(Error::NotFound { .. })) if p != path => {}
                Some(Err(e)) => return Err(CliError::request("rm", &p, e)),
                None => return Err(CliError::Usage(format!("rm -r {path}: {p}: no answer"))),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_paths_are_printed_escaped() {
        let text = removed_text(&["/a".to_owned(), "/a/x\u{1b}[2J\nexit 0".to_owned()]);
        assert_eq!(text, "removed /a\nremoved /a/x\\u{1b}[2J\\nexit 0\n");
    }

    #[test]
    fn child_paths() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }

    #[test]
    fn progress_is_hidden_off_a_terminal() {
        assert!(progress_bar("x", false).is_hidden());
    }
}
