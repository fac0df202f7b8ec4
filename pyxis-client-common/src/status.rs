//! What client handles read without a round trip through the driver's command channel:
//! the session id and [`ClientState`] as the driver last saw them (so `Client::sid` and
//! `Client::state` answer at once), the session-event subscribers (so a subscription
//! takes effect the moment `session_events` returns, not when the driver gets to a
//! command), and the counters of [`Stats`].
//!
//! Owns: [`Status`], [`ClientState`], [`Stats`]. Must never block: the driver only takes
//! the lock to push into non-blocking queues or store a changed state, and handles only
//! to add a subscriber or read the state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::queue::EventSender;
use crate::session::SessionEvent;

/// Where the client stands, from [`state`](crate::AsyncClient::state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientState {
    /// No session yet: looking for the leader or registering.
    Connecting,
    /// A session is up and requests flow.
    Connected {
        /// The session id.
        sid: u64,
    },
    /// The connection was lost at `since` and the client is reconnecting to resume the
    /// same session (calls wait for it, up to their deadline). Once this has lasted
    /// longer than the session timeout, the server has probably expired the session
    /// ([`SessionEvent::Lost`]).
    Disconnected {
        /// When the connection was lost.
        since: Instant,
    },
    /// No session and none wanted (after `unregister`): the next call registers one.
    Idle,
    /// The client is closed (or closing): every call fails with `Error::Closed`.
    Closed,
}

/// Counters of what the client did since it started, from
/// [`stats`](crate::AsyncClient::stats). Each is a plain count; compare two snapshots
/// to see a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Creates sent (both modes).
    pub creates: u64,
    /// Deletes sent.
    pub deletes: u64,
    /// Writes sent.
    pub writes: u64,
    /// Reads sent (with or without a watch).
    pub reads: u64,
    /// Exists calls sent, including the ones that arm a watch.
    pub exists: u64,
    /// Unregisters sent.
    pub unregisters: u64,
    /// Connections lost while a session was up (each `Suspended`).
    pub reconnects: u64,
    /// Sessions that expired and were replaced (each `Expired`).
    pub expirations: u64,
    /// Connection attempts the core asked for (first connects, redirects, reconnects).
    pub connect_attempts: u64,
    /// Watch events the core inferred after a reconnect (the server's was lost).
    pub inferred_events: u64,
    /// Watch and session events dropped because their consumer did not keep up.
    pub lagged_events: u64,
    /// kNotLeader answers followed to the leader they named.
    pub redirects: u64,
    /// Times every watch was registered again while the session stayed up (a held
    /// ping released early, an answer read overdue, a late wake-up: the server may have
    /// dropped them).
    pub rearms: u64,
}

/// What a [`Stats`] counter counts, for [`Status::count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Creates,
    Deletes,
    Writes,
    Reads,
    Exists,
    Unregisters,
    Reconnects,
    Expirations,
    ConnectAttempts,
    InferredEvents,
    LaggedEvents,
    Redirects,
    Rearms,
}

const COUNTERS: usize = Counter::Rearms as usize + 1;

struct Shared {
    state: ClientState,
    closed: bool,
    subscribers: Vec<EventSender<SessionEvent>>,
}

/// The state shared between one driver and its client handles.
#[derive(Clone)]
pub struct Status {
    sid: Arc<AtomicU64>,
    shared: Arc<Mutex<Shared>>,
    counters: Arc<[AtomicU64; COUNTERS]>,
}

impl Default for Status {
    fn default() -> Status {
        Status {
            sid: Arc::default(),
            shared: Arc::new(Mutex::new(Shared {
                state: ClientState::Connecting,
                closed: false,
                subscribers: Vec::new(),
            })),
            counters: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("sid", &self.sid())
            .finish_non_exhaustive()
    }
}

impl Status {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Nothing panics while holding the lock; a poisoned lock still holds valid data.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

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

    /// The client's state as the driver last saw it.
    pub fn state(&self) -> ClientState {
        self.lock().state
    }

    pub(crate) fn set_state(&self, state: ClientState) {
        self.lock().state = state;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let get = |c: Counter| self.counters[c as usize].load(Ordering::Relaxed);
        Stats {
            creates: get(Counter::Creates),
            deletes: get(Counter::Deletes),
            writes: get(Counter::Writes),
            reads: get(Counter::Reads),
            exists: get(Counter::Exists),
            unregisters: get(Counter::Unregisters),
            reconnects: get(Counter::Reconnects),
            expirations: get(Counter::Expirations),
            connect_attempts: get(Counter::ConnectAttempts),
            inferred_events: get(Counter::InferredEvents),
            lagged_events: get(Counter::LaggedEvents),
            redirects: get(Counter::Redirects),
            rearms: get(Counter::Rearms),
        }
    }

    /// Adds `n` to a counter (only the driver writes them).
    pub(crate) fn count(&self, counter: Counter, n: u64) {
        if n > 0 {
            self.counters[counter as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Delivers every later session event to `subscriber`; after the client is closed
    /// the subscriber is dropped at once, so its stream ends.
    pub(crate) fn subscribe(&self, subscriber: EventSender<SessionEvent>) {
        let mut shared = self.lock();
        if !shared.closed {
            shared.subscribers.push(subscriber);
        }
    }

    /// Hands `event` to every subscriber still listening, forgetting the others. After
    /// `Closed` nothing follows: every subscriber is dropped, which ends its stream.
    /// Returns how many events slow subscribers lost to make room.
    pub(crate) fn publish(&self, event: &SessionEvent) -> u64 {
        let mut shared = self.lock();
        shared.subscribers.retain(|s| !s.is_closed());
        let mut dropped = 0;
        for subscriber in shared.subscribers.iter() {
            dropped += u64::from(!subscriber.push(event.clone()));
        }
        if *event == SessionEvent::Closed {
            shared.closed = true;
            shared.state = ClientState::Closed;
            shared.subscribers.clear();
        }
        dropped
    }

    /// The driver is gone: every subscription ends, and later ones end at once.
    pub(crate) fn close(&self) {
        let mut shared = self.lock();
        shared.closed = true;
        shared.state = ClientState::Closed;
        shared.subscribers.clear();
    }
}
