//! The cluster's shared state on ScyllaDB: node leases with a TTL, and
//! station presence rows whose write timestamp is their connection id
//! (see `store::cluster`).

use async_trait::async_trait;
use scylla::value::CqlTimestamp;

use super::{time, timestamp, ScyllaStore};
use crate::store::{ClusterStore, NodeLease, Presence, StoreResult};

/// A connection id as a CQL bigint and write timestamp.
fn micros(connection: u64) -> i64 {
    i64::try_from(connection).unwrap_or(i64::MAX)
}

#[async_trait]
impl ClusterStore for ScyllaStore {
    async fn renew_node(&self, lease: NodeLease, ttl_secs: u32) -> StoreResult<()> {
        self.call("renew_node", async {
            let stations = i64::try_from(lease.stations).unwrap_or(i64::MAX);
            let ttl = i32::try_from(ttl_secs.max(1)).unwrap_or(i32::MAX);
            self.execute(
                &self.statements.node_renew,
                (
                    lease.node_id,
                    lease.url,
                    timestamp(lease.started_at),
                    stations,
                    ttl,
                ),
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn remove_node(&self, node_id: &str) -> StoreResult<()> {
        self.call("remove_node", async {
            self.execute(&self.statements.node_remove, (node_id,))
                .await?;
            Ok(())
        })
        .await
    }

    async fn live_nodes(&self) -> StoreResult<Vec<NodeLease>> {
        self.call("live_nodes", async {
            let rows = self
                .rows::<(String, String, CqlTimestamp, i64)>(&self.statements.nodes_live, ())
                .await?;
            rows.into_iter()
                .map(|(node_id, url, started_at, stations)| {
                    Ok(NodeLease {
                        node_id,
                        url,
                        started_at: time(started_at)?,
                        stations: u64::try_from(stations).unwrap_or(0),
                    })
                })
                .collect()
        })
        .await
    }

    async fn put_presence(&self, station_id: &str, presence: Presence) -> StoreResult<()> {
        self.call("put_presence", async {
            let at = micros(presence.connection);
            self.execute(
                &self.statements.presence_put,
                (station_id, presence.node_id, at, at),
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn remove_presence(&self, station_id: &str, connection: u64) -> StoreResult<()> {
        self.call("remove_presence", async {
            self.execute(
                &self.statements.presence_remove,
                (micros(connection), station_id),
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn presence(&self, station_id: &str) -> StoreResult<Option<Presence>> {
        self.call("presence", async {
            Ok(self
                .row::<(String, i64)>(&self.statements.presence_get, (station_id,))
                .await?
                .map(|(node_id, connection)| Presence {
                    node_id,
                    connection: u64::try_from(connection).unwrap_or(0),
                }))
        })
        .await
    }
}
