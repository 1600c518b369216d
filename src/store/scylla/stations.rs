//! [`StationStore`] on ScyllaDB: registrations (LWT), the station directory,
//! runtime state.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scylla::value::CqlTimestamp;

use super::directory::Kind;
use super::retry::until_won;
use super::{from_json, name_of, parse_name, stored_time, time, timestamp, to_json, ScyllaStore};
use crate::store::{
    ChargeStationAuth, Page, Provisioning, SecurityProfile, StationRecord, StationRuntime,
    StationStore, StoreError, StoreResult,
};

const STATION: &str = "charge station";

/// The columns of `station_get`.
type StationRow = (
    String,
    i8,
    Option<String>,
    bool,
    String,
    CqlTimestamp,
    CqlTimestamp,
);

fn station_from(row: StationRow) -> StoreResult<StationRecord> {
    let (id, profile, password, invalid_username_allowed, provisioning, registered, updated) = row;
    Ok(StationRecord {
        id,
        auth: ChargeStationAuth {
            security_profile: SecurityProfile::try_from(i64::from(profile))
                .map_err(StoreError::Backend)?,
            base64_sha256_password: password,
            invalid_username_allowed,
        },
        provisioning: parse_name(provisioning)?,
        registered_at: time(registered)?,
        updated_at: time(updated)?,
    })
}

fn profile_number(auth: &ChargeStationAuth) -> i8 {
    u8::from(auth.security_profile) as i8
}

fn not_found_unless_applied(applied: bool, what: &'static str) -> StoreResult<()> {
    if applied {
        Ok(())
    } else {
        Err(StoreError::NotFound(what))
    }
}

impl ScyllaStore {
    async fn find_station(&self, id: &str) -> StoreResult<Option<StationRecord>> {
        let found = self
            .row::<StationRow>(&self.statements.station_get, (id,))
            .await?
            .map(station_from)
            .transpose()?;
        if found.is_some() {
            self.registered_stations.learn(id.to_owned());
        }
        Ok(found)
    }

    /// Fails with `NotFound` unless the station is registered. Stations are
    /// never removed, so one this node has seen registered needs no read:
    /// a runtime write or a new command then costs one round trip, not two.
    pub(super) async fn ensure_registered(&self, id: &str) -> StoreResult<()> {
        let found = async { Ok(self.find_station(id).await?.is_some()) };
        self.registered_stations
            .confirm(id.to_owned(), found, StoreError::NotFound(STATION))
            .await
    }

    /// Registration as a loop: create if absent, else replace credentials;
    /// a lost race (created or removed in between) goes around again.
    async fn register(
        &self,
        id: &str,
        auth: &ChargeStationAuth,
        now: DateTime<Utc>,
    ) -> StoreResult<StationRecord> {
        let now = stored_time(now);
        let pending = name_of(&Provisioning::Pending)?;
        until_won("station registration", || async {
            let created = self
                .lwt(
                    &self.statements.station_insert,
                    (
                        id,
                        profile_number(auth),
                        auth.base64_sha256_password.as_deref(),
                        auth.invalid_username_allowed,
                        pending.as_str(),
                        timestamp(now),
                        timestamp(now),
                    ),
                )
                .await?;
            if created.applied {
                return Ok(Some(StationRecord {
                    id: id.to_owned(),
                    auth: auth.clone(),
                    provisioning: Provisioning::Pending,
                    registered_at: now,
                    updated_at: now,
                }));
            }
            let provisioning = created.column("provisioning").and_then(|v| v.as_text());
            let registered = created
                .column("registered_at")
                .and_then(|v| v.as_cql_timestamp());
            let (Some(provisioning), Some(registered)) = (provisioning, registered) else {
                return Err(StoreError::Backend(
                    "registration LWT did not return the existing station".into(),
                ));
            };
            let existing = (parse_name(provisioning.clone())?, time(registered)?);
            let updated = self
                .lwt(
                    &self.statements.station_update_auth,
                    (
                        profile_number(auth),
                        auth.base64_sha256_password.as_deref(),
                        auth.invalid_username_allowed,
                        timestamp(now),
                        id,
                    ),
                )
                .await?;
            Ok(updated.applied.then(|| StationRecord {
                id: id.to_owned(),
                auth: auth.clone(),
                provisioning: existing.0,
                registered_at: existing.1,
                updated_at: now,
            }))
        })
        .await
    }
}

#[async_trait]
impl StationStore for ScyllaStore {
    async fn register_station(
        &self,
        id: &str,
        auth: ChargeStationAuth,
        now: DateTime<Utc>,
    ) -> StoreResult<StationRecord> {
        self.call("register_station", async {
            let record = self.register(id, &auth, now).await?;
            // Written on every registration: heals a directory entry lost
            // to a crash between the two writes.
            self.execute(&self.statements.directory_insert, Kind::Station.row(id))
                .await?;
            self.registered_stations.learn(id.to_owned());
            Ok(record)
        })
        .await
    }

    async fn station(&self, id: &str) -> StoreResult<Option<StationRecord>> {
        self.call("station", self.find_station(id)).await
    }

    async fn list_stations(&self, page: Page) -> StoreResult<Vec<StationRecord>> {
        self.call("list_stations", async {
            self.list_records(Kind::Station, page, |id| async move {
                self.find_station(&id).await
            })
            .await
        })
        .await
    }

    async fn set_provisioning(
        &self,
        id: &str,
        provisioning: Provisioning,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.call("set_provisioning", async {
            let state = name_of(&provisioning)?;
            let outcome = self
                .lwt(
                    &self.statements.station_set_provisioning,
                    (state.as_str(), timestamp(now), id),
                )
                .await?;
            not_found_unless_applied(outcome.applied, STATION)
        })
        .await
    }

    async fn runtime(&self, id: &str) -> StoreResult<Option<StationRuntime>> {
        self.call("runtime", async {
            self.row::<(String,)>(&self.statements.runtime_get, (id,))
                .await?
                .map(|(record,)| from_json(&record))
                .transpose()
        })
        .await
    }

    async fn set_runtime(&self, id: &str, runtime: StationRuntime) -> StoreResult<()> {
        self.call("set_runtime", async {
            self.ensure_registered(id).await?;
            self.execute(&self.statements.runtime_put, (id, to_json(&runtime)?))
                .await?;
            Ok(())
        })
        .await
    }
}
