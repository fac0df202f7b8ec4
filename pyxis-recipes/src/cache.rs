//! A subtree cache: a local mirror of every node (data, version, children) at and below
//! a root, kept in sync with one persistent recursive watch.
//!
//! Owns: [`TreeCache`] and [`CacheEvent`]. Must never patch the mirror from an event's
//! content (an event only says that something changed: the cache reloads the subtree and
//! reports the difference) and never grow past its bound.
//!
//! # Guarantees and limits
//!
//! - **Eventually equal** to the server's subtree: the watch is armed before the first
//!   load, and every burst of events (real or inferred after a reconnect or leader
//!   change), dropped events, and every re-registration of the client's watches
//!   ([`SessionEvent::WatchesRearmed`]: after a reconnect or a new session, or on the same
//!   connection after a suspected leader change or a pause) leads to a reload of the
//!   whole subtree. A re-registration needs its own reload: the client infers what its
//!   watch missed meanwhile only for the nodes its events and looks named, not for those
//!   only this cache's loads read. Reloading, not patching, is what makes this hold: the
//!   server's watch is one-shot, and a change elsewhere in the subtree between its firing
//!   and the client re-arming it raises no event of its own; the reload that follows the
//!   firing sees it. The mirror can lag the server, never lead it; during a reload it
//!   may mix states of different instants, and the next event corrects it.
//! - **Cost**: each burst of changes costs one pipelined read of every node in the
//!   subtree, so cache small subtrees (the bound says how small).
//! - **Bounded**: past `max_nodes` nodes the cache stops, drops its mirror and answers
//!   every call with [`Error::TooLarge`]; start a new one with a larger bound or a
//!   narrower root.
//! - Loads are pipelined one level at a time (every read of a level is sent before the
//!   first answer is awaited).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_lite::future;
use pyxis_client_common::{
    AsyncClient, Error as ClientError, EventMask, Node, SessionEvent, WatchError,
};

use crate::runtime::{deadline_after, sleep, spawn, until, EventSender, Events, Task, RETRY_PAUSE};
use crate::Error;

/// A change in a [`TreeCache`]'s mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheEvent {
    /// A node appeared in the mirror.
    Added {
        /// Its path.
        path: String,
    },
    /// A node's data, version or children changed.
    Changed {
        /// Its path.
        path: String,
    },
    /// A node left the mirror.
    Removed {
        /// Its path.
        path: String,
    },
    /// The subtree outgrew the bound: the cache has stopped (see [`Error::TooLarge`]).
    Overflow,
}

#[derive(Debug, Default)]
struct Mirror {
    nodes: BTreeMap<String, Node>,
    loaded: bool,
    overflow: bool,
}

#[derive(Debug)]
struct Shared {
    root: String,
    max_nodes: usize,
    mirror: Mutex<Mirror>,
    events: EventSender<CacheEvent>,
}

impl Shared {
    fn mirror(&self) -> MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn too_large(&self) -> Error {
        Error::TooLarge {
            root: self.root.clone(),
            max_nodes: self.max_nodes,
        }
    }

    /// Replaces everything at and below `path` with `fresh`, reporting the differences.
    /// `false` (and the cache stopped) if that makes the mirror larger than its bound.
    fn replace(&self, path: &str, fresh: BTreeMap<String, Node>) -> bool {
        let mut mirror = self.mirror();
        let stale: Vec<String> = mirror
            .nodes
            .keys()
            .filter(|key| is_under(key, path) && !fresh.contains_key(*key))
            .cloned()
            .collect();
        for key in stale {
            mirror.nodes.remove(&key);
            self.events.send(CacheEvent::Removed { path: key });
        }
        for (key, node) in fresh {
            match mirror.nodes.get(&key) {
                None => self.events.send(CacheEvent::Added { path: key.clone() }),
                Some(old) if *old != node => {
                    self.events.send(CacheEvent::Changed { path: key.clone() })
                }
                Some(_) => {}
            }
            mirror.nodes.insert(key, node);
        }
        if mirror.nodes.len() > self.max_nodes {
            drop(mirror);
            self.overflow();
            return false;
        }
        true
    }

    /// The subtree outgrew the bound: drop the mirror and stop.
    fn overflow(&self) {
        let mut mirror = self.mirror();
        mirror.nodes.clear();
        mirror.overflow = true;
        drop(mirror);
        self.events.send(CacheEvent::Overflow);
        self.events.close();
    }
}

/// Whether `key` is `path` or below it.
fn is_under(key: &str, path: &str) -> bool {
    key == path
        || (key.starts_with(path) && (path.ends_with('/') || key[path.len()..].starts_with('/')))
}

/// The path of child `name` of `parent`.
fn child(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A local mirror of the subtree at a root.
///
/// ```no_run
/// use std::time::Duration;
/// use pyxis_recipes::TreeCache;
///
/// # async fn demo(client: pyxis_tokio::Client) -> Result<(), pyxis_recipes::Error> {
/// let cache = TreeCache::watch(&client, "/app", 10_000)?;
/// cache.wait_loaded(Duration::from_secs(5)).await?;
/// if let Some(node) = cache.get("/app/feature-flags")? {
///     println!("flags v{}: {:?}", node.version, node.data);
/// }
/// println!("{:?}", cache.children("/app")?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TreeCache {
    shared: Arc<Shared>,
    _task: Task,
}

impl TreeCache {
    /// Starts mirroring the subtree at `root`, holding at most `max_nodes` nodes.
    ///
    /// # Errors
    ///
    /// [`Error::Start`] if the background executor cannot start.
    pub fn watch(client: &AsyncClient, root: &str, max_nodes: usize) -> Result<TreeCache, Error> {
        let root = match root.trim_end_matches('/') {
            "" => "/".to_owned(),
            trimmed => trimmed.to_owned(),
        };
        let shared = Arc::new(Shared {
            root,
            max_nodes,
            mirror: Mutex::new(Mirror::default()),
            events: EventSender::new(),
        });
        let task = spawn(follow(client.clone(), shared.clone()))?;
        Ok(TreeCache {
            shared,
            _task: task,
        })
    }

    fn mirror(&self) -> Result<MutexGuard<'_, Mirror>, Error> {
        let mirror = self.shared.mirror();
        if mirror.overflow {
            Err(self.shared.too_large())
        } else {
            Ok(mirror)
        }
    }

    /// The node at `path` as mirrored (`None` if absent or outside the root).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] once the subtree outgrew the bound.
    pub fn get(&self, path: &str) -> Result<Option<Node>, Error> {
        Ok(self.mirror()?.nodes.get(path).cloned())
    }

    /// The children of `path` as mirrored (`None` if absent).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] once the subtree outgrew the bound.
    pub fn children(&self, path: &str) -> Result<Option<Vec<String>>, Error> {
        Ok(self.mirror()?.nodes.get(path).map(|n| n.children.clone()))
    }

    /// Every mirrored node by path.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] once the subtree outgrew the bound.
    pub fn snapshot(&self) -> Result<BTreeMap<String, Node>, Error> {
        Ok(self.mirror()?.nodes.clone())
    }

    /// How many nodes are mirrored.
    pub fn len(&self) -> usize {
        self.shared.mirror().nodes.len()
    }

    /// Whether nothing is mirrored (not loaded yet, or the root does not exist).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits up to `timeout` until the subtree has been loaded once.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if it was not within `timeout`; [`Error::TooLarge`] if the
    /// subtree outgrew the bound.
    pub async fn wait_loaded(&self, timeout: Duration) -> Result<(), Error> {
        until(deadline_after(timeout), timeout, async {
            while !self.mirror()?.loaded {
                sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        })
        .await
    }

    /// The mirror's changes from now on.
    pub fn events(&self) -> Events<CacheEvent> {
        self.shared.events.subscribe()
    }
}

/// Reads the subtree at `path`, one level at a time with pipelined reads; `None` if it
/// would hold more than `max_nodes` nodes.
async fn load(
    client: &AsyncClient,
    path: &str,
    max_nodes: usize,
) -> Result<Option<BTreeMap<String, Node>>, ClientError> {
    let mut fresh = BTreeMap::new();
    let mut level = vec![path.to_owned()];
    while !level.is_empty() {
        // Every read of the level is sent before the first answer is awaited.
        let reads: Vec<_> = level
            .iter()
            .map(|p| (p.clone(), client.exists(p)))
            .collect();
        let mut next = Vec::new();
        for (p, read) in reads {
            if let Some(node) = read.await? {
                next.extend(node.children.iter().map(|name| child(&p, name)));
                fresh.insert(p, node);
                if fresh.len() > max_nodes {
                    return Ok(None);
                }
            }
        }
        level = next;
    }
    Ok(Some(fresh))
}

/// What the follower does next.
enum Next {
    /// Reload the subtree (the watch stays).
    Reload,
    /// The watch ended: arm a new one and reload.
    Rearm,
    /// The client is closed.
    Stop,
}

/// The cache's background task.
async fn follow(client: AsyncClient, shared: Arc<Shared>) {
    let mask = EventMask::CREATE | EventMask::DELETE | EventMask::MODIFY | EventMask::CHILDREN;
    let mut session = client.session_events();
    'arm: loop {
        let mut watch = match client.watch_persistent(&shared.root, mask, true).await {
            Ok(watch) => watch,
            Err(ClientError::Closed) => break,
            Err(_) => {
                sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        let mut next = Next::Reload;
        loop {
            let step = match next {
                Next::Reload => match load(&client, &shared.root, shared.max_nodes).await {
                    Ok(Some(fresh)) => {
                        let ok = shared.replace(&shared.root, fresh);
                        shared.mirror().loaded = true;
                        Ok(ok)
                    }
                    Ok(None) => {
                        shared.overflow();
                        Ok(false)
                    }
                    Err(e) => Err(e),
                },
                Next::Rearm => continue 'arm,
                Next::Stop => break 'arm,
            };
            match step {
                Ok(true) => {}
                Ok(false) => return,
                Err(ClientError::Closed) => break 'arm,
                // Something failed half-way: only a full reload is sure to be right.
                Err(_) => {
                    sleep(RETRY_PAUSE).await;
                    next = Next::Reload;
                    continue;
                }
            }
            next = wait_for_change(&mut watch, &mut session).await;
        }
    }
    shared.events.close();
}

/// Waits for the next reason to look again, coalescing a burst of events.
async fn wait_for_change(
    watch: &mut pyxis_client_common::Watch,
    session: &mut pyxis_client_common::SessionEvents,
) -> Next {
    let first = future::or(async { Some(watch.next().await) }, async {
        loop {
            match session.next().await {
                // Every watch registered again (reconnect, new session, or a suspected
                // leader change on the same connection): the client infers missed
                // changes only of the nodes its watch registry has seen, not those this
                // cache loaded itself. Session events dropped: one of them may be it.
                Some(Ok(SessionEvent::WatchesRearmed)) | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
                None => return Some(None),
            }
        }
    })
    .await;
    let mut pending = VecDeque::from([match first {
        Some(item) => item,
        None => return Next::Reload,
    }]);
    while let Some(item) = watch.try_recv() {
        pending.push_back(Some(item));
    }
    let mut next = Next::Reload;
    for item in pending {
        match item {
            // Any event, real or inferred, and dropped events: reload.
            Some(Ok(_)) | Some(Err(WatchError::Lagged(_))) => {}
            Some(Err(WatchError::Ended(ClientError::Closed))) => return Next::Stop,
            Some(Err(_)) | None => next = Next::Rearm,
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_means_the_node_or_a_descendant_not_a_sibling_with_the_same_prefix() {
        assert!(is_under("/a", "/a"));
        assert!(is_under("/a/b/c", "/a"));
        assert!(!is_under("/ab", "/a"));
        assert!(!is_under("/", "/a"));
        assert!(is_under("/a", "/"));
        assert!(is_under("/", "/"));
        assert_eq!(child("/", "x"), "/x");
        assert_eq!(child("/a", "x"), "/a/x");
    }
}
