//! The watch registry ([protocol](pyxis_proto::protocol) §6).
//!
//! Owns: one-shot watches keyed by (path, session), registration as a no-op when one is
//! set, and matching an event on a node to watches on the node, then to recursive
//! watches on its ancestors. Must never deliver anything: matches are returned to the
//! caller, which queues them on the sessions.

use std::collections::BTreeMap;

use pyxis_proto::limits::parent;

/// One watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watch {
    pub(crate) mask: u32,
    pub(crate) recursive: bool,
}

/// A fired watch: which session, on which watched path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fired {
    pub(crate) sid: u64,
    pub(crate) watched_path: String,
}

/// Every watch the leader holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watches {
    by_path: BTreeMap<String, BTreeMap<u64, Watch>>,
}

impl Watches {
    /// Registers a watch unless one is set for (sid, path); returns whether it was added.
    pub(crate) fn register(&mut self, sid: u64, path: &str, watch: Watch) -> bool {
        let on_path = self.by_path.entry(path.to_owned()).or_default();
        if on_path.contains_key(&sid) {
            return false;
        }
        on_path.insert(sid, watch);
        true
    }

    /// Drops every watch of a session.
    pub(crate) fn drop_session(&mut self, sid: u64) {
        self.by_path.retain(|_, on_path| {
            on_path.remove(&sid);
            !on_path.is_empty()
        });
    }

    /// Drops every watch (a leadership change).
    pub(crate) fn clear(&mut self) {
        self.by_path.clear();
    }

    /// A session's watches, by path.
    pub(crate) fn of_session(&self, sid: u64) -> Vec<(String, Watch)> {
        self.by_path
            .iter()
            .filter_map(|(path, w)| w.get(&sid).map(|w| (path.clone(), *w)))
            .collect()
    }

    /// Whether (sid, path) has a watch.
    pub(crate) fn contains(&self, sid: u64, path: &str) -> bool {
        self.by_path.get(path).is_some_and(|w| w.contains_key(&sid))
    }

    /// Offers an event of type `event` on `path` to the watches on `path` (any matching
    /// mask bit), then to recursive watches on each ancestor up to `/`; removes and
    /// returns those that match.
    pub(crate) fn fire(&mut self, path: &str, event: u32) -> Vec<Fired> {
        let mut fired = Vec::new();
        self.take_matching(path, event, false, &mut fired);
        let mut at = parent(path);
        while let Some(ancestor) = at {
            self.take_matching(ancestor, event, true, &mut fired);
            at = parent(ancestor);
        }
        fired
    }

    fn take_matching(
        &mut self,
        path: &str,
        event: u32,
        recursive_only: bool,
        out: &mut Vec<Fired>,
    ) {
        let Some(on_path) = self.by_path.get_mut(path) else {
            return;
        };
        on_path.retain(|&sid, w| {
            let matches = w.mask & event != 0 && (w.recursive || !recursive_only);
            if matches {
                out.push(Fired {
                    sid,
                    watched_path: path.to_owned(),
                });
            }
            !matches
        });
        if on_path.is_empty() {
            self.by_path.remove(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_then_recursive_ancestors() {
        let mut w = Watches::default();
        let all = Watch {
            mask: 0xff,
            recursive: false,
        };
        let rec = Watch {
            mask: 0xff,
            recursive: true,
        };
        assert!(w.register(1, "/a/b", all));
        assert!(!w.register(1, "/a/b", rec));
        w.register(2, "/a", all);
        w.register(3, "/", rec);
        let fired = w.fire("/a/b", 1);
        assert_eq!(
            fired,
            vec![
                Fired {
                    sid: 1,
                    watched_path: "/a/b".into()
                },
                Fired {
                    sid: 3,
                    watched_path: "/".into()
                }
            ]
        );
        assert!(w.contains(2, "/a"));
        assert!(!w.contains(1, "/a/b"));
    }
}
