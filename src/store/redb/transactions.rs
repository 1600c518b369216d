//! [`TransactionStore`] on redb. A transaction's summary is one row; its
//! events are remembered by seq_no (for idempotent retries) and its meter
//! values are rows of their own, so a long session appends small rows rather
//! than rewriting an ever-growing record.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

use super::{
    backend, decode, encode, owned_page, remove_one, RedbStore, ACTIVE_TRANSACTIONS, COUNTERS,
    METER_VALUES, TRANSACTIONS, TRANSACTION_EVENTS,
};
use crate::store::{
    active_key, split_active_key, MeterValue, Page, StoreError, StoreResult, Transaction,
    TransactionEvent, TransactionEventKind, TransactionStore,
};

/// Lists the transaction under `key` as active after an event of `kind`,
/// or takes it out once it has `ended`.
fn index_active(
    txn: &WriteTransaction,
    key: &str,
    kind: TransactionEventKind,
    ended: bool,
) -> StoreResult<()> {
    if ended || kind == TransactionEventKind::Ended {
        remove_one(txn, ACTIVE_TRANSACTIONS, key)?;
    } else if kind == TransactionEventKind::Started {
        let mut active = txn.open_table(ACTIVE_TRANSACTIONS).map_err(backend)?;
        active.insert(key, &[][..]).map_err(backend)?;
    }
    Ok(())
}

/// The counter behind OCPP 1.6 transaction ids.
const V16_TRANSACTION_COUNTER: &str = "v16_transaction_id";

#[async_trait]
impl TransactionStore for RedbStore {
    async fn apply_transaction_event(&self, event: TransactionEvent) -> StoreResult<bool> {
        self.write("apply_transaction_event", move |txn| {
            let station = event.station_id.as_str();
            let tx_id = event.transaction_id.as_str();
            let key = active_key(station, tx_id);
            let mut transactions = txn.open_table(TRANSACTIONS).map_err(backend)?;
            let existing = match transactions.get((station, tx_id)).map_err(backend)? {
                Some(stored) => Some(decode::<Transaction>(stored.value())?),
                None => None,
            };
            let mut seen = txn.open_table(TRANSACTION_EVENTS).map_err(backend)?;
            if seen
                .get((station, tx_id, event.seq_no))
                .map_err(backend)?
                .is_some()
            {
                // A retry. The index follows the transaction as stored: a
                // Started retried after its Ended leaves it out.
                let ended = existing.is_some_and(|summary| !summary.is_active());
                index_active(txn, &key, event.kind, ended)?;
                return Ok(false);
            }
            let mut summary = existing.unwrap_or_else(|| Transaction::empty_for(&event));
            summary.fold(&event);
            // The index of active transactions, in the same commit.
            index_active(txn, &key, event.kind, !summary.is_active())?;
            let bytes = encode(&summary)?;
            transactions
                .insert((station, tx_id), bytes.as_slice())
                .map_err(backend)?;
            seen.insert((station, tx_id, event.seq_no), 0u8)
                .map_err(backend)?;
            let mut meter_values = txn.open_table(METER_VALUES).map_err(backend)?;
            for (index, value) in event.meter_values.iter().enumerate() {
                let value = MeterValue {
                    seq_no: event.seq_no,
                    ..value.clone()
                };
                let bytes = encode(&value)?;
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                meter_values
                    .insert((station, tx_id, event.seq_no, index), bytes.as_slice())
                    .map_err(backend)?;
            }
            Ok(true)
        })
        .await
    }

    async fn transaction(
        &self,
        station_id: &str,
        transaction_id: &str,
    ) -> StoreResult<Option<Transaction>> {
        let (station_id, transaction_id) = (station_id.to_owned(), transaction_id.to_owned());
        self.read("transaction", move |txn| {
            let table = txn.open_table(TRANSACTIONS).map_err(backend)?;
            let value = table
                .get((station_id.as_str(), transaction_id.as_str()))
                .map_err(backend)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn list_transactions(
        &self,
        station_id: &str,
        page: Page,
    ) -> StoreResult<Vec<Transaction>> {
        let station_id = station_id.to_owned();
        self.read("list_transactions", move |txn| {
            owned_page(txn, TRANSACTIONS, &station_id, &page)
        })
        .await
    }

    async fn active_transactions(&self, page: Page) -> StoreResult<Vec<Transaction>> {
        self.read("active_transactions", move |txn| {
            let active = txn.open_table(ACTIVE_TRANSACTIONS).map_err(backend)?;
            let transactions = txn.open_table(TRANSACTIONS).map_err(backend)?;
            let start = match page.after.as_deref() {
                Some(after) => Bound::Excluded(after),
                None => Bound::Unbounded,
            };
            let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for entry in active
                .range::<&str>((start, Bound::Unbounded))
                .map_err(backend)?
                .skip(offset)
            {
                if out.len() >= page.limit as usize {
                    break;
                }
                let (key, _) = entry.map_err(backend)?;
                let Some((station, transaction)) = split_active_key(key.value()) else {
                    continue;
                };
                if let Some(value) = transactions.get((station, transaction)).map_err(backend)? {
                    out.push(decode(value.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn next_transaction_number(&self, _station_id: &str) -> StoreResult<i32> {
        self.write("next_transaction_number", |txn| {
            let mut counters = txn.open_table(COUNTERS).map_err(backend)?;
            let last = counters
                .get(V16_TRANSACTION_COUNTER)
                .map_err(backend)?
                .map(|v| v.value())
                .unwrap_or(0);
            let next = last + 1;
            let number = i32::try_from(next)
                .map_err(|_| StoreError::Backend("OCPP 1.6 transaction ids exhausted".into()))?;
            counters
                .insert(V16_TRANSACTION_COUNTER, next)
                .map_err(backend)?;
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
        page.require_offset_only("meter values")?;
        let (station_id, transaction_id) = (station_id.to_owned(), transaction_id.to_owned());
        self.read("meter_values", move |txn| {
            let table = txn.open_table(METER_VALUES).map_err(backend)?;
            let (s, t) = (station_id.as_str(), transaction_id.as_str());
            let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
            let mut out = Vec::new();
            let rows = table
                .range((s, t, 0, 0)..=(s, t, u64::MAX, u32::MAX))
                .map_err(backend)?;
            for entry in rows.skip(offset).take(page.limit as usize) {
                let (_, value) = entry.map_err(backend)?;
                out.push(decode(value.value())?);
            }
            Ok(out)
        })
        .await
    }
}
