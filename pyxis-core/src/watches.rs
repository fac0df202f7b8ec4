//! The watch registry: application watches, the one server registration per path, the
//! last state seen on each watched path (and below a recursive one), and every request
//! of its own in flight.
//!
//! Owns, as the one owner of each watch: application watches by id and by path; per path
//! the registration to send (the masks OR-ed with every node event type, recursive if
//! any watch is), whether the server registration is believed set, the arm in flight
//! (by xid: the request table only hands out xids, it keeps no record of arms), the
//! baseline (existence, version, children, owner, data digest) last seen, and under a
//! recursive registration the baselines of the descendants seen and those due for a
//! re-check; the one re-arm-everything rule (`rearm_all`), which is also the one place
//! the application is told that every watch was registered again
//! ([`SessionEvent::WatchesRearmed`], whatever the cause: a new session, a reconnect, or
//! a suspected drop of every registration on the same connection); the one one-shot
//! rule (in the delivery: a one-shot watch gets at most one event, marked `last`); and
//! the gap check that turns a difference between a baseline and a fresh stat into
//! `inferred` events. Must never build frames or talk to the connection: the client glue
//! (`arms`) sends the arm batches this registry asks for and hands their answers back.
//!
//! The server keeps at most one watch per (session, path) and does not merge masks
//! ([protocol](pyxis_proto::protocol) §6), so the registration always includes every node event type: a watch
//! added while it is set is covered at once (an event no watch asked for is not
//! delivered, only re-armed). The recursive flag cannot be widened that way: a recursive
//! watch added while a non-recursive registration is set gets it from the next re-arm
//! (after the registration fires, or after a reconnect).
//!
//! Inference beyond the baseline comparison: a node found created since brings the
//! writes and children since its creation (version > 0, children); a node found with
//! another owner, a lower version, or the same version with other data (outside the proc
//! tree, whose nodes are compared by existence and children only) was deleted and created
//! again; a deletion, reported or found, is told to
//! watches not listening for Delete as the Modify / Children change it is for them (data
//! and children gone); and a descendant's Create/Delete spending a recursive
//! registration stands for the Children event the server raises on its parent right
//! after (which finds no registration).
//!
//! Recursive registrations are one-shot like the others, so changes in the subtree
//! between an event and the re-arm raise nothing. The cost of finding them is bounded by
//! what the watch has seen: the re-arm batch first re-checks (plain stats) the node the
//! event named and, for a Create/Delete, its parent; each is compared with its own
//! baseline like the watched node (writes, children, deletion, re-creation), and a look at
//! a node's children tells the children not known before as created (re-checked in the
//! next batch) and the ones known and now missing as deleted. After a reconnect every
//! descendant seen is re-checked.
//!
//! What stays unknowable: a node created and deleted again between two looks (while
//! disconnected, or between an event and its re-arm); a re-creation by the same session
//! with the same data, ending at the version last seen; how many writes or child changes
//! a gap held (one inferred event stands for them); below a recursive watch, a change
//! between an event and its re-arm on a node that is neither the one the event named nor
//! its parent is learned only at the next look at that node (its next event, a re-check
//! of its parent finding it created or gone, or a reconnect), and never for a node the
//! watch holds no baseline of (no event named it and no look at its parent listed it
//! since the watch began); a write found by a re-check of a child that a look at its
//! parent discovered waits for the next re-arm batch; and a change landing between the
//! server's handling of a re-check and of the re-arm that follows it in the same batch is
//! learned only at the next look at that node. After a re-registration of every watch,
//! `SessionEvent::WatchesRearmed` is the application's cue to re-read what it mirrors
//! beyond the nodes held here.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use std::hash::Hasher;

use crate::types::{
    Event, EventMask, EventType, Node, SessionEvent, WatchEvent, WatchId, WatchMode, WatchSpec,
};

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
    /// The session that created the node ([protocol](pyxis_proto::protocol) §2): another one means another
    /// incarnation of the path.
    owner: Option<u64>,
    /// A digest of the data at `version`. Outside the proc tree data changes only with a
    /// write (which grows the version) or a re-creation, so the same version with other
    /// data is another incarnation; proc nodes (`/pyxis…`) compute their data on every
    /// read and keep version 0, so neither is kept for them.
    digest: Option<u64>,
}

impl Baseline {
    /// What a stat answer shows (`None`: the node does not exist).
    fn of(path: &str, node: Option<&Node>) -> Baseline {
        let Some(n) = node else {
            return Baseline {
                exists: Some(false),
                ..Baseline::default()
            };
        };
        // Proc nodes compute their data on every read and keep version 0 through the
        // writes that fire their Modify watches: neither tells anything about them.
        let proc = path.starts_with(pyxis_proto::limits::PROC_ROOT);
        let digest = (!proc).then(|| {
            let mut h = std::hash::DefaultHasher::new();
            h.write(&n.data);
            h.finish()
        });
        Baseline {
            exists: Some(true),
            version: (!proc).then_some(n.version),
            children: Some(n.children.clone()),
            one_child_changed: false,
            owner: Some(n.owner),
            digest,
        }
    }

    /// Advances by exactly one reported change of the node itself, so that a later stat
    /// still reveals any change after it.
    fn advance(&mut self, kind: EventType) {
        match kind {
            // A new node starts at version 0 with no children; its owner and data are
            // not in the event.
            EventType::Create => {
                *self = Baseline {
                    exists: Some(true),
                    version: Some(0),
                    children: Some(Vec::new()),
                    ..Baseline::default()
                }
            }
            EventType::Delete => {
                *self = Baseline {
                    exists: Some(false),
                    ..Baseline::default()
                }
            }
            EventType::Modify => {
                self.version = self.version.map(|v| v + 1);
                self.digest = None;
            }
            EventType::Children => self.child_changed(),
            EventType::Other(_) => *self = Baseline::default(),
        }
    }

    /// One child was reported added or removed. A Children event does not say which:
    /// it is remembered as one change, so a later stat finds a missed one when the names
    /// differ by anything but exactly one; a second one leaves the names unknown.
    fn child_changed(&mut self) {
        if self.one_child_changed {
            self.children = None;
        } else {
            self.one_child_changed = true;
        }
    }

    fn had_children(&self) -> bool {
        self.children.as_ref().is_some_and(|c| !c.is_empty())
    }
}

/// What a fresh stat shows happened since the baseline, beyond what was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// Nothing that can be seen (or no baseline to compare with).
    None,
    /// The node is gone.
    Deleted,
    /// The node appeared.
    Created,
    /// The node was deleted and created again (another owner, a lower version, or the
    /// same version with other data).
    Recreated,
    /// The same node was written and/or its children changed.
    Changed { modify: bool, children: bool },
}

impl Gap {
    fn between(old: &Baseline, fresh: &Baseline) -> Gap {
        match (old.exists, fresh.exists) {
            (Some(true), Some(false)) => Gap::Deleted,
            (Some(false), Some(true)) => Gap::Created,
            (Some(true), Some(true)) => {
                let differ = |a: Option<u64>, b: Option<u64>| a.zip(b).is_some_and(|(a, b)| a != b);
                let lower = old.version.zip(fresh.version).is_some_and(|(o, f)| f < o);
                let same_version = old.version.is_some() && old.version == fresh.version;
                if differ(old.owner, fresh.owner)
                    || lower
                    || (same_version && differ(old.digest, fresh.digest))
                {
                    return Gap::Recreated;
                }
                let children = match (&old.children, &fresh.children) {
                    (Some(was), Some(now)) => {
                        differing_names(was, now) != usize::from(old.one_child_changed)
                    }
                    _ => false,
                };
                Gap::Changed {
                    modify: old.version.is_some() && !same_version,
                    children,
                }
            }
            _ => Gap::None,
        }
    }

    /// The event types a watch listening for `mask` is told, all inferred: a deletion
    /// reaches a watch not listening for Delete as the Modify (a version was seen) and
    /// Children (children were seen) change it is for it, since the data and the
    /// children are gone; a creation brings the writes (version > 0) and children since.
    fn kinds(self, old: &Baseline, fresh: &Baseline, mask: EventMask) -> Vec<EventType> {
        let mut out = Vec::new();
        match self {
            Gap::None => {}
            Gap::Deleted => deletion_kinds(old, mask, &mut out),
            Gap::Created => creation_kinds(fresh, mask, &mut out),
            Gap::Recreated => {
                deletion_kinds(old, mask, &mut out);
                creation_kinds(fresh, mask, &mut out);
            }
            Gap::Changed { modify, children } => {
                if modify && mask.intersects(EventType::Modify.mask()) {
                    out.push(EventType::Modify);
                }
                if children && mask.intersects(EventType::Children.mask()) {
                    out.push(EventType::Children);
                }
            }
        }
        out
    }
}

/// What the deletion of a node last seen as `old` is for a watch on `mask`.
fn deletion_kinds(old: &Baseline, mask: EventMask, out: &mut Vec<EventType>) {
    let mut push = |k: EventType| {
        if mask.intersects(k.mask()) && !out.contains(&k) {
            out.push(k);
        }
    };
    if mask.intersects(EventType::Delete.mask()) {
        push(EventType::Delete);
        return;
    }
    if old.version.is_some() {
        push(EventType::Modify);
    }
    if old.had_children() {
        push(EventType::Children);
    }
}

/// What the creation of a node now seen as `fresh` is for a watch on `mask`.
fn creation_kinds(fresh: &Baseline, mask: EventMask, out: &mut Vec<EventType>) {
    let mut push = |k: EventType| {
        if mask.intersects(k.mask()) && !out.contains(&k) {
            out.push(k);
        }
    };
    push(EventType::Create);
    if fresh.version.is_some_and(|v| v > 0) {
        push(EventType::Modify);
    }
    if fresh.had_children() {
        push(EventType::Children);
    }
}

/// Per watched path.
#[derive(Debug, Default)]
struct PathState {
    watches: BTreeSet<WatchId>,
    baseline: Baseline,
    /// The server registration believed set: (mask, recursive).
    armed: Option<(u32, bool)>,
    /// A stat + watch is in flight for this path (its xid is in `Watches::flights`).
    arming: bool,
    /// Under a recursive registration: what was last seen of each descendant an event
    /// named (and of its parent, and of the children a look at a parent found). A node
    /// seen gone is dropped once a look at its parent no longer lists it, so this holds
    /// the nodes the watch has seen live, and the few just deleted.
    below: BTreeMap<String, Baseline>,
    /// Descendants to re-check (stat) in the next arm batch: each one an event named
    /// since the last arm, its parent, and children a re-check found.
    recheck: BTreeSet<String>,
}

/// A request of the registry in flight, by xid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flight {
    /// The stat + watch (re)registering the path's server watch.
    Arm(String),
    /// A plain stat of `node`, a descendant of the recursive registration on `watched`.
    Check {
        /// The watched path.
        watched: String,
        /// The descendant looked at.
        node: String,
    },
}

/// The watch registry.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    by_id: BTreeMap<WatchId, AppWatch>,
    by_path: BTreeMap<String, PathState>,
    /// Every request of the registry in flight: the one owner of arms and re-checks (the
    /// request table only hands out their xids).
    flights: BTreeMap<u64, Flight>,
    next_id: u64,
}

/// One arm batch for a path: re-check stats of `checks` (descendants, under a recursive
/// registration), then the stat + watch registering (`path`, `mask`, `recursive`).
///
/// The re-checks go first: the registration is not set while they are handled, so no
/// event of the subtree can cross their answers (an event raised after the re-arm is
/// one the re-checks did not see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arm {
    /// The watched path.
    pub path: String,
    /// The registration's mask.
    pub mask: u32,
    /// Whether the registration is recursive.
    pub recursive: bool,
    /// Descendants to stat first.
    pub checks: Vec<String>,
}

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

    /// The arm batch for `path` (the re-checks it has due, or with `all_below` every
    /// descendant it knows), if it has watches.
    fn batch(&mut self, path: &str, all_below: bool) -> Option<Arm> {
        let (mask, recursive) = self.union(path)?;
        let ps = self.by_path.get_mut(path)?;
        let mut due = std::mem::take(&mut ps.recheck);
        if !recursive {
            ps.below.clear();
            due.clear();
        } else if all_below {
            due.extend(ps.below.keys().cloned());
        }
        Some(Arm {
            path: path.to_owned(),
            mask,
            recursive,
            checks: due.into_iter().collect(),
        })
    }

    /// Records a request of the registry sent with `xid`.
    pub(crate) fn sent(&mut self, xid: u64, flight: Flight) {
        if let Flight::Arm(path) = &flight {
            if let Some(ps) = self.by_path.get_mut(path) {
                ps.arming = true;
            }
        }
        self.flights.insert(xid, flight);
    }

    /// What the answer with `xid` is for, forgetting it (`None`: not the registry's, or
    /// sent before the last re-arm of everything).
    pub(crate) fn answered(&mut self, xid: u64) -> Option<Flight> {
        self.flights.remove(&xid)
    }

    /// The connection (or the session) changed, or the server may have dropped every
    /// registration: no registration is known to be set and nothing of the registry is
    /// in flight. Returns every path's arm batch, in path order; under a recursive
    /// registration every descendant seen is re-checked. Tells the application, once,
    /// with [`SessionEvent::WatchesRearmed`] when there is anything to re-register:
    /// changes to nodes no baseline covers cannot be inferred, so whatever mirrors them
    /// must re-read (the one place this signal is decided, whatever the cause).
    pub(crate) fn rearm_all(&mut self, events: &mut Vec<Event>) -> Vec<Arm> {
        self.flights.clear();
        for ps in self.by_path.values_mut() {
            ps.armed = None;
            ps.arming = false;
        }
        let paths: Vec<String> = self.by_path.keys().cloned().collect();
        let arms: Vec<Arm> = paths
            .iter()
            .filter_map(|path| self.batch(path, true))
            .collect();
        if !arms.is_empty() {
            events.push(Event::Session(SessionEvent::WatchesRearmed));
        }
        arms
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
        let fresh = Baseline::of(path, node);
        let old = std::mem::replace(&mut ps.baseline, fresh.clone());
        self.compared(path, path, &old, &fresh, events);
    }

    /// The answer to a re-check of `node` below the recursive registration on
    /// `watched` (`None`: the node does not exist): compared with what was last seen of
    /// it like an arm's stat.
    pub(crate) fn checked(
        &mut self,
        watched: &str,
        node: &str,
        fresh: Option<&Node>,
        events: &mut Vec<Event>,
    ) {
        let Some(ps) = self.by_path.get_mut(watched) else {
            return;
        };
        let fresh = Baseline::of(node, fresh);
        // A node never seen and not there is nothing to remember.
        let old = ps.below.remove(node);
        if old.is_some() || fresh.exists == Some(true) {
            ps.below.insert(node.to_owned(), fresh.clone());
        }
        self.compared(watched, node, &old.unwrap_or_default(), &fresh, events);
    }

    /// A stat (of the watched node or of a descendant) was answered with an undecodable
    /// node or a final error: nothing is known of it any more.
    pub(crate) fn unknown(&mut self, flight: &Flight) {
        match flight {
            Flight::Arm(path) => {
                let union = self.union(path);
                if let Some(ps) = self.by_path.get_mut(path) {
                    ps.arming = false;
                    ps.armed = ps.armed.or(union);
                    ps.baseline = Baseline::default();
                }
            }
            Flight::Check { watched, node } => {
                if let Some(ps) = self.by_path.get_mut(watched) {
                    ps.below.remove(node);
                }
            }
        }
    }

    /// Tells the watches on `watched` what a fresh look at `node` (the watched node or,
    /// under a recursive registration, a descendant) shows happened since `old`. Under a
    /// recursive registration, children found that were not known are told as created
    /// (and re-checked in the next batch, for their writes and children), and children
    /// known to exist and now missing as deleted.
    fn compared(
        &mut self,
        watched: &str,
        node: &str,
        old: &Baseline,
        fresh: &Baseline,
        events: &mut Vec<Event>,
    ) {
        let gap = Gap::between(old, fresh);
        self.deliver_with(watched, node, events, |mask| {
            gap.kinds(old, fresh, mask)
                .into_iter()
                .map(|k| (k, true))
                .collect()
        });
        if !self.union(watched).is_some_and(|(_, r)| r) {
            return;
        }
        let empty = Vec::new();
        let was = old.children.as_ref();
        let now = fresh.children.as_ref().unwrap_or(&empty);
        // Which names of the old list are gone, and which of the new list are new. A
        // deleted node had no children left (the server refuses to delete a parent), so
        // across a deletion every old child is gone and every new one new.
        let (gone, new): (Vec<&String>, Vec<&String>) = match (gap, was) {
            (Gap::Created, _) => (Vec::new(), now.iter().collect()),
            (Gap::Deleted | Gap::Recreated, Some(was)) => {
                (was.iter().collect(), now.iter().collect())
            }
            (Gap::Changed { .. } | Gap::None, Some(was)) if fresh.children.is_some() => (
                was.iter().filter(|n| !now.contains(n)).collect(),
                now.iter().collect(),
            ),
            _ => return,
        };
        let across_deletion = matches!(gap, Gap::Deleted | Gap::Recreated);
        let child = |name: &String| match node {
            "/" => format!("/{name}"),
            _ => format!("{node}/{name}"),
        };
        let Some(ps) = self.by_path.get_mut(watched) else {
            return;
        };
        // A name gone from the list is forgotten (the list now speaks for it), told as
        // deleted unless that was seen already.
        let mut deleted = Vec::new();
        for path in gone.into_iter().map(child) {
            match ps.below.remove(&path) {
                Some(b) if b.exists == Some(false) => {}
                b => deleted.push((path, b.unwrap_or_default())),
            }
        }
        // A name listed now that was not (or across a deletion), or that was seen
        // deleted, is a creation not seen: told, and re-checked in the next batch for
        // the writes and children since.
        let mut created = Vec::new();
        for name in new {
            let path = child(name);
            let is_new = match ps.below.get(&path).and_then(|b| b.exists) {
                Some(exists) => !exists,
                None => {
                    across_deletion
                        || matches!(gap, Gap::Created)
                        || !was.is_some_and(|w| w.contains(name))
                }
            };
            if !is_new {
                continue;
            }
            let mut b = Baseline::default();
            b.advance(EventType::Create);
            ps.below.insert(path.clone(), b);
            ps.recheck.insert(path.clone());
            created.push(path);
        }
        for (path, old) in deleted {
            self.deliver_with(watched, &path, events, |mask| {
                let mut kinds = Vec::new();
                deletion_kinds(&old, mask, &mut kinds);
                kinds.into_iter().map(|k| (k, true)).collect()
            });
        }
        for path in created {
            self.deliver(watched, &path, EventType::Create, true, events);
        }
    }

    /// The arm batch for `path` if it has watches, no registration is set and none is
    /// in flight.
    pub(crate) fn needs_arm(&mut self, path: &str) -> Option<Arm> {
        let ps = self.by_path.get(path)?;
        if ps.arming || ps.armed.is_some() {
            return None;
        }
        self.batch(path, false)
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
    /// returns the arm batch to send if watches remain on `watched` and no arm is in
    /// flight.
    ///
    /// The registration covers every node event type, so it fires on the first change
    /// in its reach after the last look: the baseline of the node named advances by
    /// exactly that change, so a later stat still reveals any change after it. A child's
    /// Create or Delete that spends a recursive registration stands for the Children
    /// event the server raises on its parent right after (which finds no registration).
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
        let below = node != watched;
        let seen = if below {
            // A descendant, through a recursive registration: it and its parent are
            // re-checked in the next batch.
            ps.recheck.insert(node.to_owned());
            ps.below.entry(node.to_owned()).or_default()
        } else {
            &mut ps.baseline
        };
        let old = seen.clone();
        seen.advance(kind);
        if kind == EventType::Delete {
            // Told to watches not listening for Delete as what the deletion is for
            // them (their data or children gone), as for a deletion found by a stat.
            self.deliver_with(watched, node, events, |mask| {
                if mask.intersects(EventType::Delete.mask()) {
                    return vec![(EventType::Delete, false)];
                }
                let mut kinds = Vec::new();
                deletion_kinds(&old, mask, &mut kinds);
                kinds.into_iter().map(|k| (k, true)).collect()
            });
        } else {
            self.deliver(watched, node, kind, false, events);
        }
        let parent = pyxis_proto::limits::parent(node).filter(|_| below);
        if let (Some(parent), EventType::Create | EventType::Delete) = (parent, kind) {
            if let Some(ps) = self.by_path.get_mut(watched) {
                if parent == watched {
                    ps.baseline.child_changed();
                } else {
                    ps.recheck.insert(parent.to_owned());
                    ps.below
                        .entry(parent.to_owned())
                        .or_default()
                        .child_changed();
                }
            }
            self.deliver(watched, parent, EventType::Children, true, events);
        }
        if self.by_path.get(watched)?.arming {
            return None;
        }
        self.batch(watched, false)
    }

    fn deliver(
        &mut self,
        watched: &str,
        node: &str,
        kind: EventType,
        inferred: bool,
        events: &mut Vec<Event>,
    ) {
        self.deliver_with(watched, node, events, |mask| {
            if mask.intersects(kind.mask()) {
                vec![(kind, inferred)]
            } else {
                Vec::new()
            }
        });
    }

    /// Delivers to each live watch on `watched` (recursive ones only for a descendant
    /// `node`) the kinds `kinds_for` picks for its mask, each with whether it is
    /// inferred. The one-shot rule lives here and nowhere else: a one-shot watch given
    /// any gets the first only, marked `last`, and is spent.
    fn deliver_with(
        &mut self,
        watched: &str,
        node: &str,
        events: &mut Vec<Event>,
        kinds_for: impl Fn(EventMask) -> Vec<(EventType, bool)>,
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
            let one_shot = w.spec.mode == WatchMode::OneShot;
            if one_shot && !kinds.is_empty() {
                kinds.truncate(1);
                spent.push(*id);
            }
            for (kind, inferred) in kinds {
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
        self.flights.clear();
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
        assert_eq!(
            rearm,
            Some(Arm {
                path: "/a".into(),
                mask: 0xFF,
                recursive: true,
                checks: Vec::new(),
            })
        );
        ev.clear();
        // A descendant's event reaches only the recursive watch, with the Children
        // event of its parent it stands for; both are re-checked before the re-arm.
        let rearm = w.fire("/a", "/a/x/y", 1, &mut ev);
        let got: Vec<_> = ev
            .iter()
            .map(|e| match e {
                Event::Watch { id, event } => (*id, event.path.as_str(), event.kind),
                _ => (WatchId(0), "", EventType::Other(0)),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (c, "/a/x/y", EventType::Create),
                (c, "/a/x", EventType::Children)
            ]
        );
        assert_eq!(
            rearm.map(|a| a.checks),
            Some(vec!["/a/x".to_string(), "/a/x/y".to_string()])
        );
        assert!(w.remove(b));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn proc_nodes_are_not_compared_by_version_or_data() {
        // A write to /pyxis/snapshot fires its Modify watches, but the node keeps version
        // 0 and its data is computed on every read.
        let mut w = Watches::default();
        w.add(
            spec(
                "/pyxis/snapshot",
                EventMask::ALL,
                false,
                WatchMode::Persistent,
            ),
            true,
        );
        let at = |data: &'static [u8]| Node {
            path: "/pyxis/snapshot".into(),
            data: bytes::Bytes::from_static(data),
            ..Node::default()
        };
        let mut ev = Vec::new();
        w.armed("/pyxis/snapshot", Some(&at(b"write only")), &mut ev);
        w.fire("/pyxis/snapshot", "/pyxis/snapshot", 4, &mut ev);
        assert_eq!(ev.len(), 1, "the Modify event itself: {ev:?}");
        ev.clear();
        w.armed("/pyxis/snapshot", Some(&at(b"other")), &mut ev);
        assert!(ev.is_empty(), "{ev:?}");
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
