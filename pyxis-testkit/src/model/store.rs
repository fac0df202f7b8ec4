//! The replicated node tree and its rules ([protocol](pyxis_proto::protocol) §2, §8), as
//! the original server applies them.
//!
//! Owns: stored nodes (data, children in creation order, flags, version, creator sid),
//! path checks, the create/delete/write rules and their errors (same types and `err.data`
//! texts as the real server). The original server's quirks are kept on purpose, since
//! clients meet them: only create refuses a trailing `/` (other requests look the literal
//! key up and answer kNotFound), `//x` is stored under that key and listed by `/` as `x`,
//! children keep creation order and a delete moves the last child into the deleted one's
//! place, and `/` lists `pyxis` first. Must never know about sessions' liveness, watches,
//! connections or the proc tree: the caller raises events, tracks ephemeral owners and
//! answers for `/pyxis…` paths.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message;
use pyxis_proto::limits::{check_path, parent, PathError, MAX_NODE_SIZE, PROC_ROOT};
use pyxis_proto::{node_flags, store, ErrorType};

/// An error answer: the error type and its `err.data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) kind: ErrorType,
    pub(crate) data: Option<String>,
}

impl Refusal {
    pub(crate) fn new(kind: ErrorType, data: impl Into<String>) -> Self {
        Self {
            kind,
            data: Some(data.into()),
        }
    }

    pub(crate) fn bare(kind: ErrorType) -> Self {
        Self { kind, data: None }
    }
}

pub(crate) const NODE_SIZE_EXCEED: &str = "node size exceed";
pub(crate) const PARENT_NOT_PERSISTENT: &str = "parent not persistent node";
pub(crate) const CHILDREN_NOT_EMPTY: &str = "children not empty";
pub(crate) const UNDER_PROC: &str = "can't create node under pyxis node";
pub(crate) const DELETE_UNDER_PROC: &str = "can't delete node under pyxis node";

/// Whether the path string starts with `/pyxis` (`/pyxisfoo` and `/pyxis-bench` too): the
/// original server refuses to create any of them and answers them from its proc tree.
pub(crate) fn is_proc_path(path: &str) -> bool {
    path.starts_with(PROC_ROOT)
}

/// A path the server accepts on every request (characters, length, leading `/`), or
/// kInvalidArgument with the path as `err.data`. A trailing `/` or an empty segment
/// passes (clients refuse both, the server does not): only create refuses a trailing
/// `/` ([`valid_create_path`]).
pub(crate) fn valid_path(path: &str) -> Result<(), Refusal> {
    match check_path(path) {
        Ok(()) | Err(PathError::TrailingSlash | PathError::EmptySegment { .. }) => Ok(()),
        Err(_) => Err(Refusal::new(ErrorType::KInvalidArgument, path)),
    }
}

/// A path create accepts: [`valid_path`] without a trailing `/`.
pub(crate) fn valid_create_path(path: &str) -> Result<(), Refusal> {
    match check_path(path) {
        Ok(()) | Err(PathError::EmptySegment { .. }) => Ok(()),
        Err(_) => Err(Refusal::new(ErrorType::KInvalidArgument, path)),
    }
}

/// One stored node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredNode {
    pub(crate) data: Bytes,
    /// Child names in creation order (a delete moves the last one into the gap; a name
    /// may appear twice, after a create of `//x` and of `/x`).
    pub(crate) children: Vec<String>,
    pub(crate) flags: u32,
    pub(crate) version: u64,
    pub(crate) sid: Option<u64>,
    /// Bytes the `children` field takes in the serialized node.
    children_len: usize,
}

fn child_entry_len(name: &str) -> usize {
    1 + prost::encoding::encoded_len_varint(name.len() as u64) + name.len()
}

impl StoredNode {
    fn new(data: Bytes, flags: u32, sid: Option<u64>) -> Self {
        Self {
            data,
            children: Vec::new(),
            flags,
            version: 0,
            sid,
            children_len: 0,
        }
    }

    /// The node as served in a stat answer.
    pub(crate) fn to_proto(&self) -> store::Node {
        store::Node {
            data: Some(self.data.clone()),
            children: self.children.clone(),
            flags: Some(self.flags),
            version: Some(self.version),
            sid: self.sid,
        }
    }

    /// The serialized size with `data` and `version` in place of the current ones.
    fn encoded_len_with(&self, data: &Bytes, version: u64) -> usize {
        store::Node {
            data: Some(data.clone()),
            children: Vec::new(),
            flags: Some(self.flags),
            version: Some(version),
            sid: self.sid,
        }
        .encoded_len()
            + self.children_len
    }

    pub(crate) fn is_ephemeral(&self) -> bool {
        self.flags & (node_flags::EPHEMERAL as u32) != 0
    }
}

/// The node tree. `/` always exists and lists `pyxis` (the proc tree) first.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    nodes: BTreeMap<String, StoredNode>,
}

impl Store {
    pub(crate) fn new() -> Self {
        let mut nodes = BTreeMap::new();
        let mut root = StoredNode::new(Bytes::new(), 0, None);
        let proc_name = PROC_ROOT.trim_start_matches('/');
        root.children.push(proc_name.to_owned());
        root.children_len = child_entry_len(proc_name);
        nodes.insert("/".to_owned(), root);
        Self { nodes }
    }

    pub(crate) fn get(&self, path: &str) -> Option<&StoredNode> {
        self.nodes.get(path)
    }

    /// Creates `path`.
    pub(crate) fn create(
        &mut self,
        path: &str,
        flags: i32,
        data: Bytes,
        sid: u64,
    ) -> Result<(), Refusal> {
        valid_create_path(path)?;
        if path == "/" {
            return Err(Refusal::new(ErrorType::KInvalidArgument, path));
        }
        if is_proc_path(path) {
            return Err(Refusal::new(ErrorType::KInvalidArgument, UNDER_PROC));
        }
        if data.len() > MAX_NODE_SIZE {
            return Err(Refusal::new(ErrorType::KInvalidArgument, NODE_SIZE_EXCEED));
        }
        if self.nodes.contains_key(path) {
            return Err(Refusal::new(ErrorType::KExist, path));
        }
        let Some(parent_path) = parent(path) else {
            return Err(Refusal::new(ErrorType::KInvalidArgument, path));
        };
        let name = child_name(path);
        let Some(parent_node) = self.nodes.get_mut(parent_path) else {
            return Err(Refusal::new(ErrorType::KNotFound, parent_path));
        };
        if parent_node.is_ephemeral() {
            return Err(Refusal::new(
                ErrorType::KInvalidArgument,
                PARENT_NOT_PERSISTENT,
            ));
        }
        let entry = child_entry_len(name);
        let parent_len = parent_node.encoded_len_with(&parent_node.data, parent_node.version);
        if parent_len + entry > MAX_NODE_SIZE {
            return Err(Refusal::new(ErrorType::KInvalidArgument, NODE_SIZE_EXCEED));
        }
        parent_node.children.push(name.to_owned());
        parent_node.children_len += entry;
        // Flags other than the ephemeral bit are stored as sent (0 or 1 in practice).
        let stored_flags = u32::from_ne_bytes(flags.to_ne_bytes());
        let owner = (sid != 0).then_some(sid);
        self.nodes
            .insert(path.to_owned(), StoredNode::new(data, stored_flags, owner));
        Ok(())
    }

    /// Deletes `path`; returns the deleted node.
    pub(crate) fn delete(&mut self, path: &str) -> Result<StoredNode, Refusal> {
        valid_path(path)?;
        if path == "/" {
            return Err(Refusal::new(ErrorType::KInvalidArgument, path));
        }
        let Some(node) = self.nodes.get(path) else {
            return Err(Refusal::new(ErrorType::KNotFound, path));
        };
        if !node.children.is_empty() {
            return Err(Refusal::new(
                ErrorType::KInvalidArgument,
                CHILDREN_NOT_EMPTY,
            ));
        }
        let Some(parent_path) = parent(path) else {
            return Err(Refusal::new(ErrorType::KInvalidArgument, path));
        };
        let name = child_name(path);
        if let Some(p) = self.nodes.get_mut(parent_path) {
            if let Some(at) = p.children.iter().position(|c| c == name) {
                p.children.swap_remove(at);
                p.children_len -= child_entry_len(name);
            }
        }
        self.nodes
            .remove(path)
            .ok_or_else(|| Refusal::new(ErrorType::KNotFound, path))
    }

    /// Replaces the data of `path`; returns the new version.
    pub(crate) fn write(&mut self, path: &str, data: Bytes) -> Result<u64, Refusal> {
        valid_path(path)?;
        let Some(node) = self.nodes.get_mut(path) else {
            return Err(Refusal::new(ErrorType::KNotFound, path));
        };
        let version = node.version + 1;
        if node.encoded_len_with(&data, version) > MAX_NODE_SIZE {
            return Err(Refusal::new(ErrorType::KInvalidArgument, NODE_SIZE_EXCEED));
        }
        node.data = data;
        node.version = version;
        Ok(version)
    }
}

/// The name a created node gets in its parent's children: what follows the last `/`.
fn child_name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_len_tracks_serialized_children() {
        let mut s = Store::new();
        s.create("/a", 0, Bytes::new(), 1).unwrap();
        s.create("/a/bb", 0, Bytes::new(), 1).unwrap();
        s.create("/a/c", 0, Bytes::new(), 1).unwrap();
        let a = s.get("/a").unwrap();
        assert_eq!(
            a.encoded_len_with(&a.data, a.version),
            a.to_proto().encoded_len()
        );
        s.delete("/a/bb").unwrap();
        let a = s.get("/a").unwrap();
        assert_eq!(
            a.encoded_len_with(&a.data, a.version),
            a.to_proto().encoded_len()
        );
    }

    #[test]
    fn proc_paths() {
        assert!(is_proc_path("/pyxis"));
        assert!(is_proc_path("/pyxis/db"));
        assert!(is_proc_path("/pyxisx"));
        assert!(!is_proc_path("/pyxi"));
    }
}
