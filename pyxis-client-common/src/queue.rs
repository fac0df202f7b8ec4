//! A bounded single-consumer queue from the driver to the application that never blocks
//! its producer: when full, the oldest item is dropped and counted, and the consumer is
//! told how many it missed ([`Lagged`]) before it sees the items that were kept.
//!
//! Owns: [`channel`], [`EventSender`], [`EventReceiver`]. Must never block or await in
//! the producer (the driver's I/O loop pushes into it) and never grow past its bound.
//! The consumer side works from any async runtime (waker based) and from plain threads
//! (condition variable), so one type serves every adapter.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Items were dropped because the consumer did not keep up: the queue was full, so the
/// oldest unread items were discarded to make room for newer ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} unread events were dropped because the queue was full")]
pub struct Lagged(pub u64);

/// The unread items, oldest first. The oldest sits in its own slot, so a queue that
/// never holds more than one item (`wait_connected`'s answer) never allocates.
struct Items<T> {
    /// The oldest item; `None` only when `rest` is empty too.
    first: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Items<T> {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn push_back(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    fn pop_front(&mut self) -> Option<T> {
        let item = self.first.take();
        self.first = self.rest.pop_front();
        item
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }
}

struct State<T> {
    items: Items<T>,
    bound: usize,
    lagged: u64,
    sender_gone: bool,
    receiver_gone: bool,
    waker: Option<Waker>,
    /// Threads waiting on the condition variable: a push notifies it only when some
    /// thread waits (a futex call per item would otherwise be paid by async consumers).
    blocked: usize,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; a poisoned lock still holds valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self, mut state: MutexGuard<'_, State<T>>) {
        let waker = state.waker.take();
        let blocked = state.blocked > 0;
        drop(state);
        if blocked {
            self.ready.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The producer half (held by the driver).
pub struct EventSender<T> {
    shared: Arc<Shared<T>>,
}

/// The consumer half (held by the application).
pub struct EventReceiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue holding at most `bound` unread items (at least one).
///
/// ```
/// use pyxis_client_common::__private::queue::{channel, Lagged};
///
/// let (tx, rx) = channel(2);
/// for n in 0..5 {
///     tx.push(n);
/// }
/// assert_eq!(rx.try_recv(), Some(Err(Lagged(3))));
/// assert_eq!(rx.try_recv(), Some(Ok(3)));
/// assert_eq!(rx.try_recv(), Some(Ok(4)));
/// assert_eq!(rx.try_recv(), None);
/// ```
pub fn channel<T>(bound: usize) -> (EventSender<T>, EventReceiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: Items {
                first: None,
                rest: VecDeque::new(),
            },
            bound: bound.max(1),
            lagged: 0,
            sender_gone: false,
            receiver_gone: false,
            waker: None,
            blocked: 0,
        }),
        ready: Condvar::new(),
    });
    (
        EventSender {
            shared: shared.clone(),
        },
        EventReceiver { shared },
    )
}

impl<T> EventSender<T> {
    /// Queues `item`, dropping the oldest unread item if the queue is full. Never blocks.
    /// Returns `false` when an unread item was dropped to make room.
    pub fn push(&self, item: T) -> bool {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return true;
        }
        let full = state.items.len() >= state.bound;
        if full {
            state.items.pop_front();
            state.lagged = state.lagged.saturating_add(1);
        }
        state.items.push_back(item);
        self.shared.wake(state);
        !full
    }

    /// Whether the receiver was dropped (nobody will read what is pushed).
    pub fn is_closed(&self) -> bool {
        self.shared.lock().receiver_gone
    }
}

impl<T> Drop for EventSender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sender_gone = true;
        self.shared.wake(state);
    }
}

impl<T> EventReceiver<T> {
    fn take(state: &mut State<T>) -> Option<Result<T, Lagged>> {
        if state.lagged > 0 {
            let n = std::mem::take(&mut state.lagged);
            return Some(Err(Lagged(n)));
        }
        state.items.pop_front().map(Ok)
    }

    /// The next item if one is ready (`None`: empty, or ended).
    pub fn try_recv(&self) -> Option<Result<T, Lagged>> {
        Self::take(&mut self.shared.lock())
    }

    /// Polls for the next item; `Ready(None)` once the sender is gone and the queue is
    /// drained.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Lagged>>> {
        let mut state = self.shared.lock();
        if let Some(item) = Self::take(&mut state) {
            return Poll::Ready(Some(item));
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Waits for the next item without a runtime; `None` once the sender is gone and the
    /// queue is drained.
    pub fn recv_blocking(&self) -> Option<Result<T, Lagged>> {
        let mut state = self.shared.lock();
        loop {
            if let Some(item) = Self::take(&mut state) {
                return Some(item);
            }
            if state.sender_gone {
                return None;
            }
            state.blocked += 1;
            state = self
                .shared
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.blocked -= 1;
        }
    }

    /// Like [`recv_blocking`](Self::recv_blocking), giving up after `timeout`:
    /// `Err(Timeout)` if nothing arrived. A timeout too large to add to the clock (such
    /// as `Duration::MAX`) waits without a deadline, as std's channels do.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Result<T, Lagged>>, Timeout> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return Ok(self.recv_blocking());
        };
        let mut state = self.shared.lock();
        loop {
            if let Some(item) = Self::take(&mut state) {
                return Ok(Some(item));
            }
            if state.sender_gone {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Timeout);
            }
            state.blocked += 1;
            state = self
                .shared
                .ready
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.blocked -= 1;
        }
    }
}

impl<T> Drop for EventReceiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        state.items.clear();
    }
}

/// Nothing arrived within the time given to a blocking receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out waiting for an event")]
pub struct Timeout;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_drops_oldest_and_reports_the_count_once() {
        let (tx, rx) = channel(3);
        for n in 0..10u32 {
            tx.push(n);
        }
        assert_eq!(rx.try_recv(), Some(Err(Lagged(7))));
        let kept: Vec<_> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(kept, vec![Ok(7), Ok(8), Ok(9)]);
    }

    #[test]
    fn ends_after_the_sender_is_gone_and_drained() {
        let (tx, rx) = channel(4);
        tx.push("a");
        drop(tx);
        assert_eq!(rx.recv_blocking(), Some(Ok("a")));
        assert_eq!(rx.recv_blocking(), None);
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Ok(None));
    }

    #[test]
    fn blocking_receive_wakes_on_push_from_another_thread() {
        let (tx, rx) = channel(1);
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.push(5u8);
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(Some(Ok(5))));
        pusher.join().ok();
        assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Ok(None));
    }

    #[test]
    fn timeout_when_nothing_arrives_and_closed_flag_on_receiver_drop() {
        let (tx, rx) = channel::<u8>(1);
        assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(Timeout));
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        tx.push(1);
    }

    #[test]
    fn a_timeout_of_duration_max_waits_without_a_deadline() {
        let (tx, rx) = channel(1);
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.push(1u8);
        });
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(Some(Ok(1))));
        pusher.join().ok();
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(None));
    }

    #[test]
    fn async_receive_wakes_on_push() {
        let (tx, rx) = channel(2);
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            tx.push(9u8);
        });
        let got = futures_lite::future::block_on(std::future::poll_fn(|cx| rx.poll_recv(cx)));
        assert_eq!(got, Some(Ok(9)));
        pusher.join().ok();
    }
}
