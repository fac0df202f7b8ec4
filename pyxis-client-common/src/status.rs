//! What client handles share with the driver without a round trip through the command
//! channel: the session id as the driver last saw it (so `Client::sid` answers at once),
//! and the session-event subscribers (so a subscription takes effect the moment
//! `session_events` returns, not when the driver gets to a command).
//!
//! Owns: [`Status`]. Must never block: the driver only takes the subscriber lock to push
//! into non-blocking queues, and handles only to add a subscriber.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pyxis_core::SessionEvent;

use crate::queue::EventSender;

/// The state shared between one driver and its client handles.
#[derive(Clone, Default)]
pub struct Status {
    sid: Arc<AtomicU64>,
    subscribers: Arc<Mutex<Vec<EventSender<SessionEvent>>>>,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("sid", &self.sid())
            .finish_non_exhaustive()
    }
}

impl Status {
    /// The current session id, or the one being resumed while reconnecting (0 stands for
    /// none inside: the server never hands out 0).
    pub fn sid(&self) -> Option<u64> {
        match self.sid.load(Ordering::Acquire) {
            0 => None,
            sid => Some(sid),
        }
    }

    pub(crate) fn set_sid(&self, sid: Option<u64>) {
        self.sid.store(sid.unwrap_or(0), Ordering::Release);
    }

    /// Delivers every later session event to `subscriber`.
    pub(crate) fn subscribe(&self, subscriber: EventSender<SessionEvent>) {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(subscriber);
    }

    /// Hands `event` to every subscriber still listening, forgetting the others.
    pub(crate) fn publish(&self, event: &SessionEvent) {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subscribers.retain(|s| !s.is_closed());
        for subscriber in subscribers.iter() {
            subscriber.push(event.clone());
        }
    }
}
