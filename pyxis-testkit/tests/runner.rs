//! Runner tests: TestServer and TestCluster over real loopback sockets, with hand-built
//! frames ([protocol](pyxis_proto::protocol) §1, §3–§5 end to end, and the runner's controls).

mod common;

use std::time::{Duration, Instant};

use common::*;
use pyxis_proto::{event_type, ErrorType};
use pyxis_testkit::{RunnerConfig, TestCluster, TestServer};

#[test]
fn server_answers_over_loopback() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.addr());
    let sid = c.register(5000);
    assert_ok(&c.call(&create(sid, 1, "/svc", 0, b"hello")));
    let rsp = c.call(&read(sid, 2, "/svc"));
    assert_eq!(rsp.data.as_deref(), Some(&b"hello"[..]));
    let node = server.node("/svc").unwrap();
    assert_eq!((node.owner, node.version), (Some(sid), 0));
    assert_eq!(server.sessions().unwrap(), vec![sid]);
}

/// Known difference: the original's ids are `(ms since the epoch << 16) | counter`, so a
/// restarted server never repeats one; the runner's (and `pyxis dev`'s) were the same
/// after every start.
#[test]
fn session_ids_come_from_the_wall_clock_and_differ_across_restarts() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let first = {
        let server = TestServer::start();
        RawClient::connect(&server.addr()).register(5000)
    };
    std::thread::sleep(Duration::from_millis(2));
    let second = {
        let server = TestServer::start();
        RawClient::connect(&server.addr()).register(5000)
    };
    assert!(first >> 16 >= before, "{first} is not (ms << 16) | n");
    assert_ne!(first, second);
    assert!(second > first);
}

#[test]
fn pipelined_reads_overtake_writes_over_tcp() {
    let mut config = RunnerConfig::fast();
    config.model.commit_delay = Duration::from_millis(50);
    let server = TestServer::try_start(config).unwrap();
    let mut c = RawClient::connect(&server.addr());
    let sid = c.register(5000);
    c.send(&create(sid, 1, "/p", 0, b""));
    c.send(&read(sid, 2, "/p"));
    let first = c.recv().unwrap();
    let second = c.recv().unwrap();
    assert_eq!((first.xid, second.xid), (Some(2), Some(1)));
    assert_err(&first, ErrorType::KNotFound, "/p");
}

#[test]
fn a_bad_frame_closes_the_connection() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.addr());
    let sid = c.register(5000);
    c.send_raw(&golden_frame("malformed_frame_checksum"));
    assert_eq!(c.recv().err().as_deref(), Some("closed"));
    // Other connections and the session live on.
    let mut d = RawClient::connect(&server.addr());
    assert_ok(&d.call(&stat(sid, 1, "/")));
}

#[test]
fn a_huge_frame_header_is_refused_without_allocation() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.addr());
    c.send_raw(&[0xff, 0xff, 0xff, 0xff, b'p', b'y', b'x', b'i']);
    assert_eq!(c.recv().err().as_deref(), Some("closed"));
}

#[test]
fn followers_redirect_and_leadership_moves() {
    let cluster = TestCluster::start(3);
    let addrs = cluster.addrs();
    let mut f = RawClient::connect(&addrs[2]);
    let rsp = f.call(&register(None, 1, Some(5000)));
    assert_err(&rsp, ErrorType::KNotLeader, &addrs[0]);
    let mut l = RawClient::connect(&addrs[0]);
    let sid = l.register(5000);
    l.send(&ping(sid, 2));
    cluster.move_leader(2).unwrap();
    let released = l.recv().unwrap();
    assert_eq!((released.xid, released.watch), (Some(2), None));
    assert_eq!(f.call(&register(Some(sid), 3, Some(5000))).sid, Some(sid));
    assert_err(
        &l.call(&stat(sid, 4, "/")),
        ErrorType::KNotLeader,
        &addrs[2],
    );
    assert_eq!(cluster.leader(), Some(2));
}

#[test]
fn no_leader_window_answers_again() {
    let cluster = TestCluster::start(3);
    let mut c = RawClient::connect(&cluster.addrs()[0]);
    let sid = c.register(5000);
    // Long enough that a loaded machine still sees the window, short enough for a test.
    cluster.no_leader_for(Duration::from_millis(1500)).unwrap();
    assert_err(&c.call(&stat(sid, 1, "/")), ErrorType::KAgain, "try again");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut xid = 2;
    loop {
        let rsp = c.call(&stat(sid, xid, "/"));
        if err_of(&rsp).is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "no leader came back");
        xid += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_and_restart_keep_the_port_and_the_state() {
    let cluster = TestCluster::start(1);
    let addr = cluster.addrs()[0].clone();
    let mut c = RawClient::connect(&addr);
    let sid = c.register(60_000);
    assert_ok(&c.call(&create(sid, 1, "/k", 0, b"v")));
    cluster.kill(0).unwrap();
    assert!(c.recv().is_err(), "the connection is dropped");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the port is closed"
    );
    cluster.restart(0).unwrap();
    let mut d = RawClient::connect(&addr);
    assert_eq!(d.call(&register(Some(sid), 2, Some(60_000))).sid, Some(sid));
    assert_eq!(d.call(&read(sid, 3, "/k")).data.as_deref(), Some(&b"v"[..]));
}

#[test]
fn killed_leader_is_replaced_after_the_election_gap() {
    let mut config = RunnerConfig::fast();
    config.model.election_gap = Duration::from_millis(1500);
    let cluster = TestCluster::try_start(3, config).unwrap();
    let addrs = cluster.addrs();
    cluster.kill(0).unwrap();
    assert_eq!(cluster.leader(), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.leader().is_none() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(cluster.leader(), Some(1));
    let mut c = RawClient::connect(&addrs[1]);
    c.register(5000);
}

#[test]
fn expire_session_fires_watches_on_ephemerals() {
    let server = TestServer::start();
    let mut owner = RawClient::connect(&server.addr());
    let mut watcher = RawClient::connect(&server.addr());
    let a = owner.register(60_000);
    let b = watcher.register(60_000);
    assert_ok(&owner.call(&create(a, 1, "/e", 1, b"")));
    assert_ok(&watcher.call(&watch(b, 1, "/e", event_type::DELETE, false)));
    watcher.send(&ping(b, 2));
    assert!(server.expire_session(a).unwrap());
    let rsp = watcher.recv().unwrap();
    assert_eq!(
        rsp.watch.map(|w| (w.path, w.r#type)),
        Some(("/e".into(), event_type::DELETE))
    );
    assert_err(
        &owner.call(&stat(a, 3, "/")),
        ErrorType::KSessionExpired,
        "session expired",
    );
}

#[test]
fn session_expires_on_its_own_and_a_held_ping_comes_back() {
    let server = TestServer::start(); // fast: 200 ms minimum, 50 ms interval
    let mut c = RawClient::connect(&server.addr());
    let sid = c.register(300);
    let sent = Instant::now();
    let rsp = c.call(&ping(sid, 1));
    assert_eq!((rsp.xid, rsp.watch), (Some(1), None));
    assert!(
        sent.elapsed() >= Duration::from_millis(150),
        "held for {:?}",
        sent.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.sessions().unwrap().contains(&sid) {
        assert!(Instant::now() < deadline, "never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn delayed_and_dropped_answers() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.addr());
    let sid = c.register(60_000);
    server.delay_answers(Duration::from_millis(300)).unwrap();
    let start = Instant::now();
    assert_ok(&c.call(&create(sid, 1, "/d", 0, b"")));
    assert!(start.elapsed() >= Duration::from_millis(250));
    server.delay_answers(Duration::ZERO).unwrap();
    server.drop_answers(true).unwrap();
    c.send(&stat(sid, 2, "/d"));
    c.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(c.recv().is_err(), "no answer while dropping");
    server.drop_answers(false).unwrap();
}

#[test]
fn garbage_reaches_the_clients_of_a_node() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.addr());
    c.register(60_000);
    server
        .send_garbage(0, b"\x00\x00\x00\x0aPYXI\x08\x07\x05\xf5\x01\x5a")
        .unwrap();
    let err = c.recv().unwrap_err();
    assert!(err.starts_with("bad frame"), "{err}");
}

#[test]
fn a_client_that_never_reads_is_disconnected() {
    let mut config = RunnerConfig::fast();
    config.max_output_per_conn = 1024 * 1024;
    let server = TestServer::try_start(config).unwrap();
    let mut c = RawClient::connect(&server.addr());
    let sid = c.register(60_000);
    let big = vec![1u8; 512 * 1024];
    assert_ok(&c.call(&create(sid, 1, "/big", 0, &big)));
    c.stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let req = pyxis_proto::encode_request(&read(sid, 2, "/big"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        use std::io::Write;
        if c.stream.write_all(&req).is_err() {
            break;
        }
        let open = server.with_model(|m, _| m.connections().len()).unwrap();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never disconnected");
    }
    assert_eq!(server.with_model(|m, _| m.connections().len()).unwrap(), 0);
}

#[test]
fn many_clusters_in_parallel_start_and_stop() {
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                let cluster = TestCluster::start(3);
                let mut c = RawClient::connect(&cluster.addrs()[0]);
                c.register(5000);
                drop(cluster);
                // Everything is closed after drop.
                assert!(c.recv().is_err());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
