//! Where the recipes' background work runs, whatever runtime the application uses: one
//! executor thread for the whole process (started on first use), timers from
//! `async-io` (which work under tokio, async-std, smol and plain threads alike), the
//! bounded change streams ([`Events`]) and the blocking entry point ([`wait`]). A
//! deterministic simulation replaces the thread and the clock with its own for the
//! threads it runs on ([`Runtime`], [`use_runtime_on_this_thread`]).
//!
//! Owns: the executor thread, the choice between it and a thread's [`Runtime`], the
//! recipes' clock ([`now`]), [`Events`] and its sender, `sleep_until`. Must never block
//! the executor thread (every task on it is async and only waits on client calls,
//! watches and timers) nor hold an unbounded queue; every recipe reads the time here,
//! never from `Instant::now` itself.

use std::cell::RefCell;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use pyxis_client_common::__private::queue;
use pyxis_client_common::Lagged;

use crate::Error;

/// A future the recipes hand to a [`Runtime`].
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where the recipes run their background work and read the time, instead of their own
/// executor thread and the system clock: a deterministic simulation's hosts and virtual
/// time (`pyxis_turmoil::recipes_in_simulation` is one). Installed for one thread with
/// [`use_runtime_on_this_thread`]; it then serves every recipe made, and every recipe
/// task polled, on that thread.
pub trait Runtime {
    /// The time now.
    fn now(&self) -> Instant;
    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture;
    /// Runs `task` in the background until it ends or the returned handle is dropped
    /// (dropping it cancels the task; [`Spawned::detach`] lets it run to its end).
    fn spawn(&self, task: BoxFuture) -> Box<dyn Spawned>;
}

/// A task started by a [`Runtime`]: dropping it cancels the task.
pub trait Spawned: Send + Sync + Debug {
    /// Lets the task run to its end without this handle.
    fn detach(self: Box<Self>);
}

thread_local! {
    /// The runtime installed on this thread, if any.
    static RUNTIME: RefCell<Option<Rc<dyn Runtime>>> = const { RefCell::new(None) };
}

/// Makes the recipes use `runtime` on the calling thread until the guard is dropped
/// (then the one installed before, or the default, serves again). Other threads keep
/// theirs.
pub fn use_runtime_on_this_thread(runtime: Rc<dyn Runtime>) -> RuntimeGuard {
    let previous = RUNTIME.with(|r| r.borrow_mut().replace(runtime));
    RuntimeGuard {
        previous,
        _not_send: std::marker::PhantomData,
    }
}

/// Keeps a thread's [`Runtime`] installed (see [`use_runtime_on_this_thread`]).
#[must_use = "the runtime is uninstalled when the guard is dropped"]
pub struct RuntimeGuard {
    previous: Option<Rc<dyn Runtime>>,
    _not_send: std::marker::PhantomData<Rc<()>>,
}

impl Debug for RuntimeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeGuard").finish_non_exhaustive()
    }
}

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        RUNTIME.with(|r| *r.borrow_mut() = previous);
    }
}

/// The runtime installed on this thread, if any.
fn installed() -> Option<Rc<dyn Runtime>> {
    RUNTIME.with(|r| r.borrow().clone())
}

/// The recipes' time now: the installed [`Runtime`]'s, or the system clock.
pub(crate) fn now() -> Instant {
    match installed() {
        Some(runtime) => runtime.now(),
        None => Instant::now(),
    }
}

/// A recipe's background task; dropping it cancels the task.
#[derive(Debug)]
pub(crate) enum Task {
    /// On the recipes' executor thread.
    Thread(async_executor::Task<()>),
    /// On a thread's installed [`Runtime`].
    Hosted(Box<dyn Spawned>),
}

impl Task {
    /// Lets the task run to its end.
    fn detach(self) {
        match self {
            Task::Thread(task) => task.detach(),
            Task::Hosted(task) => task.detach(),
        }
    }
}

/// The executor of every recipe's background task.
static EXECUTOR: async_executor::Executor<'static> = async_executor::Executor::new();

/// The executor, with the thread that runs it started on first use.
fn executor() -> Result<&'static async_executor::Executor<'static>, Error> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("pyxis-recipes".into())
            .spawn(|| async_io::block_on(EXECUTOR.run(std::future::pending::<()>())))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    match started {
        Ok(()) => Ok(&EXECUTOR),
        Err(reason) => Err(Error::Start(reason.clone())),
    }
}

/// Runs `task` in the background until it ends or the returned handle is dropped: on
/// this thread's [`Runtime`] if one is installed, else on the executor thread.
pub(crate) fn spawn<F>(task: F) -> Result<Task, Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    match installed() {
        Some(runtime) => Ok(Task::Hosted(runtime.spawn(Box::pin(task)))),
        None => Ok(Task::Thread(executor()?.spawn(task))),
    }
}

/// Runs `task` in the background to its end, detached.
pub(crate) fn detach<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(task) = spawn(task) {
        task.detach();
    }
}

/// Completes at `deadline`.
pub(crate) async fn sleep_until(deadline: Instant) {
    // The runtime is not kept across the wait: recipe futures stay `Send`.
    let hosted = installed().map(|runtime| runtime.sleep_until(deadline));
    match hosted {
        Some(sleep) => sleep.await,
        None => {
            async_io::Timer::at(deadline).await;
        }
    }
}

/// Completes after `duration` (saturating: a huge duration waits forever).
pub(crate) async fn sleep(duration: Duration) {
    match now().checked_add(duration) {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// `now + duration`, or `None` for "no deadline" when it does not fit.
pub(crate) fn deadline_after(duration: Duration) -> Option<Instant> {
    now().checked_add(duration)
}

/// Completes at `deadline`, never without one.
pub(crate) async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs a recipe's future to completion on the calling thread: the blocking facade of
/// every recipe (each is written once, as async code over
/// [`AsyncClient`](pyxis_client_common::AsyncClient)).
///
/// ```no_run
/// use std::time::Duration;
/// use pyxis_recipes::{wait, Lock};
///
/// # fn demo(client: pyxis_blocking::Client) -> Result<(), pyxis_recipes::Error> {
/// let lock = Lock::new(&client.to_async(), "/locks/report");
/// let guard = wait(lock.acquire(Duration::from_secs(10)))?;
/// // ... the critical section, checking guard.is_held() before acting ...
/// wait(guard.release())?;
/// # Ok(())
/// # }
/// ```
///
/// Do not call it from inside an async task (it blocks the thread).
pub fn wait<F: Future>(future: F) -> F::Output {
    async_io::block_on(future)
}

/// The receiving end of a recipe's change stream: an async [`Stream`] (or
/// [`next`](Self::next)) and, for blocking code, [`recv`](Self::recv) and
/// [`recv_timeout`](Self::recv_timeout).
///
/// Bounded like the client's watches: it keeps the newest [`EVENT_BOUND`] unread events;
/// older ones are dropped and reported as one `Err(Lagged(n))` item (their number)
/// before the kept ones. The recipe's current state is always readable from the recipe
/// itself, so a consumer that falls behind loses history, never the present. The stream
/// ends when the recipe is dropped or stopped.
pub struct Events<T> {
    rx: queue::EventReceiver<T>,
}

impl<T> Debug for Events<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

/// How many unread events a change stream keeps.
pub const EVENT_BOUND: usize = 256;

/// The sending end of a change stream (dropping the oldest event when full).
pub(crate) struct EventSender<T> {
    /// The streams' senders; `None` once closed.
    txs: std::sync::Mutex<Option<Vec<queue::EventSender<T>>>>,
}

impl<T> Debug for EventSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSender").finish_non_exhaustive()
    }
}

impl<T: Clone> EventSender<T> {
    pub(crate) fn new() -> EventSender<T> {
        EventSender {
            txs: std::sync::Mutex::new(Some(Vec::new())),
        }
    }

    /// A new stream of every event sent from now on (one that ends at once if the
    /// recipe has stopped).
    pub(crate) fn subscribe(&self) -> Events<T> {
        let (tx, rx) = queue::channel(EVENT_BOUND);
        if let Some(txs) = self.lock().as_mut() {
            txs.push(tx);
        }
        Events { rx }
    }

    /// Sends `event` to every stream still read, dropping (and counting) each one's
    /// oldest unread event if it is full.
    pub(crate) fn send(&self, event: T) {
        if let Some(txs) = self.lock().as_mut() {
            txs.retain(|tx| !tx.is_closed());
            for tx in txs.iter() {
                tx.push(event.clone());
            }
        }
    }

    /// Ends every stream (after the events already sent).
    pub(crate) fn close(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<queue::EventSender<T>>>> {
        self.txs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<T> Events<T> {
    /// The next event, or `Err(Lagged(n))` when `n` older ones were dropped (`None` once
    /// the recipe is gone).
    pub async fn next(&mut self) -> Option<Result<T, Lagged>> {
        std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await
    }

    /// The next event, waiting on this thread (`None` once the recipe is gone).
    pub fn recv(&self) -> Option<Result<T, Lagged>> {
        self.rx.recv_blocking()
    }

    /// Like [`recv`](Self::recv), giving up after `timeout` (`Err(Error::Timeout)`).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no event came within `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Result<T, Lagged>>, Error> {
        self.rx
            .recv_timeout(timeout)
            .map_err(|_| Error::Timeout(timeout))
    }

    /// An event if one is ready now.
    pub fn try_recv(&self) -> Option<Result<T, Lagged>> {
        self.rx.try_recv()
    }
}

impl<T> Stream for Events<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T, Lagged>>> {
        self.rx.poll_recv(cx)
    }
}

/// Runs `work` but gives up at `deadline` (`Err(Error::Timeout(total))`).
pub(crate) async fn until<T>(
    deadline: Option<Instant>,
    total: Duration,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    futures_lite::future::or(work, async {
        sleep_until_opt(deadline).await;
        Err(Error::Timeout(total))
    })
    .await
}

/// How long a recipe pauses before trying again after a failure that may pass (no
/// leader, connection lost, session replaced), so an outage never turns into a hot loop.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Whether a client error may pass by itself, so the recipe tries again (after
/// [`RETRY_PAUSE`]) rather than giving up.
pub(crate) fn retry_later(error: &pyxis_client_common::Error) -> bool {
    error.is_retryable() || matches!(error, pyxis_client_common::Error::SessionExpired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_falls_behind_reports_how_many_events_it_lost_then_the_newest() {
        let sender = EventSender::new();
        let events = sender.subscribe();
        let sent = EVENT_BOUND as u64 + 3;
        for n in 0..sent {
            sender.send(n);
        }
        assert_eq!(events.try_recv(), Some(Err(Lagged(3))));
        assert_eq!(events.try_recv(), Some(Ok(3)));
        let rest: Vec<_> = std::iter::from_fn(|| events.try_recv()).collect();
        assert_eq!(rest.len(), EVENT_BOUND - 1);
        assert_eq!(rest.last(), Some(&Ok(sent - 1)));
        // A stream that keeps up is told of no loss.
        sender.send(7);
        assert_eq!(events.try_recv(), Some(Ok(7)));
        sender.close();
        assert_eq!(wait(async { { events }.next().await }), None);
        assert_eq!(sender.subscribe().try_recv(), None);
        assert_eq!(
            wait(sender.subscribe().next()),
            None,
            "a stream of a stopped recipe ends"
        );
    }
}
