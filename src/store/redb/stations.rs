//! [`StationStore`] on redb: registrations, queued work and runtime state,
//! every row keyed by station id first so one station's rows sit together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;

use super::{
    backend, decode, encode, get_one, list_page, put_one, Bytes, RedbStore, CHARGING_PROFILES,
    INSTALL_CERTIFICATES, RUNTIME, SETTINGS, STATIONS, TRIGGERS,
};
use crate::store::{
    pending_settings, requested_certificates, ChargeStationAuth, ChargingProfileRecord, Delivery,
    InstallCertificateRecord, NewChargingProfile, NewInstallCertificate, NewTrigger, Page,
    PendingWork, Provisioning, SettingRecord, StationRecord, StationRuntime, StationStore,
    StoreError, StoreResult, TriggerRecord, WorkItemRef,
};

const STATION: &str = "charge station";

/// Fails with `NotFound` unless the station is registered.
pub(super) fn require_station(txn: &WriteTransaction, id: &str) -> StoreResult<StationRecord> {
    let table = txn.open_table(STATIONS).map_err(backend)?;
    let value = table.get(id).map_err(backend)?;
    match value {
        Some(v) => decode(v.value()),
        None => Err(StoreError::NotFound(STATION)),
    }
}

/// All values of a `(station, K)` table for one station, in key order.
fn station_rows<K, T>(
    txn: &ReadTransaction,
    table: TableDefinition<'static, (&'static str, K), Bytes>,
    id: &str,
    first: K,
    last: K,
) -> StoreResult<Vec<T>>
where
    K: redb::Key + 'static,
    for<'a> K: redb::Value<SelfType<'a> = K>,
    T: DeserializeOwned,
{
    let table = txn.open_table(table).map_err(backend)?;
    let mut out = Vec::new();
    for entry in table.range((id, first)..=(id, last)).map_err(backend)? {
        let (_, value) = entry.map_err(backend)?;
        out.push(decode(value.value())?);
    }
    Ok(out)
}

/// All values of a `(station, &str)` table for one station, in key order.
fn station_rows_by_name<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<'static, (&'static str, &'static str), Bytes>,
    id: &str,
) -> StoreResult<Vec<T>> {
    let table = txn.open_table(table).map_err(backend)?;
    let mut out = Vec::new();
    // Strings have no greatest value, so scan from the station's first key
    // until the station id changes.
    for entry in table.range((id, "")..).map_err(backend)? {
        let (key, value) = entry.map_err(backend)?;
        if key.value().0 != id {
            break;
        }
        out.push(decode(value.value())?);
    }
    Ok(out)
}

/// Rewrites the delivery of one stored item of `$record` type in `$table`
/// under `$key`; `NotFound` when it is absent. (A macro: redb's borrowed
/// tuple keys do not generalise well over key types.)
macro_rules! update_delivery {
    ($txn:expr, $table:expr, $key:expr, $delivery:expr, $record:ty) => {{
        let mut table = $txn.open_table($table).map_err(backend)?;
        let found = table
            .get($key)
            .map_err(backend)?
            .map(|v| decode::<$record>(v.value()));
        let mut record = match found {
            Some(record) => record?,
            None => return Err(StoreError::NotFound("queued item")),
        };
        record.delivery = $delivery;
        let bytes = encode(&record)?;
        table.insert($key, bytes.as_slice()).map_err(backend)?;
        Ok(())
    }};
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
        self.read("station", move |txn| get_one(txn, STATIONS, &id))
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

    async fn add_settings(
        &self,
        id: &str,
        settings: Vec<(String, String)>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SettingRecord>> {
        let id = id.to_owned();
        self.write("add_settings", move |txn| {
            require_station(txn, &id)?;
            let mut table = txn.open_table(SETTINGS).map_err(backend)?;
            let records = pending_settings(settings, now);
            for record in &records {
                let bytes = encode(record)?;
                table
                    .insert((id.as_str(), record.key.as_str()), bytes.as_slice())
                    .map_err(backend)?;
            }
            Ok(records)
        })
        .await
    }

    async fn add_install_certificates(
        &self,
        id: &str,
        certificates: Vec<NewInstallCertificate>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<InstallCertificateRecord>> {
        let id = id.to_owned();
        self.write("add_install_certificates", move |txn| {
            require_station(txn, &id)?;
            let mut table = txn.open_table(INSTALL_CERTIFICATES).map_err(backend)?;
            let records = requested_certificates(certificates, now);
            for record in &records {
                let bytes = encode(record)?;
                table
                    .insert(
                        (id.as_str(), record.certificate_id.as_str()),
                        bytes.as_slice(),
                    )
                    .map_err(backend)?;
            }
            Ok(records)
        })
        .await
    }

    async fn add_trigger(
        &self,
        id: &str,
        trigger: NewTrigger,
        now: DateTime<Utc>,
    ) -> StoreResult<TriggerRecord> {
        let id = id.to_owned();
        self.write("add_trigger", move |txn| {
            require_station(txn, &id)?;
            let mut table = txn.open_table(TRIGGERS).map_err(backend)?;
            let last = table
                .range((id.as_str(), 0)..=(id.as_str(), u64::MAX))
                .map_err(backend)?
                .next_back()
                .transpose()
                .map_err(backend)?
                .map(|(key, _)| key.value().1)
                .unwrap_or(0);
            let record = TriggerRecord {
                seq: last + 1,
                trigger: trigger.message,
                evse_id: trigger.evse_id,
                connector_id: trigger.connector_id,
                delivery: Delivery::pending(now),
            };
            let bytes = encode(&record)?;
            table
                .insert((id.as_str(), record.seq), bytes.as_slice())
                .map_err(backend)?;
            Ok(record)
        })
        .await
    }

    async fn set_charging_profile(
        &self,
        id: &str,
        profile: NewChargingProfile,
        now: DateTime<Utc>,
    ) -> StoreResult<ChargingProfileRecord> {
        let id = id.to_owned();
        self.write("set_charging_profile", move |txn| {
            require_station(txn, &id)?;
            let record = ChargingProfileRecord {
                profile_id: profile.profile_id,
                evse_id: profile.evse_id,
                profile: profile.profile,
                delivery: Delivery::pending(now),
            };
            let bytes = encode(&record)?;
            let mut table = txn.open_table(CHARGING_PROFILES).map_err(backend)?;
            table
                .insert((id.as_str(), record.profile_id), bytes.as_slice())
                .map_err(backend)?;
            Ok(record)
        })
        .await
    }

    async fn pending_work(&self, id: &str) -> StoreResult<PendingWork> {
        let id = id.to_owned();
        self.read("pending_work", move |txn| {
            Ok(PendingWork {
                settings: station_rows_by_name(txn, SETTINGS, &id)?,
                certificates: station_rows_by_name(txn, INSTALL_CERTIFICATES, &id)?,
                triggers: station_rows(txn, TRIGGERS, &id, 0, u64::MAX)?,
                charging_profiles: station_rows(txn, CHARGING_PROFILES, &id, i64::MIN, i64::MAX)?,
            })
        })
        .await
    }

    async fn set_delivery(
        &self,
        id: &str,
        item: WorkItemRef,
        delivery: Delivery,
    ) -> StoreResult<()> {
        let id = id.to_owned();
        self.write("set_delivery", move |txn| {
            require_station(txn, &id)?;
            let id = id.as_str();
            match &item {
                WorkItemRef::Setting(key) => {
                    update_delivery!(txn, SETTINGS, (id, key.as_str()), delivery, SettingRecord)
                }
                WorkItemRef::Certificate(cert) => update_delivery!(
                    txn,
                    INSTALL_CERTIFICATES,
                    (id, cert.as_str()),
                    delivery,
                    InstallCertificateRecord
                ),
                WorkItemRef::Trigger(seq) => {
                    update_delivery!(txn, TRIGGERS, (id, *seq), delivery, TriggerRecord)
                }
                WorkItemRef::ChargingProfile(profile) => update_delivery!(
                    txn,
                    CHARGING_PROFILES,
                    (id, *profile),
                    delivery,
                    ChargingProfileRecord
                ),
            }
        })
        .await
    }

    async fn runtime(&self, id: &str) -> StoreResult<Option<StationRuntime>> {
        let id = id.to_owned();
        self.read("runtime", move |txn| get_one(txn, RUNTIME, &id))
            .await
    }

    async fn set_runtime(&self, id: &str, runtime: StationRuntime) -> StoreResult<()> {
        let id = id.to_owned();
        self.write("set_runtime", move |txn| {
            require_station(txn, &id)?;
            put_one(txn, RUNTIME, &id, &runtime)
        })
        .await
    }
}
