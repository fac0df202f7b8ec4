//! The command channel of the adapter loops (async and blocking): many client handles
//! send, one driver loop takes the commands in batches.
//!
//! Owns: [`command_channel`], [`AsyncCommands`] (the sending end) and [`CommandInbox`]
//! (the driver's end). A send is one uncontended-in-practice lock and a push; it wakes
//! the driver only when the driver is parked waiting for commands (its waker is
//! registered), so 64 tasks submitting together cost one wake-up, not 64 notifications.
//! The driver swaps out the whole queue (up to a bound) in one lock per turn. Must never
//! block or await in a sender, never wake the driver while holding the lock, and never
//! hand the driver more than the bound asked for in one take.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::driver::Command;
use crate::handle::CommandSink;

struct State {
    queue: VecDeque<Command>,
    /// The driver's waker, present only while it waits for commands.
    waker: Option<Waker>,
    /// The sending end was dropped (every handle and watch is gone).
    senders_gone: bool,
    /// The driver is gone: sends fail and drop their command.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned lock still holds valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A command channel for [`run`](crate::async_loop::run): the sender goes into the
/// client [`Handle`](crate::handle::Handle), the inbox to the driver loop.
///
/// ```
/// use std::collections::VecDeque;
/// use std::future::poll_fn;
/// use pyxis_client_common::__private::{command_channel, Command, CommandSink};
///
/// let (commands, inbox) = command_channel();
/// assert!(commands.send(Command::HandlesGone));
/// let mut batch = VecDeque::new();
/// let take = |batch: &mut VecDeque<Command>| {
///     futures_lite::future::block_on(poll_fn(|cx| inbox.poll_take(cx, batch, 16)))
/// };
/// assert!(take(&mut batch), "a command was taken");
/// assert_eq!(batch.len(), 1);
/// batch.clear();
/// drop(commands);
/// assert!(!take(&mut batch), "every sender is gone");
/// ```
pub fn command_channel() -> (AsyncCommands, CommandInbox) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
            senders_gone: false,
            closed: false,
        }),
    });
    (
        AsyncCommands {
            shared: shared.clone(),
        },
        CommandInbox { shared },
    )
}

/// The command channel's sending end, as the client handles see it.
pub struct AsyncCommands {
    shared: Arc<Shared>,
}

impl CommandSink for AsyncCommands {
    fn send(&self, command: Command) -> bool {
        let mut state = self.shared.lock();
        if state.closed {
            drop(state);
            // Dropped outside the lock: its reply sender wakes the caller with `Closed`.
            drop(command);
            return false;
        }
        state.queue.push_back(command);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

impl Drop for AsyncCommands {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders_gone = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The driver's end of the command channel.
pub struct CommandInbox {
    shared: Arc<Shared>,
}

impl CommandInbox {
    /// Moves up to `bound` queued commands (oldest first) into `batch`, which should be
    /// empty (its capacity is reused). `Ready(true)`: some were taken; `Ready(false)`:
    /// none are queued and the sending end is gone; `Pending`: none yet, and the driver
    /// is woken by the next send.
    pub fn poll_take(
        &self,
        cx: &mut Context<'_>,
        batch: &mut VecDeque<Command>,
        bound: usize,
    ) -> Poll<bool> {
        let mut state = self.shared.lock();
        if !state.queue.is_empty() {
            state.waker = None;
            if state.queue.len() <= bound && batch.is_empty() {
                // The whole queue, in one swap: both buffers keep their capacity.
                std::mem::swap(&mut state.queue, batch);
            } else {
                let n = state.queue.len().min(bound);
                batch.extend(state.queue.drain(..n));
            }
            return Poll::Ready(true);
        }
        if state.senders_gone {
            return Poll::Ready(false);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Refuses every later send and drops the commands still queued (their callers see
    /// `Closed`).
    pub fn close(&self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.waker = None;
        let queued = std::mem::take(&mut state.queue);
        drop(state);
        drop(queued);
    }
}

impl Drop for CommandInbox {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;
    use crate::queue::channel;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn only_a_parked_driver_is_woken_and_takes_everything_at_once() {
        let (commands, inbox) = command_channel();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut batch = VecDeque::new();
        assert_eq!(inbox.poll_take(&mut cx, &mut batch, 4), Poll::Pending);
        for _ in 0..6 {
            assert!(commands.send(Command::HandlesGone));
        }
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "one wake-up for six sends"
        );
        assert_eq!(inbox.poll_take(&mut cx, &mut batch, 4), Poll::Ready(true));
        assert_eq!(batch.len(), 4, "no more than the bound");
        batch.clear();
        assert_eq!(inbox.poll_take(&mut cx, &mut batch, 4), Poll::Ready(true));
        assert_eq!(batch.len(), 2);
        batch.clear();
        assert!(commands.send(Command::HandlesGone));
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "not woken while it was not waiting"
        );
    }

    #[test]
    fn closing_fails_sends_and_ends_the_queued_callers() {
        let (commands, inbox) = command_channel();
        let (done, closed) = channel(1);
        assert!(commands.send(Command::Close { done }));
        inbox.close();
        assert_eq!(
            closed.recv_timeout(std::time::Duration::ZERO),
            Ok(None),
            "queued command dropped"
        );
        let (done, closed) = channel(1);
        assert!(!commands.send(Command::Close { done }));
        assert_eq!(closed.recv_timeout(std::time::Duration::ZERO), Ok(None));
    }

    #[test]
    fn dropping_the_sender_wakes_and_ends_the_inbox() {
        let (commands, inbox) = command_channel();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut batch = VecDeque::new();
        assert_eq!(inbox.poll_take(&mut cx, &mut batch, 4), Poll::Pending);
        drop(commands);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(inbox.poll_take(&mut cx, &mut batch, 4), Poll::Ready(false));
    }
}
