//! The node's lease: rewritten every third of `--presence-ttl-secs` with
//! the number of stations it holds, removed when the node stops. A node
//! that dies stops renewing, and the other nodes stop routing to it (and
//! trusting its presence rows) within the TTL.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::link::ClusterLink;
use crate::store::NodeLease;
use crate::supervisor::Registry;

/// Renews the lease until the task is dropped.
pub async fn renew(link: ClusterLink, registry: Registry, started_at: DateTime<Utc>) {
    let node = link.node().clone();
    let every = Duration::from_secs(u64::from(node.ttl_secs) / 3).max(Duration::from_secs(1));
    loop {
        if let Some(cluster) = link.store().cluster() {
            let lease = NodeLease {
                node_id: node.node_id.clone(),
                url: node.node_url.clone(),
                started_at,
                stations: registry.connected_versions().await.len() as u64,
            };
            if let Err(e) = cluster.renew_node(lease, node.ttl_secs).await {
                tracing::warn!(error = %e, "cannot renew this node's lease");
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Removes the lease of a node that stops.
pub async fn leave(link: &ClusterLink) {
    if let Some(cluster) = link.store().cluster() {
        if let Err(e) = cluster.remove_node(&link.node().node_id).await {
            tracing::warn!(error = %e, "cannot remove this node's lease");
        }
    }
}
