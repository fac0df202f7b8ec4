//! A mutual-exclusion lock: whoever owns the ephemeral node at the lock's path holds
//! the lock.
//!
//! Owns: [`Lock`] (acquiring: create, or wait for the holder's node to go away with a
//! watch armed in the same server step as the check, so no release is missed) and
//! [`LockGuard`] (holding: a lease renewed in the background, release on drop). Must
//! never delete a node it cannot show is its own, nor report the lock held past its
//! lease.
//!
//! # Guarantees and limits
//!
//! - **Mutual exclusion, while you check.** At most one guard reports
//!   [`is_held`](LockGuard::is_held) at any instant, provided clocks run at about the
//!   same rate and the server keeps its session-timeout promise. The guard holds the lock
//!   only under a lease (see the crate docs): an answer to a request sent at `s` keeps it
//!   until `s + ¾T` (`T` = the session timeout), and background check-ins every `T/5`
//!   renew it. Past the lease without a newer answer (connection lost, server silent),
//!   the guard reports the lock **lost for good**, before the server could have expired
//!   the session and let someone else in. So check [`is_held`](LockGuard::is_held) (or
//!   race your work against [`lost`](LockGuard::lost)) before each step that needs the
//!   lock; work already under way when the lease lapses is not stopped for you.
//! - **No fairness.** Pyxis has no sequential nodes and no conditional writes, so the
//!   lock cannot queue waiters: every waiter watches the holder's node and, when it is
//!   deleted, all of them race to create it; the fastest wins, and a waiter can lose any
//!   number of rounds. There is no FIFO order and no starvation bound.
//! - **No fencing token from the server.** Pyxis cannot make a write conditional on the
//!   lock still being held, so a paused holder that resumes after losing the lock can
//!   still write. [`LockGuard::token`] offers the holder's session id as a best-effort
//!   token: it differs between holders from different sessions, and a resource that
//!   remembers the token it last saw can refuse a paused old holder *when tokens grow*
//!   — but session ids are made from the leader's clock and are **not guaranteed to
//!   grow** across leader changes, two locks held by one session share the token, and
//!   nothing on the server enforces it. Treat it as a diagnostic, not a proof.
//! - **Release.** [`release`](LockGuard::release) (or dropping the guard) deletes the
//!   node only after reading it and seeing this acquisition's token and session; if the
//!   session was lost meanwhile the server has deleted the node already. A release
//!   whose delete is lost with the connection leaves the node to the session's end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future;
use pyxis_client_common::{AsyncClient, Error as ClientError, EventMask};

use crate::lease::{keep, Lease, Terms};
use crate::node::{create_owned, Created, Token};
use crate::runtime::{
    deadline_after, detach, now, retry_later, sleep, spawn, until, Task, RETRY_PAUSE,
};
use crate::Error;

/// A lock named by a path. Cheap to make; acquiring creates the ephemeral node at
/// `path` (and its missing parents as persistent nodes).
///
/// ```no_run
/// use std::time::Duration;
/// use pyxis_recipes::Lock;
///
/// # async fn demo(client: pyxis_tokio::Client) -> Result<(), pyxis_recipes::Error> {
/// let lock = Lock::new(&client, "/locks/nightly-report");
/// let guard = lock.acquire(Duration::from_secs(30)).await?;
/// if guard.is_held() {
///     // ... write the report ...
/// }
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    client: AsyncClient,
    path: String,
    payload: Bytes,
}

impl Lock {
    /// The lock at `path` on `client` (any adapter's client: they deref to
    /// [`AsyncClient`]; a blocking client's `to_async()`).
    pub fn new(client: &AsyncClient, path: impl Into<String>) -> Lock {
        Lock {
            client: client.clone(),
            path: path.into(),
            payload: Bytes::new(),
        }
    }

    /// Stores `payload` in the lock's node while held (after a 32-byte token), so
    /// others can see who holds it.
    pub fn with_payload(mut self, payload: impl Into<Bytes>) -> Lock {
        self.payload = payload.into();
        self
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// One attempt: the guard if the lock was free, `None` if someone holds it.
    ///
    /// # Errors
    ///
    /// A client error ([`Error::Client`]) for a bad path or when Pyxis could not be
    /// reached in time; [`Error::Start`] if the background executor cannot start.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>, Error> {
        let token = Token::new();
        let sent = now();
        match create_owned(&self.client, &self.path, &token, &self.payload).await? {
            Created::Mine { sid } => Ok(Some(self.guard(token, sid, sent)?)),
            Created::Taken => Ok(None),
        }
    }

    /// Waits up to `timeout` for the lock (`Duration::MAX`: without a deadline).
    /// Waiting costs nothing while the holder holds it: the waiter checks the node and
    /// arms a watch for its deletion in one server step, then sleeps until it fires
    /// (no release can slip between the two), and races the other waiters to create it.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if it is still held by someone else after `timeout`; otherwise
    /// as [`try_acquire`](Self::try_acquire).
    pub async fn acquire(&self, timeout: Duration) -> Result<LockGuard, Error> {
        until(deadline_after(timeout), timeout, self.acquire_forever()).await
    }

    async fn acquire_forever(&self) -> Result<LockGuard, Error> {
        let token = Token::new();
        loop {
            let sent = now();
            match create_owned(&self.client, &self.path, &token, &self.payload).await {
                Ok(Created::Mine { sid }) => return self.guard(token, sid, sent),
                Ok(Created::Taken) => {}
                Err(e) if retry_later(&e) => {
                    sleep(RETRY_PAUSE).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            let (holder, mut watch) = match self
                .client
                .exists_and_watch(&self.path, EventMask::DELETE, false)
                .await
            {
                Ok(armed) => armed,
                Err(e) if retry_later(&e) => {
                    sleep(RETRY_PAUSE).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if holder.is_some() {
                // Deleted (or the watch ended with the session): race for it again. Look
                // again after a session timeout whatever the watch says.
                future::or(
                    async {
                        watch.next().await;
                    },
                    sleep(self.client.session_timeout()),
                )
                .await;
            }
        }
    }

    fn guard(&self, token: Token, sid: u64, sent: Instant) -> Result<LockGuard, Error> {
        let terms = Terms::of(&self.client);
        let until = sent.checked_add(terms.lease).unwrap_or(sent);
        let lease = Arc::new(Lease::new(until, true));
        let keeper = {
            let (client, path, token, lease) = (
                self.client.clone(),
                self.path.clone(),
                token.clone(),
                lease.clone(),
            );
            spawn(async move { keep(&client, &path, &token, sid, &lease, |_| {}).await })?
        };
        Ok(LockGuard {
            client: self.client.clone(),
            path: self.path.clone(),
            token,
            sid,
            lease,
            keeper: Some(keeper),
        })
    }
}

/// A held lock. [`is_held`](Self::is_held) says whether it still is (it is lost with
/// the session, or when its lease lapses); dropping the guard releases it in the
/// background, [`release`](Self::release) does so and waits.
#[derive(Debug)]
pub struct LockGuard {
    client: AsyncClient,
    path: String,
    token: Token,
    sid: u64,
    lease: Arc<Lease>,
    keeper: Option<Task>,
}

impl LockGuard {
    /// Whether the lock is still held: `false` for good once it was lost (session
    /// suspended past the lease, lost or expired; node deleted by someone).
    pub fn is_held(&self) -> bool {
        self.lease.holds()
    }

    /// Until when the lock is known to be held, if it still is: the lease's end, pushed
    /// forward by each background check-in.
    pub fn held_until(&self) -> Option<Instant> {
        self.lease.until().filter(|_| self.is_held())
    }

    /// Completes when the lock is lost (at once if it is). Race your critical section
    /// against it to stop when the lock goes.
    pub async fn lost(&self) {
        self.lease.lapsed().await;
    }

    /// The best-effort fencing token: the id of the session that holds the node (see
    /// the module docs for why this is not a real fencing token).
    pub fn token(&self) -> u64 {
        self.sid
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Releases the lock and waits until the node is deleted (or known gone).
    ///
    /// # Errors
    ///
    /// A client error if Pyxis could not be reached; the node then stays until the
    /// session ends (the guard no longer reports the lock held either way).
    pub async fn release(mut self) -> Result<(), Error> {
        self.keeper.take();
        self.lease.end();
        release(&self.client, &self.path, &self.token, self.sid).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.keeper.take().is_some() {
            self.lease.end();
            let (client, path, token, sid) = (
                self.client.clone(),
                self.path.clone(),
                self.token.clone(),
                self.sid,
            );
            detach(async move {
                let _ = release(&client, &path, &token, sid).await;
            });
        }
    }
}

/// Deletes the node at `path` if it is still the one `token` created for `sid`. A
/// failure that may pass (no leader, connection lost: the delete's outcome is then
/// unknown) is settled by reading the node again, a bounded number of times.
pub(crate) async fn release(
    client: &AsyncClient,
    path: &str,
    token: &Token,
    sid: u64,
) -> Result<(), Error> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = match client.exists(path).await {
            Ok(Some(node)) if token.marks(&node) && node.owner == sid => {
                match client.delete(path).await {
                    Ok(()) | Err(ClientError::NotFound { .. }) => return Ok(()),
                    Err(e) => e,
                }
            }
            Ok(_) => return Ok(()),
            // The session, and with it the node, is gone.
            Err(ClientError::SessionExpired) => return Ok(()),
            Err(e) => e,
        };
        if !outcome.is_retryable() || attempts >= RELEASE_ATTEMPTS {
            return Err(outcome.into());
        }
        sleep(RETRY_PAUSE).await;
    }
}

/// How many times a release reads and deletes before giving up (each call waits up to
/// the client's request timeout).
const RELEASE_ATTEMPTS: u32 = 5;
