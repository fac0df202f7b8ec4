//! The watch registry: application watches, the one server registration per path, and
//! the last state seen on each watched path.
//!
//! Owns: application watches by id and by path; per path the registration to send (the
//! masks OR-ed with every node event type, recursive if any watch is), whether the server registration is believed set, and the
//! baseline (existence, version, children) last seen; fan-out of a server event to
//! exactly the watches it matches (one-shot ones are spent); and the gap check that turns
//! a difference between the baseline and a fresh stat into `inferred` events. Must never
//! build frames or talk to the connection: the client glue sends the stat + watch arms
//! this registry asks for.
//!
//! The server keeps at most one watch per (session, path) and does not merge masks
//! (PROTOCOL.md §6), so the registration always includes every node event type: a watch
//! added while it is set is covered at once (an event no watch asked for is not
//! delivered, only re-armed). The recursive flag cannot be widened that way: a recursive
//! watch added while a non-recursive registration is set gets it from the next re-arm
//! (after the registration fires, or after a reconnect).
//!
//! Inference beyond the baseline comparison: a node found created since writes and
//! children since its creation (version > 0, children) as missed too; a deletion found
//! since is told to watches not listening for Delete as the Modify / Children change it
//! is for them (data and children gone); a fired Delete of a node last seen with
//! children tells Children watches (those deletions would have fired first); and a
//! child's Create/Delete spending a recursive registration stands for the Children
//! event the server raises on the parent right after (which finds no registration).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::types::{Event, EventType, Node, WatchEvent, WatchId, WatchMode, WatchSpec};

/// One application watch.
#[derive(Debug, Clone)]
struct AppWatch {
    spec: WatchSpec,
    /// False while the read that armed it is unanswered (the application does not know
    /// its id yet, so it gets no events).
    live: bool,
}

/// What was last seen on a watched path; `None` fields are unknown (not compared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Baseline {
    exists: Option<bool>,
    version: Option<u64>,
    children: Option<Vec<String>>,
    /// A Children event reported exactly one change (one child added or removed) since
    /// `children` was seen.
    one_child_changed: bool,
}

/// Per watched path.
#[derive(Debug, Default)]
struct PathState {
    watches: BTreeSet<WatchId>,
    baseline: Baseline,
    /// The server registration believed set: (mask, recursive).
    armed: Option<(u32, bool)>,
    /// A stat + watch is in flight for this path.
    arming: bool,
}

/// The watch registry.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    by_id: BTreeMap<WatchId, AppWatch>,
    by_path: BTreeMap<String, PathState>,
    next_id: u64,
}

/// A path's server registration to send: (path, mask, recursive).
pub(crate) type Arm = (String, u32, bool);

impl Watches {
    /// Adds a watch; `live` is false when it waits for the answer of the read arming it.
    pub(crate) fn add(&mut self, spec: WatchSpec, live: bool) -> WatchId {
        self.next_id += 1;
        let id = WatchId(self.next_id);
        self.by_path
            .entry(spec.path.clone())
            .or_default()
            .watches
            .insert(id);
        self.by_id.insert(id, AppWatch { spec, live });
        id
    }

    /// Removes a watch (unwatched, or its read failed); nothing is emitted for it.
    pub(crate) fn remove(&mut self, id: WatchId) -> bool {
        let Some(w) = self.by_id.remove(&id) else {
            return false;
        };
        if let Some(ps) = self.by_path.get_mut(&w.spec.path) {
            ps.watches.remove(&id);
            if ps.watches.is_empty() {
                self.by_path.remove(&w.spec.path);
            }
        }
        true
    }

    /// Makes a watch armed by a read live (its read was answered).
    pub(crate) fn confirm(&mut self, id: WatchId) {
        if let Some(w) = self.by_id.get_mut(&id) {
            w.live = true;
        }
    }

    /// How many application watches exist (live or waiting on their read).
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The registration to send for `path`: the union of the masks and every node event
    /// type, recursive if any watch is.
    pub(crate) fn union(&self, path: &str) -> Option<(u32, bool)> {
        let ps = self.by_path.get(path)?;
        let mut mask = pyxis_proto::event_type::NODE_EVENTS;
        let mut recursive = false;
        for w in ps.watches.iter().filter_map(|id| self.by_id.get(id)) {
            mask |= w.spec.mask.0;
            recursive |= w.spec.recursive;
        }
        Some((mask, recursive))
    }

    /// Records that a stat + watch for `path` is in flight.
    pub(crate) fn arming(&mut self, path: &str) {
        if let Some(ps) = self.by_path.get_mut(path) {
            ps.arming = true;
        }
    }

    /// The connection (or the session) changed: no registration is known to be set and
    /// no arm is in flight. Returns every path to re-register, in path order.
    pub(crate) fn rearm_all(&mut self) -> Vec<Arm> {
        let mut out = Vec::with_capacity(self.by_path.len());
        for ps in self.by_path.values_mut() {
            ps.armed = None;
            ps.arming = false;
        }
        for path in self.by_path.keys() {
            if let Some((mask, rec)) = self.union(path) {
                out.push((path.clone(), mask, rec));
            }
        }
        out
    }

    /// The answer to a stat + watch on `path`: `node` is the fresh stat
    /// (`None`: the node does not exist). Compares with the baseline, pushes the inferred
    /// events to `events`, and stores the new baseline.
    pub(crate) fn armed(&mut self, path: &str, node: Option<&Node>, events: &mut Vec<Event>) {
        let union = self.union(path);
        let Some(ps) = self.by_path.get_mut(path) else {
            return;
        };
        ps.arming = false;
        if ps.armed.is_none() {
            ps.armed = union;
        }
        let fresh = Baseline {
            exists: Some(node.is_some()),
            version: node.map(|n| n.version),
            children: node.map(|n| n.children.clone()),
            one_child_changed: false,
        };
        let old = std::mem::replace(&mut ps.baseline, fresh.clone());
        let mut missed = Vec::new();
        match (old.exists, fresh.exists) {
            (Some(false), Some(true)) => {
                // Created since: writes and children since the creation were missed too
                // (a new node starts at version 0 with no children).
                missed.push(EventType::Create);
                if fresh.version.is_some_and(|v| v > 0) {
                    missed.push(EventType::Modify);
                }
                if fresh.children.as_ref().is_some_and(|c| !c.is_empty()) {
                    missed.push(EventType::Children);
                }
            }
            (Some(true), Some(false)) => {
                return self.deliver_missed_deletion(path, &old, events);
            }
            _ => {}
        }
        if fresh.exists == Some(true) && old.exists != Some(false) {
            if old.version.is_some() && old.version != fresh.version {
                missed.push(EventType::Modify);
            }
            if let (Some(was), Some(now)) = (&old.children, &fresh.children) {
                let differ = differing_names(was, now);
                let reported = usize::from(old.one_child_changed);
                if differ != reported {
                    missed.push(EventType::Children);
                }
            }
        }
        for kind in missed {
            self.deliver(path, path, kind, true, events);
        }
    }

    /// The node `path` was deleted while no registration was set (`old` is what was
    /// last seen). Watches listening for Delete get it, inferred. Whatever happened to
    /// the node before the deletion is unknowable, but its data and its children are
    /// gone: a watch listening only for Modify (or Children) that saw a version (or
    /// children) is told that, inferred, rather than nothing.
    fn deliver_missed_deletion(&mut self, path: &str, old: &Baseline, events: &mut Vec<Event>) {
        let had_children = old.children.as_ref().is_some_and(|c| !c.is_empty());
        self.deliver_with(path, path, true, events, |mask| {
            if mask.intersects(EventType::Delete.mask()) {
                return vec![EventType::Delete];
            }
            let mut kinds = Vec::new();
            if old.version.is_some() && mask.intersects(EventType::Modify.mask()) {
                kinds.push(EventType::Modify);
            }
            if had_children && mask.intersects(EventType::Children.mask()) {
                kinds.push(EventType::Children);
            }
            kinds
        });
    }

    /// A stat + watch for `path` was answered with an undecodable node: the registration
    /// is set, but nothing is known about the node.
    pub(crate) fn armed_unknown(&mut self, path: &str) {
        let union = self.union(path);
        if let Some(ps) = self.by_path.get_mut(path) {
            ps.arming = false;
            ps.armed = ps.armed.or(union);
            ps.baseline = Baseline::default();
        }
    }

    /// The registration to send for `path` if it has watches, none is set and none is
    /// in flight.
    pub(crate) fn needs_arm(&mut self, path: &str) -> Option<Arm> {
        let ps = self.by_path.get(path)?;
        if ps.arming || ps.armed.is_some() {
            return None;
        }
        let (mask, rec) = self.union(path)?;
        Some((path.to_owned(), mask, rec))
    }

    /// A stat + watch for `path` failed with a final error: its watches end with it.
    pub(crate) fn arm_failed(&mut self, path: &str, reason: &Error, events: &mut Vec<Event>) {
        let Some(ps) = self.by_path.remove(path) else {
            return;
        };
        for id in ps.watches {
            if let Some(w) = self.by_id.remove(&id) {
                if w.live {
                    events.push(Event::WatchEnded {
                        id,
                        reason: reason.clone(),
                    });
                }
            }
        }
    }

    /// A server event arrived for the registration on `watched` about `node`: delivers it
    /// to the matching live watches, spends one-shot ones and the server registration, and
    /// returns the re-arm to send if watches remain on `watched`.
    pub(crate) fn fire(
        &mut self,
        watched: &str,
        node: &str,
        bits: u32,
        events: &mut Vec<Event>,
    ) -> Option<Arm> {
        let kind = EventType::from_bits(bits);
        let ps = self.by_path.get_mut(watched)?;
        ps.armed = None;
        // Children seen on a node now deleted: their deletions were not reported (they
        // would have fired the registration first).
        let lost_children = node == watched
            && kind == EventType::Delete
            && ps.baseline.children.as_ref().is_some_and(|c| !c.is_empty());
        if node == watched {
            // The registration covers every node event type, so it fires on the first
            // change after the baseline was taken: advance the baseline by exactly that
            // change, so the re-arm's stat still reveals any later one. A Children event
            // does not say which child: it is remembered as one change, so the re-arm
            // finds a missed one when the names differ by anything but exactly one.
            let b = &mut ps.baseline;
            match kind {
                EventType::Create => {
                    *b = Baseline {
                        exists: Some(true),
                        version: Some(0),
                        children: Some(Vec::new()),
                        one_child_changed: false,
                    }
                }
                EventType::Delete => {
                    *b = Baseline {
                        exists: Some(false),
                        ..Baseline::default()
                    }
                }
                EventType::Modify => b.version = b.version.map(|v| v + 1),
                EventType::Children if !b.one_child_changed => b.one_child_changed = true,
                EventType::Children => b.children = None,
                EventType::Other(_) => *b = Baseline::default(),
            }
        }
        // A recursive registration spent by a child's creation or deletion cannot also
        // deliver the Children event the server raises on `watched` right after: the
        // child's event stands for it (one change of the children).
        let child_changed = node != watched
            && pyxis_proto::limits::parent(node) == Some(watched)
            && matches!(kind, EventType::Create | EventType::Delete);
        if child_changed {
            let b = &mut ps.baseline;
            if b.one_child_changed {
                b.children = None;
            } else {
                b.one_child_changed = true;
            }
        }
        self.deliver(watched, node, kind, false, events);
        if lost_children {
            // Told as a Children change to the watches that do not hear of the deletion.
            self.deliver_with(watched, watched, true, events, |mask| {
                if !mask.intersects(EventType::Delete.mask())
                    && mask.intersects(EventType::Children.mask())
                {
                    vec![EventType::Children]
                } else {
                    Vec::new()
                }
            });
        }
        if child_changed {
            self.deliver(watched, watched, EventType::Children, true, events);
        }
        let ps = self.by_path.get(watched)?;
        if ps.arming || ps.watches.is_empty() {
            return None;
        }
        let (mask, rec) = self.union(watched)?;
        Some((watched.to_owned(), mask, rec))
    }

    fn deliver(
        &mut self,
        watched: &str,
        node: &str,
        kind: EventType,
        inferred: bool,
        events: &mut Vec<Event>,
    ) {
        self.deliver_with(watched, node, inferred, events, |mask| {
            if mask.intersects(kind.mask()) {
                vec![kind]
            } else {
                Vec::new()
            }
        });
    }

    /// Delivers to each live watch on `watched` (recursive ones only for a descendant
    /// `node`) the kinds `kinds_for` picks for its mask; one-shot watches given any are
    /// spent.
    fn deliver_with(
        &mut self,
        watched: &str,
        node: &str,
        inferred: bool,
        events: &mut Vec<Event>,
        kinds_for: impl Fn(crate::types::EventMask) -> Vec<EventType>,
    ) {
        let Some(ps) = self.by_path.get(watched) else {
            return;
        };
        let mut spent = Vec::new();
        for id in &ps.watches {
            let Some(w) = self.by_id.get(id) else {
                continue;
            };
            if !w.live || !(node == watched || w.spec.recursive) {
                continue;
            }
            let mut kinds = kinds_for(w.spec.mask);
            // The one-shot rule: a one-shot watch gets the first kind only, marked last.
            let one_shot = w.spec.mode == WatchMode::OneShot;
            if one_shot && !kinds.is_empty() {
                kinds.truncate(1);
                spent.push(*id);
            }
            for &kind in &kinds {
                events.push(Event::Watch {
                    id: *id,
                    event: WatchEvent {
                        path: node.to_owned(),
                        kind,
                        inferred,
                        last: one_shot,
                    },
                });
            }
        }
        for id in spent {
            self.remove(id);
        }
    }

    /// Ends every watch (client closed): live ones get `WatchEnded`.
    pub(crate) fn end_all(&mut self, reason: &Error, events: &mut Vec<Event>) {
        self.by_path.clear();
        for (id, w) in std::mem::take(&mut self.by_id) {
            if w.live {
                events.push(Event::WatchEnded {
                    id,
                    reason: reason.clone(),
                });
            }
        }
    }
}

/// How many names are in one sorted list and not the other.
fn differing_names(a: &[String], b: &[String]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => (i, n) = (i + 1, n + 1),
            std::cmp::Ordering::Greater => (j, n) = (j + 1, n + 1),
            std::cmp::Ordering::Equal => (i, j) = (i + 1, j + 1),
        }
    }
    n + (a.len() - i) + (b.len() - j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EventMask;

    fn spec(path: &str, mask: EventMask, recursive: bool, mode: WatchMode) -> WatchSpec {
        WatchSpec {
            path: path.into(),
            mask,
            recursive,
            mode,
        }
    }

    fn node(version: u64, children: &[&str]) -> Node {
        Node {
            path: "/a".into(),
            version,
            children: children.iter().map(|c| c.to_string()).collect(),
            ..Node::default()
        }
    }

    #[test]
    fn fan_out_spends_only_matching_one_shots() {
        let mut w = Watches::default();
        let a = w.add(
            spec("/a", EventMask::MODIFY, false, WatchMode::OneShot),
            true,
        );
        let b = w.add(
            spec("/a", EventMask::DELETE, false, WatchMode::OneShot),
            true,
        );
        let c = w.add(
            spec("/a", EventMask::ALL, true, WatchMode::Persistent),
            true,
        );
        assert_eq!(w.union("/a"), Some((0xFF, true)));
        let mut ev = Vec::new();
        let rearm = w.fire("/a", "/a", 4, &mut ev);
        let ids: Vec<_> = ev
            .iter()
            .map(|e| match e {
                Event::Watch { id, .. } => *id,
                _ => WatchId(0),
            })
            .collect();
        assert_eq!(ids, vec![a, c]);
        assert_eq!(rearm, Some(("/a".into(), 0xFF, true)));
        ev.clear();
        // A descendant's event reaches only the recursive watch.
        w.fire("/a", "/a/x/y", 1, &mut ev);
        assert_eq!(ev.len(), 1);
        assert!(matches!(ev[0], Event::Watch { id, .. } if id == c));
        assert!(w.remove(b));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn gap_check_infers_missed_changes() {
        let mut w = Watches::default();
        let a = w.add(
            spec("/a", EventMask::ALL, false, WatchMode::Persistent),
            true,
        );
        let mut ev = Vec::new();
        w.armed("/a", Some(&node(1, &["x"])), &mut ev);
        assert!(ev.is_empty(), "first baseline infers nothing");
        w.armed("/a", Some(&node(2, &["x", "y"])), &mut ev);
        let kinds: Vec<_> = ev
            .iter()
            .map(|e| match e {
                Event::Watch { id, event } if *id == a && event.inferred => event.kind,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(kinds, vec![EventType::Modify, EventType::Children]);
        ev.clear();
        w.armed("/a", None, &mut ev);
        assert!(matches!(&ev[..], [Event::Watch { event, .. }] if event.kind == EventType::Delete));
        ev.clear();
        // A fired Modify is not inferred again by the re-arm.
        w.armed("/a", Some(&node(0, &[])), &mut ev);
        ev.clear();
        w.fire("/a", "/a", 4, &mut ev);
        ev.clear();
        w.armed("/a", Some(&node(1, &[])), &mut ev);
        assert!(ev.is_empty());
    }
}
