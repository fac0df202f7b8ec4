//! The application workload: what each client slot does, and when.
//!
//! Owns: the path set, the operation mix (creates persistent and ephemeral, writes,
//! deletes, reads, exists, watches one-shot and persistent, unwatches, unregisters,
//! closes, crash-and-resume restarts) and the unique data of every create and write (so
//! the history can tell each apart). Must never inspect the server model: it acts like
//! an application that knows only what its client tells it.

use bytes::Bytes;
use pyxis_core::{CreateMode, EventMask, Op, WatchMode, WatchSpec};

use crate::clients::a_while;
use crate::config::KnownGap;
use crate::world::{Ev, World, MS, SEC};

/// Every path the workload touches (parents first).
pub const PATHS: [&str; 7] = ["/a", "/b", "/c", "/a/x", "/a/y", "/b/x", "/a/x/z"];

/// The operation mix, per mille of workload steps.
pub const MIX: [(&str, u32); 14] = [
    ("create persistent", 140),
    ("create ephemeral", 100),
    ("write", 200),
    ("delete", 80),
    ("read", 100),
    ("exists", 80),
    ("exists + watch", 110),
    ("read + watch", 50),
    ("standalone watch", 40),
    ("unwatch", 40),
    ("unregister", 10),
    ("close (and respawn)", 8),
    ("crash (and resume the sid)", 12),
    ("pause for a moment", 30),
];

impl World {
    pub(crate) fn workload(&mut self, slot: usize) {
        if self.now >= self.workload_stop {
            return;
        }
        let next = self.now + self.rng.u64(20 * MS..600 * MS);
        self.schedule(next, Ev::Workload { slot });
        let client = self.slots[slot];
        let c = &self.clients[client];
        if c.crashed || c.close_called || c.paused_until > self.now {
            return;
        }
        let mut roll = self.rng.u32(0..1000);
        let mut pick = MIX.len() - 1;
        for (i, (_, w)) in MIX.iter().enumerate() {
            if roll < *w {
                pick = i;
                break;
            }
            roll -= w;
        }
        let path = PATHS[self.rng.usize(0..PATHS.len())].to_owned();
        let late = self.now + 2 * SEC >= self.fault_stop;
        match pick {
            0 | 1 => {
                let mode = if pick == 0 {
                    CreateMode::Persistent
                } else {
                    CreateMode::Ephemeral
                };
                let data = Some(self.unique_data(client));
                self.submit(client, Op::Create { path, data, mode });
            }
            2 => {
                let data = self.unique_data(client);
                self.submit(client, Op::Write { path, data });
            }
            3 => {
                self.submit(client, Op::Delete { path });
            }
            4 => {
                self.submit(
                    client,
                    Op::Read {
                        path,
                        show_hidden: None,
                        watch: None,
                    },
                );
            }
            5 => {
                self.submit(client, Op::Exists { path, watch: None });
            }
            6 | 7 => {
                let watch = Some(self.watch_spec(&path, false));
                let op = if pick == 6 {
                    Op::Exists { path, watch }
                } else {
                    Op::Read {
                        path,
                        show_hidden: None,
                        watch,
                    }
                };
                self.submit(client, op);
            }
            8 => {
                let recursive = self.rng.u32(0..4) == 0;
                let spec = self.watch_spec(&path, recursive);
                let now = self.now_instant();
                let id = self.clients[client].core.watch(spec.clone(), now);
                self.record(("watch", client, id.0), || {
                    format!("client {client}: watch {id:?} {spec:?}")
                });
                let created = self.now;
                self.clients[client].watches.insert(
                    id,
                    crate::clients::TrackedWatch {
                        spec,
                        created,
                        baseline: None,
                        events: Vec::new(),
                        done: false,
                    },
                );
                self.drain_client(client);
            }
            9 => {
                let live: Vec<_> = self.clients[client]
                    .watches
                    .iter()
                    .filter(|(_, w)| !w.done)
                    .map(|(id, _)| *id)
                    .collect();
                if !live.is_empty() {
                    let id = live[self.rng.usize(0..live.len())];
                    let now = self.now_instant();
                    self.record(("unwatch", client, id.0), || {
                        format!("client {client}: unwatch {id:?}")
                    });
                    self.clients[client].core.unwatch(id, now);
                    if let Some(w) = self.clients[client].watches.get_mut(&id) {
                        w.done = true;
                    }
                    self.drain_client(client);
                }
            }
            10 => {
                self.submit(client, Op::Unregister);
            }
            11 if !late => {
                let now = self.now_instant();
                self.record(("close", client), || format!("client {client}: close()"));
                self.close_client(client, now);
            }
            12 if !late => {
                let resume = self.clients[client].core.sid();
                self.record(("crash", client), || {
                    format!("client {client}: process crashes (sid {resume:?})")
                });
                self.crash(client);
                let at = self.now + self.rng.u64(10 * MS..SEC);
                self.schedule(at, Ev::Respawn { slot, resume });
            }
            13 if !late
                && (self.cfg.exercises(KnownGap::LeaderChangeWithoutHeldPing)
                    || self.may_pause_briefly(client)) =>
            {
                let longest = a_while(&mut self.rng);
                let until = self.now + self.rng.u64(100 * MS..longest);
                self.record(("short-pause", client), || {
                    format!("client {client}: paused until {} ms", until / MS)
                });
                self.pause(client, until);
            }
            _ => {}
        }
    }

    pub(crate) fn unique_data(&mut self, client: usize) -> Bytes {
        let c = &mut self.clients[client];
        c.counter += 1;
        Bytes::from(format!("c{client}-{}", c.counter))
    }

    fn watch_spec(&mut self, path: &str, recursive: bool) -> WatchSpec {
        let masks = [
            EventMask::ALL,
            EventMask::ALL,
            EventMask::MODIFY,
            EventMask::CREATE | EventMask::DELETE,
            EventMask::CHILDREN,
        ];
        let mask = masks[self.rng.usize(0..masks.len())];
        WatchSpec {
            path: path.to_owned(),
            mask,
            recursive,
            mode: if self.rng.bool() {
                WatchMode::OneShot
            } else {
                WatchMode::Persistent
            },
        }
    }
}
