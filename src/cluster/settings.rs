//! The flags of a node in a cluster: who it is, where the other nodes reach
//! its internal API, the token they share, and how long its lease lasts.
//! Clustering is on when `--node-url` is given, and needs ScyllaDB.

use std::net::SocketAddr;

use clap::Args;

/// Shortest cluster token accepted.
const SHORTEST_TOKEN: usize = 16;

/// Cluster settings (`--node-*`, `--cluster-*`, `--presence-ttl-secs`).
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterSettings {
    /// This node's id in the cluster. Default: the host name and the OCPP port.
    #[arg(id = "node_id", long = "node-id", env = "VOLTGATE_NODE_ID")]
    pub node_id: Option<String>,

    /// The base URL other nodes reach this node's internal API at, e.g.
    /// `http://10.0.0.5:9412`. Turns clustering on (ScyllaDB only).
    #[arg(id = "node_url", long = "node-url", env = "VOLTGATE_NODE_URL")]
    pub node_url: Option<String>,

    /// Where the internal API listens (never the public REST listener).
    /// Default 127.0.0.1:9412.
    #[arg(
        id = "cluster_listen",
        long = "cluster-listen",
        env = "VOLTGATE_CLUSTER_LISTEN"
    )]
    pub cluster_listen: Option<SocketAddr>,

    /// The token nodes present to each other's internal API (at least 16
    /// characters; required with --node-url).
    #[arg(
        id = "cluster_token",
        long = "cluster-token",
        env = "VOLTGATE_CLUSTER_TOKEN"
    )]
    pub cluster_token: Option<String>,

    /// Seconds after its last lease renewal that a node (and the presence
    /// of its stations) counts as gone.
    #[arg(
        id = "presence_ttl_secs",
        long = "presence-ttl-secs",
        env = "VOLTGATE_PRESENCE_TTL_SECS",
        default_value_t = 30
    )]
    pub presence_ttl_secs: u32,
}

/// A node's settings once checked.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// Its id.
    pub node_id: String,
    /// Its internal URL, without a trailing slash.
    pub node_url: String,
    /// Where its internal API listens.
    pub listen: SocketAddr,
    /// The shared token.
    pub token: String,
    /// Its lease's lifetime, in seconds.
    pub ttl_secs: u32,
}

impl ClusterSettings {
    /// The node's settings when clustering is on, None when off, or why the
    /// flags cannot be used (`on_scylla`: the store is ScyllaDB; `ocpp_port`
    /// names the node by default).
    pub fn node(&self, on_scylla: bool, ocpp_port: u16) -> Result<Option<NodeSettings>, String> {
        let given = self.node_id.is_some()
            || self.node_url.is_some()
            || self.cluster_listen.is_some()
            || self.cluster_token.is_some();
        if given && !on_scylla {
            return Err(
                "--node-id, --node-url, --cluster-listen and --cluster-token run several \
                 nodes on one ScyllaDB keyspace: give --scylla-uri, or leave them out for the \
                 embedded store"
                    .into(),
            );
        }
        let Some(url) = &self.node_url else {
            if given {
                return Err(
                    "--node-url is required to run as a node of a cluster (it is how the \
                     other nodes reach this one)"
                        .into(),
                );
            }
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("--node-url {url:?} must be an http(s) URL"));
        }
        let token = match &self.cluster_token {
            Some(token) if token.chars().count() >= SHORTEST_TOKEN => token.clone(),
            Some(_) => {
                return Err(format!(
                    "--cluster-token must be at least {SHORTEST_TOKEN} characters"
                ))
            }
            None => return Err("--cluster-token is required with --node-url".into()),
        };
        if self.presence_ttl_secs < 3 {
            return Err("--presence-ttl-secs must be 3 or more".into());
        }
        let node_id = match &self.node_id {
            Some(id) if !id.trim().is_empty() => id.clone(),
            Some(_) => return Err("--node-id must not be empty".into()),
            None => format!("{}:{ocpp_port}", host_name()),
        };
        Ok(Some(NodeSettings {
            node_id,
            node_url: url.trim_end_matches('/').to_owned(),
            listen: self
                .cluster_listen
                .unwrap_or_else(|| ([127, 0, 0, 1], 9412).into()),
            token,
            ttl_secs: self.presence_ttl_secs,
        }))
    }
}

/// The machine's host name (`HOSTNAME`, else /etc/hostname, else "node").
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: Option<&str>, token: Option<&str>) -> ClusterSettings {
        ClusterSettings {
            node_url: url.map(str::to_owned),
            cluster_token: token.map(str::to_owned),
            presence_ttl_secs: 30,
            ..ClusterSettings::default()
        }
    }

    #[test]
    fn clustering_needs_scylla_a_url_and_a_long_token() {
        assert!(settings(None, None).node(false, 9310).unwrap().is_none());
        let on = settings(Some("http://10.0.0.5:9412/"), Some("0123456789abcdef"));
        let err = on.node(false, 9310).unwrap_err();
        assert!(err.contains("--scylla-uri"), "{err}");
        let node = on.node(true, 9310).unwrap().unwrap();
        assert_eq!(node.node_url, "http://10.0.0.5:9412");
        assert!(node.node_id.ends_with(":9310"), "{}", node.node_id);
        assert_eq!(node.listen.to_string(), "127.0.0.1:9412");
        let short = settings(Some("http://a:1"), Some("short"));
        assert!(short.node(true, 1).unwrap_err().contains("16"));
        let tokenless = settings(Some("http://a:1"), None);
        assert!(tokenless
            .node(true, 1)
            .unwrap_err()
            .contains("--cluster-token"));
        let urlless = settings(None, Some("0123456789abcdef"));
        assert!(urlless.node(true, 1).unwrap_err().contains("--node-url"));
    }
}
