//! The event trace of one run: a running hash of every step (to prove that the same seed
//! gives the same run) and a ring of the last steps in readable form (to explain a
//! failure).
//!
//! Owns: [`Step`], [`Trace`]. Must never hold an `Instant` or anything that depends on the
//! wall clock or on the base instant of the run: steps carry virtual offsets only.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};

/// One step of a run, as recorded in the trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Step {
    /// Virtual time of the step, in microseconds since the start of the run.
    pub at_us: u64,
    /// What happened.
    pub what: String,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.at_us / 1_000_000;
        let micros = self.at_us % 1_000_000;
        write!(f, "[{secs:>3}.{micros:06}] {}", self.what)
    }
}

/// The trace of one run.
#[derive(Debug)]
pub struct Trace {
    hasher: DefaultHasher,
    ring: VecDeque<Step>,
    capacity: usize,
    steps: u64,
    keep_all: bool,
    all: Vec<Step>,
}

impl Trace {
    /// A trace keeping the last `capacity` steps readable (and every step when
    /// `keep_all`, for replay).
    pub fn new(capacity: usize, keep_all: bool) -> Trace {
        Trace {
            hasher: DefaultHasher::new(),
            ring: VecDeque::with_capacity(capacity),
            capacity,
            steps: 0,
            keep_all,
            all: Vec::new(),
        }
    }

    /// Whether readable text is wanted for every step (replay) or only cheap hashing.
    pub fn wants_text(&self) -> bool {
        self.keep_all || self.capacity > 0
    }

    /// Records a step: `key` feeds the hash, `text` (built only when wanted) the ring.
    pub fn record(&mut self, at_us: u64, key: impl Hash, text: impl FnOnce() -> String) {
        self.steps += 1;
        at_us.hash(&mut self.hasher);
        key.hash(&mut self.hasher);
        if self.capacity == 0 && !self.keep_all {
            return;
        }
        let step = Step {
            at_us,
            what: text(),
        };
        if self.keep_all {
            self.all.push(step.clone());
        }
        if self.capacity > 0 {
            if self.ring.len() == self.capacity {
                self.ring.pop_front();
            }
            self.ring.push_back(step);
        }
    }

    /// The hash of every step so far.
    pub fn hash(&self) -> u64 {
        let mut h = self.hasher.clone();
        self.steps.hash(&mut h);
        h.finish()
    }

    /// How many steps were recorded.
    pub fn len(&self) -> u64 {
        self.steps
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.steps == 0
    }

    /// The last steps, oldest first.
    pub fn tail(&self) -> Vec<Step> {
        self.ring.iter().cloned().collect()
    }

    /// Every step (empty unless the trace was made with `keep_all`).
    pub fn all(&self) -> &[Step] {
        &self.all
    }
}

/// A short, stable hash of some bytes (for trace keys).
pub fn bytes_key(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_steps_same_hash_and_ring_keeps_the_tail() {
        let mut a = Trace::new(2, false);
        let mut b = Trace::new(0, false);
        for i in 0..5u64 {
            a.record(i, ("x", i), || format!("step {i}"));
            b.record(i, ("x", i), || unreachable!("no text wanted"));
        }
        assert_eq!(a.hash(), b.hash());
        let tail: Vec<String> = a.tail().iter().map(|s| s.what.clone()).collect();
        assert_eq!(tail, vec!["step 3", "step 4"]);
        b.record(5, ("y", 5u64), String::new);
        assert_ne!(a.hash(), b.hash());
        assert_eq!(b.len(), 6);
    }
}
