//! The ScyllaDB flags (`--scylla-*`): where the cluster is, how the keyspace is
//! replicated, and the driver's bounds (timeouts, pool size).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

/// Defaults, shared by the flags and [`ScyllaSettings::new`].
const DEFAULT_KEYSPACE: &str = "voltgate";
const DEFAULT_REPLICATION: u32 = 1;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_CONNECTIONS_PER_SHARD: u16 = 1;

/// How to reach and use the cluster.
#[derive(Debug, Clone, Args)]
pub struct ScyllaSettings {
    /// ScyllaDB (or Cassandra 4+) contact points, host:port[,host:port]; switches
    /// the store from the embedded one to the cluster.
    #[arg(
        long = "scylla-uri",
        env = "VOLTGATE_SCYLLA_URI",
        value_delimiter = ','
    )]
    pub uri: Option<Vec<String>>,

    /// Keyspace of voltgate's tables; created when missing.
    #[arg(
        long = "scylla-keyspace",
        env = "VOLTGATE_SCYLLA_KEYSPACE",
        default_value = DEFAULT_KEYSPACE,
        value_parser = parse_keyspace
    )]
    pub keyspace: String,

    /// Replication of a keyspace voltgate creates: a number N for SimpleStrategy
    /// with N replicas (the default 1 suits one node), or DC:N[,DC:N] for
    /// NetworkTopologyStrategy (production: e.g. dc1:3). An existing keyspace
    /// is left as it is.
    #[arg(
        long = "scylla-replication",
        env = "VOLTGATE_SCYLLA_REPLICATION",
        default_value_t = Replication::Simple(DEFAULT_REPLICATION)
    )]
    pub replication: Replication,

    /// The local datacenter: requests go to its replicas first.
    #[arg(long = "scylla-local-dc", env = "VOLTGATE_SCYLLA_LOCAL_DC")]
    pub local_dc: Option<String>,

    /// User name, when the cluster requires authentication.
    #[arg(long = "scylla-user", env = "VOLTGATE_SCYLLA_USER")]
    pub user: Option<String>,

    /// Password of --scylla-user (prefer the environment variable).
    #[arg(
        long = "scylla-password",
        env = "VOLTGATE_SCYLLA_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// Longest wait for one request, retries included, in milliseconds; a
    /// request that takes longer fails (500 / CALLERROR InternalError).
    #[arg(
        long = "scylla-request-timeout-ms",
        env = "VOLTGATE_SCYLLA_REQUEST_TIMEOUT_MS",
        default_value_t = DEFAULT_REQUEST_TIMEOUT_MS
    )]
    pub request_timeout_ms: u64,

    /// Longest wait for a connection to a node, in milliseconds.
    #[arg(
        long = "scylla-connect-timeout-ms",
        env = "VOLTGATE_SCYLLA_CONNECT_TIMEOUT_MS",
        default_value_t = DEFAULT_CONNECT_TIMEOUT_MS
    )]
    pub connect_timeout_ms: u64,

    /// Connections per shard of each node (Cassandra nodes count as one shard).
    #[arg(
        long = "scylla-connections-per-shard",
        env = "VOLTGATE_SCYLLA_CONNECTIONS_PER_SHARD",
        default_value_t = DEFAULT_CONNECTIONS_PER_SHARD,
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub connections_per_shard: u16,
}

impl ScyllaSettings {
    /// Settings for a cluster at `uri` with every other flag at its default.
    pub fn new(uri: Vec<String>, keyspace: impl Into<String>) -> Self {
        ScyllaSettings {
            uri: Some(uri),
            keyspace: keyspace.into(),
            replication: Replication::Simple(DEFAULT_REPLICATION),
            local_dc: None,
            user: None,
            password: None,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            connections_per_shard: DEFAULT_CONNECTIONS_PER_SHARD,
        }
    }

    /// Settings that keep the store embedded (no `--scylla-uri`).
    pub fn unset() -> Self {
        ScyllaSettings {
            uri: None,
            ..ScyllaSettings::new(Vec::new(), DEFAULT_KEYSPACE)
        }
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    /// The connection timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }
}

/// A keyspace name CQL takes unquoted: letters, digits and `_`, 1–48 long,
/// starting with a letter.
fn parse_keyspace(name: &str) -> Result<String, String> {
    let valid = (1..=48).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(format!(
            "{name:?} is not a keyspace name: 1 to 48 letters, digits or _, starting with a letter"
        ))
    }
}

/// Replication of the keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// SimpleStrategy with this many replicas.
    Simple(u32),
    /// NetworkTopologyStrategy with replicas per datacenter.
    PerDatacenter(Vec<(String, u32)>),
}

impl Replication {
    /// The `replication` map of CREATE KEYSPACE.
    pub fn to_cql(&self) -> String {
        match self {
            Replication::Simple(n) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {n}}}")
            }
            Replication::PerDatacenter(dcs) => {
                let dcs: Vec<String> = dcs.iter().map(|(dc, n)| format!("'{dc}': {n}")).collect();
                format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "))
            }
        }
    }
}

impl FromStr for Replication {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let factor = |n: &str| match n.trim().parse::<u32>() {
            Ok(n) if (1..=15).contains(&n) => Ok(n),
            _ => Err(format!(
                "replication factor {n:?} is not a number from 1 to 15"
            )),
        };
        if !text.contains(':') {
            return factor(text).map(Replication::Simple);
        }
        let mut dcs = Vec::new();
        for part in text.split(',') {
            let (dc, n) = part
                .split_once(':')
                .ok_or_else(|| format!("{part:?} is not DC:N"))?;
            let dc = dc.trim();
            let valid = !dc.is_empty()
                && dc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(format!("{dc:?} is not a datacenter name"));
            }
            dcs.push((dc.to_owned(), factor(n)?));
        }
        Ok(Replication::PerDatacenter(dcs))
    }
}

impl fmt::Display for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Replication::Simple(n) => write!(f, "{n}"),
            Replication::PerDatacenter(dcs) => {
                let dcs: Vec<String> = dcs.iter().map(|(dc, n)| format!("{dc}:{n}")).collect();
                write!(f, "{}", dcs.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_parses_both_strategies() {
        assert_eq!("3".parse(), Ok(Replication::Simple(3)));
        assert_eq!(
            "dc1:3, eu-west:2".parse(),
            Ok(Replication::PerDatacenter(vec![
                ("dc1".into(), 3),
                ("eu-west".into(), 2)
            ]))
        );
        assert_eq!(
            Replication::PerDatacenter(vec![("dc1".into(), 3)]).to_cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
        );
        for bad in ["0", "x", "dc1", "dc1:0", "d'c:1", ":3", "dc1:3,"] {
            assert!(bad.parse::<Replication>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn keyspace_names_are_plain_identifiers() {
        assert_eq!(parse_keyspace("Voltgate_1"), Ok("voltgate_1".into()));
        for bad in ["", "1ks", "ks-1", "ks;drop", &"k".repeat(49)] {
            assert!(parse_keyspace(bad).is_err(), "{bad} accepted");
        }
    }
}
