//! Locations on redb: the records keyed by id (JSON, as before), and an
//! index keyed by (last_updated in ms, id) that the management API's
//! `date_from` listing seeks in, and one by (station, location, EVSE) of the
//! EVSEs that name a station. All change in one transaction, so the
//! indexes never disagree with the records. A conditional write compares the
//! entity tag of the stored bytes inside the write transaction.

use std::ops::Bound;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::{backend, decode, encode, get_one, list_page, put_one, RedbStore, LOCATIONS};
use crate::store::{
    etag_of, Circle, EvseLink, Expect, HardwareTemplate, Location, LocationStore, LocationWrite,
    Page, PlaceEntry, PlaceSummary, StoreResult, StoredLocation, UpdatedWindow,
};

/// (last_updated in ms since the epoch, location id) → nothing.
pub(crate) const LOCATIONS_BY_UPDATED: TableDefinition<(u64, &str), u8> =
    TableDefinition::new("locations_by_updated");

/// The same entries for published locations only: what OCPI partners page.
pub(crate) const PUBLISHED_BY_UPDATED: TableDefinition<(u64, &str), u8> =
    TableDefinition::new("published_by_updated");

/// (geohash cell, location id) → latitude and longitude (f64, little
/// endian) then the search summary (JSON): published locations by place.
pub(crate) const LOCATION_CELLS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("location_cells");

/// The stored value of a place: coordinates first, so a search skips the
/// summary of every entry outside its circle without decoding it.
fn place_value(summary: &PlaceSummary) -> StoreResult<Vec<u8>> {
    let mut value = Vec::with_capacity(128);
    value.extend_from_slice(&summary.lat.to_le_bytes());
    value.extend_from_slice(&summary.lon.to_le_bytes());
    value.extend_from_slice(&encode(summary)?);
    Ok(value)
}

/// The coordinates at the head of a place value.
fn place_degrees(value: &[u8]) -> Option<(f64, f64)> {
    let lat = f64::from_le_bytes(value.get(..8)?.try_into().ok()?);
    let lon = f64::from_le_bytes(value.get(8..16)?.try_into().ok()?);
    Some((lat, lon))
}

/// Hardware templates by id (JSON).
pub(crate) const TEMPLATES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("hardware_templates");

/// (province in lower case, city, location id) → nothing: the cities filter.
pub(crate) const PROVINCE_CITIES: TableDefinition<(&str, &str, &str), u8> =
    TableDefinition::new("province_cities");

/// (station id, location id, EVSE uid) → the OCPP ids of the link (JSON).
pub(crate) const EVSE_LINKS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("evse_links");

use crate::store::updated_millis as millis;

/// The index by `last_updated` of all locations or of the published ones.
fn by_updated(published_only: bool) -> TableDefinition<'static, (u64, &'static str), u8> {
    if published_only {
        PUBLISHED_BY_UPDATED
    } else {
        LOCATIONS_BY_UPDATED
    }
}

/// Fills the index from the records when a file of an older release has
/// locations and no index yet (run at open, in the opening transaction).
pub(super) fn index_existing(txn: &WriteTransaction) -> StoreResult<u64> {
    index_published(txn)?;
    let records = txn.open_table(LOCATIONS).map_err(backend)?;
    let by_time = txn.open_table(LOCATIONS_BY_UPDATED).map_err(backend)?;
    let cells = txn.open_table(LOCATION_CELLS).map_err(backend)?;
    let links = txn.open_table(EVSE_LINKS).map_err(backend)?;
    let cities = txn.open_table(PROVINCE_CITIES).map_err(backend)?;
    let unindexed = by_time.is_empty().map_err(backend)?
        && cells.is_empty().map_err(backend)?
        && links.is_empty().map_err(backend)?
        && cities.is_empty().map_err(backend)?;
    if !unindexed {
        return Ok(0);
    }
    drop((by_time, cells, links, cities));
    let mut indexed = 0;
    for entry in records.iter().map_err(backend)? {
        let (id, bytes) = entry.map_err(backend)?;
        let location: Location = decode(bytes.value())?;
        reindex(txn, id.value(), None, Some(&location))?;
        indexed += 1;
    }
    Ok(indexed)
}

/// Fills the index of published locations when a file of an older release
/// has locations and none in it (a file whose locations are all
/// unpublished is read again at each open: rare, and linear).
fn index_published(txn: &WriteTransaction) -> StoreResult<()> {
    let records = txn.open_table(LOCATIONS).map_err(backend)?;
    let mut published = txn.open_table(PUBLISHED_BY_UPDATED).map_err(backend)?;
    if !published.is_empty().map_err(backend)? {
        return Ok(());
    }
    for entry in records.iter().map_err(backend)? {
        let (id, bytes) = entry.map_err(backend)?;
        let location: Location = decode(bytes.value())?;
        if location.publish {
            published
                .insert((millis(location.last_updated), id.value()), 0)
                .map_err(backend)?;
        }
    }
    Ok(())
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

/// Moves the index entries of location `id` (by time, by station link)
/// from the old record's to the new one's (None: removes them).
fn reindex(
    txn: &WriteTransaction,
    id: &str,
    old: Option<&[u8]>,
    new: Option<&Location>,
) -> StoreResult<()> {
    let mut index = txn.open_table(LOCATIONS_BY_UPDATED).map_err(backend)?;
    let mut published = txn.open_table(PUBLISHED_BY_UPDATED).map_err(backend)?;
    let mut links = txn.open_table(EVSE_LINKS).map_err(backend)?;
    let mut cells = txn.open_table(LOCATION_CELLS).map_err(backend)?;
    let mut cities = txn.open_table(PROVINCE_CITIES).map_err(backend)?;
    if let Some(old) = old {
        let old: Location = decode(old)?;
        index
            .remove((millis(old.last_updated), id))
            .map_err(backend)?;
        published
            .remove((millis(old.last_updated), id))
            .map_err(backend)?;
        if let Some((cell, _)) = old.place() {
            cells.remove((cell.as_str(), id)).map_err(backend)?;
        }
        if let Some((province, city)) = old.province_city() {
            cities
                .remove((province.as_str(), city.as_str(), id))
                .map_err(backend)?;
        }
        for (station, link) in old.links() {
            links
                .remove((station.as_str(), id, link.evse_uid.as_str()))
                .map_err(backend)?;
        }
    }
    if let Some(new) = new {
        index
            .insert((millis(new.last_updated), id), 0)
            .map_err(backend)?;
        if new.publish {
            published
                .insert((millis(new.last_updated), id), 0)
                .map_err(backend)?;
        }
        if let Some((province, city)) = new.province_city() {
            cities
                .insert((province.as_str(), city.as_str(), id), 0)
                .map_err(backend)?;
        }
        if let Some((cell, summary)) = new.place() {
            let value = place_value(&summary)?;
            cells
                .insert((cell.as_str(), id), value.as_slice())
                .map_err(backend)?;
        }
        for (station, link) in new.links() {
            let bytes = encode(&link)?;
            links
                .insert(
                    (station.as_str(), id, link.evse_uid.as_str()),
                    bytes.as_slice(),
                )
                .map_err(backend)?;
        }
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
        self.write("write_location", move |txn| {
            let id = location.id.as_str();
            let current = current(txn, id)?;
            let current_tag = current.as_ref().map(|(_, tag)| tag.as_str());
            if !expect.allows(current_tag) {
                return Ok(LocationWrite::Conflict(current_tag.map(str::to_owned)));
            }
            let old = current.as_ref().map(|(b, _)| b.as_slice());
            reindex(txn, id, old, Some(&location))?;
            let mut records = txn.open_table(LOCATIONS).map_err(backend)?;
            records.insert(id, bytes.as_slice()).map_err(backend)?;
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
            let index = txn
                .open_table(by_updated(window.published_only))
                .map_err(backend)?;
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

    async fn evse_links(&self, station_id: &str) -> StoreResult<Vec<EvseLink>> {
        let station = station_id.to_owned();
        self.read_point("evse_links", move |txn| {
            let links = txn.open_table(EVSE_LINKS).map_err(backend)?;
            let mut out = Vec::new();
            let rows = links
                .range::<(&str, &str, &str)>((station.as_str(), "", "")..)
                .map_err(backend)?;
            for row in rows {
                let (key, value) = row.map_err(backend)?;
                if key.value().0 != station {
                    break;
                }
                out.push(decode(value.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn locations_near(
        &self,
        circle: Circle,
        prefixes: &[String],
    ) -> StoreResult<Vec<PlaceEntry>> {
        let prefixes = prefixes.to_vec();
        self.read("locations_near", move |txn| {
            let cells = txn.open_table(LOCATION_CELLS).map_err(backend)?;
            let mut found = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for prefix in &prefixes {
                let rows = cells
                    .range::<(&str, &str)>((prefix.as_str(), "")..)
                    .map_err(backend)?;
                for row in rows {
                    let (key, value) = row.map_err(backend)?;
                    let (cell, id) = key.value();
                    if !cell.starts_with(prefix.as_str()) {
                        break;
                    }
                    let value = value.value();
                    let Some((lat, lon)) = place_degrees(value) else {
                        continue;
                    };
                    let Some(distance_km) = circle.distance_to(lat, lon) else {
                        continue;
                    };
                    if seen.insert(id.to_owned()) {
                        found.push(PlaceEntry {
                            location_id: id.to_owned(),
                            cell: cell.to_owned(),
                            distance_km,
                            summary: decode(&value[16..])?,
                        });
                    }
                }
            }
            Ok(found)
        })
        .await
    }

    async fn cities_of_province(&self, province: &str) -> StoreResult<Vec<String>> {
        let province = province.trim().to_lowercase();
        self.read("cities_of_province", move |txn| {
            let table = txn.open_table(PROVINCE_CITIES).map_err(backend)?;
            let mut cities: Vec<String> = Vec::new();
            let rows = table
                .range::<(&str, &str, &str)>((province.as_str(), "", "")..)
                .map_err(backend)?;
            for row in rows {
                let (key, _) = row.map_err(backend)?;
                let (of, city, _) = key.value();
                if of != province {
                    break;
                }
                if cities.last().map(String::as_str) != Some(city) {
                    cities.push(city.to_owned());
                }
            }
            Ok(cities)
        })
        .await
    }

    async fn put_template(&self, template: HardwareTemplate) -> StoreResult<()> {
        self.write("put_template", move |txn| {
            put_one(txn, TEMPLATES, &template.id, &template)
        })
        .await
    }

    async fn template(&self, id: &str) -> StoreResult<Option<HardwareTemplate>> {
        let id = id.to_owned();
        self.read("template", move |txn| get_one(txn, TEMPLATES, &id))
            .await
    }

    async fn list_templates(&self, page: Page) -> StoreResult<Vec<HardwareTemplate>> {
        self.read("list_templates", move |txn| list_page(txn, TEMPLATES, page))
            .await
    }

    async fn count_locations_updated(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        published_only: bool,
    ) -> StoreResult<u64> {
        self.read("count_locations_updated", move |txn| {
            let index = txn
                .open_table(by_updated(published_only))
                .map_err(backend)?;
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
