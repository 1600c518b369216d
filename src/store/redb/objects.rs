//! OCPI Sessions and CDRs on redb: the records by (kind, id), and a list
//! index by (`kind/party`, last_updated ms, id) moved in the record's
//! transaction, so a page is a range read.

use std::ops::Bound;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, TableDefinition};

use super::{backend, decode, encode, RedbStore};
use crate::store::{
    updated_millis, OcpiObject, OcpiObjectKind, OcpiObjectStore, StoreResult, UpdatedWindow,
};

type Bytes = &'static [u8];
/// (kind, id) → object.
pub(crate) const OCPI_OBJECTS: TableDefinition<(&str, &str), Bytes> =
    TableDefinition::new("ocpi_objects");
/// (`kind/party`, last_updated ms, id) → nothing: the pull's order.
pub(crate) const OCPI_OBJECTS_UPDATED: TableDefinition<(&str, u64, &str), ()> =
    TableDefinition::new("ocpi_objects_updated");

/// The list an object is in: its kind and owning party.
fn scope(kind: OcpiObjectKind, party: &str) -> String {
    format!("{}/{party}", kind.name())
}

fn millis(at: DateTime<Utc>) -> u64 {
    updated_millis(Some(at))
}

#[async_trait]
impl OcpiObjectStore for RedbStore {
    async fn put_ocpi_object(&self, object: OcpiObject) -> StoreResult<()> {
        self.write("put_ocpi_object", move |txn| {
            let kind = object.kind.name();
            let mut records = txn.open_table(OCPI_OBJECTS).map_err(backend)?;
            let old: Option<OcpiObject> = records
                .get((kind, object.id.as_str()))
                .map_err(backend)?
                .map(|v| decode(v.value()))
                .transpose()?;
            let bytes = encode(&object)?;
            records
                .insert((kind, object.id.as_str()), bytes.as_slice())
                .map_err(backend)?;
            let mut index = txn.open_table(OCPI_OBJECTS_UPDATED).map_err(backend)?;
            if let Some(old) = old {
                let old_scope = scope(old.kind, &old.party);
                index
                    .remove((
                        old_scope.as_str(),
                        millis(old.last_updated),
                        old.id.as_str(),
                    ))
                    .map_err(backend)?;
            }
            let new_scope = scope(object.kind, &object.party);
            index
                .insert(
                    (
                        new_scope.as_str(),
                        millis(object.last_updated),
                        object.id.as_str(),
                    ),
                    (),
                )
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn ocpi_object(&self, kind: OcpiObjectKind, id: &str) -> StoreResult<Option<OcpiObject>> {
        let id = id.to_owned();
        self.read("ocpi_object", move |txn| {
            let records = txn.open_table(OCPI_OBJECTS).map_err(backend)?;
            let value = records.get((kind.name(), id.as_str())).map_err(backend)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn ocpi_objects_updated(
        &self,
        kind: OcpiObjectKind,
        party: &str,
        window: UpdatedWindow,
    ) -> StoreResult<Vec<OcpiObject>> {
        let scope = scope(kind, party);
        self.read("ocpi_objects_updated", move |txn| {
            let index = txn.open_table(OCPI_OBJECTS_UPDATED).map_err(backend)?;
            let records = txn.open_table(OCPI_OBJECTS).map_err(backend)?;
            let s = scope.as_str();
            let from = window.from.map_or(0, millis);
            let start = match &window.after {
                Some((at, id)) if millis(*at) >= from => {
                    Bound::Excluded((s, millis(*at), id.as_str()))
                }
                _ => Bound::Included((s, from, "")),
            };
            let end = match window.to {
                Some(to) => Bound::Excluded((s, millis(to), "")),
                None => Bound::Excluded((s, u64::MAX, "")),
            };
            let offset = usize::try_from(window.offset).unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for entry in index
                .range::<(&str, u64, &str)>((start, end))
                .map_err(backend)?
                .skip(offset)
                .take(window.limit as usize)
            {
                let (key, _) = entry.map_err(backend)?;
                let (_, _, id) = key.value();
                if let Some(bytes) = records.get((kind.name(), id)).map_err(backend)? {
                    out.push(decode(bytes.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn count_ocpi_objects_updated(
        &self,
        kind: OcpiObjectKind,
        party: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> StoreResult<u64> {
        let scope = scope(kind, party);
        self.read("count_ocpi_objects_updated", move |txn| {
            let index = txn.open_table(OCPI_OBJECTS_UPDATED).map_err(backend)?;
            let s = scope.as_str();
            let start = (s, from.map_or(0, millis), "");
            let end = (s, to.map_or(u64::MAX, millis), "");
            let mut count = 0;
            for entry in index
                .range::<(&str, u64, &str)>(start..end)
                .map_err(backend)?
            {
                entry.map_err(backend)?;
                count += 1;
            }
            Ok(count)
        })
        .await
    }
}
