//! The client API shared by every adapter: [`AsyncClient`] (tokio, async-std, smol) and
//! [`BlockingClient`] (plain threads), generated from one definition so the two stay the
//! same method for method. Every method sends one command to the driver and waits for
//! its answer on a runtime-independent queue (a waker for async callers, a condition
//! variable for blocking ones: no polling either way).
//!
//! Owns: the two client types and their methods. Must never spawn, sleep or touch a
//! socket (those are the adapter's), nor retry: the core has decided everything by the
//! time an answer arrives.

use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use pyxis_core::{CreateMode, Error, EventMask, Node, Op, Reply, WatchMode};

use crate::handle::{ops, Handle};
use crate::options::ReadOptions;
use crate::watch::{SessionEvents, Watch};

/// A Pyxis client for async code (any runtime). Cheap to clone: clones share one
/// connection and session, and requests from all of them are pipelined. Dropping the
/// last clone closes the session (its ephemeral nodes are deleted) in the background.
/// Adapters wrap it in their `Client`, which derefs to it.
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
    pub fn new(handle: Handle) -> AsyncClient {
        AsyncClient { handle }
    }

    async fn call(&self, op: Op) -> Result<(Reply, Option<Watch>), Error> {
        let pending = self.handle.start(op);
        let result = poll_fn(|cx| pending.reply.poll_recv(cx)).await;
        self.handle.finish(pending, result)
    }

    /// Waits until a session is up and returns its id (`Error::Timeout` after `timeout`).
    /// Operations do not need this: they wait for the session by themselves.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<u64, Error> {
        let rx = self.handle.start_wait_connected(timeout);
        match poll_fn(|cx| rx.poll_recv(cx)).await {
            Some(Ok(answer)) => answer,
            _ => Err(Error::Closed),
        }
    }

    /// Closes the client gracefully: unregisters (deleting its ephemeral nodes), fails
    /// every pending call with `Closed`, ends every watch, and returns once done. Every
    /// later call on any clone fails with `Error::Closed`.
    pub async fn close(&self) {
        let rx = self.handle.start_close();
        // The queue ends (`None`) when the driver reports the client closed.
        while poll_fn(|cx| rx.poll_recv(cx)).await.is_some() {}
    }
}

impl BlockingClient {
    /// The client driven through `handle`.
    pub fn new(handle: Handle) -> BlockingClient {
        BlockingClient { handle }
    }

    fn call(&self, op: Op) -> Result<(Reply, Option<Watch>), Error> {
        let pending = self.handle.start(op);
        let result = pending.reply.recv_blocking();
        self.handle.finish(pending, result)
    }

    /// Waits until a session is up and returns its id (`Error::Timeout` after `timeout`).
    /// Operations do not need this: they wait for the session by themselves.
    pub fn wait_connected(&self, timeout: Duration) -> Result<u64, Error> {
        match self.handle.start_wait_connected(timeout).recv_blocking() {
            Some(Ok(answer)) => answer,
            _ => Err(Error::Closed),
        }
    }

    /// Closes the client gracefully: unregisters (deleting its ephemeral nodes), fails
    /// every pending call with `Closed`, ends every watch, and returns once done. Every
    /// later call on any clone fails with `Error::Closed`.
    pub fn close(&self) {
        let rx = self.handle.start_close();
        // The queue ends (`None`) when the driver reports the client closed.
        while rx.recv_blocking().is_some() {}
    }
}

/// The methods both clients share, written once: `$asyncness` is `async` or nothing,
/// `$aw` is `await` or nothing.
macro_rules! shared_api {
    ($client:ident, [$($asyncness:tt)?], [$($aw:tt)?]) => {
        impl $client {
            /// Creates the node `path` holding `data` (its parent must exist and be persistent).
            pub $($asyncness)? fn create(
                &self,
                path: &str,
                data: impl Into<Bytes>,
                mode: CreateMode,
            ) -> Result<(), Error> {
                self.call(ops::create(path, data.into(), mode))$(.$aw)?.map(drop)
            }

            /// Creates an ephemeral node: it is deleted when this client's session ends.
            pub $($asyncness)? fn create_ephemeral(&self, path: &str, data: impl Into<Bytes>) -> Result<(), Error> {
                self.create(path, data, CreateMode::Ephemeral)$(.$aw)?
            }

            /// Deletes the node `path` (it must have no children).
            pub $($asyncness)? fn delete(&self, path: &str) -> Result<(), Error> {
                self.call(ops::delete(path))$(.$aw)?.map(drop)
            }

            /// Replaces the data of `path` (its version grows by one).
            pub $($asyncness)? fn write(&self, path: &str, data: impl Into<Bytes>) -> Result<(), Error> {
                self.call(ops::write(path, data.into()))$(.$aw)?.map(drop)
            }

            /// Reads the node `path`: data, children, flags, version, owner.
            pub $($asyncness)? fn read(&self, path: &str) -> Result<Node, Error> {
                self.read_with(path, ReadOptions::default())$(.$aw)?
            }

            /// Reads the node `path` with explicit options (e.g. keeping hidden children).
            pub $($asyncness)? fn read_with(&self, path: &str, options: ReadOptions) -> Result<Node, Error> {
                let (reply, _) = self.call(ops::read(path, options.show_hidden, None))$(.$aw)??;
                ops::node(reply)
            }

            /// The node `path` if it exists.
            pub $($asyncness)? fn exists(&self, path: &str) -> Result<Option<Node>, Error> {
                let (reply, _) = self.call(ops::exists(path))$(.$aw)??;
                ops::maybe_node(reply)
            }

            /// Ends the session (its ephemeral nodes are deleted); the client stays usable and
            /// the next operation registers a new session.
            pub $($asyncness)? fn unregister(&self) -> Result<(), Error> {
                self.call(Op::Unregister)$(.$aw)?.map(drop)
            }

            /// Watches `path` for the event types in `mask` (and its descendants if `recursive`),
            /// once: the returned [`Watch`] yields the first matching event and ends. Returns
            /// after the server has registered the watch (the node need not exist: a watch for
            /// `CREATE` waits for it). Dropping the watch unwatches.
            pub $($asyncness)? fn watch(&self, path: &str, mask: EventMask, recursive: bool) -> Result<Watch, Error> {
                let (_, watch) = self
                    .call(ops::watch(path, mask, recursive, WatchMode::OneShot))
                    $(.$aw)??;
                ops::armed(watch)
            }

            /// Like [`watch`](Self::watch), but the watch re-arms after every event and keeps
            /// yielding until dropped.
            pub $($asyncness)? fn watch_persistent(
                &self,
                path: &str,
                mask: EventMask,
                recursive: bool,
            ) -> Result<Watch, Error> {
                let (_, watch) = self
                    .call(ops::watch(path, mask, recursive, WatchMode::Persistent))
                    $(.$aw)??;
                ops::armed(watch)
            }

            /// Reads `path` and arms a one-shot watch on it in the same request.
            pub $($asyncness)? fn read_and_watch(&self, path: &str, mask: EventMask) -> Result<(Node, Watch), Error> {
                let spec = ops::spec(path, mask, false, WatchMode::OneShot);
                let (reply, watch) = self.call(ops::read(path, None, Some(spec)))$(.$aw)??;
                Ok((ops::node(reply)?, ops::armed(watch)?))
            }

            /// The session id (the one being resumed while reconnecting), if any.
            pub fn sid(&self) -> Option<u64> {
                self.handle.sid()
            }

            /// The session's state changes from now on (see [`SessionEvents`]).
            pub fn session_events(&self) -> SessionEvents {
                self.handle.subscribe()
            }
        }
    };
}

shared_api!(AsyncClient, [async], [await]);
shared_api!(BlockingClient, [], []);

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
