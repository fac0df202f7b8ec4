//! Codec benchmarks (`cargo bench -p pyxis-proto`).
//!
//! Criterion measures encode and decode of a ping answer, a stat answer and a 1 MiB write
//! frame. Afterwards the bench times two pairs itself, interleaved in the same run, and
//! prints the ratios the protocol layer is held to:
//! (a) whole-frame decode vs a bare `prost` decode of the same payload (target ≤ 1.3×),
//! (b) 1 MiB frame decode vs the floor of copying + Adler-32 of the same bytes (≤ 1.5×).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use prost::Message;
use pyxis_proto::rpc::{Request, Response, WatchEvent, WriteRequest};
use pyxis_proto::{encode_frame, event_type, store, FrameDecoder, HEADER_LEN, TAG};

/// One benchmarked frame: its encoded bytes and the message it carries.
struct Case<M> {
    name: &'static str,
    msg: M,
    frame: Bytes,
}

impl<M: Message> Case<M> {
    fn new(name: &'static str, msg: M) -> Self {
        let mut buf = BytesMut::new();
        encode_frame(&msg, &mut buf);
        Self {
            name,
            msg,
            frame: buf.freeze(),
        }
    }

    /// The payload alone (between tag and checksum), as a bare prost decode sees it.
    fn payload(&self) -> Bytes {
        self.frame
            .slice(HEADER_LEN + TAG.len()..self.frame.len() - pyxis_proto::CHECKSUM_LEN)
    }
}

fn ping_answer() -> Case<Response> {
    Case::new(
        "ping_answer",
        Response {
            xid: Some(50),
            watch: Some(WatchEvent {
                path: "/pb/eph".into(),
                r#type: event_type::MODIFY,
            }),
            path: Some("/pb/eph".into()),
            ..Default::default()
        },
    )
}

fn stat_answer() -> Case<Response> {
    let node = store::Node {
        data: Some(Bytes::from(vec![0x5a; 64])),
        children: (0..16).map(|i| format!("member-{i:04}")).collect(),
        flags: Some(0),
        version: Some(42),
        sid: Some(39_353_605_962_072_065),
    };
    Case::new(
        "stat_answer",
        Response {
            xid: Some(3),
            data: Some(node.encode_to_vec().into()),
            ..Default::default()
        },
    )
}

fn write_1mib() -> Case<Request> {
    Case::new(
        "write_1mib",
        Request {
            sid: Some(39_353_605_962_072_065),
            xid: Some(12),
            write: Some(WriteRequest {
                path: "/pb/blob".into(),
                data: Bytes::from((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<_>>()),
            }),
            ..Default::default()
        },
    )
}

fn decode_response(d: &mut FrameDecoder, frame: &[u8]) -> Response {
    d.extend(frame);
    match d.next_response() {
        Ok(Some(m)) => m,
        other => panic!("benchmark frame must decode: {other:?}"),
    }
}

fn decode_request(d: &mut FrameDecoder, frame: &[u8]) -> Request {
    d.extend(frame);
    match d.next_request() {
        Ok(Some(m)) => m,
        other => panic!("benchmark frame must decode: {other:?}"),
    }
}

/// The floor for a large frame: copy the bytes out of the socket buffer and checksum them.
fn copy_and_checksum(dst: &mut Vec<u8>, frame: &[u8]) -> u32 {
    dst.clear();
    dst.extend_from_slice(frame);
    pyxis_proto::adler32(&dst[HEADER_LEN..dst.len() - pyxis_proto::CHECKSUM_LEN])
}

fn bench_small(c: &mut Criterion, case: &Case<Response>) {
    let mut g = c.benchmark_group(case.name);
    g.throughput(Throughput::Elements(1));
    let mut out = BytesMut::with_capacity(4096);
    g.bench_function(BenchmarkId::new("encode", case.frame.len()), |b| {
        b.iter(|| {
            out.clear();
            encode_frame(black_box(&case.msg), &mut out);
        })
    });
    let mut d = FrameDecoder::new();
    g.bench_function(BenchmarkId::new("decode", case.frame.len()), |b| {
        b.iter(|| decode_response(&mut d, black_box(&case.frame)))
    });
    let payload = case.payload();
    g.bench_function(BenchmarkId::new("prost_decode", case.frame.len()), |b| {
        b.iter(|| Response::decode(black_box(payload.clone())))
    });
    g.finish();
}

fn bench_large(c: &mut Criterion, case: &Case<Request>) {
    let mut g = c.benchmark_group(case.name);
    g.throughput(Throughput::Bytes(case.frame.len() as u64));
    let mut out = BytesMut::with_capacity(case.frame.len());
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_frame(black_box(&case.msg), &mut out);
        })
    });
    let mut d = FrameDecoder::new();
    g.bench_function("decode", |b| {
        b.iter(|| decode_request(&mut d, black_box(&case.frame)))
    });
    let mut copy = Vec::with_capacity(case.frame.len());
    g.bench_function("floor_copy_adler32", |b| {
        b.iter(|| copy_and_checksum(&mut copy, black_box(&case.frame)))
    });
    g.finish();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times the `timed` closures in alternating batches of `batch` calls (so drift and noise
/// hit all of them alike) and returns the median nanoseconds per call of each.
fn interleaved(batch: u32, rounds: usize, timed: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); timed.len()];
    for _ in 0..rounds {
        for (f, s) in timed.iter_mut().zip(&mut samples) {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            s.push(t.elapsed().as_nanos() as f64 / f64::from(batch));
        }
    }
    samples.into_iter().map(median).collect()
}

fn ratio_small(case: &Case<Response>) {
    let mut d = FrameDecoder::new();
    let payload = case.payload();
    let mut copy = Vec::with_capacity(case.frame.len());
    let t = interleaved(
        20_000,
        41,
        &mut [
            &mut || {
                black_box(decode_response(&mut d, black_box(&case.frame)));
            },
            &mut || {
                black_box(Response::decode(black_box(payload.clone())).ok());
            },
            &mut || {
                black_box(copy_and_checksum(&mut copy, black_box(&case.frame)));
            },
            &mut || {
                black_box(pyxis_proto::decode_response(black_box(payload.clone())).ok());
            },
        ],
    );
    let (ours, bare, floor, checked) = (t[0], t[1], t[2], t[3]);
    println!(
        "ratio (a) {:<12} = {:.2} (target <= 1.3): frame decode {:.0} ns ({:.2} M frames/s), \
         bare prost decode {:.0} ns; parts: copy+adler32 of the frame {:.0} ns, payload decode \
         with required-field checks {:.0} ns; frame decode / (copy+adler32 + checked decode) = {:.2}",
        case.name,
        ours / bare,
        ours,
        1e3 / ours,
        bare,
        floor,
        checked,
        ours / (floor + checked)
    );
}

fn ratio_large(case: &Case<Request>) {
    let mut d = FrameDecoder::new();
    let mut copy = Vec::with_capacity(case.frame.len());
    let t = interleaved(
        16,
        41,
        &mut [
            &mut || {
                black_box(decode_request(&mut d, black_box(&case.frame)));
            },
            &mut || {
                black_box(copy_and_checksum(&mut copy, black_box(&case.frame)));
            },
        ],
    );
    let (ours, floor) = (t[0], t[1]);
    let gbs = |ns: f64| case.frame.len() as f64 / ns;
    println!(
        "ratio (b) {:<12} = {:.2} (target <= 1.5): frame decode {:.0} us ({:.2} GB/s), \
         memcpy+adler32 floor {:.0} us ({:.2} GB/s)",
        case.name,
        ours / floor,
        ours / 1e3,
        gbs(ours),
        floor / 1e3,
        gbs(floor)
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let (ping, stat, write) = (ping_answer(), stat_answer(), write_1mib());
    bench_small(&mut c, &ping);
    bench_small(&mut c, &stat);
    bench_large(&mut c, &write);
    c.final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` only smoke-runs the groups.
    if std::env::args().any(|a| a == "--bench") {
        ratio_small(&ping);
        ratio_small(&stat);
        ratio_large(&write);
    }
}
