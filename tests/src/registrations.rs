//! The watch registrations the server accepted and the client read the answer of, for
//! the watch oracle's view of what an application could know after an event.
//!
//! After an event, the application learns the watched node's state through requests that
//! reach the server behind the core's re-arm. When that re-arm is refused (the session
//! ended or expired, no leader, a follower) the registration that counts is a later one
//! (after a reconnect or a new session), and so do the application's reads queued
//! behind it: every state from the event until that registration reached the server is
//! one the application may have acted on.
//!
//! Owns: per link, the stat/read requests carrying a watch that are unanswered, and those
//! the server answered with a registration (ok, or kNotFound on a stat: a creation watch)
//! whose answer is on its way; per client, when each registration whose answer it read
//! reached the server, by path. Must never reach into a core: it reads frames on the
//! links only.

use std::collections::BTreeMap;

use bytes::Bytes;
use pyxis_proto::{decode_response, ErrorType, FrameDecoder};

use crate::world::World;

/// One link's watch registrations in flight.
#[derive(Debug, Default)]
pub(crate) struct LinkArms {
    /// Sent, unanswered: xid → (path, whether a stat).
    sent: BTreeMap<u64, (String, bool)>,
    /// Accepted by the server, the answer on its way: xid → (path, when accepted, µs).
    accepted: BTreeMap<u64, (String, u64)>,
}

impl World {
    /// `client` writes `data` (whole frames) on `link`: its stat/read requests with a
    /// watch are booked.
    pub(crate) fn note_arm_requests(&mut self, link: usize, data: &Bytes) {
        let mut d = FrameDecoder::new();
        d.extend(data);
        while let Ok(Some(req)) = d.next_request() {
            let (Some(xid), Some(_)) = (req.xid, req.watch.as_ref()) else {
                continue;
            };
            let target = match (&req.stat, &req.read) {
                (Some(s), _) => (s.path.clone(), true),
                (None, Some(r)) => (r.path.clone(), false),
                (None, None) => continue,
            };
            self.links[link].arms.sent.insert(xid, target);
        }
    }

    /// The server answers `bytes` (whole frames) on `link`: the watch requests it
    /// registered are booked as accepted now.
    pub(crate) fn note_arm_answers(&mut self, link: usize, bytes: &Bytes) {
        let now = self.now;
        let arms = &mut self.links[link].arms;
        if arms.sent.is_empty() {
            return;
        }
        let mut d = FrameDecoder::new();
        d.extend(bytes);
        while let Ok(Some(rsp)) = d.next_response() {
            let Some((path, stat)) = rsp.xid.and_then(|x| arms.sent.remove(&x)) else {
                continue;
            };
            let err = rsp.err.as_ref().map(|e| ErrorType::try_from(e.r#type).ok());
            let registered = match err {
                None | Some(Some(ErrorType::KNone)) => true,
                Some(Some(ErrorType::KNotFound)) => stat,
                Some(_) => false,
            };
            if let (true, Some(xid)) = (registered, rsp.xid) {
                arms.accepted.insert(xid, (path, now));
            }
        }
    }

    /// `client` reads the complete frames `payloads` on `link`: each accepted
    /// registration among them counts from when the server accepted it.
    pub(crate) fn note_arm_deliveries(&mut self, client: usize, link: usize, payloads: &[Bytes]) {
        if self.links[link].arms.accepted.is_empty() {
            return;
        }
        for payload in payloads {
            let Some(xid) = decode_response(payload.clone()).ok().and_then(|r| r.xid) else {
                continue;
            };
            if let Some((path, at)) = self.links[link].arms.accepted.remove(&xid) {
                self.clients[client]
                    .registered
                    .entry(path)
                    .or_default()
                    .push(at);
            }
        }
    }
}
