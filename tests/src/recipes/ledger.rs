//! The books of what each application believed and when: lock holding and leadership
//! as intervals of virtual time, the sessions expired on purpose, each application's
//! arrivals at and passes through the rounds of the double barrier, and the trace.
//!
//! Owns: [`Ledger`], the mutual-exclusion check over its intervals ([`Ledger::overlap`])
//! and the barrier check over its arrivals and passes ([`Ledger::early_pass`]).
//! Must never read the system clock: every instant is the simulation's.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// What an application may believe it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// It holds the lock.
    Lock,
    /// It leads the election.
    Leader,
}

/// A belief held from `from` until `to` (`None`: still held at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// The application.
    pub app: String,
    /// Since when it believed.
    pub from: Duration,
    /// Until when (exclusive).
    pub to: Option<Duration>,
}

#[derive(Debug, Default)]
struct Books {
    /// Every change of belief: (instant, app, role, believes).
    changes: Vec<(Duration, String, Role, bool)>,
    /// The instants each app's session was expired on purpose.
    expired: BTreeMap<String, Vec<Duration>>,
    trace: Vec<String>,
    acquired: u64,
    elected: u64,
    /// The barrier round each app is in (kept across its crashes).
    rounds: BTreeMap<String, u64>,
    /// Per round, each app's first arrival.
    arrivals: BTreeMap<u64, BTreeMap<String, Duration>>,
    /// Every pass through a round's barrier: (instant, app, round).
    passes: Vec<(Duration, String, u64)>,
}

/// Shared by the application hosts (which record) and the driver (which checks).
#[derive(Debug, Clone, Default)]
pub struct Ledger(Rc<RefCell<Books>>);

impl Ledger {
    /// `app` starts (`true`) or stops believing it has `role`, now.
    pub fn believe(&self, app: &str, role: Role, believes: bool) {
        let at = pyxis_turmoil::since_start(pyxis_turmoil::now());
        self.believe_at(at, app, role, believes);
    }

    fn believe_at(&self, at: Duration, app: &str, role: Role, believes: bool) {
        let mut books = self.0.borrow_mut();
        if books.holds(app, role) == believes {
            return;
        }
        match (role, believes) {
            (Role::Lock, true) => books.acquired += 1,
            (Role::Leader, true) => books.elected += 1,
            _ => {}
        }
        books.changes.push((at, app.to_owned(), role, believes));
        let what = match (role, believes) {
            (Role::Lock, true) => "holds the lock",
            (Role::Lock, false) => "stops holding the lock",
            (Role::Leader, true) => "leads",
            (Role::Leader, false) => "stops leading",
        };
        books.trace.push(format!("{at:?} {app} {what}"));
    }

    /// `app`'s host crashed at `at`: whatever it believed ends there.
    pub fn crashed(&self, app: &str, at: Duration) {
        for role in [Role::Lock, Role::Leader] {
            self.believe_at(at, app, role, false);
        }
    }

    /// `app`'s session was expired on purpose at `at`.
    pub fn expired(&self, app: &str, at: Duration) {
        let mut books = self.0.borrow_mut();
        books.expired.entry(app.to_owned()).or_default().push(at);
    }

    /// The barrier round `app` is in (0 at first).
    pub fn round(&self, app: &str) -> u64 {
        self.0.borrow().rounds.get(app).copied().unwrap_or(0)
    }

    /// `app` moves on to barrier round `round`.
    pub fn set_round(&self, app: &str, round: u64) {
        self.0.borrow_mut().rounds.insert(app.to_owned(), round);
    }

    /// `app` arrives at (enters) the barrier of `round` now; its first arrival counts.
    pub fn arrive(&self, app: &str, round: u64) {
        let at = pyxis_turmoil::since_start(pyxis_turmoil::now());
        self.arrive_at(at, app, round);
    }

    fn arrive_at(&self, at: Duration, app: &str, round: u64) {
        let mut books = self.0.borrow_mut();
        books
            .arrivals
            .entry(round)
            .or_default()
            .entry(app.to_owned())
            .or_insert(at);
    }

    /// `app` passed the barrier of `round` now (its `enter` returned).
    pub fn pass(&self, app: &str, round: u64) {
        let at = pyxis_turmoil::since_start(pyxis_turmoil::now());
        self.pass_at(at, app, round);
    }

    fn pass_at(&self, at: Duration, app: &str, round: u64) {
        let mut books = self.0.borrow_mut();
        books.passes.push((at, app.to_owned(), round));
        books
            .trace
            .push(format!("{at:?} {app} passes barrier round {round}"));
    }

    /// A pass through a round's barrier before one of `apps` had arrived at that round,
    /// if any.
    pub fn early_pass(&self, apps: &[&str]) -> Option<String> {
        let books = self.0.borrow();
        let none = BTreeMap::new();
        books.passes.iter().find_map(|(at, app, round)| {
            let arrived = books.arrivals.get(round).unwrap_or(&none);
            let missing: Vec<&str> = apps
                .iter()
                .copied()
                .filter(|other| arrived.get(*other).is_none_or(|first| first > at))
                .collect();
            (!missing.is_empty())
                .then(|| format!("{app} passed round {round} at {at:?} before {missing:?} arrived"))
        })
    }

    /// Whether `app` believes it has `role` now (by the books).
    pub fn holds(&self, app: &str, role: Role) -> bool {
        self.0.borrow().holds(app, role)
    }

    /// Adds a line to the trace.
    pub fn note(&self, at: Duration, what: impl Into<String>) {
        let what = what.into();
        self.0.borrow_mut().trace.push(format!("{at:?} {what}"));
    }

    /// Adds a line to the trace as it is.
    pub fn note_line(&self, line: String) {
        self.0.borrow_mut().trace.push(line);
    }

    /// The trace so far.
    pub fn trace(&self) -> Vec<String> {
        self.0.borrow().trace.clone()
    }

    /// How many times a lock was acquired, a leader elected, and a barrier passed.
    pub fn counts(&self) -> (u64, u64, u64) {
        let books = self.0.borrow();
        (books.acquired, books.elected, books.passes.len() as u64)
    }

    /// Every app's intervals of believing it has `role`, by start.
    pub fn intervals(&self, role: Role) -> Vec<Interval> {
        let mut changes: Vec<_> = self
            .0
            .borrow()
            .changes
            .iter()
            .filter(|c| c.2 == role)
            .cloned()
            .collect();
        // Hosts run one after the other over the same step of time: order by instant
        // (stable, so one host's own changes keep their order).
        changes.sort_by_key(|c| c.0);
        let mut intervals: Vec<Interval> = Vec::new();
        for (at, app, _, believes) in changes {
            if believes {
                intervals.push(Interval {
                    app,
                    from: at,
                    to: None,
                });
            } else if let Some(open) = intervals
                .iter_mut()
                .rev()
                .find(|i| i.app == app && i.to.is_none())
            {
                open.to = Some(at);
            }
        }
        intervals
    }

    /// Two apps that believed they had `role` at the same instant, if any. An overlap
    /// is excused when the earlier believer's session was expired on purpose before the
    /// later one began (at most `excuse` before the earlier began: while it acquired)
    /// and the earlier belief ended within `excuse` of that expiry: the
    /// recipes promise to notice an early expiry at their next check-in, not before (a
    /// server that keeps its timeout promise never expires a session early).
    pub fn overlap(&self, role: Role, excuse: Duration) -> Option<String> {
        let intervals = self.intervals(role);
        let books = self.0.borrow();
        for (i, a) in intervals.iter().enumerate() {
            for b in &intervals[i + 1..] {
                let a_end = a.to.unwrap_or(Duration::MAX);
                let b_end = b.to.unwrap_or(Duration::MAX);
                if a.app == b.app || b.from >= a_end || a.from >= b_end {
                    continue;
                }
                let (first, second) = if a.from <= b.from { (a, b) } else { (b, a) };
                let excused = books.expired.get(&first.app).is_some_and(|times| {
                    times.iter().any(|&x| {
                        // The expiry may come while the first acquires (after its
                        // request, before it learns it won).
                        x + excuse >= first.from
                            && x <= second.from
                            && first.to.is_some_and(|end| end <= x + excuse)
                    })
                });
                if !excused {
                    return Some(format!(
                        "{} {:?}..{:?} and {} {:?}..{:?}",
                        first.app, first.from, first.to, second.app, second.from, second.to
                    ));
                }
            }
        }
        None
    }
}

impl Books {
    fn holds(&self, app: &str, role: Role) -> bool {
        self.changes
            .iter()
            .rev()
            .find(|c| c.1 == app && c.2 == role)
            .is_some_and(|c| c.3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn overlapping_beliefs_of_two_apps_are_found_and_an_early_expiry_excuses_only_its_allowance() {
        let ledger = Ledger::default();
        ledger.believe_at(S, "a", Role::Lock, true);
        ledger.believe_at(3 * S, "a", Role::Lock, false);
        ledger.believe_at(3 * S, "b", Role::Lock, true);
        assert_eq!(ledger.overlap(Role::Lock, Duration::ZERO), None);
        ledger.believe_at(4 * S, "a", Role::Lock, true);
        assert!(ledger.overlap(Role::Lock, Duration::ZERO).is_some());
        ledger.expired("a", 4 * S);
        ledger.believe_at(5 * S, "a", Role::Lock, false);
        // b began before the expiry: no excuse.
        assert!(ledger.overlap(Role::Lock, 10 * S).is_some());
        assert_eq!(ledger.overlap(Role::Leader, Duration::ZERO), None);
    }

    #[test]
    fn a_pass_before_every_app_arrived_at_its_round_is_found() {
        let ledger = Ledger::default();
        let apps = ["a", "b"];
        ledger.arrive_at(S, "a", 0);
        ledger.arrive_at(2 * S, "b", 0);
        ledger.arrive_at(3 * S, "b", 0);
        ledger.pass_at(2 * S, "a", 0);
        assert_eq!(ledger.early_pass(&apps), None, "b's arrival at 2 s counts");
        ledger.arrive_at(4 * S, "a", 1);
        ledger.pass_at(4 * S, "a", 1);
        ledger.arrive_at(5 * S, "b", 1);
        assert!(ledger
            .early_pass(&apps)
            .is_some_and(|why| why.contains("round 1") && why.contains("\"b\"")));
    }
}
