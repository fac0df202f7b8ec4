//! The client glue of the watch registry: sends the arm batches it asks for (re-check
//! stats, then the stat + watch) and hands their answers and the server's watch events
//! back to it.
//!
//! Owns: the frames of arms and re-checks, the one re-arm-everything sequence, and
//! routing an answer the registry owns ([`Flight`]) to it. Must never decide what a
//! watch is told or when a path is re-armed (that is `watches`), and never keep its own
//! record of what is in flight: the registry holds each arm and re-check by xid, the
//! request table only hands out the xids.

use std::time::Instant;

use pyxis_proto::rpc;

use crate::client::Client;
use crate::error::Error;
use crate::reply::{classify, decode_node, Answer};
use crate::types::Node;
use crate::watches::{Arm, Flight};

impl Client {
    /// Registers the server watch on `path` if it has watches and none is set or coming.
    pub(crate) fn arm_if_needed(&mut self, path: &str) {
        if let Some(arm) = self.watches.needs_arm(path) {
            self.send_arm(arm);
        }
    }

    /// Re-registers every watched path (after a new session, or when every server watch
    /// may have been dropped by a leader change), each with a stat compared with what was
    /// last seen; answers to arms sent before are ignored from now on. The registry
    /// tells the application (`SessionEvent::WatchesRearmed`).
    pub(crate) fn rearm_every_watch(&mut self) {
        let mut events = Vec::new();
        for arm in self.watches.rearm_all(&mut events) {
            self.send_arm(arm);
        }
        self.events.extend(events);
    }

    /// Sends one arm batch: a stat per re-check, then the stat + watch.
    pub(crate) fn send_arm(&mut self, arm: Arm) {
        let Arm {
            path,
            mask,
            recursive,
            checks,
        } = arm;
        for node in checks {
            let xid = self.requests.internal_xid();
            self.send_frame(&rpc::Request {
                sid: self.session.sid,
                xid: Some(xid),
                stat: Some(rpc::StatRequest { path: node.clone() }),
                ..Default::default()
            });
            let watched = path.clone();
            self.watches.sent(xid, Flight::Check { watched, node });
        }
        let xid = self.requests.internal_xid();
        self.send_frame(&rpc::Request {
            sid: self.session.sid,
            xid: Some(xid),
            stat: Some(rpc::StatRequest { path: path.clone() }),
            watch: Some(rpc::WatchRequest {
                path: Some(path.clone()),
                watch: Some(mask),
                recursive: Some(recursive),
            }),
            ..Default::default()
        });
        self.watches.sent(xid, Flight::Arm(path));
    }

    /// A stat + watch on `path` (an arm, or a read arming a watch) was answered with
    /// `node` (`None`: it does not exist).
    pub(crate) fn arm_answered(&mut self, path: &str, node: Option<&Node>) {
        let mut events = Vec::new();
        self.watches.armed(path, node, &mut events);
        self.events.extend(events);
    }

    fn looked(&mut self, flight: &Flight, node: Option<&Node>) {
        match flight {
            Flight::Arm(path) => self.arm_answered(path, node),
            Flight::Check { watched, node: at } => {
                let mut events = Vec::new();
                self.watches.checked(watched, at, node, &mut events);
                self.events.extend(events);
            }
        }
    }

    /// The answer to an arm or a re-check of the registry.
    pub(crate) fn on_watch_answer(&mut self, flight: Flight, rsp: &rpc::Response, now: Instant) {
        let path = match &flight {
            Flight::Arm(path) => path.as_str(),
            Flight::Check { node, .. } => node.as_str(),
        };
        match classify(rsp, path) {
            Answer::Success => match decode_node(path.to_owned(), rsp.data.as_ref(), false) {
                Ok(node) => self.looked(&flight, Some(&node)),
                Err(_) => self.watches.unknown(&flight),
            },
            Answer::Final(Error::NotFound { .. }) => self.looked(&flight, None),
            Answer::Final(e) => match &flight {
                Flight::Arm(path) => {
                    let mut events = Vec::new();
                    self.watches.arm_failed(path, &e, &mut events);
                    self.events.extend(events);
                }
                Flight::Check { .. } => self.watches.unknown(&flight),
            },
            Answer::Fault(fault) => self.on_fault(fault, now),
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
