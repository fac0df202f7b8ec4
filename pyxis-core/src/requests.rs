//! The request table: every application operation from `submit` to its one completion.
//!
//! Owns: request ids and xids, the queue of operations not yet sent, the xid → purpose
//! map of what is in flight on the current connection (application operations, but also
//! Register, ping, watch arms and the closing Unregister), per-request deadlines, and the
//! read-your-writes rule (a read or stat is not sent while a create/delete/write/unregister
//! submitted before it is unanswered; writes pipeline among themselves). Must never
//! build frames, look at answers or decide about connections: the client glue does that
//! with what this table says.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::types::{Op, RequestId, WatchId};

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
    /// A stat + watch registering the server watch on a path.
    Arm(String),
}

/// An incomplete application operation.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// The operation.
    pub op: Op,
    /// When it completes with `Timeout` if still incomplete.
    pub deadline: Instant,
    /// The application watch armed with this read, waiting for the answer.
    pub watch: Option<WatchId>,
    /// The xid it went out with, while in flight.
    pub xid: Option<u64>,
}

/// The request table.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    pending: BTreeMap<RequestId, Pending>,
    unsent: BTreeSet<RequestId>,
    writes: BTreeSet<RequestId>,
    unregisters: BTreeSet<RequestId>,
    deadlines: BTreeSet<(Instant, RequestId)>,
    xids: BTreeMap<u64, Purpose>,
    next_id: u64,
    next_xid: u64,
}

impl Requests {
    /// A fresh request id (also used for operations refused before they are queued).
    pub(crate) fn next_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// Queues `op` under `id` until `deadline`.
    pub(crate) fn queue(
        &mut self,
        id: RequestId,
        op: Op,
        deadline: Instant,
        watch: Option<WatchId>,
    ) {
        if op.is_write() {
            self.writes.insert(id);
        }
        if matches!(op, Op::Unregister) {
            self.unregisters.insert(id);
        }
        self.deadlines.insert((deadline, id));
        self.unsent.insert(id);
        self.pending.insert(
            id,
            Pending {
                op,
                deadline,
                watch,
                xid: None,
            },
        );
    }

    /// The queued operations that may go out now, in submission order: every write, and
    /// every read with no incomplete write submitted before it; nothing submitted after
    /// an unanswered Unregister (it would reach the ended session).
    pub(crate) fn sendable(&self) -> Vec<RequestId> {
        let first_write = self.writes.first().copied();
        let barrier = self.unregisters.first().copied();
        self.unsent
            .iter()
            .copied()
            .take_while(|id| match barrier {
                None => true,
                Some(u) => *id <= u,
            })
            .filter(|id| {
                self.pending.get(id).is_some_and(|p| p.op.is_write())
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
    pub(crate) fn get(&self, id: RequestId) -> Option<&Pending> {
        self.pending.get(&id)
    }

    /// A fresh xid for `purpose`, recorded as in flight.
    pub(crate) fn send(&mut self, purpose: Purpose) -> u64 {
        self.next_xid += 1;
        let xid = self.next_xid;
        if let Purpose::Op(id) = &purpose {
            self.unsent.remove(id);
            if let Some(p) = self.pending.get_mut(id) {
                p.xid = Some(xid);
            }
        }
        self.xids.insert(xid, purpose);
        xid
    }

    /// What `xid` was sent for, forgetting it (`None`: unknown or already forgotten).
    pub(crate) fn answered(&mut self, xid: u64) -> Option<Purpose> {
        self.xids.remove(&xid)
    }

    /// Forgets `xid` without an answer (its answer, if any, will be ignored).
    pub(crate) fn forget(&mut self, xid: u64) {
        self.xids.remove(&xid);
    }

    /// Forgets every watch arm in flight (their paths are being re-armed).
    pub(crate) fn forget_arms(&mut self) {
        self.xids.retain(|_, p| !matches!(p, Purpose::Arm(_)));
    }

    /// Removes `id` for its completion.
    pub(crate) fn complete(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        self.unsent.remove(&id);
        self.writes.remove(&id);
        self.unregisters.remove(&id);
        self.deadlines.remove(&(p.deadline, id));
        if let Some(xid) = p.xid {
            self.xids.remove(&xid);
        }
        Some(p)
    }

    /// Puts `id` back in the queue to be sent again.
    pub(crate) fn requeue(&mut self, id: RequestId) {
        if let Some(p) = self.pending.get_mut(&id) {
            if let Some(xid) = p.xid.take() {
                self.xids.remove(&xid);
            }
            self.unsent.insert(id);
        }
    }

    /// The connection is gone: nothing is in flight any more. Reads go back to the queue;
    /// the writes that were in flight are returned, to be completed with an unknown
    /// outcome.
    pub(crate) fn connection_lost(&mut self) -> Vec<RequestId> {
        let mut lost_writes = Vec::new();
        for purpose in std::mem::take(&mut self.xids).into_values() {
            if let Purpose::Op(id) = purpose {
                if let Some(p) = self.pending.get_mut(&id) {
                    p.xid = None;
                    if p.op.is_write() {
                        lost_writes.push(id);
                    } else {
                        self.unsent.insert(id);
                    }
                }
            }
        }
        lost_writes
    }

    /// Every incomplete operation whose deadline is at or before `now`.
    pub(crate) fn expired(&self, now: Instant) -> Vec<RequestId> {
        self.deadlines
            .iter()
            .take_while(|(d, _)| *d <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// Every incomplete operation id, in submission order.
    pub(crate) fn ids(&self) -> Vec<RequestId> {
        self.pending.keys().copied().collect()
    }

    /// The queued (unsent) operation ids, in submission order.
    pub(crate) fn unsent_ids(&self) -> Vec<RequestId> {
        self.unsent.iter().copied().collect()
    }
}
