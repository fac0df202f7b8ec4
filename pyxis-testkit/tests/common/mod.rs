//! Shared helpers of the model tests: a harness that drives the model on a virtual clock
//! and builds requests with pyxis-proto.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyxis_proto::rpc::{
    CreateRequest, DeleteRequest, PingRequest, ReadRequest, RegisterRequest, Request, Response,
    StatRequest, UnRegisterRequest, WatchRequest, WriteRequest,
};
use pyxis_proto::{encode_request, ErrorType, FrameDecoder};
use pyxis_testkit::model::{ClusterModel, ConnId, ModelConfig, Output};

pub const C1: ConnId = ConnId(1);
pub const C2: ConnId = ConnId(2);
pub const C3: ConnId = ConnId(3);

/// The model on a virtual clock, with every connection's answers decoded.
pub struct Harness {
    pub model: ClusterModel,
    pub t0: Instant,
    pub now: Instant,
    decoders: BTreeMap<ConnId, FrameDecoder>,
    inbox: BTreeMap<ConnId, Vec<Response>>,
    pub raw: BTreeMap<ConnId, Vec<u8>>,
    pub closed: Vec<ConnId>,
}

impl Harness {
    pub fn new(nodes: usize) -> Self {
        Self::with_config(ModelConfig::fast(), nodes)
    }

    pub fn with_config(config: ModelConfig, nodes: usize) -> Self {
        let t0 = Instant::now();
        Self {
            model: ClusterModel::new(config, nodes, t0),
            t0,
            now: t0,
            decoders: BTreeMap::new(),
            inbox: BTreeMap::new(),
            raw: BTreeMap::new(),
            closed: Vec::new(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn connect(&mut self, node: usize, conn: ConnId) {
        self.model.handle_connect(node, conn, self.now);
        self.drain();
    }

    pub fn send_bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        self.model.handle_data(conn, bytes, self.now);
        self.drain();
    }

    pub fn send(&mut self, conn: ConnId, req: &Request) {
        self.send_bytes(conn, &encode_request(req));
    }

    pub fn drain(&mut self) {
        while let Some(out) = self.model.poll_output() {
            match out {
                Output::Send { conn, bytes } => {
                    self.raw.entry(conn).or_default().extend_from_slice(&bytes);
                    let d = self.decoders.entry(conn).or_default();
                    d.extend(&bytes);
                    while let Ok(Some(rsp)) = d.next_response() {
                        self.inbox.entry(conn).or_default().push(rsp);
                    }
                }
                Output::Close { conn } => self.closed.push(conn),
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    /// Moves the virtual clock forward by `d`, firing every timeout on the way.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.model.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.model.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
        self.model.handle_timeout(self.now);
        self.drain();
    }

    pub fn take(&mut self, conn: ConnId) -> Vec<Response> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Sends `req` and returns its answer, letting commits happen.
    pub fn call(&mut self, conn: ConnId, req: &Request) -> Response {
        self.send(conn, req);
        self.advance(self.model.config().commit_delay + Duration::from_millis(5));
        let xid = req.xid.unwrap_or(0);
        let mut got = self.take(conn);
        let pos = got
            .iter()
            .position(|r| r.xid == Some(xid))
            .unwrap_or_else(|| panic!("no answer to xid {xid}: {got:?}"));
        let rsp = got.remove(pos);
        // Keep the others for the test.
        if !got.is_empty() {
            self.inbox.insert(conn, got);
        }
        rsp
    }

    pub fn register(&mut self, conn: ConnId, timeout_ms: i32) -> u64 {
        let rsp = self.call(conn, &register(None, 0, Some(timeout_ms)));
        assert!(rsp.err.is_none(), "register failed: {rsp:?}");
        rsp.sid.expect("register answer carries a sid")
    }
}

pub fn base(sid: u64, xid: u64) -> Request {
    Request {
        sid: Some(sid),
        xid: Some(xid),
        ..Default::default()
    }
}

pub fn register(sid: Option<u64>, xid: u64, timeout: Option<i32>) -> Request {
    Request {
        sid,
        xid: Some(xid),
        register: Some(RegisterRequest { timeout }),
        ..Default::default()
    }
}

pub fn unregister(sid: u64, xid: u64) -> Request {
    Request {
        unregister: Some(UnRegisterRequest {}),
        ..base(sid, xid)
    }
}

pub fn ping(sid: u64, xid: u64) -> Request {
    Request {
        ping: Some(PingRequest {}),
        ..base(sid, xid)
    }
}

pub fn create(sid: u64, xid: u64, path: &str, flags: i32, data: &[u8]) -> Request {
    Request {
        create: Some(CreateRequest {
            path: path.into(),
            flags,
            data: Some(Bytes::copy_from_slice(data)),
        }),
        ..base(sid, xid)
    }
}

pub fn delete(sid: u64, xid: u64, path: &str) -> Request {
    Request {
        delete: Some(DeleteRequest { path: path.into() }),
        ..base(sid, xid)
    }
}

pub fn write(sid: u64, xid: u64, path: &str, data: &[u8]) -> Request {
    Request {
        write: Some(WriteRequest {
            path: path.into(),
            data: Bytes::copy_from_slice(data),
        }),
        ..base(sid, xid)
    }
}

pub fn read(sid: u64, xid: u64, path: &str) -> Request {
    Request {
        read: Some(ReadRequest { path: path.into() }),
        ..base(sid, xid)
    }
}

pub fn stat(sid: u64, xid: u64, path: &str) -> Request {
    Request {
        stat: Some(StatRequest { path: path.into() }),
        ..base(sid, xid)
    }
}

pub fn watch_req(path: &str, mask: u32, recursive: bool) -> WatchRequest {
    WatchRequest {
        path: Some(path.into()),
        watch: Some(mask),
        recursive: Some(recursive),
    }
}

pub fn watch(sid: u64, xid: u64, path: &str, mask: u32, recursive: bool) -> Request {
    Request {
        watch: Some(watch_req(path, mask, recursive)),
        ..base(sid, xid)
    }
}

/// The error type and data of an answer (`None` on success).
pub fn err_of(rsp: &Response) -> Option<(ErrorType, String)> {
    let e = rsp.err.as_ref()?;
    let kind = ErrorType::try_from(e.r#type).expect("known error type");
    if kind == ErrorType::KNone {
        return None;
    }
    let data = e
        .data
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default();
    Some((kind, data))
}

pub fn assert_ok(rsp: &Response) {
    assert_eq!(err_of(rsp), None, "expected success: {rsp:?}");
}

pub fn assert_err(rsp: &Response, kind: ErrorType, data: &str) {
    assert_eq!(
        err_of(rsp),
        Some((kind, data.to_owned())),
        "answer: {rsp:?}"
    );
}

/// The golden frames: (name, bytes).
pub fn golden() -> Vec<(String, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../pyxis-proto/tests/data/golden_frames.txt"
    );
    let text = std::fs::read_to_string(path).expect("golden frames file");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next().unwrap_or_default().to_owned();
            let _direction = cols.next();
            let hex = cols.next().unwrap_or_default();
            let bytes = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            (name, bytes)
        })
        .collect()
}

pub fn golden_frame(name: &str) -> Vec<u8> {
    golden()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no golden frame {name}"))
        .1
}

/// A blocking client over a real loopback socket, with hand-built frames.
pub struct RawClient {
    pub stream: std::net::TcpStream,
    decoder: FrameDecoder,
}

impl RawClient {
    pub fn connect(addr: &str) -> Self {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Self {
            stream,
            decoder: FrameDecoder::new(),
        }
    }

    pub fn send(&mut self, req: &Request) {
        use std::io::Write;
        self.stream.write_all(&encode_request(req)).expect("write");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).expect("write");
    }

    /// The next answer, `Err` on EOF/reset/timeout or a bad frame.
    pub fn recv(&mut self) -> Result<Response, String> {
        use std::io::Read;
        loop {
            match self.decoder.next_response() {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(format!("bad frame: {e}")),
            }
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("closed".into()),
                Ok(n) => self.decoder.extend(&buf[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    pub fn call(&mut self, req: &Request) -> Response {
        self.send(req);
        self.recv().expect("answer")
    }

    pub fn register(&mut self, timeout_ms: i32) -> u64 {
        let rsp = self.call(&register(None, 0, Some(timeout_ms)));
        rsp.sid.expect("sid")
    }
}
