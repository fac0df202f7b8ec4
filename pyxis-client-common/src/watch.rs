//! What the application holds to receive events: [`Watch`] (one watch's events) and
//! [`SessionEvents`] (the session's state changes), each readable as an async
//! [`Stream`], with an async `next`, or blocking with `recv` / `recv_timeout` / `iter`.
//!
//! Owns: the receiving side of the bounded event queues and the unwatch-on-drop rule.
//! Must never block the driver: a consumer that does not read only loses its own oldest
//! events (reported as `Lagged`), it never delays pings or other callers.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use pyxis_core::{Error, WatchEvent, WatchId};

use crate::driver::Command;
use crate::handle::CommandSink;
use crate::queue::{EventReceiver, Lagged, Timeout};
use crate::session::SessionEvent;

/// Why a watch yields an error item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// This many of the oldest unread events were dropped because the watch's queue was
    /// full (`Options::event_queue_bound`); the events after this item are the newest
    /// ones kept. Only a persistent watch can lag.
    #[error("{0} unread watch events were dropped")]
    Lagged(u64),
    /// The watch ended without (more) events: the client closed, or the session expired
    /// and the watch could not be kept. The stream ends after this item.
    #[error("watch ended: {0}")]
    Ended(Error),
}

/// One watch's events. A one-shot watch yields one event and then ends; a persistent
/// watch (`watch_persistent`) keeps yielding until dropped. Dropping it unwatches. A
/// watch does not keep its client alive: once the last client handle is dropped (or
/// `close` is called) it yields `Ended(Closed)` and ends.
///
/// Events are queued for the application without ever blocking the client: if more than
/// `Options::event_queue_bound` events are unread, the oldest are discarded and a
/// [`WatchError::Lagged`] item with their number comes before the kept ones.
pub struct Watch {
    id: Option<WatchId>,
    path: String,
    events: EventReceiver<Result<WatchEvent, WatchError>>,
    sink: Arc<dyn CommandSink>,
}

fn flatten<T, E: From<Lagged>>(item: Result<Result<T, E>, Lagged>) -> Result<T, E> {
    item.unwrap_or_else(|lagged| Err(E::from(lagged)))
}

impl From<Lagged> for WatchError {
    fn from(lagged: Lagged) -> Self {
        WatchError::Lagged(lagged.0)
    }
}

impl Watch {
    pub(crate) fn new(
        id: Option<WatchId>,
        path: String,
        events: EventReceiver<Result<WatchEvent, WatchError>>,
        sink: Arc<dyn CommandSink>,
    ) -> Watch {
        Watch {
            id,
            path,
            events,
            sink,
        }
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The core's id of this watch.
    pub fn id(&self) -> Option<WatchId> {
        self.id
    }

    /// The next event (`None` once the watch has ended).
    pub async fn next(&mut self) -> Option<Result<WatchEvent, WatchError>> {
        poll_fn(|cx| self.events.poll_recv(cx)).await.map(flatten)
    }

    /// The next event, **blocking the calling thread** (`None` once the watch has
    /// ended). For threads only (the blocking client): in async code use
    /// [`next`](Self::next) or the `Stream`, since this would stall the executor thread,
    /// and with it possibly the client's own driver.
    pub fn recv(&self) -> Option<Result<WatchEvent, WatchError>> {
        self.events.recv_blocking().map(flatten)
    }

    /// Like [`recv`](Self::recv), giving up after `timeout`.
    pub fn recv_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<Result<WatchEvent, WatchError>>, Timeout> {
        Ok(self.events.recv_timeout(timeout)?.map(flatten))
    }

    /// An event if one is ready now.
    pub fn try_recv(&self) -> Option<Result<WatchEvent, WatchError>> {
        self.events.try_recv().map(flatten)
    }

    /// A blocking iterator over the events, ending when the watch ends.
    pub fn iter(&self) -> impl Iterator<Item = Result<WatchEvent, WatchError>> + '_ {
        std::iter::from_fn(|| self.recv())
    }
}

impl Stream for Watch {
    type Item = Result<WatchEvent, WatchError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx).map(|item| item.map(flatten))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.sink.send(Command::Unwatch(id));
        }
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish()
    }
}

/// The session's state changes from the moment of subscription (see [`SessionEvent`]);
/// the stream ends after `Closed`, and a subscription made after the client closed ends
/// at once.
///
/// Bounded like [`Watch`]: unread events past `Options::event_queue_bound` are dropped
/// oldest first and reported as one `Err(Lagged(n))` item.
pub struct SessionEvents {
    events: EventReceiver<SessionEvent>,
}

impl SessionEvents {
    pub(crate) fn new(events: EventReceiver<SessionEvent>) -> SessionEvents {
        SessionEvents { events }
    }

    /// The next session event (`None` after `Closed`: the stream ends).
    pub async fn next(&mut self) -> Option<Result<SessionEvent, Lagged>> {
        poll_fn(|cx| self.events.poll_recv(cx)).await
    }

    /// The next session event, **blocking the calling thread** (`None` after `Closed`).
    /// For threads only (the blocking client): in async code use [`next`](Self::next)
    /// or the `Stream`, since this would stall the executor thread.
    pub fn recv(&self) -> Option<Result<SessionEvent, Lagged>> {
        self.events.recv_blocking()
    }

    /// Like [`recv`](Self::recv), giving up after `timeout`.
    pub fn recv_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<Result<SessionEvent, Lagged>>, Timeout> {
        self.events.recv_timeout(timeout)
    }

    /// An event if one is ready now.
    pub fn try_recv(&self) -> Option<Result<SessionEvent, Lagged>> {
        self.events.try_recv()
    }

    /// A blocking iterator over the events.
    pub fn iter(&self) -> impl Iterator<Item = Result<SessionEvent, Lagged>> + '_ {
        std::iter::from_fn(|| self.recv())
    }
}

impl Stream for SessionEvents {
    type Item = Result<SessionEvent, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

impl std::fmt::Debug for SessionEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEvents").finish_non_exhaustive()
    }
}
