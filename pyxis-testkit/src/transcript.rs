//! Recordings of the original Pyxis server (`pyxis-transcript/1` files): reading them,
//! turning their requests into bytes and checking answers against their frames.
//!
//! Owns: the file format (header, `connect`/`send`/`wait`/`close` steps, requests as JSON,
//! frames as JSON with `any_order` groups), the labels that stand for run-dependent values
//! (`$s1` session ids, `$dead`, `$addr1` addresses, `$time`), the `*_hex` notation
//! (`{hh*N}` runs, `<$label>` markers) and the field-by-field comparison of one answer with
//! one recorded frame. Must never drive a server or keep time: a replayer (the model's
//! differential test, the client core's replay test) feeds the requests to what it tests
//! and hands the answers back here, with the times it measured.
//!
//! ```
//! use pyxis_testkit::transcript::{hex_bytes, Labels};
//!
//! let labels = Labels::new(vec!["127.0.0.1:7000".into()]);
//! assert_eq!(hex_bytes("41{42*3}", &labels).unwrap(), b"ABBB");
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prost::Message;
use pyxis_proto::rpc::Response;
use pyxis_proto::{frame_payload, store, ErrorType};
use serde_json::Value;

/// The session id the recordings used for a session that never existed (`$dead`).
pub const DEAD_SID: u64 = 987_654_321;

/// One transcript file.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The file name (`success.jsonl`).
    pub name: String,
    /// The header line.
    pub header: Value,
    /// The steps, in the order performed.
    pub steps: Vec<Step>,
}

/// One step of a transcript.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step number (from 1).
    pub number: u64,
    /// What the client did.
    pub op: Op,
    /// What each connection received during the step.
    pub received: BTreeMap<String, Vec<Expected>>,
}

/// What the recording client did in a step.
#[derive(Debug, Clone)]
pub enum Op {
    /// Opened connection `conn` to node `to` (0-based).
    Connect {
        /// The connection's name (`c1`).
        conn: String,
        /// The node (0-based; `$addr1` is node 0).
        to: usize,
    },
    /// Sent `requests` on `conn` in one write.
    Send {
        /// The connection's name.
        conn: String,
        /// The requests, as recorded.
        requests: Vec<Value>,
        /// xids of this step's pings that were still held when the step ended.
        held: Vec<u64>,
    },
    /// Sent nothing; waited at most `max_ms` for `frames` frames on `conn`.
    Wait {
        /// Longest wait.
        max_ms: u64,
        /// The connection and frame count that ended the wait early.
        until: Option<(String, usize)>,
    },
    /// Closed `conn`.
    Close {
        /// The connection's name.
        conn: String,
    },
}

/// One recorded frame, or a group of frames that may arrive in any order.
#[derive(Debug, Clone)]
pub enum Expected {
    /// A frame (or `{"closed":true}`).
    Frame(Value),
    /// `{"any_order":[...]}`.
    AnyOrder(Vec<Value>),
}

impl Expected {
    /// How many frames this stands for.
    pub fn len(&self) -> usize {
        match self {
            Expected::Frame(_) => 1,
            Expected::AnyOrder(v) => v.len(),
        }
    }

    /// Whether this stands for no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a connection got: a response (with when it arrived) or the server's close.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    /// A decoded response and the time since the step began.
    Frame(Response, Duration),
    /// The server closed the connection.
    Closed,
}

/// The directory of the transcripts: `../shared/transcripts` beside the workspace root,
/// found from a crate's manifest directory (`env!("CARGO_MANIFEST_DIR")`).
pub fn default_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../../shared/transcripts")
}

/// Reads every `*.jsonl` transcript of `dir`, sorted by name.
///
/// # Errors
///
/// A file that cannot be read or is not a valid transcript, named with the reason.
pub fn load_dir(dir: &Path) -> Result<Vec<Transcript>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

/// Reads one transcript file.
///
/// # Errors
///
/// The file cannot be read, or a line is not valid JSON of the format.
pub fn load(path: &Path) -> Result<Transcript, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&name, &text)
}

/// Parses the text of a transcript called `name`.
///
/// # Errors
///
/// A line is not valid JSON, or a step lacks a field its op needs.
pub fn parse(name: &str, text: &str) -> Result<Transcript, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Value = serde_json::from_str(lines.next().ok_or(format!("{name}: empty"))?)
        .map_err(|e| format!("{name}: header: {e}"))?;
    let mut steps = Vec::new();
    for (i, line) in lines.enumerate() {
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("{name}: line {}: {e}", i + 2))?;
        steps.push(parse_step(&v).map_err(|e| format!("{name}: line {}: {e}", i + 2))?);
    }
    Ok(Transcript {
        name: name.to_owned(),
        header,
        steps,
    })
}

fn conn_of(v: &Value) -> Result<String, String> {
    v.get("conn")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "no conn".to_owned())
}

fn parse_step(v: &Value) -> Result<Step, String> {
    let number = v.get("step").and_then(Value::as_u64).unwrap_or(0);
    let op = match v.get("op").and_then(Value::as_str) {
        Some("connect") => {
            let to = v.get("to").and_then(Value::as_str).unwrap_or("");
            let n: usize = to
                .strip_prefix("$addr")
                .and_then(|n| n.parse().ok())
                .ok_or(format!("bad connect target {to:?}"))?;
            Op::Connect {
                conn: conn_of(v)?,
                to: n.saturating_sub(1),
            }
        }
        Some("send") => Op::Send {
            conn: conn_of(v)?,
            requests: v
                .get("requests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            held: v
                .get("held")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        },
        Some("wait") => Op::Wait {
            max_ms: v.get("max_ms").and_then(Value::as_u64).unwrap_or(0),
            until: v.get("until").and_then(|u| {
                Some((
                    u.get("conn")?.as_str()?.to_owned(),
                    usize::try_from(u.get("frames")?.as_u64()?).ok()?,
                ))
            }),
        },
        Some("close") => Op::Close { conn: conn_of(v)? },
        other => return Err(format!("unknown op {other:?}")),
    };
    let mut received = BTreeMap::new();
    if let Some(map) = v.get("received").and_then(Value::as_object) {
        for (conn, frames) in map {
            let list = frames
                .as_array()
                .ok_or("received frames are not a list")?
                .iter()
                .map(|f| match f.get("any_order").and_then(Value::as_array) {
                    Some(group) => Expected::AnyOrder(group.clone()),
                    None => Expected::Frame(f.clone()),
                })
                .collect();
            received.insert(conn.clone(), list);
        }
    }
    Ok(Step {
        number,
        op,
        received,
    })
}

/// The values the labels stand for in one replay: session ids as the server under test
/// gave them, its node addresses, and `$dead`.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    sids: BTreeMap<String, u64>,
    addrs: Vec<String>,
    time: Option<String>,
}

impl Labels {
    /// Labels for a cluster whose node `i` advertises `addrs[i]` (`$addr{i+1}`).
    pub fn new(addrs: Vec<String>) -> Self {
        Self {
            sids: BTreeMap::new(),
            addrs,
            time: None,
        }
    }

    /// Gives `$time` a value (seconds since the epoch) for building frames; when
    /// comparing, `$time` matches any number.
    pub fn set_time(&mut self, secs: u64) {
        self.time = Some(secs.to_string());
    }

    /// The session id `$sN` stands for, once bound.
    pub fn sid(&self, label: &str) -> Option<u64> {
        match label {
            "$dead" => Some(DEAD_SID),
            l => self.sids.get(l).copied(),
        }
    }

    /// Binds `$sN` to `sid`.
    ///
    /// # Errors
    ///
    /// The label is bound to another id, or the id to another label.
    pub fn bind(&mut self, label: &str, sid: u64) -> Result<(), String> {
        match self.sids.get(label) {
            Some(&s) if s == sid => return Ok(()),
            Some(&s) => return Err(format!("{label} is {s}, not {sid}")),
            None => {}
        }
        if let Some((other, _)) = self.sids.iter().find(|(_, &s)| s == sid) {
            return Err(format!("sid {sid} is already {other}, not {label}"));
        }
        self.sids.insert(label.to_owned(), sid);
        Ok(())
    }

    /// How many session labels are bound.
    pub fn bound(&self) -> usize {
        self.sids.len()
    }

    /// The text a label stands for (`None` for `$time`, which stands for any number, and
    /// for unbound labels).
    fn text(&self, label: &str) -> Option<String> {
        if label == "$time" {
            return self.time.clone();
        }
        if let Some(n) = label.strip_prefix("$addr") {
            let i: usize = n.parse().ok()?;
            return self.addrs.get(i.checked_sub(1)?).cloned();
        }
        self.sid(label).map(|s| s.to_string())
    }

    /// `text` with every `$sN`, `$dead` and `$addrN` replaced by what it stands for.
    ///
    /// # Errors
    ///
    /// A label that is not bound.
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at + 1..];
            let letters = tail
                .find(|c: char| !c.is_ascii_lowercase())
                .unwrap_or(tail.len());
            let digits = tail[letters..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(tail.len(), |d| letters + d);
            let label = &rest[at..at + 1 + digits];
            out.push_str(&self.text(label).ok_or(format!("unbound label {label}"))?);
            rest = &tail[digits..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A piece of a `*_hex` string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Bytes(Vec<u8>),
    Label(String),
}

fn hex_tokens(hex: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut bytes = Vec::new();
    let mut rest = hex;
    let byte = |s: &str| u8::from_str_radix(s, 16).map_err(|_| format!("bad hex {s:?}"));
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('<') {
            let end = r.find('>').ok_or("unclosed marker")?;
            if !bytes.is_empty() {
                out.push(Token::Bytes(std::mem::take(&mut bytes)));
            }
            out.push(Token::Label(r[..end].to_owned()));
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').ok_or("unclosed run")?;
            let (b, n) = r[..end].split_once('*').ok_or("bad run")?;
            let n: usize = n.parse().map_err(|_| "bad run count")?;
            bytes.extend(std::iter::repeat_n(byte(b)?, n));
            rest = &r[end + 1..];
        } else {
            let pair = rest.get(..2).ok_or("odd hex length")?;
            bytes.push(byte(pair)?);
            rest = &rest[2..];
        }
    }
    if !bytes.is_empty() {
        out.push(Token::Bytes(bytes));
    }
    Ok(out)
}

/// The bytes of a `*_hex` string, markers replaced by the text their label stands for.
///
/// # Errors
///
/// Malformed hex, or a marker whose label is unbound or `$time`.
pub fn hex_bytes(hex: &str, labels: &Labels) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for t in hex_tokens(hex)? {
        match t {
            Token::Bytes(b) => out.extend(b),
            Token::Label(l) => out.extend(
                labels
                    .text(&l)
                    .ok_or(format!("label {l} has no value"))?
                    .bytes(),
            ),
        }
    }
    Ok(out)
}

/// Whether `actual` is what the `*_hex` string `hex` describes (`<$time>` matches any
/// run of decimal digits).
fn hex_matches(hex: &str, actual: &[u8], labels: &Labels) -> Result<(), String> {
    let mut at = 0;
    for t in hex_tokens(hex)? {
        let want = match t {
            Token::Bytes(b) => b,
            Token::Label(l) if l == "$time" => {
                let digits = actual[at..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits == 0 {
                    return Err(format!("no time at byte {at}"));
                }
                at += digits;
                continue;
            }
            Token::Label(l) => labels
                .text(&l)
                .ok_or(format!("label {l} is unbound"))?
                .into_bytes(),
        };
        if actual.get(at..at + want.len()) != Some(&want[..]) {
            return Err(format!(
                "bytes differ at {at}: want {:?}, got {:?}",
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&actual[at.min(actual.len())..]),
            ));
        }
        at += want.len();
    }
    if at != actual.len() {
        return Err(format!(
            "{} extra bytes: {:?}",
            actual.len() - at,
            String::from_utf8_lossy(&actual[at..])
        ));
    }
    Ok(())
}

// ----- requests -----------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, v: u64) {
    prost::encoding::encode_varint(v, out);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field << 3 | wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_int(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, 0);
    put_varint(out, v);
}

fn sid_value(v: &Value, labels: &Labels) -> Result<u64, String> {
    match v {
        Value::String(l) => labels.sid(l).ok_or(format!("unbound sid label {l}")),
        other => other.as_u64().ok_or(format!("bad sid {other}")),
    }
}

/// Encodes an operation object's fields (in field-number order) from `spec`, a list of
/// (json key, field number, kind).
fn sub_message(v: &Value, spec: &[(&str, u32, Kind)], labels: &Labels) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (key, field, kind) in spec {
        let Some(x) = v.get(*key) else { continue };
        match kind {
            Kind::Text => {
                let s = x.as_str().ok_or(format!("{key} is not text"))?;
                put_bytes(&mut out, *field, labels.substitute(s)?.as_bytes());
            }
            Kind::Hex => {
                let s = x.as_str().ok_or(format!("{key} is not hex"))?;
                put_bytes(&mut out, *field, &hex_bytes(s, labels)?);
            }
            Kind::Int => {
                let n = x
                    .as_i64()
                    .or_else(|| x.as_bool().map(i64::from))
                    .ok_or(format!("{key} is not a number"))?;
                // int32 negatives are sign-extended to ten bytes, as protobuf does.
                put_int(&mut out, *field, u64::from_ne_bytes(n.to_ne_bytes()));
            }
        }
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Hex,
    Int,
}

/// The fields of an operation message: (JSON key, field number, kind).
type Fields = &'static [(&'static str, u32, Kind)];

const PATH_ONLY: Fields = &[("path", 1, Kind::Text)];

/// The bytes the recording client wrote for one request of a `send` step: a framed
/// `Request` built from exactly the fields present (labels substituted, `extra_hex`
/// appended), a `raw_hex` payload framed as given, or `frame_hex` bytes as they are.
///
/// # Errors
///
/// A field of the wrong kind or an unbound label.
pub fn encode_request(req: &Value, labels: &Labels) -> Result<Bytes, String> {
    if let Some(raw) = req.get("frame_hex").and_then(Value::as_str) {
        return Ok(Bytes::from(hex_bytes(raw, labels)?));
    }
    let payload = match req.get("raw_hex").and_then(Value::as_str) {
        Some(raw) => hex_bytes(raw, labels)?,
        None => request_payload(req, labels)?,
    };
    let mut out = BytesMut::new();
    frame_payload(&payload, &mut out);
    Ok(out.freeze())
}

fn request_payload(req: &Value, labels: &Labels) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let Some(sid) = req.get("sid") {
        put_int(&mut out, 1, sid_value(sid, labels)?);
    }
    if let Some(xid) = req.get("xid") {
        put_int(&mut out, 2, xid.as_u64().ok_or("bad xid")?);
    }
    let ops: [(&str, u32, Fields); 9] = [
        ("register", 5, &[("timeout", 1, Kind::Int)]),
        ("unregister", 6, &[]),
        ("ping", 7, &[]),
        (
            "create",
            8,
            &[
                ("path", 1, Kind::Text),
                ("flags", 2, Kind::Int),
                ("data_hex", 3, Kind::Hex),
            ],
        ),
        ("delete", 9, PATH_ONLY),
        (
            "write",
            10,
            &[("path", 1, Kind::Text), ("data_hex", 2, Kind::Hex)],
        ),
        ("read", 11, PATH_ONLY),
        ("stat", 12, PATH_ONLY),
        (
            "watch",
            13,
            &[
                ("path", 1, Kind::Text),
                ("watch", 2, Kind::Int),
                ("recursive", 3, Kind::Int),
            ],
        ),
    ];
    for (key, field, spec) in ops {
        if let Some(v) = req.get(key) {
            put_bytes(&mut out, field, &sub_message(v, spec, labels)?);
        }
    }
    if let Some(extra) = req.get("extra_hex").and_then(Value::as_str) {
        out.extend(hex_bytes(extra, labels)?);
    }
    Ok(out)
}

/// The response a recorded frame stands for, labels replaced by their values (a stat
/// answer's data is built from the decoded `node`, so lengths fit the values), with `xid`
/// in place of the recorded one. For a replayer that plays the server's part.
///
/// # Errors
///
/// A field of the wrong kind or an unbound label.
pub fn response_of(frame: &Value, labels: &Labels, xid: Option<u64>) -> Result<Response, String> {
    let text = |v: Option<&Value>| -> Result<Option<String>, String> {
        v.and_then(Value::as_str)
            .map(|s| labels.substitute(s))
            .transpose()
    };
    let hex = |v: Option<&Value>| -> Result<Option<Bytes>, String> {
        v.and_then(Value::as_str)
            .map(|h| hex_bytes(h, labels).map(Bytes::from))
            .transpose()
    };
    let sid = |v: Option<&Value>| -> Result<Option<u64>, String> {
        v.map(|s| sid_value(s, labels)).transpose()
    };
    let err = match frame.get("err") {
        Some(e) => {
            let name = e.get("type").and_then(Value::as_str).unwrap_or("");
            let ty = ErrorType::from_str_name(name).ok_or(format!("unknown error {name}"))?;
            Some(pyxis_proto::rpc::Error {
                r#type: ty as i32,
                data: hex(e.get("data_hex"))?,
            })
        }
        None => None,
    };
    let data = match frame.get("node") {
        Some(n) => {
            let children = n
                .get("children")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|c| text(Some(c)).map(Option::unwrap_or_default))
                        .collect()
                })
                .transpose()?
                .unwrap_or_default();
            let node = store::Node {
                data: hex(n.get("data_hex"))?,
                children,
                flags: n
                    .get("flags")
                    .and_then(Value::as_u64)
                    .and_then(|f| u32::try_from(f).ok()),
                version: n.get("version").and_then(Value::as_u64),
                sid: sid(n.get("sid"))?,
            };
            Some(Bytes::from(node.encode_to_vec()))
        }
        None => hex(frame.get("data_hex"))?,
    };
    let watch = match frame.get("watch") {
        Some(w) => Some(pyxis_proto::rpc::WatchEvent {
            path: text(w.get("path"))?.unwrap_or_default(),
            r#type: w
                .get("type")
                .and_then(Value::as_u64)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(0),
        }),
        None => None,
    };
    Ok(Response {
        xid,
        err,
        data,
        watch,
        sid: sid(frame.get("sid"))?,
        path: text(frame.get("path"))?,
    })
}

/// The xid of a request of a `send` step, if it has one.
pub fn request_xid(req: &Value) -> Option<u64> {
    req.get("xid").and_then(Value::as_u64)
}

/// Whether a request of a `send` step is a ping.
pub fn is_ping(req: &Value) -> bool {
    req.get("ping").is_some()
}

// ----- frames -------------------------------------------------------------------------

/// The error type named as the recordings name it (`kNotFound`).
pub fn error_name(code: i32) -> String {
    ErrorType::try_from(code).map_or_else(
        |_| format!("unknown({code})"),
        |t| t.as_str_name().to_owned(),
    )
}

fn same_error_name(recorded: &str, code: i32) -> bool {
    error_name(code) == recorded
}

/// Checks one answer against one recorded frame, field by field: xid, error type and
/// data, sid (an unbound `$sN` is returned to be bound by the caller), data (the decoded
/// node for a stat answer: data, children and their order, flags, version, owner), the
/// event's watched path, path and type, and `held_ms`/`after_ms` within `tolerance`
/// around the recorded value (or range). Returns the sid bindings the match implies.
///
/// # Errors
///
/// The first difference found, described.
pub fn compare(
    expected: &Value,
    got: &Got,
    labels: &Labels,
    tolerance: Duration,
) -> Result<Vec<(String, u64)>, String> {
    let mut bindings = Vec::new();
    let (rsp, at) = match got {
        Got::Closed => {
            return if expected.get("closed").is_some() {
                Ok(bindings)
            } else {
                Err("got a close".into())
            }
        }
        Got::Frame(rsp, at) => (rsp, *at),
    };
    if expected.get("closed").is_some() {
        return Err(format!("expected a close, got {rsp:?}"));
    }
    let want_xid = expected.get("xid").and_then(Value::as_u64);
    if want_xid != rsp.xid {
        return Err(format!("xid: want {want_xid:?}, got {:?}", rsp.xid));
    }
    match (expected.get("err"), &rsp.err) {
        (None, None) => {}
        (Some(e), Some(got)) => {
            let ty = e.get("type").and_then(Value::as_str).unwrap_or("");
            if !same_error_name(ty, got.r#type) {
                return Err(format!(
                    "error type: want {ty}, got {} ({:?})",
                    error_name(got.r#type),
                    got.data.as_ref().map(|d| String::from_utf8_lossy(d))
                ));
            }
            compare_hex("err.data", e.get("data_hex"), got.data.as_ref(), labels)?;
        }
        (w, g) => return Err(format!("error: want {w:?}, got {g:?}")),
    }
    compare_sid("sid", expected.get("sid"), rsp.sid, labels, &mut bindings)?;
    if let Some(node) = expected.get("node") {
        let data = rsp.data.as_ref().ok_or("no data for a stat answer")?;
        let got = store::Node::decode(data.as_ref()).map_err(|e| format!("node: {e}"))?;
        compare_node(node, &got, labels, &mut bindings)?;
    } else {
        compare_hex("data", expected.get("data_hex"), rsp.data.as_ref(), labels)?;
    }
    let want_path = expected
        .get("path")
        .and_then(Value::as_str)
        .map(|p| labels.substitute(p))
        .transpose()?;
    if want_path != rsp.path {
        return Err(format!("path: want {want_path:?}, got {:?}", rsp.path));
    }
    match (expected.get("watch"), &rsp.watch) {
        (None, None) => {}
        (Some(w), Some(g)) => {
            let path = labels.substitute(w.get("path").and_then(Value::as_str).unwrap_or(""))?;
            let ty = w.get("type").and_then(Value::as_u64);
            if path != g.path || ty != Some(u64::from(g.r#type)) {
                return Err(format!("event: want {w}, got {g:?}"));
            }
        }
        (w, g) => return Err(format!("event: want {w:?}, got {g:?}")),
    }
    for key in ["held_ms", "after_ms"] {
        let Some(v) = expected.get(key).and_then(Value::as_u64) else {
            continue;
        };
        let (lo, hi) = expected
            .get(format!("{key}_range"))
            .and_then(Value::as_array)
            .and_then(|r| Some((r.first()?.as_u64()?, r.get(1)?.as_u64()?)))
            .unwrap_or((v, v));
        let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        let slack = u64::try_from(tolerance.as_millis()).unwrap_or(0);
        // 0 means "at once": within the recording's 100 ms rounding.
        let ok = if hi == 0 {
            ms < 100
        } else {
            ms + slack >= lo && ms <= hi + slack
        };
        if !ok {
            return Err(format!("{key}: recorded {lo}..{hi} ms, got {ms} ms"));
        }
    }
    Ok(bindings)
}

fn compare_node(
    want: &Value,
    got: &store::Node,
    labels: &Labels,
    bindings: &mut Vec<(String, u64)>,
) -> Result<(), String> {
    compare_hex("node.data", want.get("data_hex"), got.data.as_ref(), labels)?;
    let children: Vec<String> = want
        .get("children")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| labels.substitute(c.as_str().unwrap_or("")))
                .collect::<Result<_, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    if children != got.children {
        return Err(format!(
            "node.children: want {children:?}, got {:?}",
            got.children
        ));
    }
    for (key, value) in [
        ("flags", got.flags.map(u64::from)),
        ("version", got.version),
    ] {
        let w = want.get(key).and_then(Value::as_u64);
        if w != value {
            return Err(format!("node.{key}: want {w:?}, got {value:?}"));
        }
    }
    compare_sid("node.sid", want.get("sid"), got.sid, labels, bindings)
}

/// A recorded session id field against the one got: an unbound label is bound (added to
/// `bindings`).
fn compare_sid(
    field: &str,
    want: Option<&Value>,
    got: Option<u64>,
    labels: &Labels,
    bindings: &mut Vec<(String, u64)>,
) -> Result<(), String> {
    match (want, got) {
        (None, None) => Ok(()),
        (Some(Value::String(l)), Some(s)) => match labels.sid(l) {
            Some(b) if b == s => Ok(()),
            Some(b) => Err(format!("{field}: want {l} = {b}, got {s}")),
            None => {
                bindings.push((l.clone(), s));
                Ok(())
            }
        },
        (w, g) => Err(format!("{field}: want {w:?}, got {g:?}")),
    }
}

/// A recorded `*_hex` field against the bytes got, both possibly absent.
fn compare_hex(
    field: &str,
    want: Option<&Value>,
    got: Option<&Bytes>,
    labels: &Labels,
) -> Result<(), String> {
    match (want.and_then(Value::as_str), got) {
        (None, None) => Ok(()),
        (Some(h), Some(d)) => hex_matches(h, d, labels).map_err(|m| format!("{field}: {m}")),
        (w, g) => Err(format!(
            "{field} presence: want {w:?}, got {:?}",
            g.map(|d| String::from_utf8_lossy(d))
        )),
    }
}

/// Checks what one connection got in a step against what it recorded: frames in order,
/// `any_order` groups as sets. Returns the sid bindings the matches imply.
///
/// # Errors
///
/// The first difference: a frame that differs, one missing, or one too many.
pub fn compare_conn(
    expected: &[Expected],
    got: &[Got],
    labels: &Labels,
    tolerance: Duration,
) -> Result<Vec<(String, u64)>, String> {
    let mut bindings = Vec::new();
    let mut at = 0;
    for (i, item) in expected.iter().enumerate() {
        match item {
            Expected::Frame(want) => {
                let g = got
                    .get(at)
                    .ok_or(format!("frame {}: missing, want {want}", at + 1))?;
                bindings.extend(
                    compare(want, g, labels, tolerance)
                        .map_err(|e| format!("frame {}: {e}; want {want}", at + 1))?,
                );
                at += 1;
            }
            Expected::AnyOrder(group) => {
                let window = got.get(at..at + group.len()).ok_or(format!(
                    "group {}: {} frames wanted, {} left",
                    i + 1,
                    group.len(),
                    got.len().saturating_sub(at)
                ))?;
                let mut used = vec![false; window.len()];
                for want in group {
                    let mut last = String::new();
                    let found = window.iter().enumerate().find_map(|(j, g)| {
                        if used[j] {
                            return None;
                        }
                        match compare(want, g, labels, tolerance) {
                            Ok(b) => Some((j, b)),
                            Err(e) => {
                                last = e;
                                None
                            }
                        }
                    });
                    let (j, b) = found.ok_or(format!(
                        "group {}: no frame matches {want} (last difference: {last})",
                        i + 1
                    ))?;
                    used[j] = true;
                    bindings.extend(b);
                }
                at += group.len();
            }
        }
    }
    if at < got.len() {
        return Err(format!(
            "{} extra frame(s): {:?}",
            got.len() - at,
            &got[at..]
        ));
    }
    Ok(bindings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_notation_and_markers() {
        let mut labels = Labels::new(vec!["127.0.0.1:7001".into()]);
        labels.bind("$s1", 42).unwrap();
        assert_eq!(hex_bytes("{61*3}<$s1>", &labels).unwrap(), b"aaa42");
        assert!(hex_matches("7b<$time>7d", b"{1700000000}", &labels).is_ok());
        assert!(hex_matches("<$addr1>", b"127.0.0.1:7001", &labels).is_ok());
        assert!(hex_matches("<$s1>", b"43", &labels).is_err());
        assert_eq!(
            labels.substitute("/pyxis/session/$s1").unwrap(),
            "/pyxis/session/42"
        );
        assert!(labels.bind("$s2", 42).is_err());
    }

    #[test]
    fn requests_keep_the_fields_present_and_nothing_else() {
        let labels = Labels::new(Vec::new());
        let create: Value = serde_json::from_str(r#"{"xid":8,"create":{"path":"/z"}}"#).unwrap();
        let payload = request_payload(&create, &labels).unwrap();
        // xid, then create{path} without the required flags.
        assert_eq!(payload, [0x10, 8, 0x42, 4, 0x0a, 2, b'/', b'z']);
        let neg: Value = serde_json::from_str(r#"{"register":{"timeout":-1}}"#).unwrap();
        assert_eq!(request_payload(&neg, &labels).unwrap().len(), 2 + 1 + 10);
    }
}
