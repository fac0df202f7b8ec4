//! When the adapter loop acknowledges what it read at once (a quick ACK, which a server
//! that keeps Nagle's algorithm on waits for): before it waits with answers that no
//! request of its own has acknowledged, and not after every read, since a request that
//! follows its answer carries the acknowledgement. The loop runs on tokio's TCP with the
//! acknowledgements counted instead of made.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use pyxis_client_common::__private::AsyncRuntime;
use pyxis_testkit::TestServer;
use pyxis_tokio::{Client, Options, Tokio};

thread_local! {
    /// Acknowledgements the loop asked for on this thread (the runtime is single-threaded).
    static ACKS: Cell<usize> = const { Cell::new(0) };
}

fn acks() -> usize {
    ACKS.with(Cell::get)
}

/// tokio's TCP (the adapter's own runtime), counting the loop's acknowledgements.
struct Counting;

impl AsyncRuntime for Counting {
    type Reader = <Tokio as AsyncRuntime>::Reader;
    type Writer = <Tokio as AsyncRuntime>::Writer;

    fn connect(
        addr: String,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send + 'static {
        Tokio::connect(addr)
    }

    fn read<'a>(
        reader: &'a mut Self::Reader,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        Tokio::read(reader, buf)
    }

    fn write<'a>(
        writer: &'a mut Self::Writer,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        Tokio::write(writer, data)
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        Tokio::sleep_until(deadline)
    }

    fn acknowledge(_: &Self::Reader) {
        ACKS.with(|acks| acks.set(acks.get() + 1));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn answers_are_acknowledged_before_the_loop_waits_not_after_every_read() {
    let server = TestServer::start();
    let client = Client::connect_on::<Counting, _, _>([server.addr()], Options::default())
        .await
        .expect("connect");
    client
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");

    // An answer with no request after it: acknowledged as soon as the loop goes idle.
    let before = acks();
    client.exists("/").await.expect("exists");
    let waited = Instant::now();
    while acks() == before {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the answer was never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // Answers each followed by the next request: that request's segment acknowledges
    // them, so the loop makes no acknowledgement of its own for most of them.
    const READS: usize = 200;
    let before = acks();
    let caller = client.clone();
    tokio::spawn(async move {
        for _ in 0..READS {
            caller.exists("/").await.expect("exists");
        }
    })
    .await
    .expect("caller");
    let made = acks() - before;
    assert!(
        made < READS / 10,
        "{made} acknowledgements for {READS} reads that each had a request after them"
    );
    client.close().await;
}
