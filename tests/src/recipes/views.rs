//! What the applications see of the server (their recipes' views) and what the server
//! has, in one comparable form, and the deliberately broken view the convergence oracle
//! must catch.
//!
//! Owns: [`Tree`] (a subtree as path → data, version, sorted children), reading one from
//! the cluster model ([`server_tree`]), and [`NaiveMirror`], a mirror that patches
//! itself from real watch events and ignores inferred ones (the broken variant). Must
//! never be used by the correct workload's views: those are the recipes'.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use pyxis_client_common::{AsyncClient, EventMask, Node};
use pyxis_turmoil::Cluster;

/// One node as compared: data, version, children (sorted).
pub type Entry = (Bytes, u64, Vec<String>);

/// A subtree by path.
pub type Tree = BTreeMap<String, Entry>;

/// The path of child `name` of `parent`.
pub fn child(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A client's view of a node, as compared.
pub fn entry(node: &Node) -> Entry {
    let mut children = node.children.clone();
    children.sort();
    (node.data.clone(), node.version, children)
}

/// The server's subtree at `root` now (empty if `root` does not exist).
pub fn server_tree(cluster: &Cluster, root: &str) -> Tree {
    let mut tree = Tree::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        if let Some(node) = cluster.node(&path) {
            stack.extend(node.children.iter().map(|name| child(&path, name)));
            let mut children = node.children;
            children.sort();
            tree.insert(path, (node.data, node.version, children));
        }
    }
    tree
}

/// The first difference between a view and the server's tree, if any.
pub fn difference(view: &Tree, server: &Tree) -> Option<String> {
    for (path, want) in server {
        match view.get(path) {
            None => return Some(format!("{path} missing from the view")),
            Some(got) if got != want => {
                return Some(format!(
                    "{path}: view has version {} children {:?}, server version {} children {:?}",
                    got.1, got.2, want.1, want.2
                ))
            }
            Some(_) => {}
        }
    }
    view.keys()
        .find(|path| !server.contains_key(*path))
        .map(|path| format!("{path} in the view but not on the server"))
}

/// The broken view: a subtree mirror that reads the subtree once, then patches the
/// node each real watch event names (and its parent's children) and ignores inferred
/// events (and dropped ones), as
/// a careless hand-written cache does. After a disconnection it can stay wrong for
/// good; the convergence oracle must say so.
#[derive(Debug, Clone, Default)]
pub struct NaiveMirror(Arc<Mutex<Tree>>);

impl NaiveMirror {
    /// The mirror now.
    pub fn snapshot(&self) -> Tree {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Follows the subtree at `root` until the client closes.
    pub async fn follow(self, client: AsyncClient, root: String) {
        let mask = EventMask::CREATE | EventMask::DELETE | EventMask::MODIFY | EventMask::CHILDREN;
        let mut watch = loop {
            match client.watch_persistent(&root, mask, true).await {
                Ok(watch) => break watch,
                Err(pyxis_client_common::Error::Closed) => return,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        };
        self.read_below(&client, &root).await;
        while let Some(item) = watch.next().await {
            match item {
                Ok(event) if !event.inferred => {
                    // The node, and its parent's list of children.
                    if let Some((parent, _)) = event.path.rsplit_once('/') {
                        if parent.len() >= root.len() {
                            self.read_one(&client, parent).await;
                        }
                    }
                    self.read_below(&client, &event.path).await;
                }
                // The broken part: an inferred event (or lost events) changes nothing.
                Ok(_) | Err(_) => {}
            }
        }
    }

    /// Re-reads `path` alone.
    async fn read_one(&self, client: &AsyncClient, path: &str) {
        if let Ok(Some(node)) = client.exists(path).await {
            let mut tree = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            tree.insert(path.to_owned(), entry(&node));
        }
    }

    /// Re-reads `path` and what is below it, patching the mirror.
    async fn read_below(&self, client: &AsyncClient, path: &str) {
        let mut stack = vec![path.to_owned()];
        while let Some(path) = stack.pop() {
            match client.exists(&path).await {
                Ok(Some(node)) => {
                    stack.extend(node.children.iter().map(|name| child(&path, name)));
                    let mut tree = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                    tree.insert(path, entry(&node));
                }
                Ok(None) => {
                    let mut tree = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                    let prefix = format!("{path}/");
                    tree.retain(|key, _| *key != path && !key.starts_with(&prefix));
                }
                Err(_) => {}
            }
        }
    }
}
