//! Locations on ScyllaDB: one row per location (its JSON record), listed in
//! id order through the directory (kind `location`) and in `last_updated`
//! order through directory entries `{ms:013}{id}` of kind
//! `location_updated`. A write is a lightweight transaction on the record
//! (`IF NOT EXISTS`, `IF record = ?`), so a conditional write compares with
//! exactly the version the caller read. The directory entries are written
//! before the record and the old ones removed after it; a reader checks
//! each entry against its record, so an entry left by a crash in between is
//! passed over, never shown.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;

use super::directory::{Kind, BUCKETS};
use super::pages::{Pages, MOST_ROWS_PER_PAGE};
use super::{from_json, to_json, ScyllaStore};
use crate::store::{
    etag_of, Circle, EvseLink, Expect, HardwareTemplate, Location, LocationStore, LocationWrite,
    Page, PlaceEntry, StoreError, StoreResult, StoredLocation, UpdatedWindow, GEOHASH_ALPHABET,
};

/// Attempts of a last-write-wins write against concurrent writers.
const MOST_ATTEMPTS: usize = 16;

use crate::store::updated_millis as millis;

/// The `location_updated` entry of a location last updated at `at`.
fn updated_entry(at: Option<DateTime<Utc>>, id: &str) -> String {
    format!("{:013}{id}", millis(at))
}

/// The first entry at or after time `at`.
fn entry_floor(at: DateTime<Utc>) -> String {
    format!("{:013}", millis(Some(at)))
}

/// The id an entry names, when the record still sits at its time.
fn entry_id(entry: &str) -> Option<(u64, &str)> {
    let (at, id) = entry.split_at_checked(13)?;
    Some((at.parse().ok()?, id))
}

/// The area (partition) of a cell: its first 3 characters.
const AREA_CHARS: usize = 3;

/// The areas and cell ranges that hold the cells starting with `prefix`.
fn cell_ranges(prefix: &str) -> Vec<(String, String, String)> {
    if prefix.len() >= AREA_CHARS {
        let area = prefix[..AREA_CHARS].to_owned();
        return vec![(area, prefix.to_owned(), format!("{prefix}~"))];
    }
    GEOHASH_ALPHABET
        .chars()
        .flat_map(|next| cell_ranges(&format!("{prefix}{next}")))
        .collect()
}

impl ScyllaStore {
    /// Writes the place row of `location` (when it has one).
    async fn put_place(&self, location: &Location) -> StoreResult<()> {
        if let Some((cell, summary)) = location.place() {
            let values = (
                &cell[..AREA_CHARS],
                cell.as_str(),
                location.id.as_str(),
                summary.lat,
                summary.lon,
                to_json(&summary)?,
            );
            self.execute(&self.statements.cell_put, values).await?;
        }
        Ok(())
    }

    /// Writes the cities-filter row of `location` (when it has one).
    async fn put_city(&self, location: &Location) -> StoreResult<()> {
        if let Some((province, city)) = location.province_city() {
            let values = (province.as_str(), city.as_str(), location.id.as_str());
            self.execute(&self.statements.city_put, values).await?;
        }
        Ok(())
    }

    /// Removes the cities-filter row of `old` unless `new` keeps it.
    async fn drop_city(&self, old: &Location, new: Option<&Location>) -> StoreResult<()> {
        let Some(row) = old.province_city() else {
            return Ok(());
        };
        if new.and_then(Location::province_city).as_ref() == Some(&row) {
            return Ok(());
        }
        let values = (row.0.as_str(), row.1.as_str(), old.id.as_str());
        self.execute(&self.statements.city_delete, values).await?;
        Ok(())
    }

    /// Removes the place row of `old` unless `new` (None: deleted) keeps it.
    async fn drop_place(&self, old: &Location, new: Option<&Location>) -> StoreResult<()> {
        let Some((cell, _)) = old.place() else {
            return Ok(());
        };
        if new
            .and_then(Location::place)
            .is_some_and(|(kept, _)| kept == cell)
        {
            return Ok(());
        }
        let values = (&cell[..AREA_CHARS], cell.as_str(), old.id.as_str());
        self.execute(&self.statements.cell_delete, values).await?;
        Ok(())
    }

    async fn put_links(&self, location: &Location) -> StoreResult<()> {
        for (station, link) in location.links() {
            let values = (
                station.as_str(),
                link.location_id.as_str(),
                link.evse_uid.as_str(),
                link.ocpp_evse_id,
                link.ocpp_connector_id,
            );
            self.execute(&self.statements.evse_link_put, values).await?;
        }
        Ok(())
    }

    /// Removes the link rows of `old` that `new` (None: deleted) does not have.
    async fn drop_links(&self, old: &Location, new: Option<&Location>) -> StoreResult<()> {
        let kept = new.map(Location::links).unwrap_or_default();
        for (station, link) in old.links() {
            let still = kept
                .iter()
                .any(|(s, l)| *s == station && l.evse_uid == link.evse_uid);
            if !still {
                let values = (station.as_str(), old.id.as_str(), link.evse_uid.as_str());
                self.execute(&self.statements.evse_link_delete, values)
                    .await?;
            }
        }
        Ok(())
    }

    async fn find_template(&self, id: &str) -> StoreResult<Option<HardwareTemplate>> {
        self.row::<(String,)>(&self.statements.template_get, (id,))
            .await?
            .map(|(record,)| from_json(&record))
            .transpose()
    }

    async fn stored_location(&self, id: &str) -> StoreResult<Option<(Location, String)>> {
        let row = self
            .row::<(String,)>(&self.statements.location_get, (id,))
            .await?;
        row.map(|(record,)| Ok((from_json(&record)?, record)))
            .transpose()
    }

    /// One attempt of a conditional write: Ok(None) when another writer
    /// got in between the read and the write.
    async fn try_write(
        &self,
        location: &Location,
        record: &str,
        expect: &Expect,
    ) -> StoreResult<Option<LocationWrite>> {
        let current = self.stored_location(&location.id).await?;
        let current_tag = current.as_ref().map(|(_, bytes)| etag_of(bytes.as_bytes()));
        if !expect.allows(current_tag.as_deref()) {
            return Ok(Some(LocationWrite::Conflict(current_tag)));
        }
        let new_entry = updated_entry(location.last_updated, &location.id);
        let old_entry = current
            .as_ref()
            .map(|(old, _)| updated_entry(old.last_updated, &old.id));
        let directory = &self.statements.directory_insert;
        self.execute(directory, Kind::Location.row(&location.id))
            .await?;
        self.put_links(location).await?;
        self.put_place(location).await?;
        self.put_city(location).await?;
        self.execute(directory, Kind::LocationUpdated.row(&new_entry))
            .await?;
        if location.publish {
            self.execute(directory, Kind::LocationPublished.row(&new_entry))
                .await?;
        }
        let lwt = match &current {
            None => {
                self.lwt(
                    &self.statements.location_create,
                    (location.id.as_str(), record),
                )
                .await?
            }
            Some((_, old)) => {
                self.lwt(
                    &self.statements.location_replace,
                    (record, location.id.as_str(), old.as_str()),
                )
                .await?
            }
        };
        let directory_delete = &self.statements.directory_delete;
        if lwt.applied {
            if let Some((old, _)) = &current {
                self.drop_links(old, Some(location)).await?;
                self.drop_place(old, Some(location)).await?;
                self.drop_city(old, Some(location)).await?;
            }
            if let Some(old) = old_entry.filter(|old| *old != new_entry) {
                self.execute(directory_delete, Kind::LocationUpdated.row(&old))
                    .await?;
            }
            if let Some((old, _)) = &current {
                let old_published = updated_entry(old.last_updated, &old.id);
                if old.publish && (!location.publish || old_published != new_entry) {
                    self.execute(
                        directory_delete,
                        Kind::LocationPublished.row(&old_published),
                    )
                    .await?;
                }
            }
            return Ok(Some(LocationWrite::Written(etag_of(record.as_bytes()))));
        }
        // Another writer got in first: its entry stays, the one written
        // here goes unless it is the same.
        let winner = self.stored_location(&location.id).await?;
        let winner_record = winner.as_ref().map(|(w, _)| w);
        self.drop_place(location, winner_record).await?;
        self.drop_city(location, winner_record).await?;
        let winner_published = winner_record.is_some_and(|w| w.publish);
        let winner_entry = winner.map(|(w, _)| updated_entry(w.last_updated, &w.id));
        if winner_entry.as_ref() != Some(&new_entry) {
            self.execute(directory_delete, Kind::LocationUpdated.row(&new_entry))
                .await?;
        }
        if location.publish && (winner_entry.as_ref() != Some(&new_entry) || !winner_published) {
            self.execute(directory_delete, Kind::LocationPublished.row(&new_entry))
                .await?;
        }
        Ok(None)
    }
}

#[async_trait]
impl LocationStore for ScyllaStore {
    async fn location(&self, id: &str) -> StoreResult<Option<StoredLocation>> {
        self.call("location", async {
            Ok(self
                .stored_location(id)
                .await?
                .map(|(location, record)| StoredLocation {
                    location,
                    etag: etag_of(record.as_bytes()),
                }))
        })
        .await
    }

    async fn write_location(
        &self,
        location: Location,
        expect: Expect,
    ) -> StoreResult<LocationWrite> {
        self.call("write_location", async {
            let record = to_json(&location)?;
            for _ in 0..MOST_ATTEMPTS {
                if let Some(outcome) = self.try_write(&location, &record, &expect).await? {
                    return Ok(outcome);
                }
                if expect != Expect::Any {
                    // The version expected is gone: say which one is there.
                    let now = self.stored_location(&location.id).await?;
                    let tag = now.map(|(_, bytes)| etag_of(bytes.as_bytes()));
                    return Ok(LocationWrite::Conflict(tag));
                }
            }
            Err(StoreError::Backend(format!(
                "location {} changed under {MOST_ATTEMPTS} attempts to write it",
                location.id
            )))
        })
        .await
    }

    async fn delete_location(&self, id: &str, expect: Expect) -> StoreResult<LocationWrite> {
        self.call("delete_location", async {
            for _ in 0..MOST_ATTEMPTS {
                let Some((old, record)) = self.stored_location(id).await? else {
                    return Ok(LocationWrite::Conflict(None));
                };
                let tag = etag_of(record.as_bytes());
                if !expect.allows(Some(&tag)) {
                    return Ok(LocationWrite::Conflict(Some(tag)));
                }
                let lwt = self
                    .lwt(&self.statements.location_delete, (id, record.as_str()))
                    .await?;
                if lwt.applied {
                    let entry = updated_entry(old.last_updated, id);
                    let directory = &self.statements.directory_delete;
                    self.execute(directory, Kind::LocationUpdated.row(&entry))
                        .await?;
                    if old.publish {
                        self.execute(directory, Kind::LocationPublished.row(&entry))
                            .await?;
                    }
                    self.execute(directory, Kind::Location.row(id)).await?;
                    self.drop_links(&old, None).await?;
                    self.drop_place(&old, None).await?;
                    self.drop_city(&old, None).await?;
                    return Ok(LocationWrite::Written(String::new()));
                }
                if matches!(expect, Expect::Etag(_)) {
                    let now = self.stored_location(id).await?;
                    return Ok(LocationWrite::Conflict(
                        now.map(|(_, bytes)| etag_of(bytes.as_bytes())),
                    ));
                }
            }
            Err(StoreError::Backend(format!(
                "location {id} changed under {MOST_ATTEMPTS} attempts to delete it"
            )))
        })
        .await
    }

    async fn list_locations(&self, page: Page) -> StoreResult<Vec<Location>> {
        self.call("list_locations", async {
            self.list_records(Kind::Location, page, |key| async move {
                Ok(self
                    .stored_location(&key)
                    .await?
                    .map(|(location, _)| location))
            })
            .await
        })
        .await
    }

    async fn locations_updated(&self, window: UpdatedWindow) -> StoreResult<Vec<Location>> {
        self.call("locations_updated", async {
            let from = window.from.map(entry_floor);
            let after = window
                .after
                .as_ref()
                .map(|(at, id)| updated_entry(Some(*at), id));
            // Entries after the later of the two starting points ("0…0" is
            // after every entry of an earlier time).
            let start = match (from, after) {
                (Some(from), Some(after)) => Some(from.max(after)),
                (from, after) => after.or(from),
            };
            let end = window.to.map(entry_floor);
            let page = Page {
                after: start,
                offset: window.offset,
                limit: window.limit,
            };
            let end = &end;
            let kind = if window.published_only {
                Kind::LocationPublished
            } else {
                Kind::LocationUpdated
            };
            let published_only = window.published_only;
            let mut located = self
                .list_records(kind, page, |entry| async move {
                    if end.as_ref().is_some_and(|end| entry >= *end) {
                        // Past the window: every later entry is too.
                        return Ok(Some(None));
                    }
                    let Some((at, id)) = entry_id(&entry) else {
                        return Ok(None);
                    };
                    let found = self.stored_location(id).await?;
                    // An entry left behind by a crash names an older time.
                    Ok(found
                        .filter(|(location, _)| millis(location.last_updated) == at)
                        .filter(|(location, _)| location.publish || !published_only)
                        .map(|(location, _)| Some(location)))
                })
                .await?;
            // Cut at the first entry past the window.
            if let Some(past) = located.iter().position(Option::is_none) {
                located.truncate(past);
            }
            Ok(located.into_iter().flatten().collect())
        })
        .await
    }

    async fn evse_links(&self, station_id: &str) -> StoreResult<Vec<EvseLink>> {
        self.call("evse_links", async {
            let rows = self
                .rows::<(String, String, Option<i32>, Option<i32>)>(
                    &self.statements.evse_links_of,
                    (station_id,),
                )
                .await?;
            let mut links = Vec::with_capacity(rows.len());
            for (location_id, evse_uid, ocpp_evse_id, ocpp_connector_id) in rows {
                // A row left by a crash names a link its record no longer has.
                let record = self.stored_location(&location_id).await?;
                let current = record.is_some_and(|(location, _)| {
                    location.links().iter().any(|(station, link)| {
                        station == station_id
                            && link.evse_uid == evse_uid
                            && link.ocpp_evse_id == ocpp_evse_id
                            && link.ocpp_connector_id == ocpp_connector_id
                    })
                });
                if current {
                    links.push(EvseLink {
                        location_id,
                        evse_uid,
                        ocpp_evse_id,
                        ocpp_connector_id,
                    });
                }
            }
            Ok(links)
        })
        .await
    }

    async fn locations_near(
        &self,
        circle: Circle,
        prefixes: &[String],
    ) -> StoreResult<Vec<PlaceEntry>> {
        self.call("locations_near", async {
            let ranges: Vec<_> = prefixes.iter().flat_map(|p| cell_ranges(p)).collect();
            let reads = ranges.iter().map(|(area, from, to)| async move {
                let mut rows = Pages::<(String, String, f64, f64, String)>::new(
                    &self.statements.cells_between,
                    &(area.as_str(), from.as_str(), to.as_str()),
                    MOST_ROWS_PER_PAGE,
                )?;
                let mut found = Vec::new();
                while let Some((cell, location_id, lat, lon, summary)) = rows.next(self).await? {
                    if let Some(distance_km) = circle.distance_to(lat, lon) {
                        found.push(PlaceEntry {
                            location_id,
                            cell,
                            distance_km,
                            summary: from_json(&summary)?,
                        });
                    }
                }
                StoreResult::Ok(found)
            });
            let mut seen = std::collections::HashSet::new();
            let mut found = Vec::new();
            for entry in try_join_all(reads).await?.into_iter().flatten() {
                if seen.insert(entry.location_id.clone()) {
                    found.push(entry);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn cities_of_province(&self, province: &str) -> StoreResult<Vec<String>> {
        self.call("cities_of_province", async {
            let province = province.trim().to_lowercase();
            let mut cities: Vec<String> = Vec::new();
            loop {
                let after = cities.last().map_or("", String::as_str);
                let next = self
                    .row::<(String,)>(&self.statements.city_after, (province.as_str(), after))
                    .await?;
                match next {
                    Some((city,)) => cities.push(city),
                    None => return Ok(cities),
                }
            }
        })
        .await
    }

    async fn put_template(&self, template: HardwareTemplate) -> StoreResult<()> {
        self.call("put_template", async {
            let record = to_json(&template)?;
            self.batch(
                &self.statements.template_put,
                (
                    (template.id.as_str(), record),
                    Kind::Template.row(&template.id),
                ),
            )
            .await
        })
        .await
    }

    async fn template(&self, id: &str) -> StoreResult<Option<HardwareTemplate>> {
        self.call("template", self.find_template(id)).await
    }

    async fn list_templates(&self, page: Page) -> StoreResult<Vec<HardwareTemplate>> {
        self.call("list_templates", async {
            self.list_records(Kind::Template, page, |key| async move {
                self.find_template(&key).await
            })
            .await
        })
        .await
    }

    async fn count_locations_updated(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        published_only: bool,
    ) -> StoreResult<u64> {
        let kind = if published_only {
            Kind::LocationPublished
        } else {
            Kind::LocationUpdated
        };
        self.call("count_locations_updated", async {
            let from = from.map(entry_floor).unwrap_or_default();
            // '~' sorts after every digit: past every entry.
            let to = to.map(entry_floor).unwrap_or_else(|| "~".to_owned());
            let counts = (0..BUCKETS).map(|bucket| {
                let values = (kind.name(), bucket, from.as_str(), to.as_str());
                self.row::<(i64,)>(&self.statements.directory_count, values)
            });
            let counts = try_join_all(counts).await?;
            Ok(counts
                .into_iter()
                .flatten()
                .map(|(n,)| u64::try_from(n).unwrap_or(0))
                .sum())
        })
        .await
    }
}

/// Adds the `location_updated` (and `location_published`) entries of
/// locations written by a release without them (run at start; a no-op once
/// any entry of the kind exists; a keyspace whose locations are all
/// unpublished is read again at each start: rare, and linear).
pub(super) async fn index_existing(store: &ScyllaStore) -> StoreResult<u64> {
    let any = |kind: Kind| async move {
        let page = Page {
            after: None,
            offset: 0,
            limit: 1,
        };
        Ok::<_, StoreError>(!store.directory_page(kind, &page).await?.is_empty())
    };
    let needs_updated = !any(Kind::LocationUpdated).await?;
    let needs_published = !any(Kind::LocationPublished).await?;
    if !(needs_updated || needs_published) || !any(Kind::Location).await? {
        return Ok(0);
    }
    let mut indexed = 0;
    let mut page = Page {
        after: None,
        offset: 0,
        limit: 500,
    };
    loop {
        let ids = store.directory_page(Kind::Location, &page).await?;
        for id in &ids {
            let Some((location, _)) = store.stored_location(id).await? else {
                continue;
            };
            let entry = updated_entry(location.last_updated, id);
            let insert = &store.statements.directory_insert;
            if needs_updated {
                store.put_place(&location).await?;
                store.put_city(&location).await?;
                store
                    .execute(insert, Kind::LocationUpdated.row(&entry))
                    .await?;
                indexed += 1;
            }
            if needs_published && location.publish {
                store
                    .execute(insert, Kind::LocationPublished.row(&entry))
                    .await?;
            }
        }
        if ids.len() < page.limit as usize {
            return Ok(indexed);
        }
        page.after = ids.last().cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updated_entries_sort_by_time_then_id_and_read_back() {
        let at = |ms| DateTime::from_timestamp_millis(ms);
        let early = updated_entry(at(999), "Z");
        let late = updated_entry(at(1_000), "A");
        assert!(early < late);
        assert!(entry_floor(at(1_000).unwrap()) <= late);
        assert!(entry_floor(at(1_000).unwrap()) > early);
        assert_eq!(entry_id(&late), Some((1_000, "A")));
        assert!(late.as_str() < "~");
    }
}
