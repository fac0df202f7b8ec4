//! The request table: every application operation from `submit` to its one completion.
//!
//! Owns: request ids and xids (an operation's xid is twice its request id; the core's own
//! requests — Register, ping, the closing Unregister — use odd xids kept in a small map;
//! the watch registry's arms and re-checks get odd xids it keeps itself), the queue of operations not yet sent, what is in flight on the current
//! connection, per-request deadlines, and the read-your-writes rule (a read or stat is
//! not sent while a create/delete/write/unregister submitted before it is unanswered;
//! writes pipeline among themselves), and which session each operation belongs to. Must never
//! build frames, look at answers or decide about connections: the client glue does that
//! with what this table says.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::types::{CreateMode, Op, RequestId, WatchId};

/// What kind of operation a pending request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Create {
        ephemeral: bool,
    },
    Delete,
    Write,
    /// A read (a stat); `hide` drops `_`-prefixed children from the reply.
    Read {
        hide: bool,
    },
    Exists,
    Unregister,
}

impl OpKind {
    /// The kind of `op` (a read's `hide` left false: the caller applies the config).
    pub(crate) fn of(op: &Op) -> OpKind {
        match op {
            Op::Create { mode, .. } => OpKind::Create {
                ephemeral: *mode == CreateMode::Ephemeral,
            },
            Op::Delete { .. } => OpKind::Delete,
            Op::Write { .. } => OpKind::Write,
            Op::Read { .. } => OpKind::Read { hide: false },
            Op::Exists { .. } => OpKind::Exists,
            Op::Unregister => OpKind::Unregister,
        }
    }

    /// Changes server state: never retried once sent; later reads wait for it. The one
    /// place this rule is written (`Op::is_write` asks it).
    #[inline]
    pub(crate) fn is_write(self) -> bool {
        matches!(
            self,
            OpKind::Create { .. } | OpKind::Delete | OpKind::Write | OpKind::Unregister
        )
    }
}

/// What an xid in flight was sent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The session's Register.
    Register,
    /// The session's one ping.
    Ping,
    /// The Unregister sent by `close`.
    Close,
    /// An application operation.
    Op(RequestId),
}

/// An incomplete application operation.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// What it is.
    pub kind: OpKind,
    /// The path it is about (empty for unregister).
    pub path: String,
    /// Create or write data.
    pub data: Option<Bytes>,
    /// When it completes with `Timeout` if still incomplete.
    pub deadline: Instant,
    /// The application watch armed with this read, waiting for the answer.
    pub watch: Option<WatchId>,
    /// The xid it went out with, while in flight.
    pub xid: Option<u64>,
    /// The session it belongs to, as the count of sessions found gone when it was
    /// submitted (`Session::lost`): it is never sent once that count has grown.
    pub session: u64,
}

impl Pending {
    /// A write that went out and is unanswered: it may have been applied.
    pub(crate) fn is_sent_write(&self) -> bool {
        self.xid.is_some() && self.kind.is_write()
    }
}

/// Incomplete operations by id. Ids grow by one per submit and most complete roughly in
/// order, so a deque of slots from the oldest incomplete id on gives O(1) insert, lookup
/// and removal without moving the (large) entries around as a tree would.
#[derive(Debug, Default)]
struct Slots {
    base: u64,
    slots: VecDeque<Option<Pending>>,
    len: usize,
}

impl Slots {
    #[inline]
    fn index(&self, id: RequestId) -> Option<usize> {
        usize::try_from(id.0.checked_sub(self.base)?).ok()
    }

    #[inline]
    fn insert(&mut self, id: RequestId, p: Pending) {
        if self.slots.is_empty() {
            self.base = id.0;
        }
        while id.0 < self.base {
            self.slots.push_front(None);
            self.base -= 1;
        }
        let Some(i) = self.index(id) else { return };
        while self.slots.len() < i {
            self.slots.push_back(None);
        }
        if self.slots.len() == i {
            self.slots.push_back(Some(p));
            self.len += 1;
        } else if self.slots[i].replace(p).is_none() {
            self.len += 1;
        }
    }

    #[inline]
    fn get(&self, id: &RequestId) -> Option<&Pending> {
        self.slots.get(self.index(*id)?)?.as_ref()
    }

    #[inline]
    fn get_mut(&mut self, id: &RequestId) -> Option<&mut Pending> {
        let i = self.index(*id)?;
        self.slots.get_mut(i)?.as_mut()
    }

    #[inline]
    fn remove(&mut self, id: &RequestId) -> Option<Pending> {
        let i = self.index(*id)?;
        let p = self.slots.get_mut(i)?.take()?;
        self.len -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        while let Some(None) = self.slots.back() {
            self.slots.pop_back();
        }
        Some(p)
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (RequestId, &mut Pending)> {
        let base = self.base;
        self.slots
            .iter_mut()
            .zip(0u64..)
            .filter_map(move |(p, i)| Some((RequestId(base + i), p.as_mut()?)))
    }

    fn iter(&self) -> impl Iterator<Item = (RequestId, &Pending)> {
        let base = self.base;
        self.slots
            .iter()
            .zip(0u64..)
            .filter_map(move |(p, i)| Some((RequestId(base + i), p.as_ref()?)))
    }
}

/// A sorted set of request ids that are mostly added at the end and removed at the front
/// (incomplete writes, incomplete unregisters): O(1) in the common case.
#[derive(Debug, Default)]
struct IdQueue(VecDeque<RequestId>);

impl IdQueue {
    #[inline]
    fn insert(&mut self, id: RequestId) {
        match self.0.back() {
            Some(last) if *last >= id => {
                if let Err(i) = self.0.binary_search(&id) {
                    self.0.insert(i, id);
                }
            }
            _ => self.0.push_back(id),
        }
    }

    #[inline]
    fn remove(&mut self, id: RequestId) {
        if self.0.front() == Some(&id) {
            self.0.pop_front();
        } else if let Ok(i) = self.0.binary_search(&id) {
            self.0.remove(i);
        }
    }

    fn first(&self) -> Option<RequestId> {
        self.0.front().copied()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The request table.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    pending: Slots,
    unsent: BTreeSet<RequestId>,
    writes: IdQueue,
    unregisters: IdQueue,
    /// Xids in flight for the core's own requests (odd xids). An operation's xid is
    /// `2 × id` (even): unique on a connection, since an operation is sent at most once
    /// per connection, and found without a lookup table.
    internal: BTreeMap<u64, Purpose>,
    next_id: u64,
    next_internal: u64,
}

impl Requests {
    /// A fresh request id (also used for operations refused before they are queued).
    #[inline]
    pub(crate) fn next_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// Records the operation `id` until `deadline`. Returns `true` if it was queued, and
    /// `false` if it may go out at once (`may_send`: a session is up, and nothing queued,
    /// no earlier write for a read, no unanswered Unregister holds it): the caller then
    /// sends it right away.
    #[inline]
    pub(crate) fn add(&mut self, id: RequestId, p: Pending, may_send: bool) -> bool {
        let now = may_send
            && self.unsent.is_empty()
            && self.unregisters.is_empty()
            && (p.kind.is_write() || self.writes.is_empty());
        self.insert(id, p, !now);
        !now
    }

    /// Puts a new pending operation in the table, queued if `queued`.
    #[inline]
    fn insert(&mut self, id: RequestId, mut p: Pending, queued: bool) {
        if p.kind.is_write() {
            self.writes.insert(id);
        }
        if p.kind == OpKind::Unregister {
            self.unregisters.insert(id);
        }
        if queued {
            self.unsent.insert(id);
        }
        p.xid = None;
        self.pending.insert(id, p);
    }

    /// The queued operations that may go out now, in submission order: every write, and
    /// every read with no incomplete write submitted before it; nothing submitted after
    /// an unanswered Unregister (it would reach the ended session).
    pub(crate) fn sendable(&self) -> Vec<RequestId> {
        if self.unsent.is_empty() {
            return Vec::new();
        }
        let first_write = self.writes.first();
        let barrier = self.unregisters.first();
        self.unsent
            .iter()
            .copied()
            .take_while(|id| match barrier {
                None => true,
                Some(u) => *id <= u,
            })
            .filter(|id| {
                self.pending.get(id).is_some_and(|p| p.kind.is_write())
                    || match first_write {
                        None => true,
                        Some(w) => w > *id,
                    }
            })
            .collect()
    }

    /// Whether any operation is incomplete.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The operation under `id`, if incomplete.
    #[inline]
    pub(crate) fn get(&self, id: RequestId) -> Option<&Pending> {
        self.pending.get(&id)
    }

    /// The operation under `id`, to set its sid, xid and watch before sending.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: RequestId) -> Option<&mut Pending> {
        self.pending.get_mut(&id)
    }

    /// The xid for `purpose`, recorded as in flight.
    #[inline]
    pub(crate) fn send(&mut self, purpose: Purpose) -> u64 {
        if let Purpose::Op(id) = purpose {
            let xid = id.0.wrapping_mul(2);
            if !self.unsent.is_empty() {
                self.unsent.remove(&id);
            }
            if let Some(p) = self.pending.get_mut(&id) {
                p.xid = Some(xid);
            }
            return xid;
        }
        let xid = self.internal_xid();
        self.internal.insert(xid, purpose);
        xid
    }

    /// A fresh odd xid recorded nowhere: for the watch registry's arms and re-checks,
    /// which it keeps by xid itself (an answer this table does not know is offered to
    /// it).
    #[inline]
    pub(crate) fn internal_xid(&mut self) -> u64 {
        self.next_internal += 1;
        self.next_internal.wrapping_mul(2) | 1
    }

    /// What `xid` was sent for, forgetting it (`None`: unknown or already forgotten).
    #[inline]
    pub(crate) fn answered(&mut self, xid: u64) -> Option<Purpose> {
        if xid & 1 == 1 {
            return self.internal.remove(&xid);
        }
        let id = RequestId(xid / 2);
        let p = self.pending.get_mut(&id)?;
        if p.xid != Some(xid) {
            return None;
        }
        p.xid = None;
        Some(Purpose::Op(id))
    }

    /// Forgets `xid` without an answer (its answer, if any, will be ignored).
    pub(crate) fn forget(&mut self, xid: u64) {
        self.internal.remove(&xid);
    }

    /// Forgets every request of the core's own in flight (the connection they went out
    /// on is being given up).
    pub(crate) fn forget_internal(&mut self) {
        self.internal.clear();
    }

    /// Whether one of the core's own requests for `purpose` (Register, ping, the
    /// Unregister of `close`) is in flight: sent, unanswered.
    pub(crate) fn in_flight(&self, purpose: &Purpose) -> bool {
        self.internal.values().any(|p| p == purpose)
    }

    /// Whether an `Op::Unregister` is in flight: sent, unanswered (the session is
    /// ending).
    pub(crate) fn unregister_in_flight(&self) -> bool {
        self.unregisters
            .0
            .iter()
            .any(|id| self.pending.get(id).is_some_and(|p| p.xid.is_some()))
    }

    /// Whether a write (create/delete/write/unregister) is in flight: sent, unanswered.
    pub(crate) fn writes_in_flight(&self) -> bool {
        self.writes
            .0
            .iter()
            .any(|id| self.pending.get(id).is_some_and(|p| p.xid.is_some()))
    }

    /// Removes `id` for its completion.
    #[inline]
    pub(crate) fn complete(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if !self.unsent.is_empty() {
            self.unsent.remove(&id);
        }
        if p.kind.is_write() {
            self.writes.remove(id);
        }
        if p.kind == OpKind::Unregister {
            self.unregisters.remove(id);
        }
        Some(p)
    }

    /// Puts the in-flight operation `id` back in the queue, to be sent again on the next
    /// connection.
    pub(crate) fn requeue(&mut self, id: RequestId) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.xid = None;
            self.unsent.insert(id);
        }
    }

    /// The connection is gone: nothing is in flight any more. Reads go back to the queue;
    /// the writes that were in flight are returned, to be completed with an unknown
    /// outcome.
    pub(crate) fn connection_lost(&mut self) -> Vec<RequestId> {
        self.internal.clear();
        let mut lost_writes = Vec::new();
        for (id, p) in self.pending.iter_mut() {
            if p.xid.take().is_some() {
                if p.kind.is_write() {
                    lost_writes.push(id);
                } else {
                    self.unsent.insert(id);
                }
            }
        }
        lost_writes
    }

    /// Every incomplete operation whose deadline is at or before `now`. Deadlines are
    /// `submit`'s `now` plus one fixed timeout and `now` never goes backwards, so they
    /// grow with the request id: the scan stops at the first one still running.
    pub(crate) fn expired(&self, now: Instant) -> Vec<RequestId> {
        self.pending
            .iter()
            .take_while(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id)
            .collect()
    }

    /// The earliest deadline (the oldest incomplete operation's).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().next().map(|(_, p)| p.deadline)
    }

    /// Every incomplete operation id, in submission order.
    pub(crate) fn ids(&self) -> Vec<RequestId> {
        self.pending.iter().map(|(id, _)| id).collect()
    }

    /// The queued (unsent) operation ids, in submission order.
    pub(crate) fn unsent_ids(&self) -> Vec<RequestId> {
        self.unsent.iter().copied().collect()
    }

    /// The queued (unsent) operations that belong to a session found gone since they
    /// were submitted (their `session` count is below `lost`), in submission order.
    pub(crate) fn unsent_of_lost_sessions(&self, lost: u64) -> Vec<RequestId> {
        self.unsent
            .iter()
            .copied()
            .filter(|id| self.pending.get(id).is_some_and(|p| p.session < lost))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;

    fn pending(tag: u64, base: Instant) -> Pending {
        Pending {
            kind: OpKind::Write,
            path: format!("/{tag}"),
            data: None,
            deadline: base + Duration::from_millis(tag),
            watch: None,
            xid: None,
            session: 0,
        }
    }

    /// One step on the slot table: insert, remove or look up an id near the front.
    #[derive(Debug, Clone)]
    enum Step {
        Insert(u64),
        Remove(u64),
        Get(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u64..64).prop_map(Step::Insert),
            (0u64..64).prop_map(Step::Remove),
            (0u64..64).prop_map(Step::Get),
        ]
    }

    proptest! {
        /// The deque of slots behaves as a map from id to operation, iterated in id
        /// order, whatever the order of inserts and removals.
        #[test]
        fn slots_behave_as_an_ordered_map(steps in proptest::collection::vec(step(), 0..200)) {
            let base = Instant::now();
            let mut slots = Slots::default();
            let mut model: BTreeMap<u64, String> = BTreeMap::new();
            for (tag, step) in (1u64..).zip(steps) {
                match step {
                    Step::Insert(id) => {
                        let p = pending(tag, base);
                        model.insert(id, p.path.clone());
                        slots.insert(RequestId(id), p);
                    }
                    Step::Remove(id) => {
                        let got = slots.remove(&RequestId(id)).map(|p| p.path);
                        prop_assert_eq!(got, model.remove(&id));
                    }
                    Step::Get(id) => {
                        let got = slots.get(&RequestId(id)).map(|p| p.path.clone());
                        prop_assert_eq!(got.as_ref(), model.get(&id));
                        let got_mut = slots.get_mut(&RequestId(id)).map(|p| p.path.clone());
                        prop_assert_eq!(got_mut.as_ref(), model.get(&id));
                    }
                }
                prop_assert_eq!(slots.is_empty(), model.is_empty());
                let listed: Vec<(u64, String)> =
                    slots.iter().map(|(id, p)| (id.0, p.path.clone())).collect();
                let expected: Vec<(u64, String)> =
                    model.iter().map(|(id, p)| (*id, p.clone())).collect();
                prop_assert_eq!(&listed, &expected);
                let listed_mut: Vec<u64> = slots.iter_mut().map(|(id, _)| id.0).collect();
                prop_assert_eq!(listed_mut, model.keys().copied().collect::<Vec<_>>());
            }
        }

        /// The sorted id queue (incomplete writes, unregisters) behaves as a set.
        #[test]
        fn id_queue_behaves_as_an_ordered_set(steps in proptest::collection::vec(step(), 0..200)) {
            let mut q = IdQueue::default();
            let mut model = std::collections::BTreeSet::new();
            for step in steps {
                match step {
                    Step::Insert(id) => {
                        q.insert(RequestId(id));
                        model.insert(id);
                    }
                    Step::Remove(id) => {
                        q.remove(RequestId(id));
                        model.remove(&id);
                    }
                    Step::Get(_) => {}
                }
                prop_assert_eq!(q.first().map(|r| r.0), model.first().copied());
                prop_assert_eq!(q.is_empty(), model.is_empty());
                let listed: Vec<u64> = q.0.iter().map(|r| r.0).collect();
                prop_assert_eq!(listed, model.iter().copied().collect::<Vec<_>>());
            }
        }
    }
}
