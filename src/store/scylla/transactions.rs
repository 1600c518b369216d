//! [`TransactionStore`] on ScyllaDB. An event is applied with a
//! compare-and-set on its transaction's row (LWT on `revision`) that also
//! records its seq_no, so a retried or concurrently delivered event counts
//! once; meter values go to partitions of 256 events each; OCPP 1.6
//! transaction ids come from blocks each node reserves with an LWT.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::directory::Kind;
use super::pages::Pages;
use super::retry::until_won;
use super::{from_json, to_json, ScyllaStore};
use crate::store::{
    active_key, split_active_key, MeterValue, Page, StoreError, StoreResult, Transaction,
    TransactionEvent, TransactionEventKind, TransactionStore,
};

/// Events whose meter values share one partition.
pub const EVENTS_PER_METER_BUCKET: u64 = 256;
/// OCPP 1.6 transaction ids one node reserves at a time.
const ID_BLOCK: i64 = 100;
/// The allocator behind OCPP 1.6 transaction ids.
const V16_TRANSACTION_IDS: &str = "v16_transaction_id";

/// Ids reserved by this node: `next..end` are still free to hand out.
#[derive(Debug, Default)]
pub struct IdBlock {
    next: i64,
    end: i64,
}

/// The columns of `transaction_get`.
type TransactionRow = (i64, String, Option<Vec<i64>>, Option<Vec<i64>>);

/// A transaction row as read: revision, summary, applied seq_nos, meter buckets.
struct Stored {
    revision: i64,
    summary: Transaction,
    applied: BTreeSet<i64>,
    buckets: BTreeSet<i64>,
}

/// A u64 (seq_no, bucket) as the bigint column that sorts the same way:
/// the sign bit flipped, so 0 is i64::MIN and u64::MAX (the seq_no of a 1.6
/// StopTransaction: "after everything") is i64::MAX.
fn ordered(value: u64) -> i64 {
    (value ^ (1 << 63)) as i64
}

/// The meter value partition of an event.
fn meter_bucket(seq_no: u64) -> i64 {
    ordered(seq_no / EVENTS_PER_METER_BUCKET)
}

impl ScyllaStore {
    async fn load_transaction(&self, station: &str, tx: &str) -> StoreResult<Option<Stored>> {
        let row = self
            .row::<TransactionRow>(&self.statements.transaction_get, (station, tx))
            .await?;
        row.map(|(revision, summary, applied, buckets)| {
            Ok(Stored {
                revision,
                summary: from_json(&summary)?,
                applied: applied.unwrap_or_default().into_iter().collect(),
                buckets: buckets.unwrap_or_default().into_iter().collect(),
            })
        })
        .transpose()
    }

    /// The listing copy of a summary; its write timestamp is the revision,
    /// so an older copy never overwrites a newer one.
    async fn copy_to_station_list(&self, summary: &Transaction, revision: i64) -> StoreResult<()> {
        self.execute(
            &self.statements.station_transaction_put,
            (
                summary.station_id.as_str(),
                summary.transaction_id.as_str(),
                to_json(summary)?,
                revision,
            ),
        )
        .await?;
        Ok(())
    }

    async fn write_meter_values(&self, event: &TransactionEvent, seq_no: i64) -> StoreResult<()> {
        let bucket = meter_bucket(event.seq_no);
        let writes = event.meter_values.iter().enumerate().map(|(index, value)| {
            let value = MeterValue {
                seq_no: event.seq_no,
                ..value.clone()
            };
            async move {
                let index = i32::try_from(index).unwrap_or(i32::MAX);
                self.execute(
                    &self.statements.meter_value_put,
                    (
                        event.station_id.as_str(),
                        event.transaction_id.as_str(),
                        bucket,
                        seq_no,
                        index,
                        to_json(&value)?,
                    ),
                )
                .await
            }
        });
        futures_util::future::try_join_all(writes).await?;
        Ok(())
    }

    async fn apply_event(&self, event: &TransactionEvent) -> StoreResult<bool> {
        let (station, tx) = (event.station_id.as_str(), event.transaction_id.as_str());
        let seq_no = ordered(event.seq_no);
        let stored = self.load_transaction(station, tx).await?;
        if let Some(stored) = stored.as_ref().filter(|s| s.applied.contains(&seq_no)) {
            // A retry: answer it, and rewrite the listing copy in case the
            // first delivery stopped before writing it.
            self.copy_to_station_list(&stored.summary, stored.revision)
                .await?;
            return Ok(false);
        }
        // Before the summary: once the event counts, its values exist.
        self.write_meter_values(event, seq_no).await?;
        let new_buckets: &[i64] = if event.meter_values.is_empty() {
            &[]
        } else {
            &[meter_bucket(event.seq_no)]
        };
        let what = format!("transaction {tx} of {station}");
        // The first attempt uses the row read above; a lost race reads again.
        let mut preloaded = Some(stored);
        until_won(&what, || {
            let preloaded = preloaded.take();
            async move {
                let stored = match preloaded {
                    Some(stored) => stored,
                    None => self.load_transaction(station, tx).await?,
                };
                if stored.as_ref().is_some_and(|s| s.applied.contains(&seq_no)) {
                    // The same event, applied by a concurrent delivery meanwhile.
                    return Ok(Some(false));
                }
                let (outcome, summary, revision) = match stored {
                    None => {
                        let mut summary = Transaction::empty_for(event);
                        summary.fold(event);
                        let values = (
                            station,
                            tx,
                            1i64,
                            to_json(&summary)?,
                            vec![seq_no],
                            new_buckets.to_vec(),
                        );
                        let outcome = self
                            .lwt(&self.statements.transaction_insert, values)
                            .await?;
                        (outcome, summary, 1)
                    }
                    Some(Stored {
                        revision,
                        mut summary,
                        ..
                    }) => {
                        summary.fold(event);
                        let values = (
                            revision + 1,
                            to_json(&summary)?,
                            vec![seq_no],
                            new_buckets.to_vec(),
                            station,
                            tx,
                            revision,
                        );
                        let outcome = self
                            .lwt(&self.statements.transaction_update, values)
                            .await?;
                        (outcome, summary, revision + 1)
                    }
                };
                if !outcome.applied {
                    return Ok(None);
                }
                self.copy_to_station_list(&summary, revision).await?;
                Ok(Some(true))
            }
        })
        .await
    }

    async fn load_meter_values(
        &self,
        station: &str,
        tx: &str,
        page: &Page,
    ) -> StoreResult<Vec<MeterValue>> {
        page.require_offset_only("meter values")?;
        let Some(stored) = self.load_transaction(station, tx).await? else {
            return Ok(Vec::new());
        };
        let (mut skipped, mut out) = (0u64, Vec::new());
        for bucket in stored.buckets {
            if out.len() >= page.limit as usize {
                break;
            }
            let mut rows = Pages::<(i64, String)>::new(
                &self.statements.meter_values_of_bucket,
                &(station, tx, bucket),
                page.offset.saturating_add(u64::from(page.limit)),
            )?;
            while out.len() < page.limit as usize {
                let Some((seq_no, value)) = rows.next(self).await? else {
                    break;
                };
                // Values of an event whose summary write never landed are
                // not part of the transaction (yet).
                if !stored.applied.contains(&seq_no) {
                    continue;
                }
                if skipped < page.offset {
                    skipped += 1;
                } else {
                    out.push(from_json(&value)?);
                }
            }
        }
        Ok(out)
    }

    /// Reserves the next block of 1.6 transaction ids (LWT on the allocator row).
    async fn reserve_ids(&self) -> StoreResult<IdBlock> {
        let st = &self.statements;
        until_won("transaction id block reservation", || async {
            let current = self
                .row::<(i64,)>(&st.id_block_get, (V16_TRANSACTION_IDS,))
                .await?;
            let (start, outcome) = match current {
                None => {
                    let outcome = self
                        .lwt(&st.id_block_create, (V16_TRANSACTION_IDS, 1 + ID_BLOCK))
                        .await?;
                    (1, outcome)
                }
                Some((next,)) => {
                    let outcome = self
                        .lwt(
                            &st.id_block_advance,
                            (next + ID_BLOCK, V16_TRANSACTION_IDS, next),
                        )
                        .await?;
                    (next, outcome)
                }
            };
            Ok(outcome.applied.then_some(IdBlock {
                next: start,
                end: start + ID_BLOCK,
            }))
        })
        .await
    }
}

#[async_trait]
impl TransactionStore for ScyllaStore {
    async fn apply_transaction_event(&self, event: TransactionEvent) -> StoreResult<bool> {
        self.call("apply_transaction_event", async {
            let applied = self.apply_event(&event).await?;
            // The index entry is an idempotent write after the event: a
            // retried event (applied false) writes it again, so a failure
            // here is mended by the station's retry.
            let row =
                Kind::ActiveTransaction.row(&active_key(&event.station_id, &event.transaction_id));
            match event.kind {
                TransactionEventKind::Started => {
                    self.execute(&self.statements.directory_insert, row).await?;
                }
                TransactionEventKind::Ended => {
                    self.execute(&self.statements.directory_delete, row).await?;
                }
                TransactionEventKind::Updated => {}
            }
            Ok(applied)
        })
        .await
    }

    async fn transaction(
        &self,
        station_id: &str,
        transaction_id: &str,
    ) -> StoreResult<Option<Transaction>> {
        self.call("transaction", async {
            let stored = self.load_transaction(station_id, transaction_id).await?;
            Ok(stored.map(|s| s.summary))
        })
        .await
    }

    async fn active_transactions(&self, page: Page) -> StoreResult<Vec<Transaction>> {
        self.call("active_transactions", async {
            self.list_records(Kind::ActiveTransaction, page, |key| async move {
                match split_active_key(&key) {
                    Some((station, transaction)) => Ok(self
                        .load_transaction(station, transaction)
                        .await?
                        .map(|stored| stored.summary)),
                    None => Ok(None),
                }
            })
            .await
        })
        .await
    }

    async fn list_transactions(
        &self,
        station_id: &str,
        page: Page,
    ) -> StoreResult<Vec<Transaction>> {
        self.call("list_transactions", async {
            if page.limit == 0 {
                return Ok(Vec::new());
            }
            let after = page.after.as_deref().unwrap_or("");
            let page_size = page.offset.saturating_add(u64::from(page.limit));
            let mut rows = Pages::<(String,)>::new(
                &self.statements.station_transactions_after,
                &(station_id, after),
                page_size,
            )?;
            let (mut skipped, mut out) = (0u64, Vec::new());
            while out.len() < page.limit as usize {
                let Some((summary,)) = rows.next(self).await? else {
                    break;
                };
                if skipped < page.offset {
                    skipped += 1;
                } else {
                    out.push(from_json(&summary)?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn next_transaction_number(&self) -> StoreResult<i32> {
        self.call("next_transaction_number", async {
            let mut block = self.transaction_ids.lock().await;
            if block.next >= block.end {
                *block = self.reserve_ids().await?;
            }
            let id = block.next;
            block.next += 1;
            i32::try_from(id)
                .map_err(|_| StoreError::Backend("OCPP 1.6 transaction ids exhausted".into()))
        })
        .await
    }

    async fn meter_values(
        &self,
        station_id: &str,
        transaction_id: &str,
        page: Page,
    ) -> StoreResult<Vec<MeterValue>> {
        self.call(
            "meter_values",
            self.load_meter_values(station_id, transaction_id, &page),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_nos_keep_their_order_as_bigints() {
        let seqs = [
            0,
            1,
            255,
            256,
            1 << 40,
            i64::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ];
        let columns: Vec<i64> = seqs.iter().map(|&s| ordered(s)).collect();
        assert!(columns.windows(2).all(|w| w[0] < w[1]), "{columns:?}");
        let buckets: Vec<i64> = seqs.iter().map(|&s| meter_bucket(s)).collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        assert_eq!(meter_bucket(0), meter_bucket(255));
        assert_ne!(meter_bucket(255), meter_bucket(256));
    }
}
