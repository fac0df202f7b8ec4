//! Client configuration: the server list, timeouts, backoff, frame cap and seed, with
//! their documented defaults and the checks `Client::new` applies.
//!
//! Owns: [`Config`], [`Backoff`], [`ConfigError`] and the defaults. Must never hold
//! protocol state or read a clock: it is plain data plus validation.

use std::num::NonZeroUsize;
use std::time::Duration;

/// Exponential backoff between connection attempts, with full jitter drawn from the
/// config's seed: attempt `n` waits a uniformly random delay in `[0, min(max, initial·2ⁿ)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// First delay cap (the Go client's 10 ms).
    pub initial: Duration,
    /// Largest delay cap.
    pub max: Duration,
}

impl Default for Backoff {
    /// 10 ms doubling to 1 s: short enough to find a new leader within a second of an
    /// election ending ([protocol](pyxis_proto::protocol) §9: elections take 1.6–3.4 s).
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(1),
        }
    }
}

impl Backoff {
    /// The delay cap of attempt `attempt` (0-based): `min(max, initial·2^attempt)`.
    pub fn cap(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// The longest duration any [`Config`] field may hold (one year): every deadline is
/// `now` plus one of them, and `Instant` arithmetic past its range panics.
pub const MAX_CONFIG_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The smallest session timeout the client asks for (the Go client's and the server's
/// default minimum).
pub const MIN_SESSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Client configuration. Build with [`Config::new`] and adjust fields.
///
/// ```
/// use std::time::Duration;
/// use pyxis_core::Config;
///
/// let mut config = Config::new(["10.0.0.1:7000", "10.0.0.2:7000"]);
/// config.session_timeout = Duration::from_secs(10);
/// config.seed = 42;
/// assert_eq!(config.request_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Server client-port addresses, `host:port`.
    pub addrs: Vec<String>,
    /// Session timeout asked in Register (default 5 s; values below 5 s are raised to 5 s;
    /// the server clamps to its bounds, by default [5 s, 120 s]).
    pub session_timeout: Duration,
    /// A session id to resume (the session may have expired: then a new one is made and
    /// `SessionExpired` is reported). `Some(0)` is treated as `None`.
    pub resume_sid: Option<u64>,
    /// How long an operation may wait (while connecting, in flight, across reconnects)
    /// before it completes with `Error::Timeout` (default 10 s: enough to ride through a
    /// 3.4 s leader election with the default backoff).
    pub request_timeout: Duration,
    /// How long a connection attempt (TCP connect + Register answer) may take (default 2 s).
    pub connect_timeout: Duration,
    /// Backoff between failed connection attempts (default 10 ms doubling to 1 s).
    pub backoff: Backoff,
    /// Extra time past the session timeout before an unanswered ping declares the
    /// connection dead (default 2 s).
    pub ping_grace: Duration,
    /// Cap on the length of frames accepted from servers (default 64 MiB, the server's).
    pub max_frame_len: u32,
    /// The most answer frames one [`Client::handle_data`](crate::Client::handle_data)
    /// call handles (default `None`: every complete frame received). With a bound, the
    /// rest wait in the client's buffer until `handle_data` is called again (with more
    /// bytes or none; [`Client::buffered_input`](crate::Client::buffered_input) names
    /// their connection meanwhile), so that an adapter can let the callers answered so
    /// far run and send their next requests, which then reach the server while the rest
    /// is handled. An adapter that sets it must call again while `buffered_input` is
    /// `Some`, and should not read more from that connection until then.
    pub frames_per_input: Option<NonZeroUsize>,
    /// Seed for address choice and jitter: same inputs + same seed ⇒ same outputs
    /// (default 0; give each client its own seed to spread load).
    pub seed: u64,
    /// Drop children whose name starts with `_` from reads unless the read asks for them
    /// (the Go client's default; default `true`).
    pub hide_hidden_children: bool,
    /// How long `close` waits for the Unregister answer before closing anyway
    /// (default 2 s).
    pub close_timeout: Duration,
    /// Fail operations at once while no server is reachable, instead of letting them
    /// wait for their deadline (default `false`; for command-line tools). Once every
    /// listed server has failed in turn (refused, unresolved, no leader known, ...)
    /// without a session in between, the operations waiting for a session, and those
    /// submitted while the client is between attempts or connecting again, complete with
    /// `Error::Unreachable` carrying the last cause. The client keeps trying in the
    /// background; once a session is up, operations wait for it again.
    pub fail_fast: bool,
}

impl Config {
    /// A configuration for these servers with every default (see each field).
    pub fn new<I, S>(addrs: I) -> Config
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Config {
            addrs: addrs.into_iter().map(Into::into).collect(),
            session_timeout: MIN_SESSION_TIMEOUT,
            resume_sid: None,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            backoff: Backoff::default(),
            ping_grace: Duration::from_secs(2),
            max_frame_len: pyxis_proto::DEFAULT_MAX_FRAME_LEN,
            frames_per_input: None,
            seed: 0,
            hide_hidden_children: true,
            close_timeout: Duration::from_secs(2),
            fail_fast: false,
        }
    }

    /// Checks the configuration (addresses, non-zero timeouts, no duration above
    /// [`MAX_CONFIG_DURATION`], backoff order) and returns it with the session timeout
    /// raised to the 5 s minimum and a `resume_sid` of 0 dropped.
    pub fn validated(mut self) -> Result<Config, ConfigError> {
        if self.addrs.is_empty() {
            return Err(ConfigError::NoAddresses);
        }
        if let Some(bad) = self.addrs.iter().find(|a| !is_host_port(a)) {
            return Err(ConfigError::BadAddress { addr: bad.clone() });
        }
        for (name, value) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("close_timeout", self.close_timeout),
            ("backoff.max", self.backoff.max),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration { field: name });
            }
        }
        for (name, value) in [
            ("session_timeout", self.session_timeout),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("close_timeout", self.close_timeout),
            ("ping_grace", self.ping_grace),
            ("backoff.initial", self.backoff.initial),
            ("backoff.max", self.backoff.max),
        ] {
            if value > MAX_CONFIG_DURATION {
                return Err(ConfigError::DurationTooLong {
                    field: name,
                    max: MAX_CONFIG_DURATION,
                });
            }
        }
        if self.backoff.initial > self.backoff.max {
            return Err(ConfigError::BackoffOrder);
        }
        self.session_timeout = self.session_timeout.max(MIN_SESSION_TIMEOUT);
        if self.resume_sid == Some(0) {
            self.resume_sid = None;
        }
        Ok(self)
    }

    /// The session timeout in whole milliseconds as sent in Register.
    pub(crate) fn session_timeout_ms(&self) -> i32 {
        i32::try_from(self.session_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

/// Whether `addr` looks like `host:port` (non-empty host, numeric port). Used for the
/// configured list and for the leader address in a kNotLeader answer.
pub(crate) fn is_host_port(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && port.parse::<u16>().is_ok()
                && !host.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// Why a [`Config`] was refused by `Client::new`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The address list is empty.
    #[error("no server addresses configured")]
    NoAddresses,
    /// An address is not `host:port`.
    #[error("server address {addr:?} is not host:port")]
    BadAddress {
        /// The address given.
        addr: String,
    },
    /// A timeout that must be positive is zero.
    #[error("{field} must not be zero")]
    ZeroDuration {
        /// The field's name.
        field: &'static str,
    },
    /// A duration exceeds [`MAX_CONFIG_DURATION`] (deadlines are `now` plus it, which
    /// must stay representable).
    #[error("{field} exceeds the longest allowed duration {max:?}")]
    DurationTooLong {
        /// The field's name.
        field: &'static str,
        /// The longest allowed.
        max: Duration,
    },
    /// `backoff.initial` exceeds `backoff.max`.
    #[error("backoff.initial exceeds backoff.max")]
    BackoffOrder,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = Config::new(["a:1"]);
        assert_eq!(c.session_timeout, Duration::from_secs(5));
        assert_eq!(c.max_frame_len, 64 * 1024 * 1024);
        assert!(c.hide_hidden_children);
        let mut short = c.clone();
        short.session_timeout = Duration::from_secs(1);
        short.resume_sid = Some(0);
        let v = short.validated().unwrap();
        assert_eq!(v.session_timeout, Duration::from_secs(5));
        assert_eq!(v.resume_sid, None);
        assert_eq!(
            Config::new(Vec::<String>::new()).validated(),
            Err(ConfigError::NoAddresses)
        );
        assert!(matches!(
            Config::new(["nohost"]).validated(),
            Err(ConfigError::BadAddress { .. })
        ));
        assert!(is_host_port("[::1]:7000"));
        assert!(!is_host_port(":7000"));
        assert!(!is_host_port("a:b"));
    }

    #[test]
    fn backoff_caps_double_to_max() {
        let b = Backoff::default();
        assert_eq!(b.cap(0), Duration::from_millis(10));
        assert_eq!(b.cap(3), Duration::from_millis(80));
        assert_eq!(b.cap(10), Duration::from_secs(1));
        assert_eq!(b.cap(200), Duration::from_secs(1));
    }
}
