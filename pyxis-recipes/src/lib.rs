//! # pyxis-recipes: what people build on Pyxis, written once
//!
//! - [`Lock`]: mutual exclusion by owning an ephemeral node;
//! - [`Election`]: leader election with a lease and a change stream;
//! - [`Registration`] and [`Discovery`]: a service registry and a live view of it;
//! - [`Configuration`]: a typed value that follows one node's data;
//! - [`Gate`] and [`DoubleBarrier`]: barriers;
//! - [`TreeCache`]: a bounded local mirror of a subtree.
//!
//! Each is implemented once, as async code over [`AsyncClient`], and usable from every
//! adapter:
//!
//! - **tokio, async-std, smol**: their `Client` derefs to [`AsyncClient`]; pass `&client`.
//! - **blocking code**: `pyxis_blocking::Client::to_async()` gives the same client (same
//!   connection and session) as an [`AsyncClient`], and [`wait`] runs a recipe's future
//!   on the calling thread.
//!
//! Recipes that keep something up to date in the background (a lease, a registration,
//! a view) run it on one small executor thread shared by the whole process
//! (`pyxis-recipes`), with `async-io` timers, so they need nothing from the
//! application's runtime and never block it. A deterministic simulation puts that work
//! and the recipes' clock on its own hosts and virtual time instead ([`Runtime`]). A recipe keeps a clone of its client while
//! it runs (drop or stop the recipe before expecting the client to close). Their change streams ([`Events`]) are bounded: a consumer that falls behind
//! loses the oldest events, told so by a [`Lagged`] item with their number, never the
//! recipe's current state, which is always readable.
//!
//! ## Leases: acting on owning a node
//!
//! A lock holder owns an ephemeral node; the server deletes it when the holder's session
//! expires, about one session timeout `T` after the last request it received. A holder
//! cut off from the servers may not notice that for longer, so "my session looks
//! connected" is not a safe reason to keep acting. Instead every answer proves the
//! session was alive when its request was sent: the recipes hold a node under a lease of
//! `¾T` from the sending of the last request whose answer showed the node still theirs,
//! renewed by check-ins every `T/5`, and report it lost when the lease lapses, before
//! the server could have expired the session. This assumes the client's and the
//! server's clocks run at about the same rate, and a server that keeps its timeout
//! promise; it cannot stop work already under way (check before each step). A session
//! expired early on purpose (an operator's action, `TestCluster::expire_session` in
//! tests) breaks that promise: the holder then learns it at its next answered check-in
//! (every `T/5`) or as soon as its client hears of the expiry, at the latest when its
//! lease lapses (`¾T` after the last answer), and may overlap with a new holder until
//! then.

mod barrier;
mod cache;
mod config;
mod election;
mod lease;
mod lock;
mod node;
mod registry;
mod runtime;

pub use barrier::{DoubleBarrier, Gate};
pub use cache::{CacheEvent, TreeCache};
pub use config::{ConfigValue, Configuration};
pub use election::{Election, Leadership};
pub use lock::{Lock, LockGuard};
pub use registry::{Discovery, DiscoveryEvent, Registration, RegistrationEvent};
pub use runtime::{
    use_runtime_on_this_thread, wait, BoxFuture, Events, Runtime, RuntimeGuard, Spawned,
    EVENT_BOUND,
};

pub use pyxis_client_common::{AsyncClient, Lagged};

use std::time::Duration;

/// Why a recipe call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client's call failed (bad path, Pyxis unreachable past the request timeout,
    /// client closed, ...).
    #[error(transparent)]
    Client(#[from] pyxis_client_common::Error),
    /// The recipe's own deadline passed (`acquire(timeout)`, `wait(timeout)`, ...).
    #[error("gave up after {0:?}")]
    Timeout(Duration),
    /// A name the recipe reserves or cannot use (a barrier participant named `_...` or
    /// containing `/`).
    #[error("invalid participant name {0:?}: it must not start with '_' or contain '/'")]
    InvalidName(String),
    /// A subtree cache's subtree has more nodes than its bound; the cache has stopped.
    #[error("the subtree at {root} has more than {max_nodes} nodes, the cache's bound")]
    TooLarge {
        /// The cache's root.
        root: String,
        /// The bound.
        max_nodes: usize,
    },
    /// The recipes' background executor thread could not be started.
    #[error("cannot start the recipes' executor thread: {0}")]
    Start(String),
}
