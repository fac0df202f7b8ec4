//! What a load benchmark sends: the op mix, the per-slot schedule of operations, the
//! paths each slot uses, and when a run stops.
//!
//! Owns: [`Mix`], [`OpKind`], [`Schedule`], [`Plan`] and [`Budget`]. Must never touch a
//! socket or a client: the floor and the client run both read the same plan, so they send
//! the same requests in the same order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;

/// One benchmark operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Read (a stat) of the slot's node.
    Read,
    /// Write of the slot's node.
    Write,
    /// Create of the slot's scratch node, then its delete (one op, two round trips).
    CreateDelete,
}

/// Relative weights of the operation kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight of reads.
    pub read: u32,
    /// Weight of writes.
    pub write: u32,
    /// Weight of create+delete pairs.
    pub create_delete: u32,
}

impl Mix {
    /// Parses `read`, `write`, `create-delete`, or weights such as
    /// `read=8,write=1,create-delete=1`.
    ///
    /// ```
    /// use pyxis_cli::bench::workload::Mix;
    /// let mix = Mix::parse("read=3,write=1").unwrap();
    /// assert_eq!((mix.read, mix.write, mix.create_delete), (3, 1, 0));
    /// assert_eq!(Mix::parse("write").unwrap().to_string(), "write");
    /// assert!(Mix::parse("read=0").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            read: 0,
            write: 0,
            create_delete: 0,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = match part.split_once('=') {
                Some((name, weight)) => {
                    let weight: u32 = weight
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad weight in {part:?}"))?;
                    (name.trim(), weight)
                }
                None => (part, 1),
            };
            let slot = match name {
                "read" => &mut mix.read,
                "write" => &mut mix.write,
                "create-delete" => &mut mix.create_delete,
                _ => {
                    return Err(format!(
                        "unknown op {name:?} (use read, write, create-delete)"
                    ))
                }
            };
            *slot = slot.saturating_add(weight);
        }
        if mix.total() == 0 {
            return Err(format!("the mix {text:?} has no operation"));
        }
        Ok(mix)
    }

    fn total(self) -> u64 {
        u64::from(self.read) + u64::from(self.write) + u64::from(self.create_delete)
    }

    /// The kind picked by `roll` (any number; reduced modulo the total weight).
    pub fn pick(self, roll: u64) -> OpKind {
        let r = roll % self.total().max(1);
        if r < u64::from(self.read) {
            OpKind::Read
        } else if r < u64::from(self.read) + u64::from(self.write) {
            OpKind::Write
        } else {
            OpKind::CreateDelete
        }
    }

    /// Whether the mix contains writes or creates (changes the tree).
    pub fn has_changes(self) -> bool {
        self.write > 0 || self.create_delete > 0
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<(&str, u32)> = [
            ("read", self.read),
            ("write", self.write),
            ("create-delete", self.create_delete),
        ]
        .into_iter()
        .filter(|(_, w)| *w > 0)
        .collect();
        if let [(name, _)] = parts.as_slice() {
            return f.write_str(name);
        }
        let text: Vec<String> = parts.iter().map(|(n, w)| format!("{n}={w}")).collect();
        f.write_str(&text.join(","))
    }
}

/// The deterministic sequence of operation kinds of one slot (a seeded xorshift), so the
/// floor and the client send the same sequence.
#[derive(Debug, Clone)]
pub struct Schedule {
    mix: Mix,
    state: u64,
}

impl Schedule {
    /// The schedule of slot `slot`.
    pub fn new(mix: Mix, slot: usize) -> Schedule {
        Schedule {
            mix,
            state: (0x9e37_79b9_7f4a_7c15 ^ (slot as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9)) | 1,
        }
    }

    /// The next operation kind.
    pub fn next_kind(&mut self) -> OpKind {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        self.mix.pick(x >> 11)
    }
}

/// Everything both sides of a load run share.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The op mix.
    pub mix: Mix,
    /// Requests in flight (one slot each).
    pub concurrency: usize,
    /// Data written by writes and creates.
    pub data: Bytes,
    /// The root node of the run (created at setup, removed at teardown).
    pub root: String,
}

impl Plan {
    /// The node slot `slot` reads and writes.
    pub fn node(&self, slot: usize) -> String {
        format!("{}/n{slot}", self.root)
    }

    /// The scratch node slot `slot` creates and deletes.
    pub fn scratch(&self, slot: usize) -> String {
        format!("{}/t{slot}", self.root)
    }
}

/// When a phase stops issuing operations: a deadline, an op count, or both.
#[derive(Debug)]
pub struct Budget {
    deadline: Option<Instant>,
    remaining: Option<AtomicU64>,
}

impl Budget {
    /// Stops at `deadline` and/or after `ops` operations.
    pub fn new(deadline: Option<Instant>, ops: Option<u64>) -> Budget {
        Budget {
            deadline,
            remaining: ops.map(AtomicU64::new),
        }
    }

    /// Takes one operation from the budget; `false` once it is spent.
    pub fn take(&self, now: Instant) -> bool {
        if self.deadline.is_some_and(|d| now >= d) {
            return false;
        }
        match &self.remaining {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_the_weights_and_repeat() {
        let mix = Mix::parse("read=3,write=1").unwrap();
        let mut a = Schedule::new(mix, 5);
        let mut b = Schedule::new(mix, 5);
        let kinds: Vec<OpKind> = (0..4000).map(|_| a.next_kind()).collect();
        assert!(kinds.iter().all(|k| *k == b.next_kind()));
        let reads = kinds.iter().filter(|k| **k == OpKind::Read).count();
        assert!((2700..3300).contains(&reads), "{reads} reads of 4000");
        assert!(!kinds.contains(&OpKind::CreateDelete));
        let other: Vec<OpKind> = {
            let mut c = Schedule::new(mix, 6);
            (0..64).map(|_| c.next_kind()).collect()
        };
        assert_ne!(other, kinds[..64].to_vec());
    }

    #[test]
    fn budgets_stop_at_the_op_count() {
        let now = Instant::now();
        let budget = Budget::new(None, Some(3));
        assert_eq!((0..5).filter(|_| budget.take(now)).count(), 3);
        let past = Budget::new(Some(now), None);
        assert!(!past.take(now));
    }
}
