//! The client API shared by every adapter: [`AsyncClient`] (tokio, async-std, smol) and
//! [`BlockingClient`] (plain threads), generated from one definition so the two stay the
//! same method for method. Every method sends one command to the driver when it is
//! called and waits for its answer in a runtime-independent one-shot slot (a waker for
//! async callers, the parked thread for blocking ones: no polling either way).
//!
//! Owns: the two client types and their methods. Must never spawn, sleep or touch a
//! socket (those are the adapter's), nor retry: the core has decided everything by the
//! time an answer arrives.

use std::future::{poll_fn, Future};
use std::time::Duration;

use bytes::Bytes;
use pyxis_core::{CreateMode, Error, EventMask, Node, Op, WatchMode};

use crate::call::Call;
use crate::handle::{ops, Handle};
use crate::options::ReadOptions;
use crate::status::{ClientState, Stats};
use crate::watch::{SessionEvents, Watch};

/// A Pyxis client for async code (any runtime). Cheap to clone: clones share one
/// connection and session, and requests from all of them are pipelined. Dropping the
/// last clone closes the session (its ephemeral nodes are deleted) in the background.
/// Adapters wrap it in their `Client`, which derefs to it.
///
/// Every operation is sent when its method is called and returns a [`Call`] to await:
/// requests leave in call order, not in await order (see [`Call`]).
#[derive(Debug, Clone)]
pub struct AsyncClient {
    handle: Handle,
}

/// A Pyxis client for blocking code: the same API as [`AsyncClient`], each method
/// waiting on the calling thread. Cheap to clone and usable from many threads at once.
#[derive(Debug, Clone)]
pub struct BlockingClient {
    handle: Handle,
}

impl AsyncClient {
    /// The client driven through `handle`.
    #[doc(hidden)]
    pub fn new(handle: Handle) -> AsyncClient {
        AsyncClient { handle }
    }

    fn send<T>(&self, op: Op, finish: ops::Finish<T>) -> Call<T> {
        Call::new(self.handle.start(op), finish)
    }

    /// Waits until a session is up and returns its id. Operations do not need this:
    /// they wait for the session by themselves. `Duration::MAX` waits without a
    /// deadline. The request is registered when this is called.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no session is up after `timeout`; [`Error::Closed`] if the
    /// client is (or gets) closed.
    pub fn wait_connected(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'static {
        let rx = self.handle.start_wait_connected(timeout);
        async move {
            match poll_fn(|cx| rx.poll_recv(cx)).await {
                Some(Ok(answer)) => answer,
                _ => Err(Error::Closed),
            }
        }
    }

    /// Closes the client gracefully: unregisters (deleting its ephemeral nodes), fails
    /// every pending call with `Closed`, ends every watch and session-event stream, and
    /// completes once done. Every later call on any clone fails with `Error::Closed`.
    /// The close is requested when this is called, after every call made before it.
    pub fn close(&self) -> impl Future<Output = ()> + Send + 'static {
        let rx = self.handle.start_close();
        // The queue ends (`None`) when the driver reports the client closed.
        async move { while poll_fn(|cx| rx.poll_recv(cx)).await.is_some() {} }
    }
}

impl BlockingClient {
    /// The client driven through `handle`.
    #[doc(hidden)]
    pub fn new(handle: Handle) -> BlockingClient {
        BlockingClient { handle }
    }

    fn send<T>(&self, op: Op, finish: ops::Finish<T>) -> Call<T> {
        Call::new(self.handle.start(op), finish)
    }

    /// The same client (same connection and session) as an [`AsyncClient`], for async
    /// code and for libraries written once over `AsyncClient` (such as `pyxis-recipes`).
    pub fn to_async(&self) -> AsyncClient {
        AsyncClient::new(self.handle.clone())
    }

    /// Waits until a session is up and returns its id. Operations do not need this:
    /// they wait for the session by themselves. `Duration::MAX` waits without a
    /// deadline.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no session is up after `timeout`; [`Error::Closed`] if the
    /// client is (or gets) closed.
    pub fn wait_connected(&self, timeout: Duration) -> Result<u64, Error> {
        match self.handle.start_wait_connected(timeout).recv_blocking() {
            Some(Ok(answer)) => answer,
            _ => Err(Error::Closed),
        }
    }

    /// Closes the client gracefully: unregisters (deleting its ephemeral nodes), fails
    /// every pending call with `Closed`, ends every watch and session-event stream, and
    /// returns once done. Every later call on any clone fails with `Error::Closed`.
    pub fn close(&self) {
        let rx = self.handle.start_close();
        // The queue ends (`None`) when the driver reports the client closed.
        while rx.recv_blocking().is_some() {}
    }
}

/// What the async API's operations return.
macro_rules! async_out {
    ($t:ty) => { Call<$t> };
}

/// What the blocking API's operations return.
macro_rules! blocking_out {
    ($t:ty) => { Result<$t, Error> };
}

/// The `# Errors` section of an operation: its own errors, then the ones every
/// operation can meet.
macro_rules! errors {
    ($($own:literal)*) => {
        concat!(
            "# Errors\n\n",
            $("- ", $own, "\n",)*
            "- [`Error::InvalidPath`] (nothing was sent) for a malformed path;\n",
            "- [`Error::Timeout`] when no answer came within `Options::request_timeout` ",
            "(across reconnects), and [`Error::ConnectionLoss`] / [`Error::Again`] when the ",
            "connection or the leader was lost with the request in flight: for a create, ",
            "delete, write or unregister `Error::is_outcome_unknown` then says whether it ",
            "may have been applied (it is never retried);\n",
            "- [`Error::SessionExpired`] when the session expired under the request;\n",
            "- [`Error::Closed`] once the client is closed.\n",
        )
    };
}

/// The methods both clients share, written once: `$out` names the return type of an
/// operation and `$sent` what is done with the sent [`Call`] (returned, or waited for).
macro_rules! shared_api {
    ($client:ident, $out:ident, $sent:expr) => {
        impl $client {
            /// Creates the node `path` holding `data` (its parent must exist and be persistent).
            ///
            #[doc = errors!("[`Error::Exists`] if it exists; [`Error::NotFound`] (naming the parent) if its parent does not;"
                "[`Error::InvalidArgument`] if the parent is ephemeral or the path is reserved;"
                "[`Error::DataTooLarge`] (nothing was sent) for data over 1 MiB;")]
            pub fn create(&self, path: &str, data: impl Into<Bytes>, mode: CreateMode) -> $out!(()) {
                $sent(self.send(ops::create(path, data.into(), mode), ops::done))
            }

            /// Creates an ephemeral node: it is deleted when this client's session ends.
            ///
            #[doc = errors!("as [`create`](Self::create);")]
            pub fn create_ephemeral(&self, path: &str, data: impl Into<Bytes>) -> $out!(()) {
                self.create(path, data, CreateMode::Ephemeral)
            }

            /// Deletes the node `path` (it must have no children).
            ///
            #[doc = errors!("[`Error::NotFound`] if it does not exist; [`Error::InvalidArgument`] if it has children;")]
            pub fn delete(&self, path: &str) -> $out!(()) {
                $sent(self.send(ops::delete(path), ops::done))
            }

            /// Replaces the data of `path` (its version grows by one).
            ///
            #[doc = errors!("[`Error::NotFound`] if it does not exist; [`Error::DataTooLarge`] (nothing was sent) for data over 1 MiB;")]
            pub fn write(&self, path: &str, data: impl Into<Bytes>) -> $out!(()) {
                $sent(self.send(ops::write(path, data.into()), ops::done))
            }

            /// Reads the node `path`: data, children, flags, version, owner.
            ///
            #[doc = errors!("[`Error::NotFound`] if it does not exist;")]
            pub fn read(&self, path: &str) -> $out!(Node) {
                self.read_with(path, ReadOptions::default())
            }

            /// Reads the node `path` with explicit options (e.g. keeping hidden children).
            ///
            #[doc = errors!("[`Error::NotFound`] if it does not exist;")]
            pub fn read_with(&self, path: &str, options: ReadOptions) -> $out!(Node) {
                $sent(self.send(ops::read(path, options.show_hidden, None), ops::node))
            }

            /// The node `path` if it exists (`None` if not: that is not an error).
            ///
            #[doc = errors!()]
            pub fn exists(&self, path: &str) -> $out!(Option<Node>) {
                $sent(self.send(ops::exists(path), ops::maybe_node))
            }

            /// Ends the session (its ephemeral nodes are deleted); the client stays usable and
            /// the next operation registers a new session.
            ///
            #[doc = errors!()]
            pub fn unregister(&self) -> $out!(()) {
                $sent(self.send(Op::Unregister, ops::done))
            }

            /// Watches `path` for the event types in `mask` (and its descendants if `recursive`),
            /// once: the returned [`Watch`] yields the first matching event and ends. Completes
            /// after the server has registered the watch (the node need not exist: a watch for
            /// `CREATE` waits for it). Dropping the watch unwatches.
            ///
            /// To act on the node's state as well, use
            /// [`exists_and_watch`](Self::exists_and_watch): checking the state in a separate
            /// call leaves a gap in which a change is seen by neither.
            ///
            #[doc = errors!()]
            pub fn watch(&self, path: &str, mask: EventMask, recursive: bool) -> $out!(Watch) {
                $sent(self.send(ops::watch(path, mask, recursive, WatchMode::OneShot), ops::watch_only))
            }

            /// Like [`watch`](Self::watch), but the watch re-arms after every event and keeps
            /// yielding until dropped.
            ///
            #[doc = errors!()]
            pub fn watch_persistent(&self, path: &str, mask: EventMask, recursive: bool) -> $out!(Watch) {
                $sent(self.send(ops::watch(path, mask, recursive, WatchMode::Persistent), ops::watch_only))
            }

            /// The node `path` if it exists, and a one-shot watch on it armed in the same
            /// server step (a stat that arms the watch whether or not the node exists): any
            /// change after the returned state fires the watch. This is the building block of
            /// waiting for a node to go away (a lock's waiter: if the state is `None` it is
            /// gone already, otherwise wait for `DELETE`) or to appear.
            ///
            #[doc = errors!()]
            pub fn exists_and_watch(
                &self,
                path: &str,
                mask: EventMask,
                recursive: bool,
            ) -> $out!((Option<Node>, Watch)) {
                $sent(self.send(
                    ops::watch(path, mask, recursive, WatchMode::OneShot),
                    ops::maybe_node_and_watch,
                ))
            }

            /// Reads `path` and arms a one-shot watch on it in the same request.
            ///
            #[doc = errors!("[`Error::NotFound`] if it does not exist (no watch is left armed);")]
            pub fn read_and_watch(&self, path: &str, mask: EventMask) -> $out!((Node, Watch)) {
                let spec = ops::spec(path, mask, false, WatchMode::OneShot);
                $sent(self.send(ops::read(path, None, Some(spec)), ops::node_and_watch))
            }

            /// The session id (the one being resumed while reconnecting), if any.
            pub fn sid(&self) -> Option<u64> {
                self.handle.sid()
            }

            /// The session timeout this client asked the server for
            /// (`Options::session_timeout`; the server may raise it to its minimum).
            pub fn session_timeout(&self) -> Duration {
                self.handle.session_timeout()
            }

            /// Where the client stands now: connecting, connected (with the session id),
            /// disconnected since when, idle, or closed. Answers at once.
            pub fn state(&self) -> ClientState {
                self.handle.status().state()
            }

            /// A snapshot of the client's counters (requests by kind, reconnects,
            /// connection attempts, redirects, re-registrations of every watch,
            /// inferred and dropped events).
            pub fn stats(&self) -> Stats {
                self.handle.status().stats()
            }

            /// The session's state changes from now on (see [`SessionEvents`]); once the
            /// client is closed the stream ends at once.
            pub fn session_events(&self) -> SessionEvents {
                self.handle.subscribe()
            }
        }
    };
}

shared_api!(AsyncClient, async_out, std::convert::identity);
shared_api!(BlockingClient, blocking_out, Call::wait);

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + Sync + Unpin + 'static>() {}

    #[test]
    fn handles_can_be_shared_across_tasks_and_threads() {
        shareable::<AsyncClient>();
        shareable::<BlockingClient>();
        sendable::<Watch>();
        sendable::<SessionEvents>();
    }
}
