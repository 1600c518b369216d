//! [`StationStore`] on redb: registrations and runtime state,
//! every row keyed by station id first so one station's rows sit together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};

use super::{
    backend, decode, encode, get_one, list_page, put_encoded, put_one, RedbStore, RUNTIME, STATIONS,
};
use crate::store::{
    ChargeStationAuth, Page, Provisioning, StationRecord, StationRuntime, StationStore, StoreError,
    StoreResult,
};

const STATION: &str = "charge station";

/// Fails with `NotFound` unless the station is registered (without
/// decoding its record).
pub(super) fn station_exists(txn: &WriteTransaction, id: &str) -> StoreResult<()> {
    let table = txn.open_table(STATIONS).map_err(backend)?;
    let found = table.get(id).map_err(backend)?.is_some();
    found.then_some(()).ok_or(StoreError::NotFound(STATION))
}

/// Fails with `NotFound` unless the station is registered.
pub(super) fn require_station(txn: &WriteTransaction, id: &str) -> StoreResult<StationRecord> {
    let table = txn.open_table(STATIONS).map_err(backend)?;
    let value = table.get(id).map_err(backend)?;
    match value {
        Some(v) => decode(v.value()),
        None => Err(StoreError::NotFound(STATION)),
    }
}

#[async_trait]
impl StationStore for RedbStore {
    async fn register_station(
        &self,
        id: &str,
        auth: ChargeStationAuth,
        now: DateTime<Utc>,
    ) -> StoreResult<StationRecord> {
        let id = id.to_owned();
        self.write("register_station", move |txn| {
            let existing = match require_station(txn, &id) {
                Ok(record) => Some(record),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            let record = match existing {
                Some(old) => StationRecord {
                    auth,
                    updated_at: now,
                    ..old
                },
                None => StationRecord {
                    id: id.clone(),
                    auth,
                    provisioning: Provisioning::Pending,
                    registered_at: now,
                    updated_at: now,
                },
            };
            put_one(txn, STATIONS, &id, &record)?;
            Ok(record)
        })
        .await
    }

    async fn station(&self, id: &str) -> StoreResult<Option<StationRecord>> {
        let id = id.to_owned();
        self.read_point("station", move |txn| get_one(txn, STATIONS, &id))
            .await
    }

    async fn list_stations(&self, page: Page) -> StoreResult<Vec<StationRecord>> {
        self.read("list_stations", move |txn| list_page(txn, STATIONS, page))
            .await
    }

    async fn set_provisioning(
        &self,
        id: &str,
        provisioning: Provisioning,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let id = id.to_owned();
        self.write("set_provisioning", move |txn| {
            let record = require_station(txn, &id)?;
            put_one(
                txn,
                STATIONS,
                &id,
                &StationRecord {
                    provisioning,
                    updated_at: now,
                    ..record
                },
            )
        })
        .await
    }

    async fn runtime(&self, id: &str) -> StoreResult<Option<StationRuntime>> {
        let id = id.to_owned();
        self.read_point("runtime", move |txn| get_one(txn, RUNTIME, &id))
            .await
    }

    async fn set_runtime(&self, id: &str, runtime: StationRuntime) -> StoreResult<()> {
        let id = id.to_owned();
        // Encoded here, on the caller's thread, not on the one writer's.
        let runtime = encode(&runtime)?;
        self.write("set_runtime", move |txn| {
            station_exists(txn, &id)?;
            put_encoded(txn, RUNTIME, &id, &runtime)
        })
        .await
    }
}
