//! Leadership: moves, no-leader windows, killed and restarted nodes
//! ([protocol](pyxis_proto::protocol) §4–§6).
//!
//! Owns: who leads, pending elections and what a leadership change does to the shared
//! state (uncommitted writes answered kAgain, watches dropped, held pings answered empty,
//! session timers restarted). Must never read a clock: instants come from the caller.

use std::time::{Duration, Instant};

use super::dispatch::{self, PendingCommit};
use super::{ClusterModel, ConnId, ControlError, Election, InFlightOnMove, Output};

impl ClusterModel {
    /// Moves leadership to `to` at once: watches are dropped, held pings answered empty,
    /// uncommitted writes answered kAgain, every session timer restarted.
    pub fn move_leader(&mut self, to: usize, now: Instant) -> Result<(), ControlError> {
        self.check_up(to)?;
        self.advance(now);
        self.lose_leadership(now);
        self.election = None;
        self.gain_leadership(to, now);
        Ok(())
    }

    /// Like [`move_leader`](Self::move_leader), with a no-leader window of `gap` first
    /// (every node answers kAgain meanwhile).
    pub fn move_leader_after_gap(
        &mut self,
        to: usize,
        gap: Duration,
        now: Instant,
    ) -> Result<(), ControlError> {
        self.check_up(to)?;
        self.advance(now);
        self.lose_leadership(now);
        self.election = Some(Election {
            ends: now + gap,
            candidate: Some(to),
        });
        Ok(())
    }

    /// Opens a no-leader window of `gap`: leadership is lost now, and the same leader (or
    /// the next live node) is elected when it ends.
    pub fn start_election_gap(&mut self, gap: Duration, now: Instant) {
        self.advance(now);
        let candidate = self
            .leader
            .or(self.election.and_then(|e| e.candidate))
            .or_else(|| self.first_up_from(0));
        self.lose_leadership(now);
        self.election = Some(Election {
            ends: now + gap,
            candidate,
        });
    }

    /// Kills node `n`: its connections are closed and new ones refused. If it led, the
    /// next live node is elected after the configured election gap.
    pub fn kill_node(&mut self, n: usize, now: Instant) -> Result<(), ControlError> {
        if n >= self.nodes.len() {
            return Err(ControlError::NoSuchNode(n));
        }
        self.advance(now);
        self.nodes[n].up = false;
        let doomed: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.node == n)
            .map(|(id, _)| *id)
            .collect();
        for conn in doomed {
            self.conns.remove(&conn);
            self.outputs.push_back(Output::Close { conn });
        }
        let was_candidate = self.election.is_some_and(|e| e.candidate == Some(n));
        if self.leader == Some(n) && !self.config.dead_leader_redirect.is_zero() {
            self.dead_leader = Some((n, now + self.config.dead_leader_redirect));
        }
        if self.leader == Some(n) || was_candidate {
            self.lose_leadership(now);
            let next = self.first_up_from(n + 1);
            self.election = next.map(|c| Election {
                ends: now + self.config.election_gap,
                candidate: Some(c),
            });
        }
        Ok(())
    }

    /// Restarts node `n` (the replicated state is kept). If no leader is known and no
    /// election is under way, it becomes leader at once.
    pub fn restart_node(&mut self, n: usize, now: Instant) -> Result<(), ControlError> {
        if n >= self.nodes.len() {
            return Err(ControlError::NoSuchNode(n));
        }
        self.advance(now);
        self.nodes[n].up = true;
        if self.leader.is_none() && self.election.is_none() {
            self.gain_leadership(n, now);
        }
        Ok(())
    }
}

impl ClusterModel {
    pub(super) fn first_up_from(&self, start: usize) -> Option<usize> {
        let len = self.nodes.len();
        (0..len)
            .map(|i| (start + i) % len)
            .find(|&i| self.nodes[i].up)
    }

    pub(super) fn finish_election(&mut self, at: Instant) {
        let Some(e) = self.election.take() else {
            return;
        };
        let winner = match e.candidate {
            Some(c) if self.is_up(c) => Some(c),
            Some(c) => self.first_up_from(c + 1),
            None => self.first_up_from(0),
        };
        if let Some(w) = winner {
            self.gain_leadership(w, at);
        }
    }

    pub(super) fn gain_leadership(&mut self, n: usize, at: Instant) {
        self.leader = Some(n);
        self.dead_leader = None;
        let clock = self.clock;
        for s in self.sessions.values_mut() {
            s.expiry_tick = clock.expiry_tick(at, s.timeout);
        }
        self.next_tick = self.next_tick.max(clock.tick_at(at).saturating_add(1));
    }

    pub(super) fn lose_leadership(&mut self, now: Instant) {
        if self.leader.take().is_none() {
            return;
        }
        let in_flight: Vec<PendingCommit> = self.commits.drain(..).collect();
        self.watches.clear();
        self.dirty.clear();
        let sids: Vec<u64> = self.sessions.keys().copied().collect();
        for sid in sids {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.pending.clear();
            }
            self.release_ping(sid);
        }
        // Uncommitted writes that survive are committed in the next leader's term: the
        // watches the change dropped never see them, and no held ping is answered with
        // their events instead of being released.
        for c in in_flight {
            if self.config.in_flight_on_move == InFlightOnMove::Apply {
                let _ = self.apply_commit(&c, now, false);
            }
            self.send(c.conn, dispatch::error(c.xid, dispatch::again_in_flight()));
        }
    }
}
