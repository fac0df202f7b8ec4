//! The TCP options every adapter sets on its connections, in one place.
//!
//! Owns: `TCP_NODELAY` once a connection is open ([`configure`]) and, on Linux,
//! `TCP_QUICKACK` to acknowledge what was read at once ([`acknowledge_promptly`]).
//! Servers may keep Nagle's algorithm on (the original does): the second of two small
//! answers then waits until the client acknowledges the first, and a delayed ACK costs
//! ~40 ms. Linux leaves quick-ACK mode by itself (it is not a permanent flag), so the
//! loops set it again, one `setsockopt`, whenever they would wait with bytes read that
//! no write of theirs acknowledged (`Driver::take_unacknowledged` says when). Also what
//! a failed connection's I/O error means to the core ([`failure`]: refused, unresolved,
//! timed out, closed). Must never read or write the socket, and never fail a
//! connection: an option that cannot be set only costs latency.

use std::io;

use pyxis_core::IoFailure;
use socket2::SockRef;

/// What an I/O error that ended (or prevented) a connection means, for the errors
/// callers get (`pyxis_core::Cause`): the kinds a user can act on by name, anything
/// else with the system's wording.
pub fn failure(error: &io::Error) -> IoFailure {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => IoFailure::Refused,
        io::ErrorKind::TimedOut => IoFailure::TimedOut,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => IoFailure::Closed,
        _ => {
            let text = error.to_string();
            // The standard library's (and so every runtime's) resolver error, and the
            // blocking adapter's for a name with no address.
            if text.contains("lookup address") || text.contains("resolved to no address") {
                IoFailure::Unresolved
            } else {
                IoFailure::Other(text)
            }
        }
    }
}

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

/// Acknowledges at once what was read and not yet acknowledged, and re-arms quick ACKs
/// for what comes next (Linux; elsewhere nothing).
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

    #[test]
    fn io_errors_map_to_what_a_user_can_act_on() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(failure(&refused), IoFailure::Refused);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(failure(&eof), IoFailure::Closed);
        // `.invalid` never resolves (RFC 6761).
        let unresolved = std::net::ToSocketAddrs::to_socket_addrs("no-such-host.invalid:7000");
        let Err(e) = unresolved else {
            panic!("a .invalid name resolved");
        };
        assert_eq!(failure(&e), IoFailure::Unresolved, "{e}");
        let other = io::Error::other("weird");
        assert_eq!(failure(&other), IoFailure::Other("weird".into()));
    }
}
