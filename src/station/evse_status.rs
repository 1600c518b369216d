//! What stations say about their connectors' availability, collected for
//! the locations whose EVSEs they are. Handlers and actors report here
//! without waiting; the locations side takes what was reported in batches.
//! Only the latest word per (station, EVSE, connector) is kept until taken,
//! so the board stays bounded by the fleet's connectors however fast they
//! report, and nothing is lost that still matters.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// Where on a station a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spot {
    /// The station.
    pub station: String,
    /// OCPP 2.0.1 EVSE id (None for 1.6 and for the whole station).
    pub evse: Option<i32>,
    /// Connector id (1.6: the connector; 2.0.1: within the EVSE).
    pub connector: Option<i32>,
}

/// What was seen there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The OCPP connector status (1.6 `status`, 2.0.1 `connectorStatus`).
    Status(String),
    /// The station's connection ended (spot names the station only).
    Disconnected,
}

/// The latest reports not yet taken.
#[derive(Debug, Default)]
pub struct StatusBoard {
    latest: Mutex<HashMap<Spot, (Seen, DateTime<Utc>)>>,
    changed: Notify,
}

impl StatusBoard {
    /// Records what was seen at `spot` at `at`; a newer report replaces an
    /// older one not taken yet.
    pub fn report(&self, spot: Spot, seen: Seen, at: DateTime<Utc>) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        latest.insert(spot, (seen, at));
        drop(latest);
        self.changed.notify_one();
    }

    /// Waits for reports and takes every one there is.
    pub async fn take(&self) -> Vec<(Spot, Seen, DateTime<Utc>)> {
        loop {
            {
                let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
                if !latest.is_empty() {
                    return latest
                        .drain()
                        .map(|(spot, (seen, at))| (spot, seen, at))
                        .collect();
                }
            }
            self.changed.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_latest_report_per_spot_is_taken() {
        let board = StatusBoard::default();
        let spot = Spot {
            station: "CS1".into(),
            evse: Some(1),
            connector: Some(1),
        };
        let at = Utc::now();
        board.report(spot.clone(), Seen::Status("Occupied".into()), at);
        board.report(spot.clone(), Seen::Status("Available".into()), at);
        let taken = board.take().await;
        assert_eq!(
            taken,
            [(spot.clone(), Seen::Status("Available".into()), at)]
        );
        let waiting = tokio::spawn(async move {
            board.report(spot, Seen::Disconnected, at);
            board.take().await.len()
        });
        assert_eq!(waiting.await.unwrap(), 1);
    }
}
