//! Configuration: a typed value that always holds the latest data of one node.
//!
//! Owns: [`Configuration`] and [`ConfigValue`]. Must never report a value the server did
//! not have at some point, nor miss the last change: each look at the node arms its next
//! watch in the same server step (stat + watch), so every change after a look fires it.
//!
//! # Guarantees and limits
//!
//! - Eventually the latest: after the node's last change, the value becomes its data
//!   (or `Absent` if deleted) once the watch's event (real or, after a reconnect or a
//!   leader change, inferred by the client) is seen; the value can lag the server by
//!   that delay, never lead it.
//! - Intermediate values can be skipped (writes in a burst are seen as their last one),
//!   and a node deleted and re-created with the same data and version in between two
//!   looks is not reported as a change.
//! - A value the decoder refuses is reported as [`ConfigValue::Invalid`] with the
//!   decoder's message; it replaces the previous value (no stale fallback).

use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use pyxis_client_common::{AsyncClient, Error as ClientError, EventMask, Node};

use crate::runtime::{deadline_after, sleep, spawn, until, EventSender, Events, Task, RETRY_PAUSE};
use crate::Error;

/// The state of a configuration node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigValue<T> {
    /// Not read yet.
    Loading,
    /// The node does not exist.
    Absent,
    /// The node's data, decoded.
    Present {
        /// The node's version (grows by one per write; restarts at 0 if re-created).
        version: u64,
        /// The decoded value.
        value: T,
    },
    /// The node's data, which the decoder refused.
    Invalid {
        /// The node's version.
        version: u64,
        /// The decoder's message.
        error: String,
    },
}

impl<T> ConfigValue<T> {
    /// The value if present and valid (`None` for an absent node).
    pub fn value(&self) -> Option<&T> {
        match self {
            ConfigValue::Present { value, .. } => Some(value),
            _ => None,
        }
    }
}

type Decoder<T> = Box<dyn Fn(&Bytes) -> Result<T, String> + Send + Sync>;

struct Shared<T> {
    value: Mutex<ConfigValue<T>>,
    events: EventSender<ConfigValue<T>>,
}

impl<T> Shared<T> {
    fn value(&self) -> MutexGuard<'_, ConfigValue<T>> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The latest data of a node, decoded, with a change stream.
///
/// ```no_run
/// use std::time::Duration;
/// use pyxis_recipes::Configuration;
///
/// # async fn demo(client: pyxis_tokio::Client) -> Result<(), pyxis_recipes::Error> {
/// let limit = Configuration::watch_with(&client, "/config/rate-limit", |data| {
///     std::str::from_utf8(data).map_err(|e| e.to_string())?.parse::<u32>().map_err(|e| e.to_string())
/// })?;
/// limit.wait_loaded(Duration::from_secs(5)).await?;
/// let per_second = limit.get().value().copied().unwrap_or(100);
/// let mut changes = limit.events();
/// while let Some(new) = changes.next().await {
///     // After a `Lagged` item (changes dropped), the current value is `limit.get()`.
///     let new = new.unwrap_or_else(|_| limit.get());
///     println!("rate limit now {:?}", new.value());
/// }
/// # Ok(())
/// # }
/// ```
pub struct Configuration<T> {
    shared: Arc<Shared<T>>,
    _task: Task,
}

impl<T> std::fmt::Debug for Configuration<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configuration").finish_non_exhaustive()
    }
}

impl Configuration<Bytes> {
    /// The raw data of the node at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Start`] if the background executor cannot start.
    pub fn watch(client: &AsyncClient, path: &str) -> Result<Configuration<Bytes>, Error> {
        Configuration::watch_with(client, path, |data| Ok::<_, String>(data.clone()))
    }
}

impl<T: Clone + PartialEq + Send + Sync + 'static> Configuration<T> {
    /// The data of the node at `path`, decoded by `decode`.
    ///
    /// # Errors
    ///
    /// [`Error::Start`] if the background executor cannot start.
    pub fn watch_with<E: Display>(
        client: &AsyncClient,
        path: &str,
        decode: impl Fn(&Bytes) -> Result<T, E> + Send + Sync + 'static,
    ) -> Result<Configuration<T>, Error> {
        let shared = Arc::new(Shared {
            value: Mutex::new(ConfigValue::Loading),
            events: EventSender::new(),
        });
        let decoder: Decoder<T> = Box::new(move |data| decode(data).map_err(|e| e.to_string()));
        let task = spawn(follow(
            client.clone(),
            path.to_owned(),
            decoder,
            shared.clone(),
        ))?;
        Ok(Configuration {
            shared,
            _task: task,
        })
    }

    /// The value as last read.
    pub fn get(&self) -> ConfigValue<T> {
        self.shared.value().clone()
    }

    /// The value's changes from now on (each new value).
    pub fn events(&self) -> Events<ConfigValue<T>> {
        self.shared.events.subscribe()
    }

    /// Waits up to `timeout` until the node has been read once.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if it was not within `timeout`.
    pub async fn wait_loaded(&self, timeout: Duration) -> Result<(), Error> {
        until(deadline_after(timeout), timeout, async {
            while matches!(*self.shared.value(), ConfigValue::Loading) {
                sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        })
        .await
    }
}

/// The value a look at the node shows.
fn decoded<T>(node: Option<Node>, decode: &Decoder<T>) -> ConfigValue<T> {
    match node {
        None => ConfigValue::Absent,
        Some(node) => match decode(&node.data) {
            Ok(value) => ConfigValue::Present {
                version: node.version,
                value,
            },
            Err(error) => ConfigValue::Invalid {
                version: node.version,
                error,
            },
        },
    }
}

/// The background task: look and arm a watch in one step, update, wait, repeat.
async fn follow<T: Clone + PartialEq>(
    client: AsyncClient,
    path: String,
    decode: Decoder<T>,
    shared: Arc<Shared<T>>,
) {
    let mask = EventMask::CREATE | EventMask::DELETE | EventMask::MODIFY;
    loop {
        let (node, mut watch) = match client.exists_and_watch(&path, mask, false).await {
            Ok(look) => look,
            Err(ClientError::Closed) => break,
            Err(_) => {
                sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        let fresh = decoded(node, &decode);
        let changed = {
            let mut value = shared.value();
            if *value != fresh {
                *value = fresh.clone();
                true
            } else {
                false
            }
        };
        if changed {
            shared.events.send(fresh);
        }
        // The watch fires on the next change, or ends (session expired, closed); look
        // again either way, and at least once per session timeout.
        future::or(
            async {
                watch.next().await;
            },
            sleep(client.session_timeout()),
        )
        .await;
    }
    shared.events.close();
}
