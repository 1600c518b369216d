//! Live EVSE status: what linked stations report (taken from the
//! [`StatusBoard`]) becomes the status of the EVSEs that name them, mapped
//! from OCPP to OCPI; a station gone longer than its heartbeat interval plus
//! a margin leaves its EVSEs UNKNOWN. A change bumps the EVSE's and the
//! location's `last_updated`; a report that changes nothing writes nothing.
//!
//! Which EVSE a report is for: an EVSE linked with `ocpp_evse_id` takes the
//! 2.0.1 reports of that EVSE; one linked with `ocpp_connector_id` takes the
//! 1.6 reports of that connector; one linked to the station alone takes
//! every report of the station (a station that is one EVSE). A 1.6 report
//! for connector 0 (the charge point itself) sets no EVSE.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::service::{Failure, Locations};
use crate::station::evse_status::{Seen, Spot, StatusBoard};
use crate::store::{EvseLink, EvseStatus, Page};
use crate::supervisor::Registry;

/// The OCPI status of an OCPP connector status (both versions' names).
pub fn ocpi_status(ocpp: &str) -> Option<EvseStatus> {
    Some(match ocpp {
        "Available" => EvseStatus::Available,
        "Occupied" | "Charging" | "Preparing" | "SuspendedEV" | "SuspendedEVSE" | "Finishing" => {
            EvseStatus::Charging
        }
        "Reserved" => EvseStatus::Reserved,
        "Unavailable" => EvseStatus::Inoperative,
        "Faulted" => EvseStatus::Outoforder,
        _ => return None,
    })
}

/// Whether a report at `spot` is about the EVSE of `link`.
pub fn concerns(link: &EvseLink, spot: &Spot) -> bool {
    match (link.ocpp_evse_id, link.ocpp_connector_id) {
        (Some(evse), _) => spot.evse == Some(evse),
        (None, Some(connector)) => spot.evse.is_none() && spot.connector == Some(connector),
        (None, None) => spot.evse.is_some() || spot.connector.is_some_and(|c| c != 0),
    }
}

/// Carries reports over to the locations until the board's owner drops it
/// (or aborts this task).
///
/// A start is treated as every station having just gone: after
/// `unknown_after`, the EVSEs of stations that did not come back are
/// UNKNOWN, so a status reported before a restart does not stay forever.
pub async fn run(
    board: Arc<StatusBoard>,
    locations: Locations,
    registry: Registry,
    unknown_after: Duration,
) {
    // The start's sweep and the absence checks run beside the reports, so
    // that a storm's worth of checks falling due does not hold up statuses.
    let mut background = tokio::task::JoinSet::new();
    background.spawn(sweep_absent(
        locations.clone(),
        registry.clone(),
        unknown_after,
    ));
    let mut absent = Absences::new(unknown_after);
    loop {
        let due = absent.next_due();
        tokio::select! {
            reports = board.take() => {
                for (spot, seen, at) in reports {
                    match seen {
                        Seen::Status(ocpp) => {
                            let Some(status) = ocpi_status(&ocpp) else {
                                continue;
                            };
                            set(&locations, &spot, status, at).await;
                        }
                        Seen::Disconnected => absent.gone(spot.station, Instant::now()),
                    }
                }
            }
            () = until(due) => {
                let stations = absent.take_due(Instant::now());
                let (locations, registry) = (locations.clone(), registry.clone());
                background.spawn(async move {
                    futures_util::stream::iter(stations)
                        .for_each_concurrent(ABSENCE_CHECKS_AT_ONCE, |station| {
                            unknown_unless_back(&locations, &registry, station)
                        })
                        .await;
                });
            }
        }
        while background.try_join_next().is_some() {}
    }
}

/// Absence checks (a registry lookup, and for a station still away its
/// EVSEs set UNKNOWN) run at once at most.
const ABSENCE_CHECKS_AT_ONCE: usize = 64;

/// Sleeps until `due`; forever without one.
async fn until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Stations gone, each with the time its EVSEs become UNKNOWN unless it is
/// back by then. One queue for all: the delay is the same for every
/// station, so the queue is in deadline order as it is filled. (A timer
/// task per disconnect held about 5 KiB per station for the whole delay,
/// 100 MB after a storm of 19,000.)
struct Absences {
    after: Duration,
    queue: VecDeque<(Instant, String)>,
}

impl Absences {
    fn new(after: Duration) -> Self {
        Absences {
            after,
            queue: VecDeque::new(),
        }
    }

    /// Station `station` disconnected at `now`.
    fn gone(&mut self, station: String, now: Instant) {
        self.queue.push_back((now + self.after, station));
    }

    /// When the next station's time is up.
    fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _)| *at)
    }

    /// The stations whose time is up at `now`, in the order they went.
    fn take_due(&mut self, now: Instant) -> Vec<String> {
        let due = self.queue.partition_point(|(at, _)| *at <= now);
        let stations = self
            .queue
            .drain(..due)
            .map(|(_, station)| station)
            .collect();
        if self.queue.is_empty() {
            // A storm's worth of room is not kept for ever.
            self.queue.shrink_to(64);
        }
        stations
    }
}

/// Leaves every EVSE of `station` UNKNOWN unless it is connected now.
async fn unknown_unless_back(locations: &Locations, registry: &Registry, station: String) {
    if registry.is_connected(&station).await {
        return;
    }
    let whole = Spot {
        station,
        evse: None,
        connector: None,
    };
    set(locations, &whole, EvseStatus::Unknown, Utc::now()).await;
}

/// After `unknown_after` from the start, leaves UNKNOWN the EVSEs of every
/// registered station that has not connected since (one pass over the
/// stations by key, a page at a time).
async fn sweep_absent(locations: Locations, registry: Registry, unknown_after: Duration) {
    tokio::time::sleep(unknown_after).await;
    let mut after = None;
    loop {
        let page = Page {
            offset: 0,
            limit: 500,
            after: after.take(),
        };
        let stations = match locations.store().list_stations(page).await {
            Ok(stations) => stations,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the stations whose EVSEs may be UNKNOWN");
                return;
            }
        };
        let Some(last) = stations.last() else {
            return;
        };
        after = Some(last.id.clone());
        for station in stations {
            unknown_unless_back(&locations, &registry, station.id).await;
        }
    }
}

/// Sets `status` on every EVSE the report at `spot` concerns (for a spot
/// naming only the station: all of its EVSEs).
async fn set(locations: &Locations, spot: &Spot, status: EvseStatus, at: DateTime<Utc>) {
    let whole_station = spot.evse.is_none() && spot.connector.is_none();
    let links = match locations.store().evse_links(&spot.station).await {
        Ok(links) => links,
        Err(e) => {
            tracing::warn!(error = %e, station = %spot.station, "cannot read the EVSEs a station is linked to");
            return;
        }
    };
    for link in links
        .iter()
        .filter(|link| whole_station || concerns(link, spot))
    {
        match locations
            .set_evse_status(&link.location_id, &link.evse_uid, status, at)
            .await
        {
            Ok(_) | Err(Failure::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(error = ?e, location = %link.location_id, evse = %link.evse_uid, "cannot set an EVSE's status");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(evse: Option<i32>, connector: Option<i32>) -> EvseLink {
        EvseLink {
            location_id: "L1".into(),
            evse_uid: "E1".into(),
            ocpp_evse_id: evse,
            ocpp_connector_id: connector,
        }
    }

    fn spot(evse: Option<i32>, connector: Option<i32>) -> Spot {
        Spot {
            station: "CS1".into(),
            evse,
            connector,
        }
    }

    #[test]
    fn absences_come_due_after_the_delay_in_order() {
        let start = Instant::now();
        let mut absent = Absences::new(Duration::from_secs(10));
        assert_eq!(absent.next_due(), None);
        absent.gone("CS1".into(), start);
        absent.gone("CS2".into(), start + Duration::from_secs(1));
        absent.gone("CS1".into(), start + Duration::from_secs(5));
        assert_eq!(absent.next_due(), Some(start + Duration::from_secs(10)));
        assert!(absent.take_due(start + Duration::from_secs(9)).is_empty());
        assert_eq!(
            absent.take_due(start + Duration::from_secs(11)),
            vec!["CS1".to_owned(), "CS2".to_owned()]
        );
        assert_eq!(absent.next_due(), Some(start + Duration::from_secs(15)));
        assert_eq!(
            absent.take_due(start + Duration::from_secs(15)),
            vec!["CS1".to_owned()]
        );
        assert_eq!(absent.next_due(), None);
    }

    #[test]
    fn ocpp_statuses_map_to_ocpi() {
        assert_eq!(ocpi_status("Available"), Some(EvseStatus::Available));
        for busy in [
            "Occupied",
            "Charging",
            "Preparing",
            "SuspendedEV",
            "SuspendedEVSE",
            "Finishing",
        ] {
            assert_eq!(ocpi_status(busy), Some(EvseStatus::Charging), "{busy}");
        }
        assert_eq!(ocpi_status("Reserved"), Some(EvseStatus::Reserved));
        assert_eq!(ocpi_status("Unavailable"), Some(EvseStatus::Inoperative));
        assert_eq!(ocpi_status("Faulted"), Some(EvseStatus::Outoforder));
        assert_eq!(ocpi_status("Exploded"), None);
    }

    #[test]
    fn a_report_concerns_the_evse_its_ids_name() {
        assert!(concerns(&link(Some(2), None), &spot(Some(2), Some(1))));
        assert!(!concerns(&link(Some(2), None), &spot(Some(1), Some(1))));
        assert!(concerns(&link(None, Some(3)), &spot(None, Some(3))));
        assert!(!concerns(&link(None, Some(3)), &spot(None, Some(1))));
        assert!(concerns(&link(None, None), &spot(Some(1), Some(1))));
        assert!(concerns(&link(None, None), &spot(None, Some(1))));
        assert!(
            !concerns(&link(None, None), &spot(None, Some(0))),
            "connector 0 is the charge point"
        );
    }
}
