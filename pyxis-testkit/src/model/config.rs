//! Settings of the server model.
//!
//! Owns: the knobs of [`ModelConfig`] (session bounds, check interval, commit delay,
//! election gap, session id base, advertised node addresses) and the two presets, the real
//! server's defaults ([protocol](pyxis_proto::protocol) §9) and fast ones for tests. Must never
//! read a clock or the environment: every value is explicit.

use std::time::Duration;

use pyxis_proto::limits::{
    MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS, SESSION_CHECK_INTERVAL_MS,
};
use pyxis_proto::DEFAULT_MAX_FRAME_LEN;

/// What happens to writes (create/delete/write/register/unregister) that are still waiting
/// for their commit when the leader loses leadership. Either way the client is answered
/// `kAgain`: the real outcome is unknown to it ([protocol](pyxis_proto::protocol) §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InFlightOnMove {
    /// The writes are lost: the state is as if they were never sent.
    Drop,
    /// The writes committed before leadership was lost: they are applied.
    Apply,
}

/// Settings of a [`ClusterModel`](crate::model::ClusterModel).
///
/// ```
/// use pyxis_testkit::model::ModelConfig;
/// use std::time::Duration;
///
/// let real = ModelConfig::real_defaults();
/// assert_eq!(real.min_session_timeout, Duration::from_millis(5_000));
/// let fast = ModelConfig::fast();
/// assert!(fast.check_interval < real.check_interval);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelConfig {
    /// Smallest session timeout; shorter (or absent) requests are raised to it.
    pub min_session_timeout: Duration,
    /// Largest session timeout; longer requests are lowered to it.
    pub max_session_timeout: Duration,
    /// How often session expiry is checked; expiry times are rounded to it.
    pub check_interval: Duration,
    /// Time from receiving a replicated request to answering it (the Raft commit).
    pub commit_delay: Duration,
    /// No-leader window after the leader is killed, before another node leads.
    pub election_gap: Duration,
    /// After the leader is killed, how long the other nodes keep answering kNotLeader
    /// with the dead leader's address (as the original's followers do for 1–2 s) before
    /// answering kAgain for the rest of [`election_gap`](Self::election_gap). Zero:
    /// kAgain at once.
    pub dead_leader_redirect: Duration,
    /// Fate of uncommitted writes when leadership is lost.
    pub in_flight_on_move: InFlightOnMove,
    /// Base of session ids: the n-th session of the model gets `sid_base + n`, never 0.
    /// The original server uses `(milliseconds since the epoch << 16)` at its start, so
    /// ids never repeat across restarts; [`with_wall_clock`](Self::with_wall_clock) sets
    /// that.
    pub sid_base: u64,
    /// The wall-clock time (since the Unix epoch) at the model's start: the session proc
    /// node's `join` and `last` are this plus the model time passed.
    pub wall_clock: Duration,
    /// Cap on a frame's `len` from a client (the real server's is 64 MiB).
    pub max_frame_len: u32,
    /// Advertised client address (`host:port`) of each node, by index. Nodes without one
    /// advertise `127.0.0.1:<7000 + index>` until set with
    /// [`ClusterModel::set_node_addr`](crate::model::ClusterModel::set_node_addr).
    pub addrs: Vec<String>,
    /// Most entries kept in [`ClusterModel::applied_ops`](crate::model::ClusterModel::applied_ops)
    /// (oldest dropped first).
    pub history_limit: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::real_defaults()
    }
}

impl ModelConfig {
    /// The real server's defaults ([protocol](pyxis_proto::protocol) §9): sessions 5 s..120 s,
    /// checked every second, a 2 s election gap, a 64 MiB frame cap, and a 1 ms commit
    /// delay. Redirects to a dead leader are off; [`with_dead_leader_redirects`](Self::with_dead_leader_redirects)
    /// turns them on.
    pub fn real_defaults() -> Self {
        Self {
            min_session_timeout: Duration::from_millis(u64::from(MIN_SESSION_TIMEOUT_MS)),
            max_session_timeout: Duration::from_millis(u64::from(MAX_SESSION_TIMEOUT_MS)),
            check_interval: Duration::from_millis(u64::from(SESSION_CHECK_INTERVAL_MS)),
            commit_delay: Duration::from_millis(1),
            election_gap: Duration::from_millis(2_000),
            dead_leader_redirect: Duration::ZERO,
            in_flight_on_move: InFlightOnMove::Drop,
            sid_base: 0x008b_cfe5_6800_0000,
            wall_clock: Duration::from_secs(1_700_000_000),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            addrs: Vec::new(),
            history_limit: 100_000,
        }
    }

    /// Settings for tests: sessions 200 ms..120 s checked every 50 ms, a 1 ms commit
    /// delay and a 200 ms election gap.
    pub fn fast() -> Self {
        Self {
            min_session_timeout: Duration::from_millis(200),
            check_interval: Duration::from_millis(50),
            election_gap: Duration::from_millis(200),
            ..Self::real_defaults()
        }
    }

    /// Sets the wall clock at the model's start (the caller reads it: the model never
    /// does) and session ids as the original makes them, `(ms since the epoch << 16)`
    /// plus a counter, so a model started later never reuses an earlier one's ids.
    ///
    /// ```
    /// use pyxis_testkit::model::ModelConfig;
    /// use std::time::Duration;
    ///
    /// let c = ModelConfig::fast().with_wall_clock(Duration::from_millis(1_700_000_000_123));
    /// assert_eq!(c.sid_base, 1_700_000_000_123 << 16);
    /// ```
    #[must_use]
    pub fn with_wall_clock(mut self, since_epoch: Duration) -> Self {
        let ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX >> 16);
        self.wall_clock = since_epoch;
        self.sid_base = ms.min(u64::MAX >> 16) << 16;
        self
    }

    /// What the original's followers do after the leader dies: they answer kNotLeader
    /// with the dead leader's address for `redirect`, then kAgain until a new leader is
    /// elected `election` after the death (seen on 3-node clusters: 1–2 s, then about 2 s
    /// in all, up to 7–12 s with split votes).
    ///
    /// ```
    /// use pyxis_testkit::model::ModelConfig;
    /// use std::time::Duration;
    ///
    /// let c = ModelConfig::real_defaults()
    ///     .with_dead_leader_redirects(Duration::from_millis(1500), Duration::from_millis(2500));
    /// assert!(c.dead_leader_redirect < c.election_gap);
    /// ```
    #[must_use]
    pub fn with_dead_leader_redirects(mut self, redirect: Duration, election: Duration) -> Self {
        self.dead_leader_redirect = redirect;
        self.election_gap = election.max(redirect);
        self
    }

    /// Clamps a requested session timeout (ms; absent or ≤ 0 means the minimum).
    pub fn clamp_timeout(&self, requested_ms: Option<i32>) -> Duration {
        let ms = u64::try_from(requested_ms.unwrap_or(0)).unwrap_or(0);
        Duration::from_millis(ms).clamp(
            self.min_session_timeout,
            self.max_session_timeout.max(self.min_session_timeout),
        )
    }

    /// The check interval, never zero.
    pub(crate) fn interval(&self) -> Duration {
        self.check_interval.max(Duration::from_millis(1))
    }
}
