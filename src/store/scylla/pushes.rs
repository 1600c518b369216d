//! OCPI push queues on ScyllaDB: one partition per partner, clustered by
//! seq, and the seq of each object's pending push beside it. A seq is the
//! enqueue time in microseconds × 1000, kept strictly increasing within
//! the node, so a queue reads back in the order it was filled.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::Utc;

use super::{from_json, to_json, ScyllaStore};
use crate::store::{OcpiPush, OcpiPushStore, StoreResult};

/// The last seq this node handed out.
static LAST_SEQ: AtomicU64 = AtomicU64::new(0);

fn next_seq() -> u64 {
    let now = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0) * 1000;
    let mut last = LAST_SEQ.load(Ordering::Relaxed);
    loop {
        let seq = now.max(last + 1);
        match LAST_SEQ.compare_exchange_weak(last, seq, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return seq,
            Err(seen) => last = seen,
        }
    }
}

fn cql_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl ScyllaStore {
    async fn pending_seq(&self, partner_id: &str, object: &str) -> StoreResult<Option<u64>> {
        Ok(self
            .row::<(i64,)>(&self.statements.push_object_get, (partner_id, object))
            .await?
            .map(|(seq,)| u64::try_from(seq).unwrap_or(0)))
    }

    async fn drop_push(&self, partner_id: &str, seq: u64) -> StoreResult<()> {
        let Some((record,)) = self
            .row::<(String,)>(&self.statements.push_get, (partner_id, cql_seq(seq)))
            .await?
        else {
            return Ok(());
        };
        let old: OcpiPush = from_json(&record)?;
        self.execute(&self.statements.push_delete, (partner_id, cql_seq(seq)))
            .await?;
        if self.pending_seq(partner_id, &old.object).await? == Some(seq) {
            self.execute(
                &self.statements.push_object_delete,
                (partner_id, old.object.as_str()),
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl OcpiPushStore for ScyllaStore {
    async fn enqueue_push(
        &self,
        partner_id: &str,
        push: OcpiPush,
        coalesce: bool,
    ) -> StoreResult<Option<u64>> {
        self.call("enqueue_push", async {
            if coalesce {
                match self.pending_seq(partner_id, &push.object).await? {
                    Some(seq) => self.drop_push(partner_id, seq).await?,
                    None => return Ok(None),
                }
            }
            let seq = next_seq();
            let stored = OcpiPush { seq, ..push };
            let record = to_json(&stored)?;
            self.execute(
                &self.statements.push_put,
                (partner_id, cql_seq(seq), record),
            )
            .await?;
            self.execute(
                &self.statements.push_object_put,
                (partner_id, stored.object.as_str(), cql_seq(seq)),
            )
            .await?;
            Ok(Some(seq))
        })
        .await
    }

    async fn pending_pushes(&self, partner_id: &str, limit: u32) -> StoreResult<Vec<OcpiPush>> {
        self.call("pending_pushes", async {
            let limit = i32::try_from(limit).unwrap_or(i32::MAX);
            self.rows::<(String,)>(&self.statements.push_head, (partner_id, limit))
                .await?
                .into_iter()
                .map(|(record,)| from_json(&record))
                .collect()
        })
        .await
    }

    async fn remove_push(&self, partner_id: &str, seq: u64) -> StoreResult<()> {
        self.call("remove_push", self.drop_push(partner_id, seq))
            .await
    }

    async fn count_pushes(&self, partner_id: &str) -> StoreResult<u64> {
        self.call("count_pushes", async {
            let count = self
                .row::<(i64,)>(&self.statements.push_count, (partner_id,))
                .await?
                .map_or(0, |(n,)| n);
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }

    async fn clear_pushes(&self, partner_id: &str) -> StoreResult<()> {
        self.call("clear_pushes", async {
            self.execute(&self.statements.push_clear, (partner_id,))
                .await?;
            self.execute(&self.statements.push_objects_clear, (partner_id,))
                .await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_only_grow() {
        let a = next_seq();
        let b = next_seq();
        assert!(b > a);
    }
}
