//! Sending application operations and watch arms, and settling their answers.
//!
//! Owns: the frame each [`Op`] becomes (a read is a stat, as in both public clients, with
//! the path's watch registration riding along when it arms a watch), the mapping of each
//! answer to a completion per [protocol](pyxis_proto::protocol) §4 (kNotLeader ⇒ retried at the leader, writes
//! included, since a follower applied nothing; kAgain ⇒ reads retried, writes `Again`
//! with an unknown outcome; kSessionExpired ⇒ `SessionExpired`). The watch registry's
//! own arms are sent and settled by `arms`. Must never decide when a connection is opened
//! or which address to use (that is `session`/`discovery`) and never reorder operations
//! (that is the request table's read-your-writes rule).

use std::time::Instant;

use bytes::BytesMut;
use pyxis_proto::rpc;

use crate::client::Client;
use crate::error::Error;
use crate::reply::{classify, decode_node, Answer};
use crate::requests::{OpKind, Pending, Purpose};
use crate::session::Fault;
use crate::types::{CreateMode, Op, Reply, RequestId, WatchSpec};

/// Turns an operation into its pending form, moving its strings and data rather than
/// copying them. Also returns the watch spec it arms, put on the operation's path.
#[inline]
pub(crate) fn pending(
    op: Op,
    hide_default: bool,
    deadline: Instant,
) -> (Pending, Option<WatchSpec>) {
    let on_path = |path: &String, w: WatchSpec| WatchSpec {
        path: path.clone(),
        ..w
    };
    let (kind, path, data, spec) = match op {
        Op::Create { path, data, mode } => {
            let ephemeral = mode == CreateMode::Ephemeral;
            (OpKind::Create { ephemeral }, path, data, None)
        }
        Op::Delete { path } => (OpKind::Delete, path, None, None),
        Op::Write { path, data } => (OpKind::Write, path, Some(data), None),
        Op::Read {
            path,
            show_hidden,
            watch,
        } => {
            let hide = !show_hidden.unwrap_or(!hide_default);
            let spec = watch.map(|w| on_path(&path, w));
            (OpKind::Read { hide }, path, None, spec)
        }
        Op::Exists { path, watch } => {
            let spec = watch.map(|w| on_path(&path, w));
            (OpKind::Exists, path, None, spec)
        }
        Op::Unregister => (OpKind::Unregister, String::new(), None, None),
    };
    let p = Pending {
        kind,
        path,
        data,
        deadline,
        watch: None,
        xid: None,
        session: 0,
    };
    (p, spec)
}

/// Appends the frame of a pending operation. The path and data are moved into the
/// message for encoding and moved back after, so nothing is copied; the message is built
/// here, in place, rather than passed in (it is large: moving it costs a copy).
#[inline]
fn encode_op(
    out: &mut BytesMut,
    p: &mut Pending,
    sid: Option<u64>,
    xid: u64,
    watch: Option<rpc::WatchRequest>,
) {
    let mut req = rpc::Request {
        sid,
        xid: Some(xid),
        watch,
        ..Default::default()
    };
    let path = std::mem::take(&mut p.path);
    let data = p.data.take();
    match p.kind {
        OpKind::Create { ephemeral } => {
            let flags = if ephemeral {
                pyxis_proto::node_flags::EPHEMERAL
            } else {
                pyxis_proto::node_flags::PERSISTENT
            };
            req.create = Some(rpc::CreateRequest { path, flags, data });
        }
        OpKind::Delete => req.delete = Some(rpc::DeleteRequest { path }),
        OpKind::Write => {
            req.write = Some(rpc::WriteRequest {
                path,
                data: data.unwrap_or_default(),
            })
        }
        OpKind::Read { .. } | OpKind::Exists => req.stat = Some(rpc::StatRequest { path }),
        OpKind::Unregister => req.unregister = Some(rpc::UnRegisterRequest {}),
    }
    pyxis_proto::encode_frame(&req, out);
    if let Some(c) = req.create {
        (p.path, p.data) = (c.path, c.data);
    } else if let Some(d) = req.delete {
        p.path = d.path;
    } else if let Some(w) = req.write {
        (p.path, p.data) = (w.path, Some(w.data));
    } else if let Some(s) = req.stat {
        p.path = s.path;
    }
}

impl Client {
    /// Sends every operation the request table allows, if a session is up.
    pub(crate) fn flush_requests(&mut self) {
        if !self.phase.is_up() {
            return;
        }
        for id in self.requests.sendable() {
            // Past its deadline, an operation is timed out, not sent (an input read after
            // a pause is handled before the timer): nothing of it reached the server.
            if self
                .requests
                .get(id)
                .is_some_and(|p| p.deadline <= self.last_now)
            {
                self.time_out(id);
            } else {
                self.send_op(id);
            }
        }
    }

    /// Sends the pending operation `id` (with the path's watch registration if it arms
    /// a watch).
    pub(crate) fn send_op(&mut self, id: RequestId) {
        let watch = match self.requests.get(id) {
            Some(p) if p.watch.is_some() => self.watch_request(&p.path),
            Some(p) if p.kind.is_write() => {
                // Answered after the commit: the server may read it long before.
                self.session.ping.note_write(self.last_now);
                None
            }
            Some(_) => None,
            None => return,
        };
        let xid = self.requests.send(Purpose::Op(id));
        if let Some(p) = self.requests.get_mut(id) {
            encode_op(&mut self.out, p, self.session.sid, xid, watch);
        }
    }

    fn watch_request(&self, path: &str) -> Option<rpc::WatchRequest> {
        let (mask, recursive) = self.watches.union(path)?;
        Some(rpc::WatchRequest {
            path: Some(path.to_owned()),
            watch: Some(mask),
            recursive: Some(recursive),
        })
    }

    /// An operation's answer: its local part (complete it, or queue it again), then any
    /// session-level fault to the fault policy.
    pub(crate) fn on_op_answer(&mut self, id: RequestId, rsp: &rpc::Response, now: Instant) {
        let Some(p) = self.requests.get(id) else {
            return;
        };
        let (kind, answer) = (p.kind, classify(rsp, &p.path));
        let fault = match &answer {
            Answer::Success | Answer::Final(_) => None,
            // A follower applied nothing: retried at the leader, writes included.
            Answer::Fault(fault @ Fault::NotLeader(_)) => {
                let fault = fault.clone();
                self.requests.requeue(id);
                return self.on_fault(fault, now);
            }
            // No leader now: a read is retried; a write may have committed.
            Answer::Fault(Fault::Again) if !kind.is_write() => {
                self.requests.requeue(id);
                return self.on_fault(Fault::Again, now);
            }
            // Ending a session already gone is no fault: what was asked holds.
            Answer::Fault(Fault::SessionExpired) if kind == OpKind::Unregister => None,
            Answer::Fault(fault) => Some(fault.clone()),
        };
        // Completed: taken out of the table.
        let Some(mut p) = self.requests.complete(id) else {
            return;
        };
        let watch = p.watch;
        match (answer, kind) {
            (Answer::Success, OpKind::Read { .. } | OpKind::Exists) => {
                let path = std::mem::take(&mut p.path);
                match decode_node(path, rsp.data.as_ref(), false) {
                    Ok(mut node) => {
                        if let Some(w) = watch {
                            self.arm_answered(&node.path, Some(&node));
                            self.watches.confirm(w);
                        }
                        let reply = match p.kind {
                            OpKind::Read { hide } => {
                                if hide {
                                    node.children.retain(|c| !c.starts_with('_'));
                                }
                                Reply::Node { node, watch }
                            }
                            _ => Reply::Exists {
                                node: Some(node),
                                watch,
                            },
                        };
                        self.finish(id, watch, Ok(reply));
                    }
                    Err(e) => self.finish(id, watch, Err(e)),
                }
            }
            (Answer::Success, kind) => {
                self.finish(id, watch, Ok(Reply::Done));
                if kind == OpKind::Unregister {
                    self.session_ended(now);
                }
            }
            (Answer::Final(Error::NotFound { .. }), OpKind::Exists) => {
                if let Some(w) = watch {
                    self.arm_answered(&p.path, None);
                    self.watches.confirm(w);
                }
                self.finish(id, watch, Ok(Reply::Exists { node: None, watch }));
            }
            (Answer::Final(e), _) => self.finish(id, watch, Err(e)),
            // Unregister of a session already gone: what was asked (the session and its
            // ephemeral nodes ended) holds, so it succeeds and no new session is made
            // unless something needs one.
            (Answer::Fault(Fault::SessionExpired), OpKind::Unregister) => {
                self.finish(id, watch, Ok(Reply::Done));
                self.session_ended(now);
            }
            (Answer::Fault(Fault::SessionExpired), _) => {
                self.finish(id, watch, Err(Error::SessionExpired))
            }
            // Only a write's kAgain gets here (kNotLeader and a read's kAgain were
            // queued again above): it may have committed.
            (Answer::Fault(_), _) => {
                let unknown = Error::Again {
                    outcome_unknown: true,
                };
                self.finish(id, watch, Err(unknown));
            }
        }
        if let Some(fault) = fault {
            self.on_fault(fault, now);
        }
    }
}
