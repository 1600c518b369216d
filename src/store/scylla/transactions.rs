//! [`TransactionStore`] on ScyllaDB. A node applies one transaction's
//! events one at a time ([`Turns`]), from the row it wrote last
//! ([`Written`]) or read, and writes the new row in one idempotent UPDATE:
//! no read first on the usual path and no lightweight transaction. The
//! event's seq_no joins a set, so a retried or concurrently delivered event
//! counts once; its digest joins a map, so the summary can be folded again
//! when two nodes wrote one transaction at once (`schema/scylla.cql`).
//! Meter values go to partitions of 256 events each; OCPP 1.6 transaction
//! ids come from blocks each node reserves with an LWT, ahead of need.
//!
//! Latency: a station waits for its event's round trips to the cluster, so
//! they are few and side by side: the row, the meter values, the listing
//! copy and the index at once, one round trip in all when this node holds
//! the transaction's row. An event is answered only once all of them
//! landed; when one failed, the station's retry writes them again (all are
//! idempotent), and until then readers pass over values whose event the
//! row lacks, and the listing copy may be an event ahead of the row.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

use super::directory::Kind;
use super::pages::Pages;
use super::retry::until_won;
use super::{db, from_json, to_json, Lwt, ScyllaStore};
use crate::store::{
    active_key, split_active_key, MeterValue, Page, StoreError, StoreResult, Transaction,
    TransactionEvent, TransactionEventKind, TransactionStore,
};

/// Bytes of JSON an event's batch carries at most. Cassandra and ScyllaDB
/// warn about a batch over several partitions beyond 5 KiB
/// (`batch_size_warn_threshold_in_kb`) and refuse one beyond 50 KiB; meter
/// values past this go as requests of their own beside the batch.
const BATCH_BYTES: usize = 4 * 1024;
/// Events whose meter values share one partition.
pub const EVENTS_PER_METER_BUCKET: u64 = 256;
/// OCPP 1.6 transaction ids one node reserves at a time: a burst of
/// starts (a fleet reconnecting) stays within one block and its spare. A
/// restart leaves the rest of its blocks unused; 2^31 ids are 2 million blocks.
const ID_BLOCK: i64 = 1_000;
/// The allocator behind OCPP 1.6 transaction ids.
const V16_TRANSACTION_IDS: &str = "v16_transaction_id";

/// Ids reserved by this node: `next..end` are still free to hand out.
#[derive(Debug, Default, Clone, Copy)]
struct IdBlock {
    next: i64,
    end: i64,
}

/// The OCPP 1.6 transaction ids this node holds: the block it hands out
/// from and a spare one, reserved in the background when the first runs
/// low. So a StartTransaction takes an id from memory and never waits
/// for the allocator's LWT, except on a node's very first ids (or when
/// the spare's reservation failed).
#[derive(Default)]
pub struct TransactionIds {
    held: Arc<Mutex<HeldIds>>,
    /// Taken by whoever reserves a block while the node has no id at all.
    reserving: tokio::sync::Mutex<()>,
}

impl TransactionIds {
    fn held_handle(&self) -> Arc<Mutex<HeldIds>> {
        self.held.clone()
    }
}

/// The held ids, even after a panic elsewhere held the lock (the state is
/// two counters, always consistent).
fn lock(held: &Mutex<HeldIds>) -> std::sync::MutexGuard<'_, HeldIds> {
    held.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct HeldIds {
    current: IdBlock,
    spare: Option<IdBlock>,
    /// A background reservation of the spare is under way.
    refilling: bool,
}

impl HeldIds {
    fn has_ids(&self) -> bool {
        self.current.next < self.current.end || self.spare.is_some()
    }

    /// The next id, moving to the spare block when the current one is used
    /// up; and whether a spare should be reserved now.
    fn take(&mut self) -> (Option<i64>, bool) {
        if self.current.next >= self.current.end {
            if let Some(spare) = self.spare.take() {
                self.current = spare;
            }
        }
        let id = (self.current.next < self.current.end).then(|| {
            self.current.next += 1;
            self.current.next - 1
        });
        let low = self.current.end - self.current.next < ID_BLOCK / 2;
        let refill = id.is_some() && low && self.spare.is_none() && !self.refilling;
        if refill {
            self.refilling = true;
        }
        (id, refill)
    }
}

/// Reserves id blocks: what the background refill needs, owned.
#[derive(Clone)]
struct IdAllocator {
    session: Arc<scylla::client::session::Session>,
    get: scylla::statement::prepared::PreparedStatement,
    create: scylla::statement::prepared::PreparedStatement,
    advance: scylla::statement::prepared::PreparedStatement,
}

impl IdAllocator {
    /// Reserves the next block (LWT on the allocator row).
    async fn reserve(&self) -> StoreResult<IdBlock> {
        until_won("transaction id block reservation", || async {
            let current = self
                .session
                .execute_unpaged(&self.get, (V16_TRANSACTION_IDS,))
                .await
                .map_err(db)?
                .into_rows_result()
                .map_err(db)?
                .maybe_first_row::<(i64,)>()
                .map_err(db)?;
            let (start, result) = match current {
                None => (
                    1,
                    self.session
                        .execute_unpaged(&self.create, (V16_TRANSACTION_IDS, 1 + ID_BLOCK))
                        .await,
                ),
                Some((next,)) => (
                    next,
                    self.session
                        .execute_unpaged(
                            &self.advance,
                            (next + ID_BLOCK, V16_TRANSACTION_IDS, next),
                        )
                        .await,
                ),
            };
            let outcome = Lwt::read(result.map_err(db)?)?;
            Ok(outcome.applied.then_some(IdBlock {
                next: start,
                end: start + ID_BLOCK,
            }))
        })
        .await
    }
}

/// The columns of `transaction_get`.
type TransactionRow = (i64, String, Option<Vec<i64>>, Option<Vec<i64>>);

/// A transaction row as read or written: revision, summary, applied
/// seq_nos, meter buckets.
#[derive(Debug, Clone)]
pub struct Stored {
    revision: i64,
    summary: Transaction,
    applied: BTreeSet<i64>,
    buckets: BTreeSet<i64>,
}

impl Stored {
    /// The row a transaction's first event creates.
    fn first(event: &TransactionEvent, seq_no: i64, bucket: Option<i64>) -> Stored {
        let mut summary = Transaction::empty_for(event);
        summary.fold(event);
        Stored {
            revision: 1,
            summary,
            applied: BTreeSet::from([seq_no]),
            buckets: bucket.into_iter().collect(),
        }
    }

    /// This row with `event` applied.
    fn then(mut self, event: &TransactionEvent, seq_no: i64, bucket: Option<i64>) -> Stored {
        self.revision += 1;
        self.summary.fold(event);
        self.applied.insert(seq_no);
        self.buckets.extend(bucket);
        self
    }
}

/// Stations whose transactions' last written rows one node keeps.
const WRITTEN_STATIONS: usize = 10_000;
/// Transactions kept per station (a station runs one per EVSE at most).
const WRITTEN_PER_STATION: usize = 8;

/// The row of each transaction this node wrote last, by station. A
/// transaction's next event (from the same station's actor, seconds later)
/// starts from this copy instead of reading the row first. The copy is
/// right while the station stays connected here: only this node writes its
/// transactions then. When the station connects again (it may have written
/// through another node meanwhile), its copies are dropped
/// (`Store::station_connected`).
pub struct Written(quick_cache::sync::Cache<String, Vec<(String, Stored)>>);

impl Written {
    pub fn new() -> Written {
        Written(quick_cache::sync::Cache::new(WRITTEN_STATIONS))
    }

    fn get(&self, station: &str, tx: &str) -> Option<Stored> {
        let rows = self.0.get(station)?;
        rows.into_iter()
            .find(|(id, _)| id == tx)
            .map(|(_, row)| row)
    }

    fn keep(&self, station: &str, tx: &str, row: Stored) {
        let mut rows = self.0.get(station).unwrap_or_default();
        rows.retain(|(id, _)| id != tx);
        if rows.len() >= WRITTEN_PER_STATION {
            rows.remove(0);
        }
        rows.push((tx.to_owned(), row));
        self.0.insert(station.to_owned(), rows);
    }

    fn forget(&self, station: &str, tx: &str) {
        if let Some(mut rows) = self.0.get(station) {
            rows.retain(|(id, _)| id != tx);
            self.0.insert(station.to_owned(), rows);
        }
    }

    pub fn forget_station(&self, station: &str) {
        self.0.remove(station);
    }
}

/// Stripes of the per-transaction turn: events of one transaction (or of
/// two that share a stripe) are applied one at a time on this node.
const TURN_STRIPES: usize = 1_024;

/// Whose turn it is to apply an event to a transaction on this node. A
/// station's actor sends its events one by one anyway; this orders two
/// deliveries of one event (a retry racing the first try, a reconnect), so
/// exactly one of them applies it.
pub struct Turns(Vec<tokio::sync::Mutex<()>>);

impl Turns {
    pub fn new() -> Turns {
        Turns((0..TURN_STRIPES).map(|_| Default::default()).collect())
    }

    async fn take(&self, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = (hasher.finish() % self.0.len() as u64) as usize;
        self.0[stripe].lock().await
    }
}

/// What one event adds to its transaction's summary, kept so the summary
/// can be folded again: the event without its meter values except the two
/// the fold can use (the newest, and the newest with an energy register),
/// and how many values it carried.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Digest {
    event: TransactionEvent,
    meter_value_count: u64,
}

impl Digest {
    fn of(event: &TransactionEvent) -> Digest {
        // The fold takes a value only when it is at least as new as every
        // value before it; of those, the last one and the last one with an
        // energy register decide the summary.
        let mut newest: Option<&MeterValue> = None;
        let mut newest_with_energy: Option<&MeterValue> = None;
        for value in &event.meter_values {
            if newest.is_none_or(|n| value.timestamp >= n.timestamp) {
                newest = Some(value);
                if value.energy_wh().is_some() {
                    newest_with_energy = Some(value);
                }
            }
        }
        let mut kept: Vec<MeterValue> = newest_with_energy.into_iter().cloned().collect();
        if let Some(newest) = newest {
            if newest_with_energy.is_none_or(|e| !std::ptr::eq(e, newest)) {
                kept.push(newest.clone());
            }
        }
        Digest {
            event: TransactionEvent {
                meter_values: kept,
                ..event.clone()
            },
            meter_value_count: event.meter_values.len() as u64,
        }
    }

    fn fold_into(&self, summary: &mut Transaction) {
        summary.fold(&self.event);
        summary.meter_value_count += self.meter_value_count - self.event.meter_values.len() as u64;
    }
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
        let Some((revision, summary, applied, buckets)) = row else {
            return Ok(None);
        };
        let mut stored = Stored {
            revision,
            summary: from_json(&summary)?,
            applied: applied.unwrap_or_default().into_iter().collect(),
            buckets: buckets.unwrap_or_default().into_iter().collect(),
        };
        if stored.summary.event_count != stored.applied.len() as u64 {
            // Two writers' summaries met and one won: fold every event again.
            self.refold(&mut stored).await?;
        }
        Ok(Some(stored))
    }

    /// Folds a row's summary again from its events' digests, when the
    /// summary stored lacks some of its applied events.
    async fn refold(&self, stored: &mut Stored) -> StoreResult<()> {
        let (station, tx) = (
            stored.summary.station_id.clone(),
            stored.summary.transaction_id.clone(),
        );
        let digests = self
            .row::<(Option<BTreeMap<i64, String>>,)>(
                &self.statements.transaction_digests,
                (station.as_str(), tx.as_str()),
            )
            .await?
            .and_then(|(digests,)| digests)
            .unwrap_or_default();
        if stored.applied.iter().any(|seq| !digests.contains_key(seq)) {
            // Events applied before model 8 kept no digest: the stored
            // summary is the best there is.
            tracing::warn!(%station, transaction = %tx, "transaction summary lacks events that have no digest; kept as stored");
            return Ok(());
        }
        let mut digests = digests
            .iter()
            .filter(|(seq, _)| stored.applied.contains(seq))
            .map(|(_, digest)| from_json::<Digest>(digest));
        let Some(first) = digests.next().transpose()? else {
            return Ok(());
        };
        let mut summary = Transaction::empty_for(&first.event);
        first.fold_into(&mut summary);
        for digest in digests {
            digest?.fold_into(&mut summary);
        }
        stored.summary = summary;
        Ok(())
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
        let rows = meter_value_rows(event)?;
        self.put_meter_values(event, seq_no, rows).await
    }

    /// Writes meter value rows, a request each, side by side.
    async fn put_meter_values(
        &self,
        event: &TransactionEvent,
        seq_no: i64,
        rows: Vec<(i32, String)>,
    ) -> StoreResult<()> {
        let writes = rows.into_iter().map(|(index, value)| {
            self.execute(
                &self.statements.meter_value_put,
                meter_value_bind(event, seq_no, index, value),
            )
        });
        futures_util::future::try_join_all(writes).await?;
        Ok(())
    }

    /// Applies `event` to its transaction's row; the row after it, and
    /// whether this call applied it (false: applied before).
    async fn apply_event(&self, event: &TransactionEvent) -> StoreResult<(bool, Stored)> {
        let (station, tx) = (event.station_id.as_str(), event.transaction_id.as_str());
        let key = active_key(station, tx);
        let seq_no = ordered(event.seq_no);
        let _turn = self.transaction_turns.take(&key).await;
        let stored = match self.written_transactions.get(station, tx) {
            Some(row) => Some(row),
            // An OCPP 1.6 id this node handed out for this station: ids are
            // never reused, so there is no row to read yet.
            None if event.kind == TransactionEventKind::Started
                && self.fresh_transactions.forget(&key) =>
            {
                None
            }
            None => self.load_transaction(station, tx).await?,
        };
        if let Some(stored) = stored.as_ref().filter(|s| s.applied.contains(&seq_no)) {
            return Ok((false, stored.clone()));
        }
        let bucket = (!event.meter_values.is_empty()).then(|| meter_bucket(event.seq_no));
        let next = match stored {
            None => Stored::first(event, seq_no, bucket),
            Some(previous) => previous.then(event, seq_no, bucket),
        };
        let written_at = crate::station::directory::next_connection_id(&self.write_clock);
        let summary = to_json(&next.summary)?;
        let row = (
            i64::try_from(written_at).unwrap_or(i64::MAX),
            next.revision,
            summary.clone(),
            vec![seq_no],
            Vec::from_iter(bucket),
            BTreeMap::from([(seq_no, to_json(&Digest::of(event))?)]),
            station,
            tx,
        );
        let fixed_bytes = 2 * summary.len() + row.5[&seq_no].len();
        let written = if fixed_bytes > BATCH_BYTES {
            // A summary this large (a huge meter value in it) would take
            // the batch past the cluster's size limits: each write apart,
            // side by side.
            let row = async {
                self.execute(&self.statements.transaction_write, row)
                    .await
                    .map(drop)
            };
            let rest = self.write_beside_row(event, &next);
            futures_util::future::try_join(row, rest).await.map(drop)
        } else {
            self.write_event_batch(event, seq_no, row, summary, &next, fixed_bytes)
                .await
        };
        match written {
            Ok(_) => {
                if event.kind == TransactionEventKind::Ended {
                    self.written_transactions.forget(station, tx);
                } else {
                    self.written_transactions.keep(station, tx, next.clone());
                }
                Ok((true, next))
            }
            Err(e) => {
                // The row may or may not have landed: read it next time.
                self.written_transactions.forget(station, tx);
                Err(e)
            }
        }
    }

    /// An event's writes other than its row (`stored` is the row after
    /// it), each a request of its own, side by side: the listing copy, the
    /// fleet index and the meter values.
    async fn write_beside_row(&self, event: &TransactionEvent, stored: &Stored) -> StoreResult<()> {
        let listing = self.copy_to_station_list(&stored.summary, stored.revision);
        let index = self.index_active(event, stored);
        let values = self.write_meter_values(event, ordered(event.seq_no));
        futures_util::future::try_join3(listing, index, values)
            .await
            .map(drop)
    }

    /// Every write of an event in one request: the row, the listing copy,
    /// the fleet index and its meter values up to [`BATCH_BYTES`] in all
    /// (the rest go beside it). In a burst of events the cluster's cost per
    /// request, not per row, is what stations queue behind. The batch is
    /// unlogged: each part is idempotent, and a retry of an event that
    /// failed here writes them all again (`apply_transaction_event`);
    /// readers pass over values of events the row does not list.
    async fn write_event_batch(
        &self,
        event: &TransactionEvent,
        seq_no: i64,
        row: RowWrite<'_>,
        summary: String,
        stored: &Stored,
        fixed_bytes: usize,
    ) -> StoreResult<()> {
        let (station, tx) = (event.station_id.as_str(), event.transaction_id.as_str());
        let mut batch = Batch::new(BatchType::Unlogged);
        let mut values: Vec<Box<dyn SerializeRow + Send + Sync + '_>> = Vec::new();
        batch.append_statement(self.statements.transaction_write.clone());
        values.push(Box::new(row));
        batch.append_statement(self.statements.station_transaction_put.clone());
        values.push(Box::new((station, tx, summary, stored.revision)));
        if let Some((statement, entry)) = self.index_entry(event, stored) {
            batch.append_statement(statement.clone());
            values.push(Box::new(entry));
        }
        let mut budget = BATCH_BYTES.saturating_sub(fixed_bytes);
        let mut apart = Vec::new();
        for (index, value) in meter_value_rows(event)? {
            if value.len() <= budget {
                budget -= value.len();
                batch.append_statement(self.statements.meter_value_put.clone());
                values.push(Box::new(meter_value_bind(event, seq_no, index, value)));
            } else {
                apart.push((index, value));
            }
        }
        batch.set_is_idempotent(true);
        let together = self.batch_timed_as("transaction_event", &batch, values);
        let beside = self.put_meter_values(event, seq_no, apart);
        futures_util::future::try_join(together, beside)
            .await
            .map(drop)
    }

    /// The fleet-wide index of running transactions follows Started and
    /// Ended: the statement and entry of `event`'s write, given its row
    /// after it (`stored`), none for Updated. An ended transaction is
    /// taken out whatever the event (a Started retried after its Ended must
    /// not list it again).
    fn index_entry(
        &self,
        event: &TransactionEvent,
        stored: &Stored,
    ) -> Option<(&PreparedStatement, (&'static str, i16, String))> {
        let statement = match event.kind {
            _ if !stored.summary.is_active() => &self.statements.directory_delete,
            TransactionEventKind::Started => &self.statements.directory_insert,
            TransactionEventKind::Ended => &self.statements.directory_delete,
            TransactionEventKind::Updated => return None,
        };
        let row =
            Kind::ActiveTransaction.row(&active_key(&event.station_id, &event.transaction_id));
        Some((statement, row))
    }

    async fn index_active(&self, event: &TransactionEvent, stored: &Stored) -> StoreResult<()> {
        if let Some((statement, row)) = self.index_entry(event, stored) {
            self.execute(statement, row).await?;
        }
        Ok(())
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

    fn id_allocator(&self) -> IdAllocator {
        IdAllocator {
            session: self.session.clone(),
            get: self.statements.id_block_get.clone(),
            create: self.statements.id_block_create.clone(),
            advance: self.statements.id_block_advance.clone(),
        }
    }

    /// Reserves this node's first block of ids, so that no station's
    /// first StartTransaction waits for it. Not fatal: the first start
    /// reserves one when this failed.
    pub(super) async fn reserve_first_ids(&self) {
        match self.id_allocator().reserve().await {
            Ok(block) => {
                let mut held = lock(&self.transaction_ids.held);
                if !held.has_ids() {
                    held.current = block;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot reserve transaction ids at start"),
        }
    }

    /// The next 1.6 transaction id (`TransactionIds`).
    async fn take_transaction_id(&self) -> StoreResult<i64> {
        let ids = &self.transaction_ids;
        loop {
            let (id, refill) = lock(&ids.held).take();
            if refill {
                let (allocator, held) = (self.id_allocator(), ids.held_handle());
                self.spawn_io(async move {
                    let spare = allocator.reserve().await;
                    let mut held = lock(&held);
                    held.refilling = false;
                    match spare {
                        Ok(block) => held.spare = Some(block),
                        Err(e) => tracing::warn!(error = %e, "cannot reserve spare transaction ids; the next start will"),
                    }
                });
            }
            if let Some(id) = id {
                return Ok(id);
            }
            let _only_one = ids.reserving.lock().await;
            if lock(&ids.held).has_ids() {
                continue;
            }
            let block = self.id_allocator().reserve().await?;
            lock(&ids.held).current = block;
        }
    }
}

/// `event`'s meter values as stored: (index in the event, JSON).
fn meter_value_rows(event: &TransactionEvent) -> StoreResult<Vec<(i32, String)>> {
    let rows = event.meter_values.iter().enumerate().map(|(index, value)| {
        let value = MeterValue {
            seq_no: event.seq_no,
            ..value.clone()
        };
        Ok((i32::try_from(index).unwrap_or(i32::MAX), to_json(&value)?))
    });
    rows.collect()
}

/// The bind values of `transaction_write`: write time, revision, summary,
/// the seq_no, the meter bucket, the digest, station, transaction.
type RowWrite<'a> = (
    i64,
    i64,
    String,
    Vec<i64>,
    Vec<i64>,
    BTreeMap<i64, String>,
    &'a str,
    &'a str,
);

/// The bind values of `meter_value_put` for one of `event`'s values.
fn meter_value_bind(
    event: &TransactionEvent,
    seq_no: i64,
    index: i32,
    value: String,
) -> (&str, &str, i64, i64, i32, String) {
    (
        event.station_id.as_str(),
        event.transaction_id.as_str(),
        meter_bucket(event.seq_no),
        seq_no,
        index,
        value,
    )
}

#[async_trait]
impl TransactionStore for ScyllaStore {
    async fn apply_transaction_event(&self, event: TransactionEvent) -> StoreResult<bool> {
        self.call("apply_transaction_event", async {
            let (applied, row) = self.apply_event(&event).await?;
            if !applied {
                // A retry: its first delivery may have stopped before all of
                // its writes landed. They are idempotent: write them again.
                self.write_beside_row(&event, &row).await?;
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

    async fn next_transaction_number(&self, station_id: &str) -> StoreResult<i32> {
        self.call("next_transaction_number", async {
            let id = self.take_transaction_id().await?;
            let number = i32::try_from(id)
                .map_err(|_| StoreError::Backend("OCPP 1.6 transaction ids exhausted".into()))?;
            self.fresh_transactions
                .learn(active_key(station_id, &number.to_string()));
            Ok(number)
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

    fn value(second: i64, measurand: &str, reading: f64) -> MeterValue {
        MeterValue {
            seq_no: 0,
            timestamp: chrono::DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap(),
            sampled_values: vec![crate::store::SampledValue {
                value: reading,
                measurand: Some(measurand.into()),
                phase: None,
                unit: None,
                context: None,
                location: None,
            }],
        }
    }

    fn event(seq_no: u64, kind: TransactionEventKind, values: Vec<MeterValue>) -> TransactionEvent {
        TransactionEvent {
            station_id: "CS1".into(),
            transaction_id: "T1".into(),
            seq_no,
            kind,
            timestamp: chrono::DateTime::from_timestamp(1_700_000_000 + seq_no as i64, 0).unwrap(),
            id_token: None,
            offline: seq_no == 2,
            evse_id: Some(1),
            connector_id: None,
            stop_reason: (kind == TransactionEventKind::Ended).then(|| "Local".into()),
            meter_values: values,
        }
    }

    #[test]
    fn folding_digests_gives_the_summary_folding_events_gives() {
        const ENERGY: &str = "Energy.Active.Import.Register";
        const POWER: &str = "Power.Active.Import";
        let events = [
            event(
                0,
                TransactionEventKind::Started,
                vec![value(0, ENERGY, 10.0)],
            ),
            // Newest last but without a register; an older value in between.
            event(
                1,
                TransactionEventKind::Updated,
                vec![
                    value(5, ENERGY, 20.0),
                    value(3, ENERGY, 99.0),
                    value(6, POWER, 7.0),
                ],
            ),
            // Older than what came before: changes counts only.
            event(
                2,
                TransactionEventKind::Updated,
                vec![value(1, ENERGY, 55.0)],
            ),
            event(3, TransactionEventKind::Updated, vec![]),
            event(
                4,
                TransactionEventKind::Ended,
                vec![value(9, ENERGY, 40.0), value(9, POWER, 0.0)],
            ),
        ];
        let mut by_events = Transaction::empty_for(&events[0]);
        let mut by_digests = Transaction::empty_for(&events[0]);
        for event in &events {
            by_events.fold(event);
            let digest = Digest::of(event);
            assert!(digest.event.meter_values.len() <= 2);
            let stored: Digest = from_json(&to_json(&digest).unwrap()).unwrap();
            stored.fold_into(&mut by_digests);
            assert_eq!(by_digests, by_events, "after seq_no {}", event.seq_no);
        }
        assert_eq!(by_events.meter_value_count, 7);
        assert_eq!(by_events.energy_wh, Some(40.0));
    }

    #[test]
    fn ids_come_from_the_block_then_the_spare_and_a_refill_is_asked_once() {
        let mut held = HeldIds {
            current: IdBlock {
                next: 1,
                end: 1 + ID_BLOCK,
            },
            ..HeldIds::default()
        };
        let mut refills = 0;
        for expected in 1..=ID_BLOCK {
            let (id, refill) = held.take();
            assert_eq!(id, Some(expected));
            refills += usize::from(refill);
        }
        assert_eq!(
            refills, 1,
            "one background reservation while the block runs low"
        );
        assert!(held.refilling);
        assert_eq!(
            held.take(),
            (None, false),
            "used up, no spare yet: the caller reserves"
        );
        held.refilling = false;
        held.spare = Some(IdBlock {
            next: 5_001,
            end: 5_001 + ID_BLOCK,
        });
        assert!(held.has_ids());
        assert_eq!(
            held.take(),
            (Some(5_001), false),
            "the spare becomes the block"
        );
        assert!(held.spare.is_none());
    }

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
