//! Recursive watches against the server model of pyxis-testkit: the core and a second
//! client on a virtual clock, every byte passed through `ClusterModel` with a fixed
//! one-way delay, so the server's own event rules (one-shot registrations, Create then
//! Children on the parent) decide what the watching client can learn.

use std::time::{Duration, Instant};

use bytes::Bytes;
use pyxis_core::{
    Client, Config, CreateMode, Event, EventMask, EventType, IoAction, Op, RequestId, WatchMode,
    WatchSpec,
};
use pyxis_testkit::model::{self, ClusterModel, ModelConfig, Output};

/// Something on its way, due at an instant.
enum Wire {
    ToServer { client: usize, bytes: Bytes },
    ToClient { client: usize, bytes: Bytes },
}

/// A one-node model cluster and a few core clients joined by links with a fixed delay.
struct World {
    now: Instant,
    model: ClusterModel,
    clients: Vec<Client>,
    /// Per client, its one core connection (the model's id is the client index).
    conns: Vec<Option<pyxis_core::ConnId>>,
    wire: Vec<(Instant, Wire)>,
    delay: Duration,
    events: Vec<Vec<Event>>,
}

impl World {
    fn new(clients: usize, delay: Duration) -> World {
        // The one place a real clock is read: the base of the virtual clock.
        let now = Instant::now();
        let model = ClusterModel::new(ModelConfig::fast(), 1, now);
        let clients = (0..clients)
            .map(|i| {
                let mut config = Config::new([model.node_addr(0)]);
                config.seed = i as u64 + 1;
                Client::new(config, now).expect("valid config")
            })
            .collect::<Vec<_>>();
        let n = clients.len();
        let mut w = World {
            now,
            model,
            clients,
            conns: vec![None; n],
            wire: Vec::new(),
            delay,
            events: vec![Vec::new(); n],
        };
        w.run_for(Duration::from_millis(100));
        w
    }

    /// Drains every output of client `i` and of the model.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        while let Some(action) = self.clients[i].poll_io() {
            match action {
                IoAction::Connect { conn, .. } => {
                    self.conns[i] = Some(conn);
                    self.model.handle_connect(0, model::ConnId(i as u64), now);
                    self.clients[i].handle_connected(conn, now);
                }
                IoAction::Close { .. } => {
                    self.conns[i] = None;
                    self.model.handle_close(model::ConnId(i as u64), now);
                }
                other => panic!("unknown io action {other:?}"),
            }
        }
        while let Some(t) = self.clients[i].poll_transmit() {
            self.wire.push((
                now + self.delay,
                Wire::ToServer {
                    client: i,
                    bytes: t.data,
                },
            ));
        }
        while let Some(e) = self.clients[i].poll_event() {
            self.events[i].push(e);
        }
    }

    fn drain_model(&mut self) {
        while let Some(out) = self.model.poll_output() {
            match out {
                Output::Send { conn, bytes } => self.wire.push((
                    self.now + self.delay,
                    Wire::ToClient {
                        client: conn.0 as usize,
                        bytes,
                    },
                )),
                Output::Close { conn } => {
                    let i = conn.0 as usize;
                    if let Some(c) = self.conns[i].take() {
                        self.clients[i].handle_closed(c, self.now);
                    }
                }
                other => panic!("unknown model output {other:?}"),
            }
        }
    }

    /// Runs everything due up to `now + d`, in time order.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            for i in 0..self.clients.len() {
                self.drain(i);
            }
            self.drain_model();
            let wire = self.wire.iter().map(|(at, _)| *at).min();
            let timers = self.clients.iter().filter_map(|c| c.poll_timeout());
            let next = timers
                .chain(self.model.poll_timeout())
                .chain(wire)
                .min()
                .filter(|t| *t <= end);
            let Some(next) = next else { break };
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.wire)
                .into_iter()
                .partition(|(at, _)| *at <= now);
            self.wire = later;
            for (_, w) in due {
                match w {
                    Wire::ToServer { client, bytes } => {
                        self.model
                            .handle_data(model::ConnId(client as u64), &bytes, now)
                    }
                    Wire::ToClient { client, bytes } => {
                        if let Some(c) = self.conns[client] {
                            self.clients[client].handle_data(c, &bytes, now);
                        }
                    }
                }
            }
            for c in &mut self.clients {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
            self.model.handle_timeout(now);
        }
        self.now = end;
    }

    fn submit(&mut self, i: usize, op: Op) -> RequestId {
        let now = self.now;
        self.clients[i].submit(op, now)
    }

    /// Submits `ops` on client `i` at once (pipelined) and runs until all complete.
    fn ops(&mut self, i: usize, ops: Vec<Op>) {
        let ids: Vec<RequestId> = ops.into_iter().map(|op| self.submit(i, op)).collect();
        self.run_for(Duration::from_millis(200));
        for id in ids {
            let done = self.events[i]
                .iter()
                .any(|e| matches!(e, Event::Completed { id: d, result: Ok(_) } if *d == id));
            assert!(done, "{id:?} did not succeed: {:?}", self.events[i]);
        }
    }

    /// Client `i`'s watch events so far, as (path, kind, inferred).
    fn watch_events(&self, i: usize) -> Vec<(String, EventType, bool)> {
        self.events[i]
            .iter()
            .filter_map(|e| match e {
                Event::Watch { event, .. } => {
                    Some((event.path.clone(), event.kind, event.inferred))
                }
                _ => None,
            })
            .collect()
    }
}

fn create(path: &str) -> Op {
    Op::Create {
        path: path.into(),
        data: None,
        mode: CreateMode::Persistent,
    }
}

fn write(path: &str) -> Op {
    Op::Write {
        path: path.into(),
        data: Bytes::from_static(b"x"),
    }
}

fn delete(path: &str) -> Op {
    Op::Delete { path: path.into() }
}

/// A world with /w4 created, client 0 watching it recursively for everything.
fn watching_w4(delay: Duration) -> World {
    let mut w = World::new(2, delay);
    w.ops(1, vec![create("/w4")]);
    let now = w.now;
    w.clients[0].watch(
        WatchSpec {
            path: "/w4".into(),
            mask: EventMask::ALL,
            recursive: true,
            mode: WatchMode::Persistent,
        },
        now,
    );
    w.run_for(Duration::from_millis(200));
    assert!(w.watch_events(0).is_empty(), "{:?}", w.watch_events(0));
    w
}

fn kinds(events: &[(String, EventType, bool)]) -> Vec<(&str, EventType)> {
    events.iter().map(|(p, k, _)| (p.as_str(), *k)).collect()
}

#[test]
fn a_recursive_watch_reports_every_event_of_the_subtree_one_step_at_a_time() {
    // One change at a time, each answered before the next: the server raises 7 events;
    // the registration is one-shot, so each Children event on a parent, raised right
    // after the child's own event spent it, finds none and is told inferred.
    let mut w = watching_w4(Duration::from_millis(1));
    for op in [
        create("/w4/a"),
        create("/w4/a/b"),
        write("/w4/a/b"),
        delete("/w4/a/b"),
    ] {
        w.ops(1, vec![op]);
    }
    let got = w.watch_events(0);
    assert_eq!(
        kinds(&got),
        vec![
            ("/w4/a", EventType::Create),
            ("/w4", EventType::Children),
            ("/w4/a/b", EventType::Create),
            ("/w4/a", EventType::Children),
            ("/w4/a/b", EventType::Modify),
            ("/w4/a/b", EventType::Delete),
            ("/w4/a", EventType::Children),
        ],
        "{got:?}"
    );
}

#[test]
fn changes_below_a_recursive_watch_between_an_event_and_its_rearm_are_inferred() {
    // Pipelined: every change after the first lands while the registration is spent
    // (the event and the re-arm take 10 ms each way).
    let mut w = watching_w4(Duration::from_millis(10));
    w.ops(
        1,
        vec![
            create("/w4/x"),
            write("/w4/x"),
            create("/w4/x/y"),
            write("/w4/x/y"),
        ],
    );
    let mut got = w.watch_events(0);
    let first = [
        ("/w4/x", EventType::Create, false),
        ("/w4", EventType::Children, true),
        // Seen by the re-check of /w4/x in the re-arm batch:
        ("/w4/x", EventType::Modify, true),
        ("/w4/x", EventType::Children, true),
        ("/w4/x/y", EventType::Create, true),
    ];
    for (path, kind, inferred) in first {
        let at = got.iter().position(|(p, k, _)| p == path && *k == kind);
        let told = at.map(|i| got.remove(i).2);
        assert_eq!(
            told,
            Some(inferred),
            "{path} {kind:?}: {:?}",
            w.watch_events(0)
        );
    }
    assert!(got.is_empty(), "{got:?}");
    // The write of /w4/x/y is learned at the next look at it: the next event's re-arm
    // batch re-checks the child a re-check found.
    w.ops(1, vec![write("/w4/x")]);
    let later: Vec<_> = w.watch_events(0).into_iter().skip(first.len()).collect();
    assert_eq!(
        later,
        vec![
            ("/w4/x".to_string(), EventType::Modify, false),
            ("/w4/x/y".to_string(), EventType::Modify, true),
        ]
    );
}
