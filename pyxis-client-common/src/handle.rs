//! The application side of a client: a cloneable [`Handle`] that turns calls into
//! [`Command`]s for the driver and hands back the queues the answers arrive on.
//!
//! Owns: [`CommandSink`] (how an adapter's command channel is reached), [`Handle`] (shared
//! by every clone of a client; the last one dropped tells the driver to close), and the
//! translation of replies into the values the API returns. Must never talk to the core
//! directly or wait for anything itself: waiting is the async or blocking API's job.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pyxis_core::{Error, Node, Op, Reply, WatchEvent, WatchMode, WatchSpec};

use crate::driver::Command;
use crate::options::Options;
use crate::queue::{channel, EventReceiver};
use crate::status::Status;
use crate::watch::{SessionEvents, Watch, WatchError};

/// The sending end of an adapter's command channel.
pub trait CommandSink: Send + Sync + 'static {
    /// Hands `command` to the driver; `false` if the driver is gone. Never blocks.
    fn send(&self, command: Command) -> bool;
}

struct Inner {
    sink: Arc<dyn CommandSink>,
    status: Status,
    bound: usize,
    session_timeout: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.sink.send(Command::HandlesGone);
    }
}

/// What a watch is built from once its call succeeds: its path, its event queue, and
/// where its unwatch goes.
type WatchParts = (
    String,
    EventReceiver<Result<WatchEvent, WatchError>>,
    Arc<dyn CommandSink>,
);

/// A call's result as the driver sends it.
type Answer = Result<Reply, Error>;

/// The receiving end of a call's one-shot reply slot: waited for on a thread
/// ([`wait`](Self::wait)) or polled in a task ([`poll`](Self::poll), which turns it into
/// the slot's future on the first poll).
pub(crate) enum ReplyReceiver {
    Fresh(oneshot::Receiver<Answer>),
    Polled(oneshot::AsyncReceiver<Answer>),
    Done,
}

impl ReplyReceiver {
    /// The answer, once sent; `Ready(None)` if the driver dropped the call unanswered
    /// (it is gone), or when polled again after the answer was taken.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        if matches!(self, ReplyReceiver::Fresh(_)) {
            if let ReplyReceiver::Fresh(rx) = std::mem::replace(self, ReplyReceiver::Done) {
                *self = ReplyReceiver::Polled(rx.into_future());
            }
        }
        let ReplyReceiver::Polled(rx) = self else {
            return Poll::Ready(None);
        };
        let answer = std::task::ready!(Pin::new(rx).poll(cx));
        *self = ReplyReceiver::Done;
        Poll::Ready(answer.ok())
    }

    /// Waits for the answer on this thread; `None` if the driver dropped the call
    /// unanswered.
    pub(crate) fn wait(&mut self) -> Option<Answer> {
        match std::mem::replace(self, ReplyReceiver::Done) {
            ReplyReceiver::Fresh(rx) => rx.recv().ok(),
            ReplyReceiver::Polled(rx) => futures_lite::future::block_on(rx).ok(),
            ReplyReceiver::Done => None,
        }
    }
}

/// A call on its way: the slot its reply arrives in and, for a call that arms a watch,
/// the watch's path and queue and where its unwatch goes.
pub(crate) struct Pending {
    pub(crate) reply: ReplyReceiver,
    watch: Option<WatchParts>,
}

impl Pending {
    /// Turns the finished call's answer into the reply and the watch it armed.
    pub(crate) fn finish(self, answer: Option<Answer>) -> Result<(Reply, Option<Watch>), Error> {
        // `None`: the driver is gone.
        let reply = answer.ok_or(Error::Closed)??;
        let watch = self.watch.map(|(path, events, sink)| {
            let id = match &reply {
                Reply::Node { watch, .. } | Reply::Exists { watch, .. } => *watch,
                _ => None,
            };
            Watch::new(id, path, events, sink)
        });
        Ok((reply, watch))
    }
}

/// The application side of one client, shared by all its clones: it turns calls into
/// [`Command`]s for the driver; dropping the last clone tells the driver to close.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("sid", &self.inner.status.sid())
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// A handle on the driver reached through `sink`, reading the session id from
    /// `status` (from `Driver::status`).
    pub fn new(sink: Arc<dyn CommandSink>, status: Status, options: &Options) -> Handle {
        Handle {
            inner: Arc::new(Inner {
                sink,
                status,
                bound: options.event_queue_bound.max(1),
                session_timeout: options.session_timeout,
            }),
        }
    }

    /// The session id (the one being resumed while reconnecting), if any.
    pub fn sid(&self) -> Option<u64> {
        self.inner.status.sid()
    }

    /// The session timeout this client asked the server for.
    pub(crate) fn session_timeout(&self) -> Duration {
        self.inner.session_timeout
    }

    /// The state the driver shares with handles.
    pub(crate) fn status(&self) -> &Status {
        &self.inner.status
    }

    /// Sends `op` to the driver, with a queue for the events of the watch it arms, if
    /// any. A driver that is gone makes the reply queue end at once (`Closed`).
    pub(crate) fn start(&self, op: Op) -> Pending {
        let watch_path = match &op {
            Op::Read {
                path,
                watch: Some(_),
                ..
            }
            | Op::Exists {
                path,
                watch: Some(_),
            } => Some(path.clone()),
            _ => None,
        };
        let (reply_tx, reply) = oneshot::channel();
        let (watch_tx, watch) = match watch_path {
            Some(path) => {
                let (tx, rx) = channel(self.inner.bound);
                (Some(tx), Some((path, rx, self.inner.sink.clone())))
            }
            None => (None, None),
        };
        // On failure the command, and with it the reply sender, is dropped: the reply
        // slot then ends empty, which the caller reports as `Closed`.
        self.inner.sink.send(Command::Call {
            op,
            reply: reply_tx,
            watch: watch_tx,
        });
        Pending {
            reply: ReplyReceiver::Fresh(reply),
            watch,
        }
    }

    /// Subscribes to session events from now on.
    pub(crate) fn subscribe(&self) -> SessionEvents {
        let (tx, rx) = channel(self.inner.bound);
        self.inner.status.subscribe(tx);
        SessionEvents::new(rx)
    }

    /// Asks the driver for the session id once connected, or `Timeout` after `timeout`
    /// (counted on the driver's clock; a timeout too large to add to it, such as
    /// `Duration::MAX`, waits without a deadline).
    pub(crate) fn start_wait_connected(
        &self,
        timeout: Duration,
    ) -> EventReceiver<Result<u64, Error>> {
        let (reply, rx) = channel(1);
        self.inner
            .sink
            .send(Command::WaitConnected { timeout, reply });
        rx
    }

    /// Asks the driver to close; the returned queue ends once the client is closed.
    pub(crate) fn start_close(&self) -> EventReceiver<()> {
        let (done, rx) = channel(1);
        self.inner.sink.send(Command::Close { done });
        rx
    }
}

/// The operations behind the API methods, shared by the async and blocking APIs.
pub(crate) mod ops {
    use super::*;
    use bytes::Bytes;
    use pyxis_core::{CreateMode, EventMask};

    pub(crate) fn create(path: &str, data: Bytes, mode: CreateMode) -> Op {
        Op::Create {
            path: path.to_owned(),
            data: Some(data),
            mode,
        }
    }

    pub(crate) fn delete(path: &str) -> Op {
        Op::Delete {
            path: path.to_owned(),
        }
    }

    pub(crate) fn write(path: &str, data: Bytes) -> Op {
        Op::Write {
            path: path.to_owned(),
            data,
        }
    }

    pub(crate) fn read(path: &str, show_hidden: Option<bool>, watch: Option<WatchSpec>) -> Op {
        Op::Read {
            path: path.to_owned(),
            show_hidden,
            watch,
        }
    }

    /// A watch is armed with an exists (stat + watch): the call returns once the server
    /// has registered it, so no later change can slip by unseen.
    pub(crate) fn watch(path: &str, mask: EventMask, recursive: bool, mode: WatchMode) -> Op {
        Op::Exists {
            path: path.to_owned(),
            watch: Some(spec(path, mask, recursive, mode)),
        }
    }

    pub(crate) fn spec(path: &str, mask: EventMask, recursive: bool, mode: WatchMode) -> WatchSpec {
        let mut spec = WatchSpec::new(path, mask);
        spec.recursive = recursive;
        spec.mode = mode;
        spec
    }

    pub(crate) fn exists(path: &str) -> Op {
        Op::Exists {
            path: path.to_owned(),
            watch: None,
        }
    }

    /// What a finished call returns, from its reply and the watch it armed.
    pub(crate) type Finish<T> = fn(Reply, Option<Watch>) -> Result<T, Error>;

    /// A call that returns nothing.
    pub(crate) fn done(_: Reply, _: Option<Watch>) -> Result<(), Error> {
        Ok(())
    }

    /// The node of a read.
    pub(crate) fn node(reply: Reply, _: Option<Watch>) -> Result<Node, Error> {
        match reply {
            Reply::Node { node, .. } => Ok(node),
            other => Err(unexpected(&other)),
        }
    }

    /// The node of an exists.
    pub(crate) fn maybe_node(reply: Reply, _: Option<Watch>) -> Result<Option<Node>, Error> {
        match reply {
            Reply::Exists { node, .. } => Ok(node),
            other => Err(unexpected(&other)),
        }
    }

    /// The watch a watching call must have produced.
    pub(crate) fn watch_only(_: Reply, watch: Option<Watch>) -> Result<Watch, Error> {
        armed(watch)
    }

    /// The node read and the watch armed with it.
    pub(crate) fn node_and_watch(
        reply: Reply,
        watch: Option<Watch>,
    ) -> Result<(Node, Watch), Error> {
        Ok((node(reply, None)?, armed(watch)?))
    }

    /// The node (or its absence) and the watch armed in the same server step.
    pub(crate) fn maybe_node_and_watch(
        reply: Reply,
        watch: Option<Watch>,
    ) -> Result<(Option<Node>, Watch), Error> {
        Ok((maybe_node(reply, None)?, armed(watch)?))
    }

    fn unexpected(reply: &Reply) -> Error {
        Error::Protocol {
            reason: format!("unexpected reply kind: {reply:?}"),
        }
    }

    fn armed(watch: Option<Watch>) -> Result<Watch, Error> {
        watch.ok_or_else(|| Error::Protocol {
            reason: "a watching call returned no watch".into(),
        })
    }
}
