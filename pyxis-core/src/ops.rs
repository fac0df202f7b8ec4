//! Sending application operations and watch arms, and settling their answers.
//!
//! Owns: the frame each [`Op`] becomes (a read is a stat, as in both public clients, with
//! the path's watch registration riding along when it arms a watch), the mapping of each
//! answer to a completion per PROTOCOL.md §4 (kNotLeader ⇒ retried at the leader, writes
//! included, since a follower applied nothing; kAgain ⇒ reads retried, writes `Again`
//! with an unknown outcome; kSessionExpired ⇒ `SessionExpired`), and the stat + watch
//! arms of the watch registry. Must never decide when a connection is opened or which
//! address to use (that is `session`/`discovery`) and never reorder operations (that is
//! the request table's read-your-writes rule).

use std::time::Instant;

use pyxis_proto::rpc;

use crate::client::Client;
use crate::error::Error;
use crate::reply::{decode_node, server_error, ServerError};
use crate::requests::Purpose;
use crate::session::Next;
use crate::types::{Node, Op, Reply, RequestId};
use crate::watches::Arm;

impl Client {
    /// Sends every operation the request table allows, if a session is up.
    pub(crate) fn flush_requests(&mut self) {
        if !self.phase.is_up() {
            return;
        }
        for id in self.requests.sendable() {
            let Some(p) = self.requests.get(id) else {
                continue;
            };
            let mut req = self.op_request(&p.op, p.watch.is_some());
            req.xid = Some(self.requests.send(Purpose::Op(id)));
            self.send_frame(&req);
        }
    }

    fn op_request(&self, op: &Op, arms_watch: bool) -> rpc::Request {
        let mut req = rpc::Request {
            sid: self.session.sid,
            ..Default::default()
        };
        match op {
            Op::Create { path, data, mode } => {
                req.create = Some(rpc::CreateRequest {
                    path: path.clone(),
                    flags: match mode {
                        crate::CreateMode::Persistent => pyxis_proto::node_flags::PERSISTENT,
                        crate::CreateMode::Ephemeral => pyxis_proto::node_flags::EPHEMERAL,
                    },
                    data: data.clone(),
                })
            }
            Op::Delete { path } => req.delete = Some(rpc::DeleteRequest { path: path.clone() }),
            Op::Write { path, data } => {
                req.write = Some(rpc::WriteRequest {
                    path: path.clone(),
                    data: data.clone(),
                })
            }
            Op::Read { path, .. } | Op::Exists { path, .. } => {
                req.stat = Some(rpc::StatRequest { path: path.clone() });
                if arms_watch {
                    req.watch = self.watch_request(path);
                }
            }
            Op::Unregister => req.unregister = Some(rpc::UnRegisterRequest {}),
        }
        req
    }

    fn watch_request(&self, path: &str) -> Option<rpc::WatchRequest> {
        let (mask, recursive) = self.watches.union(path)?;
        Some(rpc::WatchRequest {
            path: Some(path.to_owned()),
            watch: Some(mask),
            recursive: Some(recursive),
        })
    }

    pub(crate) fn on_op_answer(&mut self, id: RequestId, rsp: &rpc::Response, now: Instant) {
        let Some(p) = self.requests.get(id) else {
            return;
        };
        let path = p.op.path().unwrap_or("/").to_owned();
        let is_write = p.op.is_write();
        let watch = p.watch;
        let hide = match &p.op {
            Op::Read { show_hidden, .. } => {
                !show_hidden.unwrap_or(!self.config.hide_hidden_children)
            }
            _ => self.config.hide_hidden_children,
        };
        let is_unregister = matches!(p.op, Op::Unregister);
        let is_exists = matches!(p.op, Op::Exists { .. });
        let is_stat = matches!(p.op, Op::Read { .. } | Op::Exists { .. });
        match server_error(rsp, &path) {
            None if is_stat => match decode_node(&path, rsp.data.as_ref(), false) {
                Ok(node) => {
                    if watch.is_some() {
                        self.arm_answered(&path, Some(&node));
                    }
                    let node = filter_hidden(node, hide);
                    if let Some(w) = watch {
                        self.watches.confirm(w);
                    }
                    let reply = if is_exists {
                        Reply::Exists {
                            node: Some(node),
                            watch,
                        }
                    } else {
                        Reply::Node { node, watch }
                    };
                    self.complete(id, Ok(reply));
                }
                Err(e) => self.complete(id, Err(e)),
            },
            None => {
                self.complete(id, Ok(Reply::Done));
                if is_unregister {
                    self.session_ended(now);
                }
            }
            Some(ServerError::Final(Error::NotFound { .. })) if is_exists => {
                if let Some(w) = watch {
                    self.arm_answered(&path, None);
                    self.watches.confirm(w);
                }
                self.complete(id, Ok(Reply::Exists { node: None, watch }));
            }
            Some(ServerError::Final(e)) => self.complete(id, Err(e)),
            Some(ServerError::SessionExpired) => {
                self.complete(id, Err(Error::SessionExpired));
                self.session_expired(now);
            }
            Some(ServerError::Again) => {
                if is_write {
                    self.complete(
                        id,
                        Err(Error::Again {
                            outcome_unknown: true,
                        }),
                    );
                } else {
                    self.requests.requeue(id);
                }
                self.connection_lost(now, Next::Failure, true);
            }
            Some(ServerError::NotLeader(leader)) => {
                self.requests.requeue(id);
                self.connection_lost(now, Next::Redirect(leader), true);
            }
        }
    }

    /// Registers the server watch on `path` if it has watches and none is set or coming.
    pub(crate) fn arm_if_needed(&mut self, path: &str) {
        if let Some(arm) = self.watches.needs_arm(path) {
            self.send_arm(arm);
        }
    }

    /// Sends a stat + watch registering `arm`.
    pub(crate) fn send_arm(&mut self, (path, mask, recursive): Arm) {
        let xid = self.requests.send(Purpose::Arm(path.clone()));
        self.watches.arming(&path);
        self.send_frame(&rpc::Request {
            sid: self.session.sid,
            xid: Some(xid),
            stat: Some(rpc::StatRequest { path: path.clone() }),
            watch: Some(rpc::WatchRequest {
                path: Some(path),
                watch: Some(mask),
                recursive: Some(recursive),
            }),
            ..Default::default()
        });
    }

    fn arm_answered(&mut self, path: &str, node: Option<&Node>) {
        let mut events = Vec::new();
        self.watches.armed(path, node, &mut events);
        self.events.extend(events);
    }

    pub(crate) fn on_arm_answer(&mut self, path: &str, rsp: &rpc::Response, now: Instant) {
        match server_error(rsp, path) {
            None => match decode_node(path, rsp.data.as_ref(), false) {
                Ok(node) => self.arm_answered(path, Some(&node)),
                Err(_) => self.watches.armed_unknown(path),
            },
            Some(ServerError::Final(Error::NotFound { .. })) => self.arm_answered(path, None),
            Some(ServerError::Final(e)) => {
                let mut events = Vec::new();
                self.watches.arm_failed(path, &e, &mut events);
                self.events.extend(events);
            }
            Some(ServerError::SessionExpired) => self.session_expired(now),
            Some(ServerError::NotLeader(leader)) => {
                self.connection_lost(now, Next::Redirect(leader), true)
            }
            Some(ServerError::Again) => self.connection_lost(now, Next::Failure, true),
        }
    }

    /// A ping answer carried an event for the registration on `watched`.
    pub(crate) fn on_watch_fired(&mut self, watched: &str, node: &str, bits: u32) {
        let mut events = Vec::new();
        let rearm = self.watches.fire(watched, node, bits, &mut events);
        self.events.extend(events);
        if let Some(arm) = rearm {
            if self.phase.is_up() {
                self.send_arm(arm);
            }
        }
    }
}

fn filter_hidden(mut node: Node, hide: bool) -> Node {
    if hide {
        node.children.retain(|c| !c.starts_with('_'));
    }
    node
}
