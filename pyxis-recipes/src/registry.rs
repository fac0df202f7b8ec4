//! Service registry and discovery: instances register an ephemeral node (name → data)
//! under a service's directory; discovery keeps a live view of that directory.
//!
//! Owns: [`Registration`] (keeps one instance's node in place across session expiry
//! and deletion) and [`Discovery`] (the view and its change stream). Must never let the
//! view drift from a re-read: every watch event, inferred event, dropped event or
//! re-armed watch leads to a full re-read of the directory, never to a patch guessed
//! from the event.
//!
//! # Guarantees and limits
//!
//! - A [`Registration`] is re-created automatically after its session expires (or its
//!   node is deleted), with a [`RegistrationEvent::Reregistered`] saying so. Between the
//!   expiry and the re-creation the instance is absent from every view: discovery shows
//!   what the server has, not what should be.
//! - An instance name is one node: two live registrations of the same name (two
//!   processes, or one process twice) do not both appear; the second waits until the
//!   first's node goes away. The stale node of this instance's own previous session also
//!   holds the name until the server expires that session.
//! - A [`Discovery`] view is eventually equal to the directory on the server: after any
//!   change, reconnect or leader change it re-reads the directory (children, then the
//!   data of each, pipelined) and reports the difference. It can be briefly behind the
//!   server, never ahead, and never keeps an instance the server no longer has once the
//!   re-read that follows the change is done.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use pyxis_client_common::{
    AsyncClient, Error as ClientError, EventMask, SessionEvent, SessionEvents, WatchError,
};

use crate::node::{ensure_parents, wait_deleted};
use crate::runtime::{
    deadline_after, detach, retry_later, sleep, spawn, until, EventSender, Events, Task,
    RETRY_PAUSE,
};
use crate::Error;

/// What happened to a [`Registration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// The instance's node was created (the first time), owned by session `sid`.
    Registered {
        /// The owning session.
        sid: u64,
    },
    /// The node was gone (its session expired, or someone deleted it) and is there
    /// again, owned by session `sid`.
    Reregistered {
        /// The owning session.
        sid: u64,
    },
    /// The node was found gone; the registration is re-creating it.
    Gone,
}

#[derive(Debug)]
struct RegistrationState {
    /// The session that owns the node, while it is known to be in place.
    sid: Mutex<Option<u64>>,
    events: EventSender<RegistrationEvent>,
}

impl RegistrationState {
    fn sid(&self) -> MutexGuard<'_, Option<u64>> {
        self.sid.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One instance registered under a service directory, kept registered until dropped or
/// [`deregister`](Self::deregister)ed.
///
/// ```no_run
/// use pyxis_recipes::{Discovery, Registration};
///
/// # async fn demo(client: pyxis_tokio::Client) -> Result<(), pyxis_recipes::Error> {
/// let me = Registration::register(&client, "/services/api", "host-a", "10.0.0.9:8080")?;
/// let peers = Discovery::watch(&client, "/services/api")?;
/// peers.wait_loaded(std::time::Duration::from_secs(5)).await?;
/// for (name, address) in peers.instances() {
///     println!("{name} at {}", String::from_utf8_lossy(&address));
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Registration {
    client: AsyncClient,
    path: String,
    state: Arc<RegistrationState>,
    task: Option<Task>,
}

impl Registration {
    /// Registers the instance `name` with `data` under the directory `service` (made,
    /// with its parents, as persistent nodes if missing), in the background.
    ///
    /// # Errors
    ///
    /// [`Error::Start`] if the background executor cannot start.
    pub fn register(
        client: &AsyncClient,
        service: &str,
        name: &str,
        data: impl Into<Bytes>,
    ) -> Result<Registration, Error> {
        let path = format!("{}/{name}", service.trim_end_matches('/'));
        let state = Arc::new(RegistrationState {
            sid: Mutex::new(None),
            events: EventSender::new(),
        });
        let task = spawn(keep_registered(
            client.clone(),
            path.clone(),
            data.into(),
            state.clone(),
        ))?;
        Ok(Registration {
            client: client.clone(),
            path,
            state,
            task: Some(task),
        })
    }

    /// The instance's node path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the node was in place at the last look.
    pub fn is_registered(&self) -> bool {
        self.state.sid().is_some()
    }

    /// What happens to the registration from now on.
    pub fn events(&self) -> Events<RegistrationEvent> {
        self.state.events.subscribe()
    }

    /// Waits up to `timeout` until the node is in place.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if it is not within `timeout`.
    pub async fn wait_registered(&self, timeout: Duration) -> Result<(), Error> {
        until(deadline_after(timeout), timeout, async {
            while !self.is_registered() {
                sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        })
        .await
    }

    /// Stops keeping the instance registered and deletes its node (if this session
    /// owns it).
    ///
    /// # Errors
    ///
    /// A client error if the node could not be deleted; it then goes with the session.
    pub async fn deregister(mut self) -> Result<(), Error> {
        self.task.take();
        let sid = self.state.sid().take();
        self.state.events.close();
        match sid {
            Some(sid) => deregister(&self.client, &self.path, sid).await,
            None => Ok(()),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.task.take().is_some() {
            self.state.events.close();
            if let Some(sid) = self.state.sid().take() {
                let (client, path) = (self.client.clone(), self.path.clone());
                detach(async move {
                    let _ = deregister(&client, &path, sid).await;
                });
            }
        }
    }
}

/// Deletes the node at `path` if session `sid` owns it.
async fn deregister(client: &AsyncClient, path: &str, sid: u64) -> Result<(), Error> {
    match client.exists(path).await? {
        Some(node) if node.owner == sid => match client.delete(path).await {
            Ok(()) | Err(ClientError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        },
        _ => Ok(()),
    }
}

/// The registration's background task.
async fn keep_registered(
    client: AsyncClient,
    path: String,
    data: Bytes,
    state: Arc<RegistrationState>,
) {
    let mut session = client.session_events();
    let mut registered_before = false;
    loop {
        match register_once(&client, &path, &data).await {
            Ok(Some(sid)) => {
                *state.sid() = Some(sid);
                state.events.send(if registered_before {
                    RegistrationEvent::Reregistered { sid }
                } else {
                    RegistrationEvent::Registered { sid }
                });
                registered_before = true;
                stay_registered(&client, &path, sid, &mut session).await;
                *state.sid() = None;
                state.events.send(RegistrationEvent::Gone);
            }
            // Another node holds the name: wait for it to go.
            Ok(None) => wait_deleted(&client, &path).await,
            Err(e) if retry_later(&e) => sleep(RETRY_PAUSE).await,
            Err(_) => {
                state.events.close();
                return;
            }
        }
    }
}

/// Creates the instance's node; the owning session if this client's session now owns
/// it, `None` if another session's node holds the name.
async fn register_once(
    client: &AsyncClient,
    path: &str,
    data: &Bytes,
) -> Result<Option<u64>, ClientError> {
    let outcome = match client.create_ephemeral(path, data.clone()).await {
        Err(ClientError::NotFound { .. }) => {
            ensure_parents(client, path).await?;
            client.create_ephemeral(path, data.clone()).await
        }
        other => other,
    };
    match outcome {
        Ok(()) | Err(ClientError::Exists { .. }) => {}
        Err(e) if e.is_outcome_unknown() => {}
        Err(e) => return Err(e),
    }
    match client.exists(path).await? {
        Some(node) if Some(node.owner) == client.sid() => Ok(Some(node.owner)),
        _ => Ok(None),
    }
}

/// Returns once the node owned by `sid` is found gone (deleted, or its session
/// expired); looks again after every watch event, session expiry and re-registration
/// of every watch.
async fn stay_registered(client: &AsyncClient, path: &str, sid: u64, session: &mut SessionEvents) {
    loop {
        let mut watch = match client
            .exists_and_watch(path, EventMask::DELETE, false)
            .await
        {
            Ok((Some(node), watch)) if node.owner == sid && client.sid() == Some(sid) => watch,
            Ok(_) | Err(ClientError::SessionExpired | ClientError::Closed) => return,
            Err(_) => {
                sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        future::or(
            async {
                watch.next().await;
            },
            async {
                while let Some(event) = session.next().await {
                    if matches!(
                        event,
                        Ok(SessionEvent::Expired { .. } | SessionEvent::WatchesRearmed) | Err(_)
                    ) {
                        return;
                    }
                }
                std::future::pending::<()>().await;
            },
        )
        .await;
    }
}

/// A change in a [`Discovery`] view.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryEvent {
    /// An instance appeared.
    Added {
        /// Its name (the node's name under the directory).
        name: String,
        /// Its data.
        data: Bytes,
    },
    /// An instance's data changed.
    Changed {
        /// Its name.
        name: String,
        /// Its new data.
        data: Bytes,
    },
    /// An instance went away.
    Removed {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Default)]
struct View {
    instances: BTreeMap<String, Bytes>,
    loaded: bool,
}

#[derive(Debug)]
struct DiscoveryState {
    view: Mutex<View>,
    events: EventSender<DiscoveryEvent>,
}

impl DiscoveryState {
    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the view with `fresh`, reporting the differences.
    fn update(&self, fresh: BTreeMap<String, Bytes>) {
        let mut view = self.view();
        for (name, data) in &fresh {
            match view.instances.get(name) {
                None => self.events.send(DiscoveryEvent::Added {
                    name: name.clone(),
                    data: data.clone(),
                }),
                Some(old) if old != data => self.events.send(DiscoveryEvent::Changed {
                    name: name.clone(),
                    data: data.clone(),
                }),
                Some(_) => {}
            }
        }
        for name in view.instances.keys() {
            if !fresh.contains_key(name) {
                self.events
                    .send(DiscoveryEvent::Removed { name: name.clone() });
            }
        }
        view.instances = fresh;
        view.loaded = true;
    }
}

/// A live view of the instances registered under a service directory (name → data),
/// with a change stream. A missing directory is an empty view.
#[derive(Debug)]
pub struct Discovery {
    state: Arc<DiscoveryState>,
    _task: Task,
}

impl Discovery {
    /// Starts watching the directory `service` in the background.
    ///
    /// # Errors
    ///
    /// [`Error::Start`] if the background executor cannot start.
    pub fn watch(client: &AsyncClient, service: &str) -> Result<Discovery, Error> {
        let state = Arc::new(DiscoveryState {
            view: Mutex::new(View::default()),
            events: EventSender::new(),
        });
        let task = spawn(follow(
            client.clone(),
            service.trim_end_matches('/').to_owned(),
            state.clone(),
        ))?;
        Ok(Discovery { state, _task: task })
    }

    /// The instances as last read (empty until loaded).
    pub fn instances(&self) -> BTreeMap<String, Bytes> {
        self.state.view().instances.clone()
    }

    /// Whether the directory has been read at least once.
    pub fn is_loaded(&self) -> bool {
        self.state.view().loaded
    }

    /// Waits up to `timeout` until the directory has been read once.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if it was not within `timeout`.
    pub async fn wait_loaded(&self, timeout: Duration) -> Result<(), Error> {
        until(deadline_after(timeout), timeout, async {
            while !self.is_loaded() {
                sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        })
        .await
    }

    /// The view's changes from now on.
    pub fn events(&self) -> Events<DiscoveryEvent> {
        self.state.events.subscribe()
    }
}

/// The background task of a discovery view: arm a persistent recursive watch, read,
/// and read again after every event.
async fn follow(client: AsyncClient, dir: String, state: Arc<DiscoveryState>) {
    let mask = EventMask::CREATE | EventMask::DELETE | EventMask::MODIFY | EventMask::CHILDREN;
    let mut session = client.session_events();
    loop {
        // Armed before the read, so no change after the read goes unseen.
        let mut watch = match client.watch_persistent(&dir, mask, true).await {
            Ok(watch) => watch,
            Err(ClientError::Closed) => break,
            Err(_) => {
                sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        loop {
            match read_dir(&client, &dir).await {
                Ok(fresh) => state.update(fresh),
                Err(ClientError::Closed) => {
                    state.events.close();
                    return;
                }
                Err(_) => {
                    sleep(RETRY_PAUSE).await;
                    continue;
                }
            }
            // Wait for a reason to read again: an event (inferred or not), dropped
            // events, or every watch registered again; re-arm if the watch ended.
            let again = future::or(
                async {
                    match watch.next().await {
                        Some(Ok(_)) | Some(Err(WatchError::Lagged(_))) => {
                            // Coalesce a burst into one re-read.
                            while watch.try_recv().is_some() {}
                            true
                        }
                        _ => false,
                    }
                },
                async {
                    loop {
                        match session.next().await {
                            // Every watch registered again: changes to the data of
                            // instances the client never looked at are not inferred.
                            Some(Ok(SessionEvent::WatchesRearmed)) | Some(Err(_)) => return true,
                            Some(Ok(_)) => {}
                            None => return false,
                        }
                    }
                },
            )
            .await;
            if !again {
                break;
            }
        }
    }
    state.events.close();
}

/// The directory's children and their data (an empty map if it does not exist), read
/// with pipelined requests.
async fn read_dir(client: &AsyncClient, dir: &str) -> Result<BTreeMap<String, Bytes>, ClientError> {
    let children = match client.read(dir).await {
        Ok(node) => node.children,
        Err(ClientError::NotFound { .. }) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    // Every read is sent before the first is awaited (calls are sent when made).
    let reads: Vec<_> = children
        .iter()
        .map(|name| (name, client.exists(&format!("{dir}/{name}"))))
        .collect();
    let mut fresh = BTreeMap::new();
    for (name, read) in reads {
        if let Some(node) = read.await? {
            fresh.insert(name.clone(), node.data);
        }
    }
    Ok(fresh)
}
