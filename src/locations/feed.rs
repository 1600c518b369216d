//! What a location change means for those who follow locations (OCPI
//! partners): a whole location to send again, only EVSE statuses that
//! moved (the live status path), or a location removed. Told apart here by
//! comparing the old and new records, so no writer has to say which kind
//! of change it made.

use async_trait::async_trait;

use crate::store::{Evse, EvseStatus, Location};

/// One change as followers see it.
#[derive(Debug, Clone, PartialEq)]
pub enum LocationChange {
    /// The location as it is now (created, replaced, merged).
    Put(Location),
    /// Only the status of these EVSEs moved (and their `last_updated`).
    EvseStatus(Location, Vec<Evse>),
    /// The location is gone: it is sent once more with every EVSE REMOVED.
    Removed(Location),
}

impl LocationChange {
    /// The location the change is about, as followers are to see it.
    pub fn location(&self) -> &Location {
        match self {
            LocationChange::Put(l)
            | LocationChange::EvseStatus(l, _)
            | LocationChange::Removed(l) => l,
        }
    }
}

/// Told of every location change once it is stored.
#[async_trait]
pub trait LocationFeed: Send + Sync {
    /// `change` was stored; `was_published`: the location was published
    /// before it (so an unpublishing is still told).
    async fn changed(&self, change: LocationChange, was_published: bool);
}

/// The change from `old` to `new` (None: a new location).
pub fn change_of(old: Option<&Location>, new: &Location) -> LocationChange {
    let Some(old) = old else {
        return LocationChange::Put(new.clone());
    };
    // The new record with the old EVSE statuses and stamps: equal to the
    // old one when nothing but statuses moved.
    let mut without_status = new.clone();
    without_status.last_updated = old.last_updated;
    let mut moved = Vec::new();
    if let Some(evses) = without_status.evses.as_mut() {
        for evse in evses.iter_mut() {
            let Some(before) = old.evses().iter().find(|e| e.uid == evse.uid) else {
                return LocationChange::Put(new.clone());
            };
            if evse.status != before.status {
                moved.push(evse.uid.clone());
            }
            evse.status = before.status;
            evse.last_updated = before.last_updated;
        }
    }
    if without_status != *old || moved.is_empty() {
        return LocationChange::Put(new.clone());
    }
    let evses = new
        .evses()
        .iter()
        .filter(|e| moved.contains(&e.uid))
        .cloned()
        .collect();
    LocationChange::EvseStatus(new.clone(), evses)
}

/// A deleted location as followers are to see it: every EVSE REMOVED.
pub fn removed(mut old: Location, now: chrono::DateTime<chrono::Utc>) -> LocationChange {
    let now = crate::store::ocpi_time::truncate(now);
    for evse in old.evses.iter_mut().flatten() {
        evse.status = EvseStatus::Removed;
        evse.last_updated = Some(now);
    }
    old.last_updated = Some(now);
    LocationChange::Removed(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locations::rules::tests::example;

    #[test]
    fn a_status_only_change_is_told_as_such() {
        let old = example("L1");
        let mut new = old.clone();
        let evse = &mut new.evses.as_mut().unwrap()[0];
        evse.status = EvseStatus::Charging;
        evse.last_updated = Some(chrono::Utc::now());
        new.last_updated = evse.last_updated;
        match change_of(Some(&old), &new) {
            LocationChange::EvseStatus(_, evses) => {
                assert_eq!(evses.len(), 1);
                assert_eq!(evses[0].status, EvseStatus::Charging);
            }
            other => panic!("{other:?}"),
        }
        // Any other change makes it a whole location.
        let mut renamed = new.clone();
        renamed.name = Some("Elsewhere".into());
        assert!(matches!(
            change_of(Some(&old), &renamed),
            LocationChange::Put(_)
        ));
        assert!(matches!(change_of(None, &new), LocationChange::Put(_)));
        assert!(matches!(
            change_of(Some(&old), &old),
            LocationChange::Put(_)
        ));
    }

    #[test]
    fn a_removed_location_has_every_evse_removed() {
        let LocationChange::Removed(gone) = removed(example("L1"), chrono::Utc::now()) else {
            panic!("not removed");
        };
        assert!(gone.evses().iter().all(|e| e.status == EvseStatus::Removed));
    }
}
