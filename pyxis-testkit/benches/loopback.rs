//! How many requests per second a `TestServer` answers over loopback: pipelined reads on
//! one connection, against a floor measured in the same run (a bare frame echo server
//! over the same loopback, which decodes each frame and writes a fixed answer).
//!
//! Run: `cargo bench -p pyxis-testkit --bench loopback` (set `PYXIS_BENCH_REQUESTS` to
//! change the number of requests, default 1 000 000).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pyxis_proto::rpc::{CreateRequest, ReadRequest, RegisterRequest, Request, Response};
use pyxis_proto::{encode_frame, encode_request, encode_response, FrameDecoder};
use pyxis_testkit::TestServer;

/// Sends `batch` `count` times from a second thread and reads `count * per_batch` answers.
fn pipelined(addr: &str, batch: Vec<u8>, count: usize, per_batch: usize) -> Duration {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        for _ in 0..count {
            if writer.write_all(&batch).is_err() {
                return;
            }
        }
    });
    let mut decoder = FrameDecoder::new();
    let mut left = count * per_batch;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "server closed the connection");
        decoder.extend(&buf[..n]);
        while let Some(_payload) = decoder.next_payload().expect("frame") {
            left -= 1;
        }
    }
    let took = start.elapsed();
    let _ = sender.join();
    took
}

/// A bare echo server: one fixed answer per well-formed frame.
fn start_floor_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let answer = encode_response(&Response {
            xid: Some(1),
            data: Some(bytes::Bytes::from_static(&[b'x'; 100])),
            ..Default::default()
        });
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut out = BytesMut::new();
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            decoder.extend(&buf[..n]);
            while let Ok(Some(_)) = decoder.next_payload() {
                out.extend_from_slice(&answer);
            }
            if stream.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    });
    addr
}

fn main() {
    let total: usize = std::env::var("PYXIS_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let per_batch = 100;
    let batches = (total / per_batch).max(1);

    let server = TestServer::start();
    let addr = server.addr();
    // Set up a session and a 100-byte node with plain blocking calls.
    let mut setup = TcpStream::connect(&addr).expect("connect");
    let mut decoder = FrameDecoder::new();
    let mut call = |req: &Request| -> Response {
        setup.write_all(&encode_request(req)).expect("write");
        let mut buf = [0u8; 4096];
        loop {
            if let Some(r) = decoder.next_response().expect("frame") {
                return r;
            }
            let n = setup.read(&mut buf).expect("read");
            assert!(n > 0);
            decoder.extend(&buf[..n]);
        }
    };
    let register = Request {
        xid: Some(1),
        register: Some(RegisterRequest {
            timeout: Some(60_000),
        }),
        ..Default::default()
    };
    let sid = call(&register).sid.expect("sid");
    let create = Request {
        sid: Some(sid),
        xid: Some(2),
        create: Some(CreateRequest {
            path: "/bench".into(),
            flags: 0,
            data: Some(bytes::Bytes::from_static(&[b'x'; 100])),
        }),
        ..Default::default()
    };
    assert!(call(&create).err.is_none());

    let mut batch = BytesMut::new();
    for i in 0..per_batch {
        let read = Request {
            sid: Some(sid),
            xid: Some(10 + i as u64),
            read: Some(ReadRequest {
                path: "/bench".into(),
            }),
            ..Default::default()
        };
        encode_frame(&read, &mut batch);
    }
    let batch = batch.to_vec();

    let floor_addr = start_floor_server();
    let floor = pipelined(&floor_addr, batch.clone(), batches, per_batch);
    let served = pipelined(&addr, batch, batches, per_batch);

    let n = (batches * per_batch) as f64;
    let floor_rate = n / floor.as_secs_f64();
    let served_rate = n / served.as_secs_f64();
    println!("requests: {}", batches * per_batch);
    println!("raw frame echo floor : {floor_rate:>12.0} req/s ({floor:?})");
    println!("TestServer reads     : {served_rate:>12.0} req/s ({served:?})");
    println!("ratio TestServer/floor: {:.3}", served_rate / floor_rate);
    server.shutdown();
}
