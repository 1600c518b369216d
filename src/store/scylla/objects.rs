//! OCPI Sessions and CDRs on ScyllaDB: the records by (kind, id), and each
//! party's list by last_updated in a partition of its own. A write puts the
//! new list entry first and removes the old one after the record, so a
//! crash between leaves an extra entry, which readers skip (its record's
//! `last_updated` no longer matches), never a missing one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::pages::Pages;
use super::{from_json, to_json, ScyllaStore};
use crate::store::{OcpiObject, OcpiObjectKind, OcpiObjectStore, StoreResult, UpdatedWindow};

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

impl ScyllaStore {
    async fn read_ocpi_object(
        &self,
        kind: OcpiObjectKind,
        id: &str,
    ) -> StoreResult<Option<OcpiObject>> {
        self.row::<(String,)>(&self.statements.ocpi_object_get, (kind.name(), id))
            .await?
            .map(|(record,)| from_json(&record))
            .transpose()
    }
}

#[async_trait]
impl OcpiObjectStore for ScyllaStore {
    async fn put_ocpi_object(&self, object: OcpiObject) -> StoreResult<()> {
        self.call("put_ocpi_object", async {
            let kind = object.kind.name();
            let old = self.read_ocpi_object(object.kind, &object.id).await?;
            let entry =
                |o: &OcpiObject| (kind, o.party.clone(), millis(o.last_updated), o.id.clone());
            let new_entry = entry(&object);
            self.execute(&self.statements.ocpi_object_entry_put, new_entry.clone())
                .await?;
            self.execute(
                &self.statements.ocpi_object_put,
                (kind, object.id.as_str(), to_json(&object)?),
            )
            .await?;
            if let Some(old) = old.filter(|old| entry(old) != new_entry) {
                self.execute(&self.statements.ocpi_object_entry_delete, entry(&old))
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn ocpi_object(&self, kind: OcpiObjectKind, id: &str) -> StoreResult<Option<OcpiObject>> {
        self.call("ocpi_object", self.read_ocpi_object(kind, id))
            .await
    }

    async fn ocpi_objects_updated(
        &self,
        kind: OcpiObjectKind,
        party: &str,
        window: UpdatedWindow,
    ) -> StoreResult<Vec<OcpiObject>> {
        self.call("ocpi_objects_updated", async {
            let from = window.from.map_or(i64::MIN, millis);
            let start = match &window.after {
                Some((at, id)) if millis(*at) >= from => (millis(*at), id.clone()),
                // Entries at `from` have an id, so all sort after "".
                _ => (from, String::new()),
            };
            let end = window.to.map_or(i64::MAX, millis);
            let wanted = window.offset.saturating_add(u64::from(window.limit));
            let mut entries = Pages::<(i64, String)>::new(
                &self.statements.ocpi_object_entries_after,
                &(kind.name(), party, start.0, start.1.as_str()),
                wanted + 8,
            )?;
            let (mut skipped, mut out) = (0u64, Vec::new());
            while out.len() < window.limit as usize {
                let Some((at, id)) = entries.next(self).await? else {
                    break;
                };
                if at >= end {
                    break;
                }
                let Some(object) = self.read_ocpi_object(kind, &id).await? else {
                    continue;
                };
                // An entry left behind by a write that moved the object.
                if millis(object.last_updated) != at || object.party != party {
                    continue;
                }
                if skipped < window.offset {
                    skipped += 1;
                } else {
                    out.push(object);
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
        self.call("count_ocpi_objects_updated", async {
            let count = self
                .row::<(i64,)>(
                    &self.statements.ocpi_object_entries_count,
                    (
                        kind.name(),
                        party,
                        from.map_or(i64::MIN, millis),
                        to.map_or(i64::MAX, millis),
                    ),
                )
                .await?
                .map_or(0, |(n,)| n);
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }
}
