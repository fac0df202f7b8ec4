//! Barriers: a [`Gate`] that holds callers while a node exists, and a [`DoubleBarrier`]
//! that N participants enter together and leave together.
//!
//! Owns: both barriers. Must never wait on a state it read in one step and a watch it
//! armed in another (every wait arms its watch with the look that decides to wait).
//!
//! # Guarantees and limits
//!
//! - [`Gate::pass`] returns once the gate's node is absent (at once if it is); a gate
//!   closed again right after it opened can still let a caller through that saw it open.
//! - [`DoubleBarrier::enter`] returns once `count` participants have entered: the first
//!   to see `count` of them present creates the `_ready` node, which lets everyone
//!   (including late-comers) through. Participants are ephemeral nodes, so one whose
//!   session ends before the barrier fills no longer counts. [`DoubleBarrier::leave`]
//!   returns once every participant has left; the last one out removes `_ready`, so the
//!   directory can be used for the next round. Names starting with `_` are reserved.
//! - No quorum is checked while leaving: a participant that crashed after entering
//!   leaves with its session (after the session timeout).

use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use pyxis_client_common::{AsyncClient, CreateMode, Error as ClientError, EventMask};

use crate::node::ensure_parents;
use crate::runtime::{deadline_after, retry_later, sleep, until, RETRY_PAUSE};
use crate::Error;

/// A gate at a path: closed while the node exists, open when it does not.
///
/// ```no_run
/// use std::time::Duration;
/// use pyxis_recipes::Gate;
///
/// # async fn demo(client: pyxis_tokio::Client) -> Result<(), pyxis_recipes::Error> {
/// let gate = Gate::new(&client, "/deploy/hold");
/// gate.close().await?; // workers block in `pass` from now on ...
/// gate.open().await?; // ... until the node is deleted
/// gate.pass(Duration::from_secs(60)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Gate {
    client: AsyncClient,
    path: String,
}

impl Gate {
    /// The gate at `path`.
    pub fn new(client: &AsyncClient, path: impl Into<String>) -> Gate {
        Gate {
            client: client.clone(),
            path: path.into(),
        }
    }

    /// Closes the gate: creates its persistent node (and missing parents).
    ///
    /// # Errors
    ///
    /// A client error if Pyxis could not be reached or refused the path.
    pub async fn close(&self) -> Result<(), Error> {
        ensure_parents(&self.client, &self.path).await?;
        match self
            .client
            .create(&self.path, Bytes::new(), CreateMode::Persistent)
            .await
        {
            Ok(()) | Err(ClientError::Exists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the gate: deletes its node.
    ///
    /// # Errors
    ///
    /// A client error if Pyxis could not be reached.
    pub async fn open(&self) -> Result<(), Error> {
        match self.client.delete(&self.path).await {
            Ok(()) | Err(ClientError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits up to `timeout` until the gate is open.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if it is still closed after `timeout`.
    pub async fn pass(&self, timeout: Duration) -> Result<(), Error> {
        until(deadline_after(timeout), timeout, async {
            loop {
                match self
                    .client
                    .exists_and_watch(&self.path, EventMask::DELETE, false)
                    .await
                {
                    Ok((None, _)) => return Ok(()),
                    Ok((Some(_), mut watch)) => {
                        watch.next().await;
                    }
                    Err(e) if retry_later(&e) => sleep(RETRY_PAUSE).await,
                    Err(e) => return Err(e.into()),
                }
            }
        })
        .await
    }
}

/// The node that lets participants through once the barrier is full.
const READY: &str = "_ready";

/// A double barrier: `count` participants [`enter`](Self::enter) (each waits until all
/// have), work, and [`leave`](Self::leave) (each waits until all have).
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    client: AsyncClient,
    dir: String,
    name: String,
    count: usize,
}

impl DoubleBarrier {
    /// Participant `name` of the barrier at the directory `dir`, which fills at `count`
    /// participants.
    pub fn new(
        client: &AsyncClient,
        dir: impl Into<String>,
        name: impl Into<String>,
        count: usize,
    ) -> DoubleBarrier {
        DoubleBarrier {
            client: client.clone(),
            dir: dir.into().trim_end_matches('/').to_owned(),
            name: name.into(),
            count: count.max(1),
        }
    }

    fn me(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }

    fn ready(&self) -> String {
        format!("{}/{READY}", self.dir)
    }

    /// Enters and waits up to `timeout` until `count` participants have entered.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the barrier did not fill in time (this participant stays
    /// entered: call [`leave`](Self::leave) to withdraw); a client error for a bad path
    /// or name, or when the name is taken by another session.
    pub async fn enter(&self, timeout: Duration) -> Result<(), Error> {
        until(deadline_after(timeout), timeout, self.enter_forever()).await
    }

    async fn enter_forever(&self) -> Result<(), Error> {
        if self.name.starts_with('_') || self.name.contains('/') {
            return Err(Error::InvalidName(self.name.clone()));
        }
        ensure_parents(&self.client, &self.me()).await?;
        match self.client.create_ephemeral(&self.me(), Bytes::new()).await {
            Ok(()) => {}
            Err(ClientError::Exists { .. }) => {
                let mine = self.client.exists(&self.me()).await?.map(|n| n.owner);
                if mine != self.client.sid() {
                    return Err(ClientError::Exists { path: self.me() }.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
        loop {
            let step = async {
                let (ready, mut ready_watch) = self
                    .client
                    .exists_and_watch(&self.ready(), EventMask::CREATE, false)
                    .await?;
                if ready.is_some() {
                    return Ok(true);
                }
                let (dir, mut children_watch) = self
                    .client
                    .read_and_watch(&self.dir, EventMask::CHILDREN)
                    .await?;
                if participants(&dir.children) >= self.count {
                    match self
                        .client
                        .create(&self.ready(), Bytes::new(), CreateMode::Persistent)
                        .await
                    {
                        Ok(()) | Err(ClientError::Exists { .. }) => return Ok(true),
                        Err(e) => return Err(e),
                    }
                }
                future::or(
                    async {
                        ready_watch.next().await;
                    },
                    async {
                        children_watch.next().await;
                    },
                )
                .await;
                Ok::<_, ClientError>(false)
            };
            match step.await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) if retry_later(&e) => sleep(RETRY_PAUSE).await,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Leaves and waits up to `timeout` until every participant has left.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if others are still in after `timeout` (this participant has
    /// left all the same); a client error if Pyxis could not be reached.
    pub async fn leave(&self, timeout: Duration) -> Result<(), Error> {
        until(deadline_after(timeout), timeout, self.leave_forever()).await
    }

    async fn leave_forever(&self) -> Result<(), Error> {
        loop {
            match self.client.delete(&self.me()).await {
                Ok(()) | Err(ClientError::NotFound { .. }) => break,
                Err(e) if retry_later(&e) => sleep(RETRY_PAUSE).await,
                Err(e) => return Err(e.into()),
            }
        }
        loop {
            let step = async {
                let (dir, mut watch) = match self
                    .client
                    .read_and_watch(&self.dir, EventMask::CHILDREN)
                    .await
                {
                    Ok(look) => look,
                    Err(ClientError::NotFound { .. }) => return Ok(true),
                    Err(e) => return Err(e),
                };
                if participants(&dir.children) == 0 {
                    match self.client.delete(&self.ready()).await {
                        Ok(()) | Err(ClientError::NotFound { .. }) => return Ok(true),
                        Err(e) => return Err(e),
                    }
                }
                watch.next().await;
                Ok::<_, ClientError>(false)
            };
            match step.await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) if retry_later(&e) => sleep(RETRY_PAUSE).await,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// How many of a barrier directory's children are participants (not `_`-reserved).
fn participants(children: &[String]) -> usize {
    children.iter().filter(|c| !c.starts_with('_')).count()
}
