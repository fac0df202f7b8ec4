//! The TCP options every adapter sets on its connections, in one place.
//!
//! Owns: `TCP_NODELAY` once a connection is open ([`configure`]) and, on Linux,
//! `TCP_QUICKACK` re-armed after every read ([`acknowledge_promptly`]). Servers may keep
//! Nagle's algorithm on (the original does, PROTOCOL.md §1): the second of two small
//! answers then waits until the client acknowledges the first, and a delayed ACK costs
//! ~40 ms. Linux leaves quick-ACK mode by itself (it is not a permanent flag), hence the
//! re-arm per read: one `setsockopt`. Must never read or write the socket, and never fail
//! a connection: an option that cannot be set only costs latency.

use socket2::SockRef;

/// A socket whose options can be set: a file descriptor (Unix) or a socket (Windows).
#[cfg(unix)]
pub trait Socket: std::os::fd::AsFd {}
#[cfg(unix)]
impl<T: std::os::fd::AsFd> Socket for T {}
/// A socket whose options can be set: a file descriptor (Unix) or a socket (Windows).
#[cfg(windows)]
pub trait Socket: std::os::windows::io::AsSocket {}
#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket> Socket for T {}

/// Sets the options of a newly opened connection: `TCP_NODELAY` (small frames must not
/// wait for Nagle), and quick ACKs for the first answers.
pub fn configure<S: Socket>(stream: &S) {
    let _ = SockRef::from(stream).set_tcp_nodelay(true);
    acknowledge_promptly(stream);
}

/// Re-arms quick ACKs after a read, so that what was read is acknowledged at once
/// (Linux; elsewhere nothing).
pub fn acknowledge_promptly<S: Socket>(stream: &S) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = SockRef::from(stream).set_tcp_quickack(true);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn configure_disables_nagle() {
        let (client, _server) = pair();
        assert!(!client.nodelay().unwrap(), "TCP_NODELAY is off by default");
        configure(&client);
        assert!(client.nodelay().unwrap());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn acknowledge_promptly_rearms_quickack() {
        let (client, _server) = pair();
        let socket = SockRef::from(&client);
        socket.set_tcp_quickack(false).unwrap();
        assert!(!socket.tcp_quickack().unwrap());
        acknowledge_promptly(&client);
        assert!(socket.tcp_quickack().unwrap());
    }
}
