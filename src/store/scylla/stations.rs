//! [`StationStore`] on ScyllaDB: registrations (LWT), the station directory,
//! queued work per station partition, runtime state.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scylla::value::CqlTimestamp;

use super::directory::Kind;
use super::retry::until_won;
use super::statements::one_partition;
use super::{
    delivery_columns, delivery_from, from_json, name_of, parse_name, stored_time, time, timestamp,
    to_json, DeliveryColumns, ScyllaStore,
};
use crate::store::{
    pending_settings, requested_certificates, ChargeStationAuth, ChargingProfileRecord, Delivery,
    InstallCertificateRecord, NewChargingProfile, NewInstallCertificate, NewTrigger, Page,
    PendingWork, Provisioning, SecurityProfile, SettingRecord, StationRecord, StationRuntime,
    StationStore, StoreError, StoreResult, TriggerRecord, WorkItemRef,
};

const STATION: &str = "charge station";
const QUEUED_ITEM: &str = "queued item";

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
    pub(super) async fn require_station(&self, id: &str) -> StoreResult<StationRecord> {
        self.find_station(id)
            .await?
            .ok_or(StoreError::NotFound(STATION))
    }

    async fn find_station(&self, id: &str) -> StoreResult<Option<StationRecord>> {
        self.row::<StationRow>(&self.statements.station_get, (id,))
            .await?
            .map(station_from)
            .transpose()
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

    /// The next trigger number of a station, claimed with an LWT insert.
    async fn insert_trigger(
        &self,
        id: &str,
        trigger: NewTrigger,
        now: DateTime<Utc>,
    ) -> StoreResult<TriggerRecord> {
        let delivery = Delivery::pending(stored_time(now));
        let (status, at, detail) = delivery_columns(&delivery)?;
        let message = name_of(&trigger.message)?;
        let place = |n: Option<u32>| n.and_then(|n| i32::try_from(n).ok());
        let (evse, connector) = (place(trigger.evse_id), place(trigger.connector_id));
        until_won("trigger numbering", || async {
            let last = self
                .row::<(i64,)>(&self.statements.trigger_last, (id,))
                .await?
                .map_or(0, |(seq,)| seq);
            let seq = last + 1;
            let claimed = self
                .lwt(
                    &self.statements.trigger_insert,
                    (
                        id,
                        seq,
                        message.as_str(),
                        status.as_str(),
                        at,
                        detail.as_deref(),
                        evse,
                        connector,
                    ),
                )
                .await?;
            Ok(claimed.applied.then(|| TriggerRecord {
                seq: seq as u64,
                trigger: trigger.message,
                evse_id: trigger.evse_id,
                connector_id: trigger.connector_id,
                delivery: delivery.clone(),
            }))
        })
        .await
    }

    /// Queues (or queues again) one certificate: insert if absent, else
    /// replace if present, both LWTs, so its row is only ever written
    /// through Paxos (as its delivery updates are).
    async fn queue_certificate(
        &self,
        id: &str,
        cert: &InstallCertificateRecord,
    ) -> StoreResult<()> {
        let (status, at, detail) = delivery_columns(&cert.delivery)?;
        let certificate_use = name_of(&cert.certificate_use)?;
        let (certificate_id, pem) = (cert.certificate_id.as_str(), cert.certificate.as_str());
        until_won("certificate queueing", || async {
            let queued = self
                .lwt(
                    &self.statements.certificate_queue,
                    (
                        id,
                        certificate_id,
                        certificate_use.as_str(),
                        pem,
                        status.as_str(),
                        at,
                        detail.as_deref(),
                    ),
                )
                .await?;
            if queued.applied {
                return Ok(Some(()));
            }
            let requeued = self
                .lwt(
                    &self.statements.certificate_requeue,
                    (
                        certificate_use.as_str(),
                        pem,
                        status.as_str(),
                        at,
                        detail.as_deref(),
                        id,
                        certificate_id,
                    ),
                )
                .await?;
            Ok(requeued.applied.then_some(()))
        })
        .await
    }

    async fn load_pending_work(&self, id: &str) -> StoreResult<PendingWork> {
        let st = &self.statements;
        let (settings, certificates, triggers, profiles) = futures_util::try_join!(
            self.rows::<(String, String, String, CqlTimestamp, Option<String>)>(
                &st.settings_of,
                (id,)
            ),
            self.rows::<(String, String, String, String, CqlTimestamp, Option<String>)>(
                &st.certificates_of,
                (id,)
            ),
            self.rows::<(
                i64,
                String,
                String,
                CqlTimestamp,
                Option<String>,
                Option<i32>,
                Option<i32>,
            )>(&st.triggers_of, (id,)),
            self.rows::<(i64, i64, String, String, CqlTimestamp, Option<String>)>(
                &st.profiles_of,
                (id,)
            ),
        )?;
        let mut work = PendingWork::default();
        for (key, value, status, at, detail) in settings {
            work.settings.push(SettingRecord {
                key,
                value,
                delivery: delivery_from((status, at, detail))?,
            });
        }
        for (certificate_id, certificate_use, pem, status, at, detail) in certificates {
            work.certificates.push(InstallCertificateRecord {
                certificate_id,
                certificate_use: parse_name(certificate_use)?,
                certificate: pem,
                delivery: delivery_from((status, at, detail))?,
            });
        }
        for (seq, message, status, at, detail, evse, connector) in triggers {
            let place = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
            work.triggers.push(TriggerRecord {
                seq: seq as u64,
                trigger: parse_name(message)?,
                evse_id: place(evse),
                connector_id: place(connector),
                delivery: delivery_from((status, at, detail))?,
            });
        }
        for (profile_id, evse_id, profile, status, at, detail) in profiles {
            work.charging_profiles.push(ChargingProfileRecord {
                profile_id,
                evse_id: u32::try_from(evse_id)
                    .map_err(|_| StoreError::Backend(format!("EVSE id {evse_id} out of range")))?,
                profile: from_json(&profile)?,
                delivery: delivery_from((status, at, detail))?,
            });
        }
        Ok(work)
    }

    /// Sets an item's delivery. Certificates and triggers: an LWT (IF
    /// EXISTS), as every write to their rows is. Settings and charging
    /// profiles: their rows are only written by plain upserts, so a read
    /// that the item exists, then a plain update (items are never deleted).
    async fn update_delivery(
        &self,
        id: &str,
        item: &WorkItemRef,
        delivery: &Delivery,
    ) -> StoreResult<()> {
        let (status, at, detail): DeliveryColumns = delivery_columns(delivery)?;
        let st = &self.statements;
        let (status, detail) = (status.as_str(), detail.as_deref());
        let applied = match item {
            WorkItemRef::Setting(key) => {
                let key = key.as_str();
                let exists = self
                    .row::<(String,)>(&st.setting_exists, (id, key))
                    .await?
                    .is_some();
                if exists {
                    self.execute(&st.settings_delivery, (status, at, detail, id, key))
                        .await?;
                }
                exists
            }
            WorkItemRef::ChargingProfile(profile) => {
                let exists = self
                    .row::<(i64,)>(&st.profile_exists, (id, *profile))
                    .await?
                    .is_some();
                if exists {
                    self.execute(&st.profiles_delivery, (status, at, detail, id, *profile))
                        .await?;
                }
                exists
            }
            WorkItemRef::Certificate(cert) => {
                self.lwt(
                    &st.certificates_delivery,
                    (status, at, detail, id, cert.as_str()),
                )
                .await?
                .applied
            }
            WorkItemRef::Trigger(seq) => {
                let seq = i64::try_from(*seq).map_err(|_| StoreError::NotFound(QUEUED_ITEM))?;
                self.lwt(&st.triggers_delivery, (status, at, detail, id, seq))
                    .await?
                    .applied
            }
        };
        not_found_unless_applied(applied, QUEUED_ITEM)
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

    async fn add_settings(
        &self,
        id: &str,
        settings: Vec<(String, String)>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SettingRecord>> {
        self.call("add_settings", async {
            self.require_station(id).await?;
            let since = stored_time(now);
            let records = pending_settings(settings, since);
            let (status, at, detail) = delivery_columns(&Delivery::pending(since))?;
            let rows: Vec<_> = records
                .iter()
                .map(|r| {
                    (
                        id,
                        r.key.as_str(),
                        r.value.as_str(),
                        status.as_str(),
                        at,
                        detail.as_deref(),
                    )
                })
                .collect();
            let batch = one_partition(&self.statements.settings_upsert, rows.len());
            if !rows.is_empty() {
                self.batch(&batch, rows).await?;
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
        self.call("add_install_certificates", async {
            self.require_station(id).await?;
            let records = requested_certificates(certificates, stored_time(now));
            for record in &records {
                self.queue_certificate(id, record).await?;
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
        self.call("add_trigger", async {
            self.require_station(id).await?;
            self.insert_trigger(id, trigger, now).await
        })
        .await
    }

    async fn set_charging_profile(
        &self,
        id: &str,
        profile: NewChargingProfile,
        now: DateTime<Utc>,
    ) -> StoreResult<ChargingProfileRecord> {
        self.call("set_charging_profile", async {
            self.require_station(id).await?;
            let delivery = Delivery::pending(stored_time(now));
            let (status, at, detail) = delivery_columns(&delivery)?;
            let evse_id = i64::from(profile.evse_id);
            self.execute(
                &self.statements.profiles_upsert,
                (
                    id,
                    profile.profile_id,
                    evse_id,
                    to_json(&profile.profile)?,
                    status.as_str(),
                    at,
                    detail.as_deref(),
                ),
            )
            .await?;
            Ok(ChargingProfileRecord {
                profile_id: profile.profile_id,
                evse_id: profile.evse_id,
                profile: profile.profile,
                delivery,
            })
        })
        .await
    }

    async fn pending_work(&self, id: &str) -> StoreResult<PendingWork> {
        self.call("pending_work", self.load_pending_work(id)).await
    }

    async fn set_delivery(
        &self,
        id: &str,
        item: WorkItemRef,
        delivery: Delivery,
    ) -> StoreResult<()> {
        self.call("set_delivery", async {
            self.require_station(id).await?;
            self.update_delivery(id, &item, &delivery).await
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
            self.require_station(id).await?;
            self.execute(&self.statements.runtime_put, (id, to_json(&runtime)?))
                .await?;
            Ok(())
        })
        .await
    }
}
