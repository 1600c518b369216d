//! Locations on redb: the records keyed by id (JSON, as before), and an
//! index keyed by (last_updated in ms, id) that the management API's
//! `date_from` listing seeks in. Both change in one transaction, so the
//! index never disagrees with the records. A conditional write compares the
//! entity tag of the stored bytes inside the write transaction.

use std::ops::Bound;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::Deserialize;

use super::{backend, decode, encode, list_page, RedbStore, LOCATIONS};
use crate::store::{
    etag_of, Expect, Location, LocationStore, LocationWrite, Page, StoreResult, StoredLocation,
    UpdatedWindow,
};

/// (last_updated in ms since the epoch, location id) → nothing.
pub(crate) const LOCATIONS_BY_UPDATED: TableDefinition<(u64, &str), u8> =
    TableDefinition::new("locations_by_updated");

/// The part of a stored location its index entries are made of.
#[derive(Deserialize)]
struct Stamp {
    #[serde(default, with = "crate::store::ocpi_time::option")]
    last_updated: Option<DateTime<Utc>>,
}

fn millis(at: Option<DateTime<Utc>>) -> u64 {
    at.map_or(0, |at| u64::try_from(at.timestamp_millis()).unwrap_or(0))
}

/// Fills the index from the records when a file of an older release has
/// locations and no index yet (run at open, in the opening transaction).
pub(super) fn index_existing(txn: &WriteTransaction) -> StoreResult<u64> {
    let records = txn.open_table(LOCATIONS).map_err(backend)?;
    let mut index = txn.open_table(LOCATIONS_BY_UPDATED).map_err(backend)?;
    if !index.is_empty().map_err(backend)? {
        return Ok(0);
    }
    let mut indexed = 0;
    for entry in records.iter().map_err(backend)? {
        let (id, bytes) = entry.map_err(backend)?;
        let stamp: Stamp = decode(bytes.value())?;
        index
            .insert((millis(stamp.last_updated), id.value()), 0)
            .map_err(backend)?;
        indexed += 1;
    }
    Ok(indexed)
}

/// Reads the stored bytes of location `id` and their tag.
fn current(txn: &WriteTransaction, id: &str) -> StoreResult<Option<(Vec<u8>, String)>> {
    let records = txn.open_table(LOCATIONS).map_err(backend)?;
    let bytes = records
        .get(id)
        .map_err(backend)?
        .map(|v| v.value().to_vec());
    Ok(bytes.map(|bytes| {
        let tag = etag_of(&bytes);
        (bytes, tag)
    }))
}

/// Moves the index entry of `id` from the old record's time to `new_millis`
/// (None: removes it).
fn reindex(
    txn: &WriteTransaction,
    id: &str,
    old: Option<&[u8]>,
    new_millis: Option<u64>,
) -> StoreResult<()> {
    let mut index = txn.open_table(LOCATIONS_BY_UPDATED).map_err(backend)?;
    if let Some(old) = old {
        let stamp: Stamp = decode(old)?;
        index
            .remove((millis(stamp.last_updated), id))
            .map_err(backend)?;
    }
    if let Some(at) = new_millis {
        index.insert((at, id), 0).map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl LocationStore for RedbStore {
    async fn location(&self, id: &str) -> StoreResult<Option<StoredLocation>> {
        let id = id.to_owned();
        self.read("location", move |txn| {
            let records = txn.open_table(LOCATIONS).map_err(backend)?;
            let Some(bytes) = records.get(id.as_str()).map_err(backend)? else {
                return Ok(None);
            };
            let bytes = bytes.value();
            Ok(Some(StoredLocation {
                location: decode(bytes)?,
                etag: etag_of(bytes),
            }))
        })
        .await
    }

    async fn write_location(
        &self,
        location: Location,
        expect: Expect,
    ) -> StoreResult<LocationWrite> {
        // Encoded here, not on the writer thread that every write shares.
        let bytes = encode(&location)?;
        let tag = etag_of(&bytes);
        let at = millis(location.last_updated);
        let id = location.id;
        self.write("write_location", move |txn| {
            let current = current(txn, &id)?;
            let current_tag = current.as_ref().map(|(_, tag)| tag.as_str());
            if !expect.allows(current_tag) {
                return Ok(LocationWrite::Conflict(current_tag.map(str::to_owned)));
            }
            reindex(
                txn,
                &id,
                current.as_ref().map(|(b, _)| b.as_slice()),
                Some(at),
            )?;
            let mut records = txn.open_table(LOCATIONS).map_err(backend)?;
            records
                .insert(id.as_str(), bytes.as_slice())
                .map_err(backend)?;
            Ok(LocationWrite::Written(tag))
        })
        .await
    }

    async fn delete_location(&self, id: &str, expect: Expect) -> StoreResult<LocationWrite> {
        let id = id.to_owned();
        self.write("delete_location", move |txn| {
            let Some((bytes, tag)) = current(txn, &id)? else {
                return Ok(LocationWrite::Conflict(None));
            };
            if !expect.allows(Some(&tag)) {
                return Ok(LocationWrite::Conflict(Some(tag)));
            }
            reindex(txn, &id, Some(&bytes), None)?;
            let mut records = txn.open_table(LOCATIONS).map_err(backend)?;
            records.remove(id.as_str()).map_err(backend)?;
            Ok(LocationWrite::Written(String::new()))
        })
        .await
    }

    async fn list_locations(&self, page: Page) -> StoreResult<Vec<Location>> {
        self.read("list_locations", move |txn| list_page(txn, LOCATIONS, page))
            .await
    }

    async fn locations_updated(&self, window: UpdatedWindow) -> StoreResult<Vec<Location>> {
        self.read("locations_updated", move |txn| {
            let index = txn.open_table(LOCATIONS_BY_UPDATED).map_err(backend)?;
            let records = txn.open_table(LOCATIONS).map_err(backend)?;
            let from = window.from.map(|at| millis(Some(at)));
            let after = window
                .after
                .as_ref()
                .map(|(at, id)| (millis(Some(*at)), id.as_str()));
            // The later of the two starting points.
            let start = match (from, after) {
                (Some(from), Some(after)) if after.0 < from => Bound::Included((from, "")),
                (_, Some(after)) => Bound::Excluded(after),
                (Some(from), None) => Bound::Included((from, "")),
                (None, None) => Bound::Unbounded,
            };
            let end = match window.to {
                Some(to) => Bound::Excluded((millis(Some(to)), "")),
                None => Bound::Unbounded,
            };
            let offset = usize::try_from(window.offset).unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for entry in index
                .range::<(u64, &str)>((start, end))
                .map_err(backend)?
                .skip(offset)
                .take(window.limit as usize)
            {
                let (key, _) = entry.map_err(backend)?;
                let (_, id) = key.value();
                if let Some(bytes) = records.get(id).map_err(backend)? {
                    out.push(decode(bytes.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn count_locations_updated(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> StoreResult<u64> {
        self.read("count_locations_updated", move |txn| {
            let index = txn.open_table(LOCATIONS_BY_UPDATED).map_err(backend)?;
            if from.is_none() && to.is_none() {
                return index.len().map_err(backend);
            }
            let start = from.map_or(Bound::Unbounded, |at| {
                Bound::Included((millis(Some(at)), ""))
            });
            let end = to.map_or(Bound::Unbounded, |at| {
                Bound::Excluded((millis(Some(at)), ""))
            });
            let mut count = 0;
            for entry in index.range::<(u64, &str)>((start, end)).map_err(backend)? {
                entry.map_err(backend)?;
                count += 1;
            }
            Ok(count)
        })
        .await
    }
}
