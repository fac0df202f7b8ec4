//! The re-registration oracle: a client re-registers every watch at most once per real
//! change of leader, besides what a new session and a pause legitimately require.
//!
//! Owns: the count of leadership changes the cluster went through (each releases every
//! held ping and drops every server watch), the per-client count of re-registrations of
//! every watch seen on the wire, the check of [`Oracle::Rearm`], and the wrapper of the
//! variant that breaks it on purpose ([`Variant::RearmOnEveryAnswer`]). Must never reach
//! into a core: it reads the frames a client writes and the cores' public outputs.
//!
//! A re-registration of every watch is seen as one transmit of a client whose session
//! stayed up (not the transmit that follows a Register answer, which re-registers every
//! watch of a new or resumed session by design) carrying the core's stat + watch
//! requests (odd xids: an application's read or exists with a watch has an even one) for
//! two paths or more: a watch event re-arms only the path it fired on, and a new watch
//! arms only its own path, each in a transmit of its own. Re-registrations with fewer
//! than two paths watched cannot be told from a re-arm and are not counted.
//!
//! Each client may re-register everything once per:
//! - leadership change since it started (a move, to another node or the same one, a
//!   no-leader window, a killed leader: the held ping is released early, or the client
//!   finds out later; in every case the server dropped every watch);
//! - pause of its process (a late wake-up re-registers, as a release may have been
//!   missed meanwhile);
//! - expiry of its session forced at the server (the held ping is answered at the
//!   expiry, early);
//! - and once in all on a server holding pings shorter than asked (session bounds
//!   [1 s, 3 s]): the first early answer is taken for a release before the hold is
//!   learned.

use bytes::{Bytes, BytesMut};
use pyxis_core::SessionState;
use pyxis_proto::rpc::{Request, StatRequest, WatchRequest};
use pyxis_proto::{encode_frame, FrameDecoder};

use crate::config::Variant;
use crate::oracles::Oracle;
use crate::world::World;

/// First xid of the stat + watch requests the [`Variant::RearmOnEveryAnswer`] wrapper
/// writes (odd, far above any the core hands out, so the core ignores their answers).
const INJECTED_XID_BASE: u64 = 1 << 60;

impl World {
    /// The cluster changed leadership (or lost it): every server watch is dropped.
    pub(crate) fn note_leader_change(&mut self) {
        self.leader_changes.push(self.now);
    }

    /// `client` writes `data` (whole frames): a re-registration of every watch while
    /// its session stayed up is counted and checked against what it may cost.
    pub(crate) fn note_rearms(&mut self, client: usize, data: &Bytes) {
        let c = &self.clients[client];
        if c.session_came_up || c.core.state() != SessionState::Connected {
            return;
        }
        let mut d = FrameDecoder::new();
        d.extend(data);
        let mut paths = std::collections::BTreeSet::new();
        while let Ok(Some(req)) = d.next_request() {
            if req.xid.is_some_and(|x| x % 2 == 1) && req.watch.is_some() {
                if let Some(stat) = req.stat {
                    paths.insert(stat.path);
                }
            }
        }
        if paths.len() < 2 {
            return;
        }
        self.stats.rearm_alls += 1;
        let c = &mut self.clients[client];
        c.rearm_alls += 1;
        let started = c.started;
        let changes = self
            .leader_changes
            .iter()
            .filter(|at| **at >= started)
            .count() as u64;
        let c = &self.clients[client];
        let allowed = changes + c.pauses + c.forced_expiries + u64::from(self.short_bounds);
        if c.rearm_alls > allowed {
            let detail = format!(
                "client {client}: re-registered every watch ({} paths) for the {} time; allowed {allowed} ({changes} leader changes since it started, {} pauses, {} forced expiries, short bounds: {})",
                paths.len(),
                c.rearm_alls,
                c.pauses,
                c.forced_expiries,
                self.short_bounds
            );
            self.violation(Oracle::Rearm, detail);
        }
    }

    /// The [`Variant::RearmOnEveryAnswer`] client: after reading a ping answer (an odd
    /// xid answered without error or data, or with an event) on the link its session is
    /// up on, it re-registers every watched path, as a pinger that takes every answer
    /// for an early release would. The frames go out as the client's own.
    pub(crate) fn rearm_on_every_answer(&mut self, client: usize, link: usize, data: &[u8]) {
        if self.cfg.variant != Variant::RearmOnEveryAnswer {
            return;
        }
        let l = &mut self.links[link];
        l.rewrite.extend(data);
        let mut pinged = false;
        while let Ok(Some(rsp)) = l.rewrite.next_response() {
            let odd = rsp.xid.is_some_and(|x| x % 2 == 1);
            pinged |= odd && rsp.err.is_none() && (rsp.data.is_none() || rsp.watch.is_some());
        }
        let c = &mut self.clients[client];
        if !pinged || c.up_link != Some(link) || c.core.state() != SessionState::Connected {
            return;
        }
        let sid = c.core.sid();
        let paths: std::collections::BTreeSet<String> = c
            .watches
            .values()
            .filter(|w| !w.done)
            .map(|w| w.spec.path.clone())
            .collect();
        let mut out = BytesMut::new();
        for path in paths {
            c.injected += 1;
            let req = Request {
                sid,
                xid: Some(INJECTED_XID_BASE + 2 * c.injected + 1),
                stat: Some(StatRequest { path: path.clone() }),
                watch: Some(WatchRequest {
                    path: Some(path),
                    watch: Some(pyxis_core::EventMask::ALL.0),
                    recursive: Some(false),
                }),
                ..Default::default()
            };
            encode_frame(&req, &mut out);
        }
        let out = out.freeze();
        self.note_rearms(client, &out);
        self.record(
            (
                "injected-rearms",
                client,
                link,
                crate::trace::bytes_key(&out),
            ),
            || format!("client {client} (variant) re-registers every watch on link {link}"),
        );
        self.send_up(link, &out);
    }
}
