//! Faults: what the network and the cluster do to the clients, and when it stops.
//!
//! Owns: the fault mix (connection resets and blackholes, connections stalled in the
//! middle of a frame, partitions of a client from some nodes, leader moves, node crashes
//! and restarts, no-leader windows, server-side session expiry, client pauses past the
//! session timeout, a client closing during a leader move or while it registers a
//! session replacing one the server expired, pipelined writes across a
//! leader move, a leader answering kAgain to writes in flight) and healing everything when
//! faults stop. Must never touch a client core directly except to pause it: faults act on
//! links and on the model.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::KnownGap;
use crate::world::{Ev, World, MS, NODES, SEC};

/// The fault mix, per mille of fault steps.
pub const FAULTS: [(&str, u32); 14] = [
    ("reset a connection", 160),
    ("blackhole a connection", 70),
    ("partition a client from some nodes", 130),
    ("move the leader", 120),
    ("kill the leader, restart it later", 90),
    ("kill a follower, restart it later", 50),
    ("no-leader window", 80),
    ("pause a client past its session timeout", 60),
    ("expire a session at the server", 30),
    ("move the leader after a no-leader window", 90),
    ("stall a connection in the middle of a frame", 30),
    ("close a client during a leader move", 30),
    ("pipelined writes across a leader move", 30),
    ("leader answers kAgain mid-flight", 30),
];

impl World {
    pub(crate) fn fault(&mut self) {
        if self.now >= self.fault_stop {
            return;
        }
        let next = self.now + self.rng.u64(300 * MS..4 * SEC);
        self.schedule(next, Ev::Fault);
        self.stats.faults += 1;
        let mut roll = self.rng.u32(0..1000);
        let mut pick = FAULTS.len() - 1;
        for (i, (_, w)) in FAULTS.iter().enumerate() {
            if roll < *w {
                pick = i;
                break;
            }
            roll -= w;
        }
        let now = self.now_instant();
        let live_links: Vec<usize> = (0..self.links.len())
            .filter(|l| {
                let l = &self.links[*l];
                l.carries() && !l.client_gone && !l.server_gone
            })
            .collect();
        let slot = self.rng.usize(0..self.slots.len());
        let client = self.slots[slot];
        let remaining = self.fault_stop - self.now;
        // Known gap 2: a no-leader window may end on any node; unless the gap is
        // exercised, leadership changes only go where `may_lead` allows.
        let exercise_gap = self.cfg.exercises(KnownGap::LeaderChangeWithoutHeldPing);
        if pick == 6 && !exercise_gap {
            pick = 9;
        }
        match pick {
            0 | 1 if !live_links.is_empty() => {
                let link = live_links[self.rng.usize(0..live_links.len())];
                let c = self.links[link].client;
                self.clients[c].disturbed = self.now;
                if pick == 0 {
                    self.record(("reset", link), || format!("FAULT reset link {link}"));
                    self.reset_link(link);
                } else {
                    self.record(("blackhole", link), || {
                        format!("FAULT blackhole link {link}")
                    });
                    self.blackhole_link(link);
                }
            }
            2 => {
                let mut cut = BTreeSet::new();
                for n in 0..NODES {
                    if self.rng.bool() {
                        cut.insert(n);
                    }
                }
                let len = self.rng.u64(SEC..8 * SEC).min(remaining);
                let blackhole = self.rng.bool();
                self.record(("partition", slot, len), || {
                    format!("FAULT partition slot {slot} from nodes {cut:?} for {} ms (existing links {})", len / MS, if blackhole { "blackholed" } else { "reset" })
                });
                let doomed: Vec<usize> = live_links
                    .iter()
                    .copied()
                    .filter(|l| {
                        self.clients[self.links[*l].client].slot == slot
                            && cut.contains(&self.links[*l].node)
                    })
                    .collect();
                for link in doomed {
                    if blackhole {
                        self.blackhole_link(link);
                    } else {
                        self.reset_link(link);
                    }
                }
                self.partitions.insert(slot, cut);
                self.clients[client].disturbed = self.now + len;
                self.schedule(self.now + len, Ev::EndPartition { slot });
            }
            3 => {
                let Some(to) = self.leader_target(exercise_gap) else {
                    return self.drain_model();
                };
                self.cluster_disturbed = self.now;
                self.note_leader_change();
                let r = self.model.move_leader(to, now);
                self.record(("move-leader", to), || {
                    format!("FAULT move leader to {to}: {r:?}")
                });
            }
            4 | 5 => {
                let leader = self.model.leader();
                let down = (0..NODES).filter(|n| !self.model.is_up(*n)).count();
                // Killing the leader hands leadership to the next node up (after an
                // election gap): unless gap 2 is exercised, only where `may_lead` allows.
                let target = if pick == 4 {
                    leader.filter(|l| {
                        exercise_gap
                            || (1..NODES)
                                .map(|i| (l + i) % NODES)
                                .find(|m| self.model.is_up(*m))
                                .is_some_and(|m| self.may_lead(m))
                    })
                } else {
                    (0..NODES).find(|n| Some(*n) != leader && self.model.is_up(*n))
                };
                if let (Some(n), 0) = (target, down) {
                    self.cluster_disturbed = self.now;
                    if pick == 4 {
                        self.note_leader_change();
                    }
                    let r = self.model.kill_node(n, now);
                    let back = self.rng.u64(SEC..6 * SEC).min(remaining);
                    self.record(("kill", n), || {
                        format!("FAULT kill node {n} (restart in {} ms): {r:?}", back / MS)
                    });
                    self.schedule(self.now + back, Ev::RestartNode { node: n });
                }
            }
            6 => {
                let gap = self.rng.u64(300 * MS..4 * SEC);
                self.cluster_disturbed = self.now + gap;
                self.note_leader_change();
                self.record(("gap", gap), || {
                    format!("FAULT no leader for {} ms", gap / MS)
                });
                self.model
                    .start_election_gap(Duration::from_micros(gap), now);
            }
            7 => {
                let c = &self.clients[client];
                if !c.crashed && !c.close_called {
                    let len = self.rng.u64(6 * SEC..10 * SEC).min(remaining);
                    self.record(("pause", client, len), || {
                        format!("FAULT pause client {client} for {} ms", len / MS)
                    });
                    let until = self.now + len;
                    self.pause(client, until);
                }
            }
            8 => {
                if let Some(sid) = self.clients[client].core.sid() {
                    self.clients[client].disturbed = self.now;
                    let alive = self.model.expire_session(sid, now);
                    self.clients[client].forced_expiries += u64::from(alive);
                    self.record(("expire", sid), || {
                        format!("FAULT server expires session {sid:#x} of client {client} (alive: {alive})")
                    });
                    // One in three: the client closes as it registers the replacement
                    // (chosen by the sid, so that the run's other draws stay as they
                    // were).
                    if alive && sid % 3 == 0 {
                        self.clients[client].close_on_register = true;
                    }
                }
            }
            10 if !live_links.is_empty() => {
                let link = live_links[self.rng.usize(0..live_links.len())];
                let c = self.links[link].client;
                self.clients[c].disturbed = self.now;
                self.record(("stall", link), || {
                    format!("FAULT stall link {link} in the middle of its next frame")
                });
                self.stall_link(link);
            }
            11 => {
                let Some(to) = self.leader_target(exercise_gap) else {
                    return self.drain_model();
                };
                let gap = self.rng.u64(0..SEC);
                self.cluster_disturbed = self.now + gap;
                self.note_leader_change();
                let r = self
                    .model
                    .move_leader_after_gap(to, Duration::from_micros(gap), now);
                self.record(("move-gap-close", to, gap), || {
                    format!(
                        "FAULT move leader to {to} after {} ms without one: {r:?}",
                        gap / MS
                    )
                });
                self.drain_model();
                self.close_during_leader_move(client);
            }
            12 => {
                let Some(to) = self.leader_target(exercise_gap) else {
                    return self.drain_model();
                };
                // Writes in flight reach a node that no longer leads: each is refused.
                self.burst_of_writes(client);
                self.cluster_disturbed = self.now;
                self.note_leader_change();
                let r = self.model.move_leader(to, now);
                self.record(("move-leader-burst", to), || {
                    format!("FAULT move leader to {to} under pipelined writes of client {client}: {r:?}")
                });
            }
            13 => self.again_mid_flight(client),
            9 => {
                let Some(to) = self.leader_target(exercise_gap) else {
                    return self.drain_model();
                };
                let gap = self.rng.u64(300 * MS..3 * SEC);
                self.cluster_disturbed = self.now + gap;
                self.note_leader_change();
                let r = self
                    .model
                    .move_leader_after_gap(to, Duration::from_micros(gap), now);
                self.record(("move-gap", to, gap), || {
                    format!(
                        "FAULT move leader to {to} after {} ms without one: {r:?}",
                        gap / MS
                    )
                });
            }
            _ => {}
        }
        self.drain_model();
    }

    /// A random node to move leadership to (the current leader included); unless known
    /// gap 2 is exercised, only one [`may_lead`](Self::may_lead) allows, and `None`
    /// when no node is allowed.
    pub(crate) fn leader_target(&mut self, exercise_gap: bool) -> Option<usize> {
        let first = self.rng.usize(0..NODES);
        (0..NODES)
            .map(|i| (first + i) % NODES)
            .find(|n| exercise_gap || self.may_lead(*n))
    }

    /// Known gap 2: a leadership change drops every watch, and a client connected to the
    /// node that ends up leading learns of it only from the held ping the change
    /// releases. Without a ping held (one in flight or paced, or released earlier while
    /// the client was paused) nothing tells it. So `node` may take the lead only if
    /// every live client with a connection to it has a ping held by the cluster and is
    /// not paused (a paused client that wakes before its deadline may find nothing that
    /// tells it of the change).
    fn may_lead(&self, node: usize) -> bool {
        self.links
            .iter()
            .filter(|l| l.node == node && l.carries() && !l.client_gone && !l.server_gone)
            .all(|l| {
                let c = &self.clients[l.client];
                c.crashed
                    || c.close_called
                    || (c.paused_until <= self.now
                        && c.core.sid().is_some_and(|sid| self.model.holds_ping(sid)))
            })
    }

    /// Known gap 2, from the other side: a client paused after a leadership change
    /// released its held ping, but before it read that answer, reads it on waking; if
    /// it wakes before its deadline and the answer then looks held as long as an idle
    /// ping is, nothing tells it of the change. So a client with a session up may pause
    /// for a short while (one that may end before its deadline) only while the cluster
    /// holds its ping: no released answer is then on its way to it, and no leadership
    /// change lands on its node while it sleeps (`may_lead`). A client without a session
    /// up registers every watch when it gets one.
    pub(crate) fn may_pause_briefly(&self, client: usize) -> bool {
        let core = &self.clients[client].core;
        core.state() != pyxis_core::SessionState::Connected
            || core.sid().is_some_and(|sid| self.model.holds_ping(sid))
    }

    pub(crate) fn restart_node(&mut self, node: usize) {
        let now = self.now_instant();
        self.cluster_disturbed = self.now;
        let r = self.model.restart_node(node, now);
        self.record(("restart", node), || format!("node {node} restarts: {r:?}"));
        self.drain_model();
    }

    /// Faults stop: every node comes back, partitions heal. Blackholed links stay dead
    /// (their clients must notice by themselves).
    pub(crate) fn fault_stop_now(&mut self) {
        self.record("fault-stop", || "faults stop".into());
        let now = self.now_instant();
        for n in 0..NODES {
            if !self.model.is_up(n) {
                let _ = self.model.restart_node(n, now);
            }
        }
        self.partitions.clear();
        self.drain_model();
    }
}
