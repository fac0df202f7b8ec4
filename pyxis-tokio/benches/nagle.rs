//! A pipelined read burst against a server that keeps Nagle's algorithm on and sends each
//! answer in its own small write, as the original server does (PROTOCOL.md §1): the
//! second answer of a burst waits in the server's socket until the client acknowledges
//! the first, so a client that delays its ACKs (~40 ms on Linux) stalls every burst.
//!
//! The server is a proxy in front of a `TestServer`: requests pass through unchanged;
//! answers are cut into frames and each frame is written on its own to a socket with
//! Nagle on. Run: `cargo bench -p pyxis-tokio --bench nagle` (`PYXIS_BENCH_BURSTS` sets the
//! number of bursts, default 200). Prints the burst time (median, p90, max) for
//! `BURST` concurrent reads through the proxy with the client as it is (`TCP_NODELAY`,
//! and a quick ACK whenever the loop would wait with answers that no request of its own
//! acknowledged), through the proxy with a client that only sets `TCP_NODELAY` (the same
//! loop on tokio's TCP, without quick ACKs), and
//! straight to the `TestServer` (no proxy, Nagle off) as the floor.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pyxis_client_common::__private::AsyncRuntime;
use pyxis_proto::{frame_payload, FrameDecoder};
use pyxis_testkit::TestServer;
use pyxis_tokio::{Client, Options, Tokio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Reads in flight per burst.
const BURST: usize = 16;

/// Accepts clients on 127.0.0.1 and relays them to `upstream`, answers one frame per write.
async fn nagle_proxy(listener: TcpListener, upstream: String) {
    while let Ok((client, _)) = listener.accept().await {
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            // Nagle stays on toward the client (the default); off toward the TestServer.
            let _ = server.set_nodelay(true);
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            let mut decoder = FrameDecoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut frame = BytesMut::new();
            loop {
                let n = match server_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                decoder.extend(&buf[..n]);
                while let Ok(Some(payload)) = decoder.next_payload() {
                    frame.clear();
                    frame_payload(&payload, &mut frame);
                    if client_write.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// tokio's TCP with `TCP_NODELAY` only: what a client that never makes quick ACKs does.
struct NoQuickAck;

impl AsyncRuntime for NoQuickAck {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    async fn connect(addr: String) -> io::Result<(OwnedReadHalf, OwnedWriteHalf)> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream.into_split())
    }

    fn read<'a>(
        reader: &'a mut OwnedReadHalf,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        Tokio::read(reader, buf)
    }

    fn write<'a>(
        writer: &'a mut OwnedWriteHalf,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        Tokio::write(writer, data)
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        Tokio::sleep_until(deadline)
    }
}

/// `BURST` concurrent reads; the time until the last answer.
async fn burst(client: &Client) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..BURST)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.exists("/").await.expect("exists") })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    start.elapsed()
}

/// Median, p90 and max of `bursts` bursts, in µs.
async fn measure(client: &Client, bursts: usize) -> [f64; 3] {
    let mut times = Vec::with_capacity(bursts);
    for _ in 0..bursts {
        times.push(burst(client).await.as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    [at(0.5), at(0.9), at(1.0)]
}

fn main() {
    let bursts: usize = std::env::var("PYXIS_BENCH_BURSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(200);
    let server = TestServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = listener.local_addr().expect("addr").to_string();
        tokio::spawn(nagle_proxy(listener, server.addr()));
        let mut figures = Vec::new();
        for (addr, quick_acks) in [(proxy.clone(), true), (proxy, false), (server.addr(), true)] {
            let client = if quick_acks {
                Client::connect([addr], Options::default()).await
            } else {
                Client::connect_on::<NoQuickAck, _, _>([addr], Options::default()).await
            }
            .expect("connect");
            client
                .wait_connected(Duration::from_secs(10))
                .await
                .expect("session");
            burst(&client).await; // warm up
            figures.push(measure(&client, bursts).await);
            client.close().await;
        }
        figures
    });
    println!("{bursts} bursts of {BURST} pipelined reads (burst time, µs: median / p90 / max)");
    let names = [
        "server with Nagle on, one write per answer",
        "the same server, client without quick ACKs (TCP_NODELAY only)",
        "TestServer (Nagle off, coalesced answers)",
    ];
    for (name, [p50, p90, max]) in names.into_iter().zip(figures) {
        println!("{name}: {p50:.0} / {p90:.0} / {max:.0}");
    }
}
