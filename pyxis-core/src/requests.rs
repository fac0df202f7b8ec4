//! The request table: every application operation from `submit` to its one completion.
//!
//! Owns: request ids and xids (an operation's xid is twice its request id; the core's own
//! requests — Register, ping, the closing Unregister — use odd xids kept in a small map;
//! the watch registry's arms and re-checks get odd xids it keeps itself), the queue of operations not yet sent, what is in flight on the current
//! connection, per-request deadlines, and the read-your-writes rule (a read or stat is
//! not sent while a create/delete/write/unregister submitted before it is unanswered;
//! writes pipeline among themselves). Must never
//! build frames, look at answers or decide about connections: the client glue does that
//! with what this table says.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::types::{RequestId, WatchId};

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
    /// Changes server state: never retried once sent; later reads wait for it.
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
}
