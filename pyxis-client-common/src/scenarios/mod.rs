//! The integration scenarios every async adapter runs against a 3-node
//! [`TestCluster`](pyxis_testkit::TestCluster) over real loopback sockets (feature
//! `scenarios`, for tests only). Each adapter's test file instantiates them all with
//! [`async_scenarios!`](crate::async_scenarios) and its runtime's `block_on`; the
//! blocking adapter runs the same list in its own test file.
//!
//! Owns: the scenarios, the [`Harness`] an adapter provides (connect, spawn), and the
//! bounded waiting helpers. Must never sleep to wait for an outcome without a bound,
//! depend on a particular runtime (timers come from async-io, which runs its own
//! reactor), or bind anything but 127.0.0.1.

mod cases;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt as _;

use crate::{AsyncClient, ConnectError, Options};

pub use cases::*;

/// A boxed future, as the harness passes them around.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What an adapter provides to the scenarios.
#[derive(Clone, Copy)]
pub struct Harness {
    /// Connects a client (its `AsyncClient` view).
    pub connect: fn(Vec<String>, Options) -> BoxFuture<Result<AsyncClient, ConnectError>>,
    /// Spawns a task on the runtime; the returned future completes when it has.
    pub spawn: fn(BoxFuture<()>) -> BoxFuture<()>,
}

/// Generous bound for anything that rides through reconnects (the machine is noisy).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Bound on a whole scenario: a hang fails the test instead of stalling the suite.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(180);

/// Runs `fut`, panicking with `what` if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    let expired = async {
        async_io::Timer::after(limit).await;
        panic!("timed out after {limit:?}: {what}");
    };
    fut.or(expired).await
}

/// Sleeps for `d` (only to pace a scenario, never to wait for an outcome).
pub async fn pause(d: Duration) {
    async_io::Timer::after(d).await;
}

/// Test options: a fixed seed per client index so runs are reproducible.
pub fn options(seed: u64) -> Options {
    Options::new().seed(seed)
}

impl Harness {
    /// Connects to `addrs` with `options` and waits for the session.
    pub async fn client(&self, addrs: Vec<String>, options: Options) -> AsyncClient {
        let client = within(PATIENCE, "connect", (self.connect)(addrs, options))
            .await
            .unwrap_or_else(|e| panic!("connect failed: {e}"));
        within(PATIENCE, "session", client.wait_connected(PATIENCE))
            .await
            .unwrap_or_else(|e| panic!("no session: {e}"));
        client
    }
}

/// Generates one `#[test]` per scenario, each running on `$block_on` with `$harness`.
#[macro_export]
macro_rules! async_scenarios {
    ($block_on:path, $harness:expr) => {
        $crate::async_scenarios!(@each $block_on, $harness;
            crud_and_every_error,
            ephemeral_nodes_live_with_their_session,
            every_watch_event_type_and_recursive_watches,
            leader_move_during_a_stream_of_writes,
            killed_leader_is_replaced,
            failover_through_dead_leader_redirects_loses_no_acknowledged_write,
            no_leader_window_is_ridden_through,
            paused_past_session_timeout_gets_a_new_session,
            garbage_from_the_server_reconnects,
            hundred_tasks_share_one_client,
            slow_consumer_never_stalls_the_session,
            dropping_the_last_handle_closes_the_session,
            unreachable_servers_time_out,
            no_leader_is_the_cause_of_the_timeout,
            fail_fast_fails_at_once_while_no_server_is_reachable,
            an_unresolvable_name_is_the_cause,
            duration_max_waits_without_a_deadline,
            session_events_end_after_close,
            calls_are_sent_in_call_order,
            lock_release_between_the_waiters_two_steps,
            a_peer_that_stops_reading_never_stops_the_timers,
            a_peer_that_never_stops_sending_never_stops_the_timers,
            close_on_expiry_makes_expiry_terminal,
            answers_arriving_together_reach_every_caller);
    };
    (@each $block_on:path, $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $block_on($crate::scenarios::within(
                    $crate::scenarios::SCENARIO_LIMIT,
                    stringify!($name),
                    $crate::scenarios::$name($harness),
                ));
            }
        )*
    };
}

/// Starts a TCP proxy on 127.0.0.1 in front of `upstream` and returns its address: for
/// every client it accepts (`accepted` is called first) it opens a connection to
/// `upstream` and runs `up(from client, to server)` and `down(from server, to client)` on
/// threads of their own, which live as long as the test process.
fn proxy<A, U, D>(upstream: String, accepted: A, up: U, down: D) -> String
where
    A: Fn() + Send + 'static,
    U: Fn(TcpStream, TcpStream) + Clone + Send + 'static,
    D: Fn(TcpStream, TcpStream) + Clone + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr").to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            accepted();
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (Ok(client_r), Ok(server_w)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            let (up, down) = (up.clone(), down.clone());
            std::thread::spawn(move || up(client_r, server_w));
            std::thread::spawn(move || down(server, client));
        }
    });
    addr
}

/// A hostile peer: a TCP proxy on 127.0.0.1 in front of `upstream` that forwards both
/// ways until [`stop_reading`](Self::stop_reading), then stops reading what clients send
/// (on every connection, present and later) while still forwarding what the server
/// sends. Counts the connections it accepted.
pub struct StallingProxy {
    addr: String,
    reading: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl StallingProxy {
    /// Starts the proxy (its threads live as long as the test process).
    pub fn start(upstream: String) -> StallingProxy {
        let reading = Arc::new(AtomicBool::new(true));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (reading.clone(), accepted.clone());
        let addr = proxy(
            upstream,
            move || {
                count.fetch_add(1, Ordering::SeqCst);
            },
            move |mut client_r, mut server_w| {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    if !flag.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    match client_r.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if server_w.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            },
            |mut server_r, mut client_w| {
                let _ = std::io::copy(&mut server_r, &mut client_w);
            },
        );
        StallingProxy {
            addr,
            reading,
            accepted,
        }
    }

    /// The proxy's address, for the client.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// From now on, reads nothing more from clients.
    pub fn stop_reading(&self) {
        self.reading.store(false, Ordering::SeqCst);
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A hostile peer: a TCP proxy on 127.0.0.1 in front of `upstream` that forwards both
/// ways until [`flood`](Self::flood); from then on, on every connection (present and
/// later), it discards what clients send and, instead of what the server sends, writes
/// to them as fast as they take it an endless stream of well-formed answers to requests
/// no client made (unknown xids, which a client ignores). Counts the bytes it flooded.
pub struct FloodingProxy {
    addr: String,
    flooding: Arc<AtomicBool>,
    flooded: Arc<AtomicUsize>,
}

impl FloodingProxy {
    /// Starts the proxy (its threads live as long as the test process).
    pub fn start(upstream: String) -> FloodingProxy {
        let flooding = Arc::new(AtomicBool::new(false));
        let flooded = Arc::new(AtomicUsize::new(0));
        // 256 answers to xids counting down from u64::MAX, written over and over.
        let mut frames = bytes::BytesMut::new();
        for n in 0..256 {
            let answer = pyxis_proto::rpc::Response {
                xid: Some(u64::MAX - n),
                ..Default::default()
            };
            pyxis_proto::encode_frame(&answer, &mut frames);
        }
        let frames = frames.freeze();
        let (up_flag, down_flag, count) = (flooding.clone(), flooding.clone(), flooded.clone());
        let addr = proxy(
            upstream,
            || {},
            move |mut client_r, mut server_w| {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match client_r.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if up_flag.load(Ordering::SeqCst) => {}
                        Ok(n) => {
                            if server_w.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            },
            move |mut server_r, mut client_w| {
                // Woken every 10 ms to start flooding between two reads of the server's
                // bytes (a flood never splits one of its frames).
                let _ = server_r.set_read_timeout(Some(Duration::from_millis(10)));
                let mut buf = [0u8; 16 * 1024];
                while !down_flag.load(Ordering::SeqCst) {
                    match server_r.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if client_w.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return,
                    }
                }
                while client_w.write_all(&frames).is_ok() {
                    count.fetch_add(frames.len(), Ordering::SeqCst);
                }
            },
        );
        FloodingProxy {
            addr,
            flooding,
            flooded,
        }
    }

    /// The proxy's address, for the client.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// From now on, floods every client (within 10 ms).
    pub fn flood(&self) {
        self.flooding.store(true, Ordering::SeqCst);
    }

    /// How many bytes it flooded clients with.
    pub fn flooded(&self) -> usize {
        self.flooded.load(Ordering::SeqCst)
    }
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that forwards what clients send at
/// once and, while [`holding`](Self::hold), keeps what the server sends, to hand it to
/// the client in one write when [`released`](Self::release): many answers arriving
/// together, more than the client handles per turn.
pub struct HoldingProxy {
    addr: String,
    holding: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
}

impl HoldingProxy {
    /// Starts the proxy (its threads live as long as the test process).
    pub fn start(upstream: String) -> HoldingProxy {
        let holding = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (holding.clone(), held.clone());
        let addr = proxy(
            upstream,
            || {},
            |mut client_r, mut server_w| {
                let _ = std::io::copy(&mut client_r, &mut server_w);
            },
            move |mut server_r, mut client_w| {
                // Woken every 10 ms to hand over what it holds once released.
                let _ = server_r.set_read_timeout(Some(Duration::from_millis(10)));
                let mut buf = [0u8; 16 * 1024];
                let mut kept = Vec::new();
                loop {
                    match server_r.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => kept.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return,
                    }
                    if flag.load(Ordering::SeqCst) {
                        count.store(kept.len(), Ordering::SeqCst);
                    } else if !kept.is_empty() {
                        if client_w.write_all(&kept).is_err() {
                            return;
                        }
                        kept.clear();
                        count.store(0, Ordering::SeqCst);
                    }
                }
            },
        );
        HoldingProxy {
            addr,
            holding,
            held,
        }
    }

    /// The proxy's address, for the client.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// From now on, keeps what the server sends.
    pub fn hold(&self) {
        self.holding.store(true, Ordering::SeqCst);
    }

    /// How many bytes from the server it holds.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Hands what it holds to the client in one write (within 10 ms), and forwards at
    /// once again from then on.
    pub fn release(&self) {
        self.holding.store(false, Ordering::SeqCst);
    }
}
