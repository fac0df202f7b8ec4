//! State-machine cost benchmarks (`cargo bench -p pyxis-core`).
//!
//! Criterion measures one full request round on a connected client (submit →
//! poll_transmit → handle_data with the answer → poll_event) for a small read and a small
//! write, and the pyxis-proto codec work of the same round (encode the request frame,
//! decode the answer frame, and for the read the `store::Node` inside it). Afterwards the bench times round and codec itself,
//! interleaved in the same run, and prints ns/round and the ratio (target: round ≤ 2×
//! codec, i.e. the state machine costs at most as much as the codec). Last, it measures
//! re-registering 10 000 watches after a reconnect: frames out, transmits, time. With
//! `PYXIS_BENCH_INSTR=read|write` it runs only 100 000 rounds and codec rounds of that
//! kind, for callgrind to count their instructions.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::Criterion;
use prost::Message;
use pyxis_core::{Client, Config, ConnId, Event, EventMask, IoAction, Op, WatchSpec};
use pyxis_proto::rpc::{Request, Response, StatRequest, WriteRequest};
use pyxis_proto::{encode_frame, encode_response, store, FrameDecoder};

const SID: u64 = 39_353_605_962_072_065;

/// A client connected to a pretend server, with its next request id known.
struct Rig {
    client: Client,
    conn: ConnId,
    now: Instant,
    next_id: u64,
}

fn requests_in(data: &[u8]) -> Vec<Request> {
    let mut d = FrameDecoder::new();
    d.extend(data);
    let mut out = Vec::new();
    while let Ok(Some(r)) = d.next_request() {
        out.push(r);
    }
    out
}

impl Rig {
    fn new(watches: usize) -> Rig {
        let now = Instant::now();
        let mut client = Client::new(Config::new(["127.0.0.1:7000"]), now).expect("config");
        for i in 0..watches {
            client.watch(WatchSpec::new(format!("/w/{i:05}"), EventMask::ALL), now);
        }
        let Some(IoAction::Connect { conn, .. }) = client.poll_io() else {
            panic!("expected a connect");
        };
        client.handle_connected(conn, now);
        let reg = requests_in(&client.poll_transmit().expect("register").data);
        let rsp = Response {
            xid: reg[0].xid,
            sid: Some(SID),
            ..Default::default()
        };
        client.handle_data(conn, &encode_response(&rsp), now);
        let sent = requests_in(&client.poll_transmit().expect("ping and arms").data);
        let mut answers = BytesMut::new();
        for r in sent.iter().filter(|r| r.stat.is_some()) {
            encode_frame(&stat_answer(r.xid), &mut answers);
        }
        client.handle_data(conn, &answers, now);
        while client.poll_event().is_some() {}
        Rig {
            client,
            conn,
            now,
            next_id: 1,
        }
    }
}

fn node_bytes() -> Bytes {
    store::Node {
        data: Some(Bytes::from_static(b"small value")),
        children: vec!["a".into(), "b".into()],
        flags: Some(0),
        version: Some(7),
        sid: Some(SID),
    }
    .encode_to_vec()
    .into()
}

fn stat_answer(xid: Option<u64>) -> Response {
    Response {
        xid,
        data: Some(node_bytes()),
        ..Default::default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

fn op(kind: Kind) -> Op {
    match kind {
        Kind::Read => Op::Read {
            path: "/bench/node".into(),
            show_hidden: None,
            watch: None,
        },
        Kind::Write => Op::Write {
            path: "/bench/node".into(),
            data: Bytes::from_static(b"small value"),
        },
    }
}

fn answer(kind: Kind, xid: u64) -> Bytes {
    match kind {
        Kind::Read => encode_response(&stat_answer(Some(xid))),
        Kind::Write => encode_response(&Response {
            xid: Some(xid),
            ..Default::default()
        }),
    }
}

/// The request frame the round sends, as pyxis-proto alone would build it.
fn request(kind: Kind, xid: u64) -> Request {
    let mut r = Request {
        sid: Some(SID),
        xid: Some(xid),
        ..Default::default()
    };
    match kind {
        Kind::Read => {
            r.stat = Some(StatRequest {
                path: "/bench/node".into(),
            })
        }
        Kind::Write => {
            r.write = Some(WriteRequest {
                path: "/bench/node".into(),
                data: Bytes::from_static(b"small value"),
            })
        }
    }
    r
}

/// `iters` rounds on `rig`, answers prepared beforehand; returns the time of the rounds.
///
/// The operations are built beforehand, as the request of the codec floor is. The
/// answers carry the xids the core uses for operations (twice the request id, an
/// implementation detail: a round whose answer does not match panics).
fn rounds(rig: &mut Rig, kind: Kind, iters: u64) -> Duration {
    let answers: Vec<Bytes> = (0..iters)
        .map(|i| answer(kind, 2 * (rig.next_id + i)))
        .collect();
    let ops: Vec<Op> = (0..iters).map(|_| op(kind)).collect();
    let start = Instant::now();
    round_loop(rig, &answers, ops);
    let elapsed = start.elapsed();
    rig.next_id += answers.len() as u64;
    elapsed
}

/// The rounds themselves, one operation and its answer each (kept out of line so that
/// callgrind counts them alone: see `instruction_counts`).
#[inline(never)]
fn round_loop(rig: &mut Rig, answers: &[Bytes], ops: Vec<Op>) {
    for (a, op) in answers.iter().zip(ops) {
        rig.client.submit(op, rig.now);
        let t = rig.client.poll_transmit().expect("frame");
        black_box(t);
        rig.client.handle_data(rig.conn, a, rig.now);
        match rig.client.poll_event() {
            Some(Event::Completed { result: Ok(r), .. }) => {
                black_box(r);
            }
            other => panic!("round did not complete: {other:?}"),
        }
    }
}

/// `iters` codec rounds: encode the request frame, decode the answer frame (for a stat
/// answer, including the `store::Node` its `data` carries: the frame's whole content).
fn codec(kind: Kind, iters: u64) -> Duration {
    let req = request(kind, 9);
    let ans = answer(kind, 9);
    let start = Instant::now();
    codec_loop(kind, &req, &ans, iters);
    start.elapsed()
}

/// The codec rounds themselves (kept out of line, as `round_loop`).
#[inline(never)]
fn codec_loop(kind: Kind, req: &Request, ans: &Bytes, iters: u64) {
    let mut out = BytesMut::with_capacity(256);
    let mut d = FrameDecoder::new();
    for _ in 0..iters {
        out.clear();
        encode_frame(black_box(req), &mut out);
        black_box(&out);
        d.extend(black_box(ans));
        match d.next_response() {
            Ok(Some(rsp)) if kind == Kind::Read => {
                black_box(store::Node::decode(rsp.data.unwrap_or_default()).ok());
            }
            other => {
                black_box(other.ok());
            }
        }
    }
}

/// With `PYXIS_BENCH_INSTR=read` (or `write`): 100 000 rounds and 100 000 codec rounds
/// of that kind and nothing else, for an instruction count under callgrind (the
/// inclusive cost of `round_loop` and of `codec_loop`, divided by 100 000; see the
/// crate README for the command).
fn instruction_counts(which: &str) {
    const N: u64 = 100_000;
    let kind = match which {
        "read" => Kind::Read,
        "write" => Kind::Write,
        other => panic!("PYXIS_BENCH_INSTR={other}: read or write"),
    };
    let mut rig = Rig::new(0);
    rounds(&mut rig, kind, N);
    codec(kind, N);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ratios() {
    println!();
    for (name, kind) in [("read", Kind::Read), ("write", Kind::Write)] {
        let mut rig = Rig::new(0);
        let (mut r, mut c) = (Vec::new(), Vec::new());
        const BATCH: u64 = 5_000;
        for _ in 0..31 {
            r.push(rounds(&mut rig, kind, BATCH).as_nanos() as f64 / BATCH as f64);
            c.push(codec(kind, BATCH).as_nanos() as f64 / BATCH as f64);
        }
        let (r, c) = (median(r), median(c));
        println!(
            "round/{name}: {r:.0} ns/round, codec {c:.0} ns, ratio {:.2}x (target <= 2.00x)",
            r / c
        );
    }
}

fn reregister_10k() {
    const N: usize = 10_000;
    let mut times = Vec::new();
    let mut frames = 0;
    let mut transmits = 0;
    let mut bytes = 0;
    for _ in 0..5 {
        let mut rig = Rig::new(N);
        let now = rig.now;
        rig.client.handle_closed(rig.conn, now);
        while rig.client.poll_event().is_some() {}
        let later = rig.client.poll_timeout().expect("backoff deadline");
        rig.client.handle_timeout(later);
        let Some(IoAction::Connect { conn, .. }) = rig.client.poll_io() else {
            panic!("expected a reconnect");
        };
        rig.client.handle_connected(conn, later);
        let reg = requests_in(&rig.client.poll_transmit().expect("register").data);
        let registered = encode_response(&Response {
            xid: reg[0].xid,
            sid: Some(SID),
            ..Default::default()
        });
        let start = Instant::now();
        rig.client.handle_data(conn, &registered, later);
        let mut out = Vec::new();
        while let Some(t) = rig.client.poll_transmit() {
            out.push(t);
        }
        times.push(start.elapsed().as_secs_f64() * 1e3);
        transmits = out.len();
        bytes = out.iter().map(|t| t.data.len()).sum::<usize>();
        frames = out
            .iter()
            .map(|t| requests_in(&t.data).len())
            .sum::<usize>();
    }
    println!(
        "reregister/10000 watches: {frames} frames (ping + arms) in {transmits} transmit(s), {bytes} bytes, {:.2} ms (median of 5)",
        median(times)
    );
}

fn main() {
    if let Ok(which) = std::env::var("PYXIS_BENCH_INSTR") {
        return instruction_counts(&which);
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for (name, kind) in [("read", Kind::Read), ("write", Kind::Write)] {
        let mut g = c.benchmark_group(format!("round/{name}"));
        let mut rig = Rig::new(0);
        g.bench_function("client_round", |b| {
            b.iter_custom(|iters| rounds(&mut rig, kind, iters))
        });
        g.bench_function("codec_floor", |b| b.iter_custom(|iters| codec(kind, iters)));
        g.finish();
    }
    c.final_summary();
    ratios();
    reregister_10k();
}
