//! Leader election: candidates contend for one ephemeral node; its owner leads.
//!
//! Owns: [`Election`] (a candidacy: contend, lead under a lease, contend again when the
//! leadership is lost, resign) and [`Leadership`] (its change stream). Must never report
//! leadership past the lease, nor delete a node it cannot show is its own.
//!
//! # Guarantees and limits
//!
//! - **At most one leader believes it leads**, at any instant, under the crate's lease
//!   assumptions (clocks that run at about the same rate, a server that keeps its
//!   session timeout). A leader leads only until `¾T` after the sending of the last
//!   request whose answer showed it the node's owner (`T` = the session timeout;
//!   renewed every `T/5`). If its connection is lost it keeps leading only while that
//!   lease lasts (a short blip costs nothing), and is told [`Leadership::Lost`] when the
//!   lease lapses, before the server could have expired its session and let another
//!   candidate win; at once when its session is lost or expired or the node deleted.
//! - A leader whose lease lapsed but whose session survives (the connection came back
//!   in time) still owns the node: it is told [`Leadership::Elected`] again at its next
//!   check-in, and no one else can have led in between.
//! - **No fairness, no order.** Without sequential nodes there is no queue of
//!   candidates: when the leader's node goes, every candidate races to create it.
//! - Leadership is observed, not enforced: work a leader started keeps running after
//!   `Lost` unless it checks [`is_leader`](Election::is_leader) or watches the events.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use pyxis_client_common::AsyncClient;

use crate::lease::{keep, Lease, Terms};
use crate::lock::release;
use crate::node::{create_owned, wait_deleted, Created, Token};
use crate::runtime::{
    deadline_after, detach, now, retry_later, sleep, spawn, until, EventSender, Events, Task,
    RETRY_PAUSE,
};
use crate::Error;

/// A change of this candidate's leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leadership {
    /// This candidate leads (from now until `Lost`).
    Elected,
    /// This candidate no longer leads: its lease lapsed (connection lost), its session
    /// was lost or expired, its node was deleted, or it resigned.
    Lost,
}

/// The node this candidate owns while it does.
#[derive(Debug)]
struct Owned {
    token: Token,
    sid: u64,
    lease: Arc<Lease>,
}

#[derive(Debug)]
struct Shared {
    owned: Mutex<Option<Owned>>,
    events: EventSender<Leadership>,
}

impl Shared {
    fn owned(&self) -> MutexGuard<'_, Option<Owned>> {
        self.owned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_leader(&self) -> bool {
        self.owned().as_ref().is_some_and(|o| o.lease.holds())
    }
}

/// A candidacy for leadership at a path. Joining starts contending in the background;
/// dropping it (or [`resign`](Self::resign)) gives the leadership up.
///
/// ```no_run
/// use pyxis_recipes::{Election, Leadership};
///
/// # async fn demo(client: pyxis_tokio::Client) -> Result<(), pyxis_recipes::Error> {
/// let election = Election::join(&client, "/services/scheduler/leader", "host-a")?;
/// let mut changes = election.events();
/// while let Some(change) = changes.next().await {
///     match change {
///         Ok(Leadership::Elected) => println!("leading"),
///         Ok(Leadership::Lost) => println!("following"),
///         // Fell behind: `n` changes were dropped; `is_leader()` says where it stands.
///         Err(lagged) => println!("{lagged}: leading = {}", election.is_leader()),
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Election {
    client: AsyncClient,
    path: String,
    shared: Arc<Shared>,
    task: Option<Task>,
}

impl Election {
    /// Joins the election at `path` (its missing parents are created as persistent
    /// nodes), storing `payload` in the leader's node (after a 32-byte token) so others
    /// can learn who leads with [`leader`](Self::leader).
    ///
    /// # Errors
    ///
    /// [`Error::Start`] if the background executor cannot start.
    pub fn join(
        client: &AsyncClient,
        path: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Result<Election, Error> {
        let path = path.into();
        let shared = Arc::new(Shared {
            owned: Mutex::new(None),
            events: EventSender::new(),
        });
        let task = spawn(contend(
            client.clone(),
            path.clone(),
            payload.into(),
            shared.clone(),
        ))?;
        Ok(Election {
            client: client.clone(),
            path,
            shared,
            task: Some(task),
        })
    }

    /// Whether this candidate leads now (exact at the instant of the call: it turns
    /// `false` the moment the lease lapses, even before the event is delivered).
    pub fn is_leader(&self) -> bool {
        self.shared.is_leader()
    }

    /// Until when this candidate is assured to lead, if it leads now: the lease's end,
    /// pushed forward by each check-in (`¾T` after the sending of the last one that
    /// showed it the owner).
    pub fn leading_until(&self) -> Option<std::time::Instant> {
        let owned = self.shared.owned();
        let lease = &owned.as_ref()?.lease;
        lease.until().filter(|_| lease.holds())
    }

    /// The changes of this candidate's leadership from now on.
    pub fn events(&self) -> Events<Leadership> {
        self.shared.events.subscribe()
    }

    /// Waits up to `timeout` until this candidate leads.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if it does not lead within `timeout`.
    pub async fn wait_leading(&self, timeout: Duration) -> Result<(), Error> {
        let mut events = self.events();
        until(deadline_after(timeout), timeout, async {
            while !self.is_leader() {
                // Re-check at least every 100 ms: an `Elected` may have been sent
                // before `events` subscribed.
                future::or(
                    async {
                        events.next().await;
                    },
                    sleep(Duration::from_millis(100)),
                )
                .await;
            }
            Ok(())
        })
        .await
    }

    /// The payload of the current leader's node (`None` when nobody leads now), as the
    /// server has it at the time of the read.
    ///
    /// # Errors
    ///
    /// A client error if Pyxis could not be reached.
    pub async fn leader(&self) -> Result<Option<Bytes>, Error> {
        Ok(self
            .client
            .exists(&self.path)
            .await?
            .map(|node| Token::payload(&node.data)))
    }

    /// Gives up the candidacy: stops contending and, if this candidate owns the node,
    /// deletes it (so another candidate can win at once) and reports `Lost`.
    ///
    /// # Errors
    ///
    /// A client error if the node could not be deleted; it then goes with the session.
    pub async fn resign(mut self) -> Result<(), Error> {
        self.task.take();
        match self.stop() {
            Some((token, sid)) => release(&self.client, &self.path, &token, sid).await,
            None => Ok(()),
        }
    }

    /// Stops the candidacy: the node to release, if this candidate owns one.
    fn stop(&mut self) -> Option<(Token, u64)> {
        let owned = self.shared.owned().take();
        let was_leader = owned.as_ref().is_some_and(|o| o.lease.holds());
        if let Some(owned) = &owned {
            owned.lease.end();
        }
        if was_leader {
            self.shared.events.send(Leadership::Lost);
        }
        self.shared.events.close();
        owned.map(|o| (o.token, o.sid))
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        if self.task.take().is_some() {
            if let Some((token, sid)) = self.stop() {
                let (client, path) = (self.client.clone(), self.path.clone());
                detach(async move {
                    let _ = release(&client, &path, &token, sid).await;
                });
            }
        }
    }
}

/// The candidacy's background task: contend, lead while the lease holds, repeat.
async fn contend(client: AsyncClient, path: String, payload: Bytes, shared: Arc<Shared>) {
    loop {
        let token = Token::new();
        let sent = now();
        match create_owned(&client, &path, &token, &payload).await {
            Ok(Created::Mine { sid }) => {
                let terms = Terms::of(&client);
                let lease = Arc::new(Lease::new(
                    sent.checked_add(terms.lease).unwrap_or(sent),
                    false,
                ));
                *shared.owned() = Some(Owned {
                    token: token.clone(),
                    sid,
                    lease: lease.clone(),
                });
                if lease.holds() {
                    shared.events.send(Leadership::Elected);
                }
                keep(&client, &path, &token, sid, &lease, |held| {
                    shared.events.send(if held {
                        Leadership::Elected
                    } else {
                        Leadership::Lost
                    });
                })
                .await;
                *shared.owned() = None;
            }
            Ok(Created::Taken) => wait_deleted(&client, &path).await,
            Err(e) if retry_later(&e) => sleep(RETRY_PAUSE).await,
            // Closed, or a path the server refuses: nothing to contend for.
            Err(_) => {
                shared.events.close();
                return;
            }
        }
    }
}
