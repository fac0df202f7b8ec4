//! The walking commands: `rm` (and `rm -r`) and `tree`.
//!
//! Owns: visiting a subtree through a client session, in the order each command needs,
//! within [`MAX_TREE_NODES`]. Must never implement protocol behaviour (retries, redirects):
//! the client does that; a walk only asks and prints.

use pyxis_tokio::Client;

use crate::commands::{print, read};
use crate::exit::CliError;
use crate::output::{self, TreeView};

/// Most nodes `tree` and `rm --recursive` visit, so a huge tree cannot exhaust memory.
pub const MAX_TREE_NODES: usize = 100_000;

/// `pyxis rm [-r] <path>`: deletes and prints what it deleted.
pub async fn rm(client: &Client, json: bool, path: &str, recursive: bool) -> Result<(), CliError> {
    let removed = remove(client, path, recursive).await?;
    if json {
        print(&output::json(&serde_json::json!({ "removed": removed })))
    } else {
        print(
            &removed
                .iter()
                .map(|p| format!("removed {p}\n"))
                .collect::<String>(),
        )
    }
}

/// `pyxis tree <path>`: walks the subtree and prints it.
pub async fn tree(
    client: &Client,
    json: bool,
    path: &str,
    depth: Option<usize>,
    all: bool,
) -> Result<(), CliError> {
    let mut budget = MAX_TREE_NODES;
    let tree = walk(client, path, depth, all, &mut budget).await?;
    if json {
        print(&output::json(&tree))
    } else {
        print(&tree.human())
    }
}

/// Deletes `path` (and, when `recursive`, its descendants first); returns the deleted
/// paths in deletion order.
async fn remove(client: &Client, path: &str, recursive: bool) -> Result<Vec<String>, CliError> {
    let mut order = Vec::new();
    if recursive {
        // Depth-first, children before parents, bounded by MAX_TREE_NODES.
        let mut stack = vec![(path.to_owned(), false)];
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                order.push(node);
                continue;
            }
            let children = read(client, "rm", &node, true).await?.children;
            if order.len() + stack.len() + children.len() > MAX_TREE_NODES {
                return Err(CliError::Usage(format!(
                    "rm -r {path}: more than {MAX_TREE_NODES} nodes"
                )));
            }
            stack.push((node.clone(), true));
            stack.extend(children.iter().map(|c| (child_path(&node, c), false)));
        }
    } else {
        order.push(path.to_owned());
    }
    for node in &order {
        client
            .delete(node)
            .await
            .map_err(|e| CliError::request("rm", node, e))?;
    }
    Ok(order)
}

/// The path of child `name` of `parent`.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

async fn walk(
    client: &Client,
    path: &str,
    depth: Option<usize>,
    all: bool,
    budget: &mut usize,
) -> Result<TreeView, CliError> {
    let node = read(client, "tree", path, all).await?;
    *budget = budget.saturating_sub(1);
    let mut view = TreeView {
        path: path.to_owned(),
        children: Vec::new(),
        truncated: false,
    };
    if depth == Some(0) || *budget == 0 {
        view.truncated = !node.children.is_empty();
        return Ok(view);
    }
    for name in &node.children {
        let child = child_path(path, name);
        // Recursion depth is bounded by the path length limit (4 095 bytes).
        let sub = Box::pin(walk(client, &child, depth.map(|d| d - 1), all, budget)).await;
        match sub {
            Ok(sub) => view.children.push(sub),
            // A child deleted while walking is simply not shown.
            Err(CliError::Request {
                source: pyxis_core::Error::NotFound { .. },
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_paths() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }
}
