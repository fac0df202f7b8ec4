//! What an application chooses when it connects: [`Options`], [`ReadOptions`], and the
//! reasons a connect can fail ([`ConnectError`]).
//!
//! Owns: the option types, their defaults, and their translation into a core
//! [`Config`]. Must never hold protocol state or decide protocol behaviour: every knob
//! maps onto a core setting or an adapter queue bound.

use std::hash::BuildHasher;
use std::time::Duration;

use pyxis_core::{Config, ConfigError, Error};

/// Connection options shared by every adapter. Start from [`Options::new`] (the
/// defaults) and chain the setters:
///
/// ```
/// use std::time::Duration;
/// use pyxis_client_common::Options;
///
/// let options = Options::new()
///     .session_timeout(Duration::from_secs(10))
///     .request_timeout(Duration::from_secs(3))
///     .close_on_expiry(true)
///     .seed(7);
/// assert_eq!(options.session_timeout, Duration::from_secs(10));
/// assert!(options.close_on_expiry);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Session timeout asked of the server (default 5 s, the minimum).
    pub session_timeout: Duration,
    /// A session id to resume (its ephemeral nodes are kept if it is still alive).
    pub resume_sid: Option<u64>,
    /// How long an operation may wait, across reconnects, before failing with
    /// `Error::Timeout` (default 10 s).
    pub request_timeout: Duration,
    /// How long one connection attempt (TCP connect + register) may take (default 2 s).
    pub connect_timeout: Duration,
    /// Seed for server choice and backoff jitter (`None`, the default: drawn from the
    /// operating system's entropy, so clients spread over the servers).
    pub seed: Option<u64>,
    /// Drop children whose name starts with `_` from reads unless asked (default `true`,
    /// like the Go client).
    pub hide_hidden_children: bool,
    /// Unread events kept per watch and per session-event subscriber before the oldest
    /// are dropped (default 1 024; see [`Lagged`](crate::Lagged)).
    pub event_queue_bound: usize,
    /// Close the client when its session expires instead of going on with a new session
    /// (default `false`). For applications whose correctness rests on their ephemeral
    /// nodes (a lock, a leader election): after an expiry they would otherwise run on
    /// without them. The expiry is learned when the client reaches a server again, which
    /// opens the new session; the client then unregisters it at once, reports
    /// `Expired` and `Closed`, and every later call fails with `Error::Closed`.
    pub close_on_expiry: bool,
    /// Fail calls at once while no server is reachable, with `Error::Unreachable`
    /// naming the last cause ("connection refused by 127.0.0.1:7000"), instead of
    /// letting them wait for their deadline (default `false`). For command-line tools
    /// and one-shot jobs. A server counts as unreachable once every listed server
    /// failed in turn with no session in between; calls waiting for a session then
    /// fail, and so do calls made (and `wait_connected`) until a session is up again.
    /// The client keeps trying in the background.
    pub fail_fast: bool,
}

impl Default for Options {
    fn default() -> Self {
        let core = Config::new(["unused:0"]);
        Options {
            session_timeout: core.session_timeout,
            resume_sid: None,
            request_timeout: core.request_timeout,
            connect_timeout: core.connect_timeout,
            seed: None,
            hide_hidden_children: core.hide_hidden_children,
            event_queue_bound: 1024,
            close_on_expiry: false,
            fail_fast: false,
        }
    }
}

impl Options {
    /// The default options (as [`Options::default`]), to chain setters on.
    pub fn new() -> Options {
        Options::default()
    }

    /// Sets [`session_timeout`](Self::session_timeout).
    pub fn session_timeout(mut self, timeout: Duration) -> Options {
        self.session_timeout = timeout;
        self
    }

    /// Sets [`resume_sid`](Self::resume_sid): a session id to resume.
    pub fn resume_sid(mut self, sid: u64) -> Options {
        self.resume_sid = Some(sid);
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Options {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Options {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`seed`](Self::seed): a fixed seed for reproducible server choice and jitter.
    pub fn seed(mut self, seed: u64) -> Options {
        self.seed = Some(seed);
        self
    }

    /// Sets [`hide_hidden_children`](Self::hide_hidden_children).
    pub fn hide_hidden_children(mut self, hide: bool) -> Options {
        self.hide_hidden_children = hide;
        self
    }

    /// Sets [`event_queue_bound`](Self::event_queue_bound).
    pub fn event_queue_bound(mut self, bound: usize) -> Options {
        self.event_queue_bound = bound;
        self
    }

    /// Sets [`close_on_expiry`](Self::close_on_expiry).
    pub fn close_on_expiry(mut self, close: bool) -> Options {
        self.close_on_expiry = close;
        self
    }

    /// Sets [`fail_fast`](Self::fail_fast).
    pub fn fail_fast(mut self, fail_fast: bool) -> Options {
        self.fail_fast = fail_fast;
        self
    }

    /// The core configuration for these servers and options.
    pub fn config<I, S>(&self, addrs: I) -> Config
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut config = Config::new(addrs);
        config.session_timeout = self.session_timeout;
        config.resume_sid = self.resume_sid;
        config.request_timeout = self.request_timeout;
        config.connect_timeout = self.connect_timeout;
        config.hide_hidden_children = self.hide_hidden_children;
        config.fail_fast = self.fail_fast;
        config.seed = self
            .seed
            .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
        config
    }
}

/// Options of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Keep children whose name starts with `_` (`None`: the client's default).
    pub show_hidden: Option<bool>,
}

impl ReadOptions {
    /// Read options that keep (`true`) or drop (`false`) hidden children.
    pub fn show_hidden(show: bool) -> ReadOptions {
        ReadOptions {
            show_hidden: Some(show),
        }
    }
}

/// Why `Client::connect` failed (nothing was started).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server list or an option is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The driver could not be started (no runtime, or a thread could not be spawned).
    #[error("cannot start the client driver: {0}")]
    Driver(#[from] std::io::Error),
}

impl From<ConnectError> for Error {
    /// A failed start as an operation error (`Error::Start`), so that code returning
    /// `Result<_, Error>` can use `?` on `Client::connect`.
    fn from(e: ConnectError) -> Error {
        Error::Start {
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_seeds_differ_and_explicit_seed_is_kept() {
        let options = Options::default();
        let seeds: std::collections::HashSet<u64> =
            (0..8).map(|_| options.config(["a:1"]).seed).collect();
        assert!(seeds.len() > 1, "seeds from entropy should vary: {seeds:?}");
        let fixed = Options::new()
            .seed(3)
            .resume_sid(99)
            .hide_hidden_children(false);
        let config = fixed.config(["a:1", "b:2"]);
        assert_eq!(config.seed, 3);
        assert_eq!(config.resume_sid, Some(99));
        assert!(!config.hide_hidden_children);
        assert_eq!(config.addrs, vec!["a:1".to_string(), "b:2".to_string()]);
    }
}
