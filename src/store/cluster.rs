//! What several voltgate nodes on one ScyllaDB keyspace share about each
//! other: each node's lease (who it is, where its internal API is, how
//! many stations it holds), renewed with a TTL so a dead node disappears
//! on its own; and each connected station's presence (which node holds
//! its socket, on which connection).
//!
//! A presence row is written with the connection id as its write
//! timestamp, and removed with the same timestamp: a delete removes the
//! node's own row and never a newer connection's row written by another
//! node, and of two connects the later one wins, whatever order the
//! writes arrive in. Connection ids are microseconds of the node's clock,
//! so nodes' clocks must agree to within the time between two connects of
//! one station (seconds).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;

/// One live node, as its lease says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeLease {
    /// The node's id (`--node-id`).
    pub node_id: String,
    /// Its internal API's base URL (`--node-url`).
    pub url: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The stations connected to it when it last renewed.
    pub stations: u64,
}

/// Which node holds a station's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The node.
    pub node_id: String,
    /// The connection (microseconds of that node's clock when it opened).
    pub connection: u64,
}

/// The shared state of the nodes of a cluster (ScyllaDB only).
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Writes (renews) the node's lease, gone `ttl_secs` after the last renewal.
    async fn renew_node(&self, lease: NodeLease, ttl_secs: u32) -> StoreResult<()>;
    /// Removes the node's lease (it stops cleanly).
    async fn remove_node(&self, node_id: &str) -> StoreResult<()>;
    /// The nodes whose lease is current.
    async fn live_nodes(&self) -> StoreResult<Vec<NodeLease>>;
    /// Records that `node_id` holds the station on `connection`.
    async fn put_presence(&self, station_id: &str, presence: Presence) -> StoreResult<()>;
    /// Removes the station's presence written for `connection` (not a newer one).
    async fn remove_presence(&self, station_id: &str, connection: u64) -> StoreResult<()>;
    /// Where the station is connected, as last written.
    async fn presence(&self, station_id: &str) -> StoreResult<Option<Presence>>;
}
