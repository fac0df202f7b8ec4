//! The runners from inside an async runtime: started, controlled and dropped in a tokio
//! test, talking to a tokio client socket.

use pyxis_proto::rpc::{RegisterRequest, Request};
use pyxis_proto::{encode_request, FrameDecoder};
use pyxis_testkit::{TestCluster, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn register(addr: &str) -> pyxis_proto::rpc::Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = Request {
        xid: Some(1),
        register: Some(RegisterRequest {
            timeout: Some(5000),
        }),
        ..Default::default()
    };
    stream
        .write_all(&encode_request(&req))
        .await
        .expect("write");
    let mut decoder = FrameDecoder::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(rsp) = decoder.next_response().expect("frame") {
            return rsp;
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(n > 0, "closed");
        decoder.extend(&buf[..n]);
    }
}

#[tokio::test]
async fn usable_from_a_current_thread_tokio_test() {
    let server = TestServer::start();
    let rsp = register(&server.addr()).await;
    let sid = rsp.sid.expect("sid");
    assert_eq!(server.sessions().unwrap(), vec![sid]);
    drop(server); // dropped inside the async context
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_shared_between_tasks() {
    let cluster = std::sync::Arc::new(TestCluster::start(3));
    let c = std::sync::Arc::clone(&cluster);
    let task = tokio::spawn(async move {
        let addr = c.addrs()[0].clone();
        register(&addr).await.sid
    });
    let sid = task.await.expect("task").expect("sid");
    cluster.move_leader(1).unwrap();
    let rsp = register(&cluster.addrs()[0]).await;
    assert!(rsp.err.is_some(), "node 0 is a follower now");
    assert_eq!(cluster.sessions().unwrap(), vec![sid]);
}
