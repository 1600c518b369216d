//! What can be done to locations, for every HTTP surface: create, replace,
//! merge, delete, and the same for one EVSE or connector, each checked by
//! [`rules`](super::rules) and stamped with `last_updated`. Every change
//! is a read-modify-write on the version read ([`Expect::Etag`]): with an
//! `If-Match` from the caller a stale version fails; without one the change
//! is applied again to the newer version, so two writers never lose each
//! other's change silently.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::feed::{change_of, removed, LocationChange, LocationFeed};
use super::payment_types::PaymentTypes;
use super::rules::{self, invalid, Invalid};
use crate::store::{
    ocpi_time, Connector, Evse, EvseStatus, Expect, Location, LocationWrite, Store, StoreError,
    StoredLocation,
};

/// Attempts of a change against concurrent writers before giving up.
const MOST_ATTEMPTS: usize = 32;

/// Why a change was not made.
#[derive(Debug)]
pub enum Failure {
    /// The input breaks a rule.
    Invalid(Invalid),
    /// No location (or EVSE, connector) with this id; the text names it.
    NotFound(String),
    /// A create for an id that exists.
    Exists(String),
    /// `If-Match` names a version that is no longer stored (its tag now).
    Stale(Option<String>),
    /// The store failed.
    Store(StoreError),
}

impl From<Invalid> for Failure {
    fn from(e: Invalid) -> Self {
        Failure::Invalid(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// A changed location: its new version and whether it was created.
#[derive(Debug)]
pub struct Changed {
    /// The stored record and its tag.
    pub stored: StoredLocation,
    /// True when there was no location with this id before.
    pub created: bool,
}

/// The location service.
#[derive(Clone)]
pub struct Locations {
    store: Arc<dyn Store>,
    payment_types: PaymentTypes,
    feed: Option<Arc<dyn LocationFeed>>,
}

impl Locations {
    /// Locations kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Locations {
            store,
            payment_types: PaymentTypes::default(),
            feed: None,
        }
    }

    /// These locations, telling `feed` of every change once it is stored.
    pub fn feeding(self, feed: Arc<dyn LocationFeed>) -> Self {
        Locations {
            feed: Some(feed),
            ..self
        }
    }

    async fn tell(&self, change: impl FnOnce() -> LocationChange, was_published: bool) {
        if let Some(feed) = &self.feed {
            feed.changed(change(), was_published).await;
        }
    }

    /// These locations, with EVSEs limited to `accepted` payment types.
    pub fn accepting(self, accepted: PaymentTypes) -> Self {
        Locations {
            payment_types: accepted,
            ..self
        }
    }

    /// The payment types EVSEs may carry (empty: any well-formed code).
    pub fn payment_types(&self) -> &PaymentTypes {
        &self.payment_types
    }

    /// The store the locations are kept in (for reads the service adds nothing to).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The location `id`.
    pub async fn get(&self, id: &str) -> Result<StoredLocation, Failure> {
        self.store
            .location(id)
            .await?
            .ok_or_else(|| Failure::NotFound(format!("location {id:?}")))
    }

    /// Creates `location`; an existing id is refused.
    pub async fn create(&self, location: Location, now: DateTime<Utc>) -> Result<Changed, Failure> {
        let id = location.id.clone();
        // change() refuses an existing id for Expect::Absent.
        self.change(&id, Some(Expect::Absent), now, |_| Ok(location.clone()))
            .await
    }

    /// Creates or replaces the location with `location` whole.
    pub async fn put(
        &self,
        location: Location,
        if_match: Option<Expect>,
        now: DateTime<Utc>,
    ) -> Result<Changed, Failure> {
        let id = location.id.clone();
        self.change(&id, if_match, now, |_| Ok(location.clone()))
            .await
    }

    /// Merges `patch` into the location: each field given replaces the
    /// stored one whole (null clears an optional one).
    pub async fn patch(
        &self,
        id: &str,
        patch: &Map<String, Value>,
        if_match: Option<Expect>,
        now: DateTime<Utc>,
    ) -> Result<Changed, Failure> {
        require_last_updated(patch)?;
        self.change(id, if_match, now, |current| {
            let current = existing(current, id)?;
            merge(current, patch, "id", id)
        })
        .await
    }

    /// Creates or replaces EVSE `uid` of location `id`.
    pub async fn put_evse(
        &self,
        id: &str,
        evse: Evse,
        if_match: Option<Expect>,
        now: DateTime<Utc>,
    ) -> Result<Changed, Failure> {
        self.change(id, if_match, now, |current| {
            let mut location = existing(current, id)?;
            let evses = location.evses.get_or_insert_with(Vec::new);
            match evses.iter_mut().find(|e| e.uid == evse.uid) {
                Some(stored) => *stored = evse.clone(),
                None => evses.push(evse.clone()),
            }
            Ok(location)
        })
        .await
    }

    /// Merges `patch` into EVSE `uid` of location `id`.
    pub async fn patch_evse(
        &self,
        id: &str,
        uid: &str,
        patch: &Map<String, Value>,
        if_match: Option<Expect>,
        now: DateTime<Utc>,
    ) -> Result<Changed, Failure> {
        require_last_updated(patch)?;
        self.change_evse(id, uid, if_match, now, |evse| {
            *evse = merge(evse.clone(), patch, "uid", uid)?;
            Ok(())
        })
        .await
    }

    /// Creates or replaces connector `connector.id` of EVSE `uid`.
    pub async fn put_connector(
        &self,
        id: &str,
        uid: &str,
        connector: Connector,
        if_match: Option<Expect>,
        now: DateTime<Utc>,
    ) -> Result<Changed, Failure> {
        self.change_evse(id, uid, if_match, now, |evse| {
            match evse.connectors.iter_mut().find(|c| c.id == connector.id) {
                Some(stored) => *stored = connector.clone(),
                None => evse.connectors.push(connector.clone()),
            }
            Ok(())
        })
        .await
    }

    /// Merges `patch` into connector `connector_id` of EVSE `uid`.
    pub async fn patch_connector(
        &self,
        id: &str,
        uid: &str,
        connector_id: &str,
        patch: &Map<String, Value>,
        if_match: Option<Expect>,
        now: DateTime<Utc>,
    ) -> Result<Changed, Failure> {
        require_last_updated(patch)?;
        self.change_evse(id, uid, if_match, now, |evse| {
            let connector = evse
                .connectors
                .iter_mut()
                .find(|c| c.id == connector_id)
                .ok_or_else(|| {
                    Failure::NotFound(format!("connector {connector_id:?} of EVSE {uid:?}"))
                })?;
            *connector = merge(connector.clone(), patch, "id", connector_id)?;
            Ok(())
        })
        .await
    }

    /// Sets the status of EVSE `uid` as its station reported it; nothing is
    /// written when it already has that status. True when it changed.
    pub async fn set_evse_status(
        &self,
        id: &str,
        uid: &str,
        status: EvseStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, Failure> {
        let stored = self.get(id).await?;
        let current = stored.location.evses().iter().find(|e| e.uid == uid);
        if current.is_none_or(|evse| evse.status == status) {
            return Ok(false);
        }
        self.change_evse(id, uid, None, now, |evse| {
            evse.status = status;
            Ok(())
        })
        .await?;
        Ok(true)
    }

    /// Creates or updates a location from an import: its fields from
    /// `imported` (what an import does not carry is kept), the EVSEs it
    /// names replace those of the same uid (keeping their live status), the
    /// others stay.
    pub async fn import(&self, imported: Location, now: DateTime<Utc>) -> Result<Changed, Failure> {
        let id = imported.id.clone();
        self.change(&id, None, now, |current| {
            let mut evses = current
                .as_ref()
                .map(|c| c.evses().to_vec())
                .unwrap_or_default();
            for evse in imported.evses() {
                match evses.iter_mut().find(|e| e.uid == evse.uid) {
                    Some(stored) => {
                        *stored = Evse {
                            status: stored.status,
                            ..evse.clone()
                        }
                    }
                    None => evses.push(evse.clone()),
                }
            }
            let kept = current.unwrap_or_else(|| imported.clone());
            Ok(Location {
                evses: Some(evses),
                publish: kept.publish,
                state: kept.state,
                parking_type: kept.parking_type,
                operator: kept.operator,
                owner: kept.owner,
                opening_times: kept.opening_times,
                charging_when_closed: kept.charging_when_closed,
                images: kept.images,
                ..imported.clone()
            })
        })
        .await
    }

    /// Deletes the location. What followers are told is the version
    /// deleted, so without If-Match the delete is made on the version read
    /// (and read again when it changed in between: the last write wins).
    pub async fn delete(&self, id: &str, if_match: Option<Expect>) -> Result<(), Failure> {
        for _ in 0..MOST_ATTEMPTS {
            let old = self.store.location(id).await?;
            let expect = match (&if_match, &old) {
                (Some(expect), _) => expect.clone(),
                (None, Some(stored)) => Expect::Etag(stored.etag.clone()),
                (None, None) => return Err(Failure::NotFound(format!("location {id:?}"))),
            };
            match self.store.delete_location(id, expect).await? {
                LocationWrite::Written(_) => {
                    if let Some(old) = old {
                        let was_published = old.location.publish;
                        self.tell(|| removed(old.location, Utc::now()), was_published)
                            .await;
                    }
                    return Ok(());
                }
                LocationWrite::Conflict(None) => {
                    return Err(Failure::NotFound(format!("location {id:?}")))
                }
                LocationWrite::Conflict(current) if if_match.is_some() => {
                    return Err(Failure::Stale(current))
                }
                LocationWrite::Conflict(_) => continue,
            }
        }
        Err(Failure::Store(StoreError::Backend(format!(
            "location {id} changed under {MOST_ATTEMPTS} attempts to delete it"
        ))))
    }

    /// A change of EVSE `uid` of location `id` (both must exist).
    async fn change_evse<F>(
        &self,
        id: &str,
        uid: &str,
        if_match: Option<Expect>,
        now: DateTime<Utc>,
        apply: F,
    ) -> Result<Changed, Failure>
    where
        F: Fn(&mut Evse) -> Result<(), Failure>,
    {
        self.change(id, if_match, now, |current| {
            let mut location = existing(current, id)?;
            apply(evse_mut(&mut location, id, uid)?)?;
            Ok(location)
        })
        .await
    }

    /// The read-modify-write every change is: `apply` makes the new record
    /// from the stored one (None: absent); it is checked, stamped and
    /// written on the version read. `if_match` fixes the version: a
    /// different one fails as `Stale` instead of being read again.
    pub(super) async fn change<F>(
        &self,
        id: &str,
        if_match: Option<Expect>,
        now: DateTime<Utc>,
        apply: F,
    ) -> Result<Changed, Failure>
    where
        F: Fn(Option<Location>) -> Result<Location, Failure>,
    {
        rules::id("id", id)?;
        let now = ocpi_time::truncate(now);
        for _ in 0..MOST_ATTEMPTS {
            let current = self.store.location(id).await?;
            let tag = current.as_ref().map(|c| c.etag.clone());
            let expect = match &if_match {
                Some(Expect::Etag(wanted)) if tag.as_ref() != Some(wanted) => {
                    return Err(Failure::Stale(tag));
                }
                Some(Expect::Absent) if current.is_some() => {
                    return Err(Failure::Exists(format!(
                        "location {id:?} exists; PUT replaces it"
                    )));
                }
                _ => tag.map_or(Expect::Absent, Expect::Etag),
            };
            let old = current.map(|c| c.location);
            let mut new = apply(old.clone())?;
            if new.id.is_empty() {
                new.id = id.to_owned();
            } else if new.id != id {
                return Err(invalid(
                    "id",
                    format!("{:?} differs from the id in the path", new.id),
                )
                .into());
            }
            rules::location(&new)?;
            self.payment_types.check(new.evses())?;
            // Links are checked when they change: a link that went stale
            // since (the station reported other ids) must not block, say,
            // the status updates of the location's other EVSEs.
            if old.as_ref().map(Location::links) != Some(new.links()) {
                self.check_links(&new).await?;
            }
            stamp(&mut new, old.as_ref(), now);
            let created = old.is_none();
            match self.store.write_location(new.clone(), expect).await? {
                LocationWrite::Written(etag) => {
                    let was_published = old.as_ref().is_some_and(|o| o.publish);
                    self.tell(|| change_of(old.as_ref(), &new), was_published)
                        .await;
                    return Ok(Changed {
                        stored: StoredLocation {
                            location: new,
                            etag,
                        },
                        created,
                    });
                }
                // Changed since read: with If-Match the caller must see it,
                // without it the change is made again on the newer version.
                LocationWrite::Conflict(now_there) if if_match.is_some() => {
                    return Err(match (&if_match, now_there) {
                        (Some(Expect::Absent), Some(_)) => {
                            Failure::Exists(format!("location {id:?} exists; PUT replaces it"))
                        }
                        (_, now_there) => Failure::Stale(now_there),
                    })
                }
                LocationWrite::Conflict(_) => continue,
            }
        }
        Err(Failure::Store(StoreError::Backend(format!(
            "location {id} changed under {MOST_ATTEMPTS} attempts to change it"
        ))))
    }

    /// Every EVSE linked to a station names a registered one.
    async fn check_links(&self, location: &Location) -> Result<(), Failure> {
        for (i, evse) in location.evses().iter().enumerate() {
            let Some(station) = &evse.station_id else {
                continue;
            };
            if self.store.station(station).await?.is_none() {
                return Err(invalid(
                    format!("evses[{i}].station_id"),
                    format!("no charge station {station:?} is registered"),
                )
                .into());
            }
            let reported = self.store.runtime(station).await?.unwrap_or_default();
            if let Some((field, why)) = unknown_connector(evse, &reported.connectors) {
                return Err(invalid(format!("evses[{i}].{field}"), why).into());
            }
        }
        Ok(())
    }
}

/// Why an EVSE's OCPP ids name nothing its station has reported, if so.
/// `reported` are the station's connector statuses by "evse/connector"
/// (2.0.1) or connector id (1.6); a station that reported none yet may
/// have anything.
fn unknown_connector(
    evse: &Evse,
    reported: &std::collections::BTreeMap<String, crate::store::ConnectorStatus>,
) -> Option<(&'static str, String)> {
    if reported.is_empty() {
        return None;
    }
    let station = evse.station_id.as_deref().unwrap_or_default();
    if let Some(id) = evse.ocpp_evse_id {
        let prefix = format!("{id}/");
        if !reported.keys().any(|k| k.starts_with(&prefix)) {
            return Some((
                "ocpp_evse_id",
                format!("charge station {station:?} has reported no EVSE {id}"),
            ));
        }
    }
    if let Some(id) = evse.ocpp_connector_id {
        if !reported.contains_key(&id.to_string()) {
            return Some((
                "ocpp_connector_id",
                format!("charge station {station:?} has reported no connector {id}"),
            ));
        }
    }
    None
}

/// The stored location a change of a part of it needs.
fn existing(current: Option<Location>, id: &str) -> Result<Location, Failure> {
    current.ok_or_else(|| Failure::NotFound(format!("location {id:?}")))
}

/// OCPI requires `last_updated` in a PATCH (voltgate stamps its own clock).
fn require_last_updated(patch: &Map<String, Value>) -> Result<(), Invalid> {
    match patch.get("last_updated") {
        Some(Value::String(_)) => Ok(()),
        _ => Err(invalid(
            "last_updated",
            "a PATCH must carry last_updated (OCPI)",
        )),
    }
}

fn evse_mut<'a>(location: &'a mut Location, id: &str, uid: &str) -> Result<&'a mut Evse, Failure> {
    location
        .evses
        .iter_mut()
        .flatten()
        .find(|e| e.uid == uid)
        .ok_or_else(|| Failure::NotFound(format!("EVSE {uid:?} of location {id:?}")))
}

/// `record` with each field of `patch` replacing its own whole; the key
/// `key_field` may only repeat `key`.
fn merge<T>(record: T, patch: &Map<String, Value>, key_field: &str, key: &str) -> Result<T, Failure>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let Value::Object(mut fields) = serde_json::to_value(record)
        .map_err(|e| Failure::Store(StoreError::Backend(format!("cannot encode record: {e}"))))?
    else {
        return Err(Failure::Store(StoreError::Backend(
            "record is not an object".into(),
        )));
    };
    for (name, value) in patch {
        if name == "last_updated" {
            continue;
        }
        if name == key_field && value.as_str() != Some(key) {
            return Err(invalid(
                name.as_str(),
                format!("cannot change; it is {key:?} in the path"),
            )
            .into());
        }
        if value.is_null() {
            fields.remove(name);
        } else {
            fields.insert(name.clone(), value.clone());
        }
    }
    Ok(rules::decode(Value::Object(fields))?)
}

/// Sets `last_updated` to `now` on the location and on each EVSE and
/// connector that is new or changed; the others keep their own.
fn stamp(new: &mut Location, old: Option<&Location>, now: DateTime<Utc>) {
    new.last_updated = Some(now);
    let old_evses = old.map(Location::evses).unwrap_or_default();
    for evse in new.evses.iter_mut().flatten() {
        let before = old_evses.iter().find(|e| e.uid == evse.uid);
        for connector in &mut evse.connectors {
            let was = before.and_then(|b| b.connectors.iter().find(|c| c.id == connector.id));
            connector.last_updated = match was {
                Some(was) if same_connector(was, connector) => was.last_updated.or(Some(now)),
                _ => Some(now),
            };
        }
        evse.last_updated = match before {
            Some(before) if same_evse(before, evse) => before.last_updated.or(Some(now)),
            _ => Some(now),
        };
    }
}

fn same_connector(a: &Connector, b: &Connector) -> bool {
    Connector {
        last_updated: None,
        ..a.clone()
    } == Connector {
        last_updated: None,
        ..b.clone()
    }
}

fn same_evse(a: &Evse, b: &Evse) -> bool {
    let bare = |e: &Evse| Evse {
        last_updated: None,
        connectors: e
            .connectors
            .iter()
            .map(|c| Connector {
                last_updated: None,
                ..c.clone()
            })
            .collect(),
        ..e.clone()
    };
    bare(a) == bare(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locations::rules::tests::example;
    use serde_json::json;

    #[test]
    fn a_merge_replaces_given_fields_whole_and_clears_nulls() {
        let location = example("L1");
        let patch =
            json!({"name": null, "facilities": ["CAFE"], "last_updated": "2026-12-01T00:00:00Z"});
        let merged = merge(location, patch.as_object().unwrap(), "id", "L1").unwrap();
        assert_eq!(merged.name, None);
        assert_eq!(merged.facilities.as_ref().map(Vec::len), Some(1));
        assert_eq!(merged.evses().len(), 1, "fields not given stay");
    }

    #[test]
    fn a_merge_names_the_field_that_does_not_fit() {
        let patch = json!({"parking_type": "ON_THE_MOON", "last_updated": "x"});
        let Err(Failure::Invalid(e)) = merge(example("L1"), patch.as_object().unwrap(), "id", "L1")
        else {
            panic!("an unknown enum value is refused");
        };
        assert_eq!(e.field, "parking_type");
        let patch = json!({"id": "L2"});
        assert!(merge(example("L1"), patch.as_object().unwrap(), "id", "L1").is_err());
        assert!(require_last_updated(json!({"name": "x"}).as_object().unwrap()).is_err());
    }

    #[test]
    fn only_what_changed_gets_a_new_time() {
        let t0 = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let t1 = DateTime::from_timestamp(1_790_000_100, 0).unwrap();
        let mut first = example("L1");
        stamp(&mut first, None, t0);
        let mut second = first.clone();
        second.evses.as_mut().unwrap()[0].connectors[1].max_amperage = 100;
        stamp(&mut second, Some(&first), t1);
        let evse = &second.evses()[0];
        assert_eq!(second.last_updated, Some(t1));
        assert_eq!(evse.last_updated, Some(t1));
        assert_eq!(
            evse.connectors[0].last_updated,
            Some(t0),
            "unchanged connector keeps its time"
        );
        assert_eq!(evse.connectors[1].last_updated, Some(t1));
    }
}
