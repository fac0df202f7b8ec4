//! The server's applied-operation history, turned into per-path timelines the oracles
//! can query: what a node looked like at any virtual instant.
//!
//! Owns: [`Timelines`] (built once from `ClusterModel::applied_ops` at the end of a run)
//! and the node [`State`] / watch-relevant [`Shape`] views. Must never call the model
//! beyond reading its history, and never decide whether something is a violation.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use pyxis_testkit::model::{AppliedKind, AppliedOp};

/// A node's content at some instant: `None` when it does not exist.
pub type State = Option<(Bytes, u64)>;

/// What a watch compares: existence, version, children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Whether the node exists.
    pub exists: bool,
    /// Its version (0 when missing).
    pub version: u64,
    /// Its children's names, sorted (empty when missing).
    pub children: Vec<String>,
}

/// One change of one path.
#[derive(Debug, Clone)]
pub struct Change {
    /// Virtual µs when it was applied.
    pub at_us: u64,
    /// The state after it.
    pub state: State,
    /// What kind of operation made it.
    pub kind: ChangeKind,
    /// The session that made it (the owner, for an ephemeral deletion).
    pub sid: u64,
    /// Whether the client was told it succeeded.
    pub acknowledged: bool,
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Create,
    /// Written.
    Write,
    /// Deleted by a client.
    Delete,
    /// Deleted with its owner session.
    EphemeralDeleted,
}

/// Per-path change lists, in commit order.
#[derive(Debug, Default)]
pub struct Timelines {
    paths: BTreeMap<String, Vec<Change>>,
}

/// Virtual µs of `at` (rounded down) relative to `base`.
pub fn us_since(base: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(base).as_micros()).unwrap_or(u64::MAX)
}

impl Timelines {
    /// Builds the timelines of every path from the history.
    pub fn build<'a>(base: Instant, ops: impl Iterator<Item = &'a AppliedOp>) -> Timelines {
        let mut t = Timelines::default();
        for op in ops {
            let (kind, state) = match &op.kind {
                AppliedKind::Create { data, .. } => (ChangeKind::Create, Some((data.clone(), 0))),
                AppliedKind::Write { data, version } => {
                    (ChangeKind::Write, Some((data.clone(), *version)))
                }
                AppliedKind::Delete => (ChangeKind::Delete, None),
                AppliedKind::EphemeralDeleted => (ChangeKind::EphemeralDeleted, None),
                _ => continue,
            };
            t.paths.entry(op.path.clone()).or_default().push(Change {
                at_us: us_since(base, op.at),
                state,
                kind,
                sid: op.sid,
                acknowledged: op.acknowledged,
            });
        }
        t
    }

    /// The changes of `path`, oldest first.
    pub fn changes(&self, path: &str) -> &[Change] {
        self.paths.get(path).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every state `path` had at some instant in `[from, to]` (µs): the state just
    /// before `from` and every state made in the window.
    pub fn states_during(&self, path: &str, from: u64, to: u64) -> Vec<State> {
        let changes = self.changes(path);
        let before = changes.iter().take_while(|c| c.at_us < from).last();
        let mut out = vec![before.and_then(|c| c.state.clone())];
        out.extend(
            changes
                .iter()
                .filter(|c| c.at_us >= from && c.at_us <= to)
                .map(|c| c.state.clone()),
        );
        out
    }

    /// The state of `path` at `at` (after every change at or before it).
    pub fn state_at(&self, path: &str, at: u64) -> State {
        self.changes(path)
            .iter()
            .take_while(|c| c.at_us <= at)
            .last()
            .and_then(|c| c.state.clone())
    }

    /// The watch-relevant shape of `path` at `at`; `children_of` lists the candidate
    /// child paths (the workload's path set).
    pub fn shape_at(&self, path: &str, at: u64, children_of: &[&str]) -> Shape {
        let state = self.state_at(path, at);
        let mut children: Vec<String> = children_of
            .iter()
            .filter(|c| pyxis_proto::limits::parent(c) == Some(path))
            .filter(|c| self.state_at(c, at).is_some())
            .filter_map(|c| c.rsplit('/').next().map(str::to_owned))
            .collect();
        children.sort();
        match state {
            Some((_, version)) => Shape {
                exists: true,
                version,
                children,
            },
            None => Shape {
                exists: false,
                version: 0,
                children: Vec::new(),
            },
        }
    }
}
