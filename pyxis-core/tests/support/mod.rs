//! A scripted server peer on a virtual clock for driving a `pyxis_core::Client` in tests.
//!
//! The peer decodes what the client transmits with pyxis-proto and answers with frames
//! built by pyxis-proto. Time is a base `Instant` plus offsets; the client never sees a
//! real clock. Every output the client produces is also appended to `log` (for the
//! determinism test).

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use pyxis_core::{
    Client, Config, ConnId, CreateMode, Event, EventMask, IoAction, Op, RequestId, SessionEvent,
    WatchMode, WatchSpec,
};
use pyxis_proto::{encode_response, rpc, store, FrameDecoder};

/// One request the client sent, with the connection it went to.
#[derive(Debug, Clone)]
pub struct Sent {
    pub conn: ConnId,
    pub req: rpc::Request,
    /// The frame's protobuf payload exactly as the client encoded it.
    pub payload: Bytes,
}

/// The client plus the peer's view of it.
pub struct Peer {
    pub client: Client,
    pub base: Instant,
    pub now: Instant,
    /// Connections the client asked for and that are open, with their address.
    pub open: BTreeMap<ConnId, String>,
    /// Connect actions not yet accepted or refused.
    pub connecting: VecDeque<(ConnId, String)>,
    /// Every Connect address, in order, with the virtual time it was asked.
    pub connects: Vec<(Duration, String)>,
    /// Every Close action.
    pub closes: Vec<ConnId>,
    /// Requests decoded and not yet taken by the test.
    pub sent: VecDeque<Sent>,
    /// Number of `Transmit`s drained.
    pub transmits: usize,
    /// Events not yet taken by the test.
    pub events: VecDeque<Event>,
    /// Everything the client output, formatted, in order.
    pub log: Vec<String>,
    decoders: BTreeMap<ConnId, FrameDecoder>,
}

pub fn config(addrs: &[&str]) -> Config {
    let mut c = Config::new(addrs.iter().copied());
    c.seed = 1;
    c
}

impl Peer {
    pub fn new(config: Config) -> Peer {
        // The one place a real clock is read: the base of the virtual clock.
        let base = Instant::now();
        let client = Client::new(config, base).expect("valid config");
        let mut p = Peer {
            client,
            base,
            now: base,
            open: BTreeMap::new(),
            connecting: VecDeque::new(),
            connects: Vec::new(),
            closes: Vec::new(),
            sent: VecDeque::new(),
            transmits: 0,
            events: VecDeque::new(),
            log: Vec::new(),
            decoders: BTreeMap::new(),
        };
        p.drain();
        p
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Drains every output in the documented order.
    pub fn drain(&mut self) {
        while let Some(action) = self.client.poll_io() {
            self.log.push(format!("io {action:?}"));
            match action {
                IoAction::Connect { conn, addr } => {
                    self.connects.push((self.elapsed(), addr.clone()));
                    self.connecting.push_back((conn, addr));
                }
                IoAction::Close { conn } => {
                    self.closes.push(conn);
                    self.open.remove(&conn);
                    self.connecting.retain(|(c, _)| *c != conn);
                }
                other => panic!("unknown io action {other:?}"),
            }
        }
        while let Some(t) = self.client.poll_transmit() {
            self.transmits += 1;
            self.log.push(format!("tx {:?} {:?}", t.conn, t.data));
            assert!(
                self.open.contains_key(&t.conn),
                "transmit to a connection not open"
            );
            let d = self.decoders.entry(t.conn).or_default();
            d.extend(&t.data);
            while let Some(payload) = d.next_payload().expect("client frames decode") {
                let req = pyxis_proto::decode_request(payload.clone())
                    .expect("client payloads carry every required field");
                self.sent.push_back(Sent {
                    conn: t.conn,
                    req,
                    payload,
                });
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.log.push(format!("ev {e:?}"));
            self.events.push_back(e);
        }
        self.log.push(format!(
            "timeout {:?}",
            self.client.poll_timeout().map(|t| t - self.base)
        ));
    }

    /// Accepts the oldest pending Connect.
    pub fn accept(&mut self) -> ConnId {
        let (conn, addr) = self.connecting.pop_front().expect("a pending connect");
        self.open.insert(conn, addr);
        self.client.handle_connected(conn, self.now);
        self.drain();
        conn
    }

    /// Refuses the oldest pending Connect.
    pub fn refuse(&mut self) -> String {
        let (conn, addr) = self.connecting.pop_front().expect("a pending connect");
        self.client.handle_closed(conn, self.now);
        self.drain();
        addr
    }

    /// The peer closes `conn`.
    pub fn close_conn(&mut self, conn: ConnId) {
        self.open.remove(&conn);
        self.client.handle_closed(conn, self.now);
        self.drain();
    }

    /// Delivers raw bytes on `conn`.
    pub fn deliver(&mut self, conn: ConnId, bytes: &[u8]) {
        self.client.handle_data(conn, bytes, self.now);
        self.drain();
    }

    /// Answers on `conn`.
    pub fn answer(&mut self, conn: ConnId, rsp: rpc::Response) {
        let bytes = encode_response(&rsp);
        self.deliver(conn, &bytes);
    }

    /// Takes the oldest sent request.
    pub fn take(&mut self) -> Sent {
        self.sent.pop_front().expect("a sent request")
    }

    /// Takes the oldest sent request that is not a ping (pings are left in order).
    pub fn take_non_ping(&mut self) -> Sent {
        let i = self
            .sent
            .iter()
            .position(|s| s.req.ping.is_none())
            .expect("a non-ping request");
        self.sent.remove(i).expect("index valid")
    }

    /// Takes the oldest sent ping.
    pub fn take_ping(&mut self) -> Sent {
        let i = self
            .sent
            .iter()
            .position(|s| s.req.ping.is_some())
            .expect("a ping");
        self.sent.remove(i).expect("index valid")
    }

    pub fn pings_outstanding(&self) -> usize {
        self.sent.iter().filter(|s| s.req.ping.is_some()).count()
    }

    /// Accepts a connect, expects Register, answers it with `sid`; returns the conn.
    pub fn connect_with_sid(&mut self, sid: u64) -> ConnId {
        let conn = self.accept();
        // Requests sent on earlier connections are gone with them.
        self.sent.retain(|s| s.conn == conn);
        let reg = self.take();
        assert!(
            reg.req.register.is_some(),
            "expected register, got {:?}",
            reg.req
        );
        self.answer(conn, ok_sid(reg.req.xid, sid));
        conn
    }

    /// Waits up to `d` for the next Connect, accepts it and answers its Register with
    /// `SID`, dropping every queued event but the session events; returns the conn.
    pub fn connect_after(&mut self, d: Duration) -> ConnId {
        let end = self.now + d;
        while self.connecting.is_empty() && self.now < end {
            self.advance(Duration::from_millis(5));
        }
        let conn = self.connect_with_sid(SID);
        self.events.retain(|e| matches!(e, Event::Session(_)));
        conn
    }

    /// Moves the virtual clock to `now + d`, firing every deadline on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let mut steps = 0;
        while let Some(t) = self.client.poll_timeout() {
            if t > end {
                break;
            }
            steps += 1;
            assert!(steps < 100_000, "timer hot loop");
            self.now = self.now.max(t);
            self.client.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    /// Takes every queued event.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// The completion of `id` among the queued events (removed), if any.
    pub fn completion(
        &mut self,
        id: RequestId,
    ) -> Option<Result<pyxis_core::Reply, pyxis_core::Error>> {
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, Event::Completed { id: i, .. } if *i == id))?;
        match self.events.remove(i) {
            Some(Event::Completed { result, .. }) => Some(result),
            _ => None,
        }
    }

    pub fn session_events(&self) -> Vec<SessionEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Session(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

pub fn ok(xid: Option<u64>) -> rpc::Response {
    rpc::Response {
        xid,
        ..Default::default()
    }
}

pub fn ok_sid(xid: Option<u64>, sid: u64) -> rpc::Response {
    rpc::Response {
        xid,
        sid: Some(sid),
        ..Default::default()
    }
}

pub fn err(xid: Option<u64>, code: pyxis_proto::ErrorType, data: &str) -> rpc::Response {
    rpc::Response {
        xid,
        err: Some(rpc::Error {
            r#type: code as i32,
            data: if data.is_empty() {
                None
            } else {
                Some(Bytes::copy_from_slice(data.as_bytes()))
            },
        }),
        ..Default::default()
    }
}

pub fn stat(xid: Option<u64>, version: u64, children: &[&str], data: &[u8]) -> rpc::Response {
    let node = store::Node {
        data: Some(Bytes::copy_from_slice(data)),
        children: children.iter().map(|c| c.to_string()).collect(),
        flags: Some(0),
        version: Some(version),
        sid: Some(1),
    };
    rpc::Response {
        xid,
        data: Some(Bytes::from(node.encode_to_vec())),
        ..Default::default()
    }
}

pub fn event(xid: Option<u64>, watched: &str, node: &str, bits: u32) -> rpc::Response {
    rpc::Response {
        xid,
        path: Some(watched.into()),
        watch: Some(rpc::WatchEvent {
            path: node.into(),
            r#type: bits,
        }),
        ..Default::default()
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The session id the golden frames use.
pub const SID: u64 = 0x008b_cfe5_6800_0001;

/// `Op::Create`.
pub fn create(path: &str, data: Option<&'static [u8]>, mode: CreateMode) -> Op {
    Op::Create {
        path: path.into(),
        data: data.map(Bytes::from_static),
        mode,
    }
}

/// `Op::Read` with the default hidden-children rule.
pub fn read(path: &str, watch: Option<WatchSpec>) -> Op {
    Op::Read {
        path: path.into(),
        show_hidden: None,
        watch,
    }
}

/// A one-shot watch spec.
pub fn spec(path: &str, mask: u32, recursive: bool) -> WatchSpec {
    WatchSpec {
        path: path.into(),
        mask: EventMask(mask),
        recursive,
        mode: WatchMode::OneShot,
    }
}

/// A client with a session `SID` up on its one connection, the first ping taken.
pub fn up() -> (Peer, pyxis_core::ConnId, Sent) {
    let mut p = Peer::new(config(&["a:1"]));
    let conn = p.connect_with_sid(SID);
    let ping = p.take_ping();
    p.take_events();
    (p, conn, ping)
}
