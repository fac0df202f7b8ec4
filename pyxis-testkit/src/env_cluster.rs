//! The cluster an example or a demo runs against: the real one named in `PYXIS_ADDRS`,
//! or else an embedded [`TestCluster`].
//!
//! Owns: the one rule every example follows to choose its cluster. Must never start a
//! cluster when `PYXIS_ADDRS` names one, nor guess addresses it was not given.

use crate::runner::TestCluster;

/// The environment variable that names a real cluster: `host:port,host:port,...`.
pub const ADDRS_ENV: &str = "PYXIS_ADDRS";

/// Why `PYXIS_ADDRS` (or a list given as it would be) names no cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvClusterError {
    /// The variable is set but is not valid Unicode.
    #[error("{ADDRS_ENV} is not valid Unicode")]
    NotUnicode,
    /// The list names no address (empty, or only commas and spaces).
    #[error("no server address given (expected host:port,...)")]
    Empty,
}

/// The real cluster named in `PYXIS_ADDRS`, or an embedded [`TestCluster`] that runs as
/// long as this value lives.
///
/// ```
/// use pyxis_testkit::EnvCluster;
///
/// // An embedded 3-node cluster, unless PYXIS_ADDRS names a real one.
/// let cluster = EnvCluster::from_env(3)?;
/// assert!(!cluster.addrs().is_empty());
/// if let Some(embedded) = cluster.embedded() {
///     embedded.move_leader(1)?; // steps only an embedded cluster can take
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct EnvCluster {
    embedded: Option<TestCluster>,
    addrs: Vec<String>,
}

impl EnvCluster {
    /// The cluster `PYXIS_ADDRS` names (split on commas, spaces trimmed), or, when it is
    /// unset, an embedded [`TestCluster`] of `nodes` nodes started now.
    ///
    /// # Errors
    ///
    /// [`EnvClusterError`] when `PYXIS_ADDRS` is set but is not Unicode or lists no
    /// address; no cluster is started then.
    pub fn from_env(nodes: usize) -> Result<Self, EnvClusterError> {
        match std::env::var_os(ADDRS_ENV) {
            None => {
                let cluster = TestCluster::start(nodes);
                Ok(Self {
                    addrs: cluster.addrs(),
                    embedded: Some(cluster),
                })
            }
            Some(value) => Self::named(value.to_str().ok_or(EnvClusterError::NotUnicode)?),
        }
    }

    /// The real cluster that `list` names (`host:port,...`, split on commas, spaces
    /// trimmed), as a `--addrs` flag gives it.
    ///
    /// # Errors
    ///
    /// [`EnvClusterError::Empty`] when `list` names no address.
    pub fn named(list: &str) -> Result<Self, EnvClusterError> {
        Ok(Self {
            addrs: parse_addrs(list)?,
            embedded: None,
        })
    }

    /// The client addresses of every node.
    pub fn addrs(&self) -> Vec<String> {
        self.addrs.clone()
    }

    /// The embedded cluster, for the steps only it can take (moving the leader, expiring a
    /// session, killing a node); `None` against a real cluster.
    pub fn embedded(&self) -> Option<&TestCluster> {
        self.embedded.as_ref()
    }
}

/// The addresses of a `PYXIS_ADDRS` value.
fn parse_addrs(value: &str) -> Result<Vec<String>, EnvClusterError> {
    let addrs: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    if addrs.is_empty() {
        Err(EnvClusterError::Empty)
    } else {
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_split_on_commas_and_trimmed() {
        assert_eq!(
            parse_addrs("h1:7000, h2:7000,,h3:7000 "),
            Ok(vec!["h1:7000".into(), "h2:7000".into(), "h3:7000".into()])
        );
        assert_eq!(parse_addrs("h1:7000"), Ok(vec!["h1:7000".into()]));
    }

    #[test]
    fn a_value_that_lists_no_address_is_an_error() {
        assert_eq!(parse_addrs(""), Err(EnvClusterError::Empty));
        assert_eq!(parse_addrs(" , ,"), Err(EnvClusterError::Empty));
    }

    #[test]
    fn a_named_cluster_is_real_and_starts_nothing() {
        let cluster = EnvCluster::named("h1:7000,h2:7000").unwrap();
        assert_eq!(cluster.addrs(), vec!["h1:7000", "h2:7000"]);
        assert!(cluster.embedded().is_none());
        assert_eq!(EnvCluster::named(",").unwrap_err(), EnvClusterError::Empty);
    }
}
