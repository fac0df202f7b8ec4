//! What the client stack (tokio adapter + core) costs per request, against a floor
//! measured in the same run: bare stat frames written and read on a std socket to the
//! same `TestServer` over the same loopback.
//!
//! Run: `cargo bench -p pyxis-tokio --bench round_trip` (`PYXIS_BENCH_REQUESTS` sets the
//! number of requests per measurement, default 20 000). Prints, for sequential requests
//! (one in flight) and pipelined ones (64 tasks sharing one client), the client's time
//! divided by the floor's. Each measurement is taken three times, interleaved, and the
//! best kept: the machine is noisy.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pyxis_proto::rpc::{RegisterRequest, Request, StatRequest};
use pyxis_proto::{encode_request, FrameDecoder};
use pyxis_testkit::TestServer;
use pyxis_tokio::{Client, Options};

const TASKS: usize = 64;

/// A raw session on a std socket.
struct Raw {
    stream: TcpStream,
    decoder: FrameDecoder,
    buf: Vec<u8>,
    sid: u64,
}

impl Raw {
    fn open(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut raw = Raw {
            stream,
            decoder: FrameDecoder::new(),
            buf: vec![0; 256 * 1024],
            sid: 0,
        };
        let register = Request {
            xid: Some(1),
            register: Some(RegisterRequest {
                timeout: Some(30_000),
            }),
            ..Default::default()
        };
        raw.stream
            .write_all(&encode_request(&register))
            .expect("write");
        raw.sid = raw.answers(1).expect("register answer");
        raw
    }

    fn stat(&self, xid: u64) -> Vec<u8> {
        encode_request(&Request {
            sid: Some(self.sid),
            xid: Some(xid),
            stat: Some(StatRequest { path: "/".into() }),
            ..Default::default()
        })
        .to_vec()
    }

    /// Reads `count` answers; returns the sid of the last one.
    fn answers(&mut self, mut count: usize) -> Option<u64> {
        let mut sid = None;
        while count > 0 {
            while let Some(answer) = self.decoder.next_response().expect("frame") {
                sid = answer.sid.or(sid);
                count -= 1;
                if count == 0 {
                    return sid;
                }
            }
            let n = self.stream.read(&mut self.buf).expect("read");
            assert!(n > 0, "server closed");
            self.decoder.extend(&self.buf[..n]);
        }
        sid
    }

    fn sequential(&mut self, n: usize) -> Duration {
        let start = Instant::now();
        for xid in 0..n {
            let frame = self.stat(xid as u64 + 2);
            self.stream.write_all(&frame).expect("write");
            self.answers(1);
        }
        start.elapsed()
    }

    fn pipelined(&mut self, n: usize) -> Duration {
        let start = Instant::now();
        let mut sent = 0;
        while sent < n {
            let batch = TASKS.min(n - sent);
            let frames: Vec<u8> = (0..batch)
                .flat_map(|i| self.stat((sent + i) as u64 + 2))
                .collect();
            self.stream.write_all(&frames).expect("write");
            self.answers(batch);
            sent += batch;
        }
        start.elapsed()
    }
}

async fn client_sequential(client: &Client, n: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        client.exists("/").await.expect("exists");
    }
    start.elapsed()
}

async fn client_pipelined(client: &Client, n: usize) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let client = client.clone();
            let count = n / TASKS + usize::from(t < n % TASKS);
            tokio::spawn(async move {
                for _ in 0..count {
                    client.exists("/").await.expect("exists");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    start.elapsed()
}

fn per_request(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = std::env::var("PYXIS_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let server = TestServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = runtime
        .block_on(Client::connect([server.addr()], Options::default()))
        .expect("connect");
    let mut raw = Raw::open(&server.addr());
    let (mut floor_seq, mut floor_pipe) = (Duration::MAX, Duration::MAX);
    let (mut client_seq, mut client_pipe) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        floor_seq = floor_seq.min(raw.sequential(n));
        client_seq = client_seq.min(runtime.block_on(client_sequential(&client, n)));
        floor_pipe = floor_pipe.min(raw.pipelined(n));
        client_pipe = client_pipe.min(runtime.block_on(client_pipelined(&client, n)));
    }
    println!("{n} stat requests per measurement, best of 3");
    for (name, floor, ours) in [
        ("sequential (1 in flight)", floor_seq, client_seq),
        ("pipelined (64 in flight)", floor_pipe, client_pipe),
    ] {
        println!(
            "{name}: raw frames {:.1} µs/request, pyxis-tokio client {:.1} µs/request, ratio {:.2}",
            per_request(floor, n),
            per_request(ours, n),
            ours.as_secs_f64() / floor.as_secs_f64()
        );
    }
    runtime.block_on(client.close());
}
