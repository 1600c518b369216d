//! Converts the per-kind work queues of a keyspace of model 1 or 2
//! (station_settings, station_install_certificates, station_triggers,
//! station_charging_profiles) into commands when the keyspace is upgraded,
//! then drops those tables: queued work survives the upgrade, and the
//! outcomes already known stay readable as settled commands.
//!
//! Runs once, before the new model's version is recorded. Each table is
//! read whole (the one place voltgate scans a table: an upgrade, once),
//! its commands are written, then it is dropped; a start interrupted
//! between the writes and the drop converts that table again on the next
//! start, which queues its pending items twice (a setting set twice, a
//! trigger answered twice: harmless, and logged).

use std::collections::BTreeMap;

use chrono::Utc;
use futures_util::TryStreamExt;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::value::CqlTimestamp;

use super::schema::table_exists;
use super::{delivery_from, from_json, parse_name, to_json};
use crate::store::legacy_work::{
    LegacyCertificate, LegacyChargingProfile, LegacySetting, LegacyTrigger, LegacyWork,
};
use crate::store::{StoreError, StoreResult};

/// The old tables, in the order their work was delivered.
const TABLES: [&str; 4] = [
    "station_settings",
    "station_install_certificates",
    "station_triggers",
    "station_charging_profiles",
];

fn failed(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("converting the old work queues ({what}): {e}"))
}

async fn has_column(
    session: &Session,
    keyspace: &str,
    table: &str,
    column: &str,
) -> StoreResult<bool> {
    let rows = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? AND column_name = ?",
            (keyspace, table, column),
        )
        .await
        .map_err(|e| failed(table, e))?
        .into_rows_result()
        .map_err(|e| failed(table, e))?;
    Ok(rows.rows_num() > 0)
}

/// Every row of `cql`, each handed to `keep`.
async fn each_row<R>(
    session: &Session,
    cql: &str,
    mut keep: impl FnMut(R) -> StoreResult<()>,
) -> StoreResult<()>
where
    R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
{
    let mut rows = session
        .query_iter(cql, ())
        .await
        .map_err(|e| failed(cql, e))?
        .rows_stream::<R>()
        .map_err(|e| failed(cql, e))?;
    while let Some(row) = rows.try_next().await.map_err(|e| failed(cql, e))? {
        keep(row)?;
    }
    Ok(())
}

type Delivered = (String, CqlTimestamp, Option<String>);
/// A model 2 trigger row (with its EVSE and connector).
type TriggerRow = (
    String,
    String,
    String,
    CqlTimestamp,
    Option<String>,
    Option<i32>,
    Option<i32>,
);

/// Reads one old table into `work`, by station.
async fn read(
    session: &Session,
    keyspace: &str,
    table: &str,
    work: &mut BTreeMap<String, LegacyWork>,
) -> StoreResult<()> {
    match table {
        "station_settings" => {
            let cql =
                "SELECT station_id, name, value, status, status_at, detail FROM station_settings";
            each_row(
                session,
                cql,
                |(station, key, value, status, at, detail): (
                    String,
                    String,
                    String,
                    String,
                    CqlTimestamp,
                    Option<String>,
                )| {
                    let delivery = delivery_from((status, at, detail))?;
                    work.entry(station)
                        .or_default()
                        .settings
                        .push(LegacySetting {
                            key,
                            value,
                            delivery,
                        });
                    Ok(())
                },
            )
            .await
        }
        "station_install_certificates" => {
            let cql = "SELECT station_id, certificate_id, certificate_use, pem, status, status_at, detail FROM station_install_certificates";
            each_row(
                session,
                cql,
                |(station, id, use_, pem, status, at, detail): (
                    String,
                    String,
                    String,
                    String,
                    String,
                    CqlTimestamp,
                    Option<String>,
                )| {
                    let certificate = LegacyCertificate {
                        certificate_id: id,
                        certificate_use: parse_name(use_)?,
                        certificate: pem,
                        delivery: delivery_from((status, at, detail))?,
                    };
                    work.entry(station)
                        .or_default()
                        .certificates
                        .push(certificate);
                    Ok(())
                },
            )
            .await
        }
        "station_triggers" => {
            let mut keep = |station: String,
                            message: String,
                            delivered: Delivered,
                            evse: Option<i32>,
                            connector: Option<i32>| {
                let place = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
                let trigger = LegacyTrigger {
                    trigger: parse_name(message)?,
                    evse_id: place(evse),
                    connector_id: place(connector),
                    delivery: delivery_from(delivered)?,
                };
                work.entry(station).or_default().triggers.push(trigger);
                Ok(())
            };
            // evse_id and connector_id came with model 2.
            if has_column(session, keyspace, table, "evse_id").await? {
                let cql = "SELECT station_id, message, status, status_at, detail, evse_id, connector_id FROM station_triggers";
                each_row(
                    session,
                    cql,
                    |(station, message, status, at, detail, evse, connector): TriggerRow| {
                        keep(station, message, (status, at, detail), evse, connector)
                    },
                )
                .await
            } else {
                let cql =
                    "SELECT station_id, message, status, status_at, detail FROM station_triggers";
                each_row(
                    session,
                    cql,
                    |(station, message, status, at, detail): (
                        String,
                        String,
                        String,
                        CqlTimestamp,
                        Option<String>,
                    )| {
                        keep(station, message, (status, at, detail), None, None)
                    },
                )
                .await
            }
        }
        _ => {
            let cql = "SELECT station_id, profile_id, evse_id, profile, status, status_at, detail FROM station_charging_profiles";
            each_row(
                session,
                cql,
                |(station, profile_id, evse_id, profile, status, at, detail): (
                    String,
                    i64,
                    i64,
                    String,
                    String,
                    CqlTimestamp,
                    Option<String>,
                )| {
                    let profile = LegacyChargingProfile {
                        profile_id,
                        evse_id: u32::try_from(evse_id).map_err(|_| {
                            failed(table, format!("EVSE id {evse_id} out of range"))
                        })?,
                        profile: from_json(&profile)?,
                        delivery: delivery_from((status, at, detail))?,
                    };
                    work.entry(station)
                        .or_default()
                        .charging_profiles
                        .push(profile);
                    Ok(())
                },
            )
            .await
        }
    }
}

/// Converts and drops whatever old queue tables the keyspace holds;
/// answers how many commands were written.
pub async fn convert(session: &Session, keyspace: &str) -> StoreResult<usize> {
    let mut written = 0;
    for table in TABLES {
        if !table_exists(session, keyspace, table).await? {
            continue;
        }
        let mut work = BTreeMap::new();
        read(session, keyspace, table, &mut work).await?;
        let now = Utc::now();
        for (station, queued) in work {
            for command in queued.into_commands(&station, now) {
                let record = to_json(&command)?;
                let id = command.id.as_str();
                session
                    .query_unpaged(
                        "INSERT INTO station_commands (station_id, command_id, record) VALUES (?, ?, ?)",
                        (station.as_str(), id, record),
                    )
                    .await
                    .map_err(|e| failed(table, e))?;
                if !command.status.is_final() {
                    session
                        .query_unpaged(
                            "INSERT INTO station_outbox (station_id, command_id) VALUES (?, ?)",
                            (station.as_str(), id),
                        )
                        .await
                        .map_err(|e| failed(table, e))?;
                }
                written += 1;
            }
        }
        session
            .query_unpaged(format!("DROP TABLE IF EXISTS {keyspace}.{table}"), ())
            .await
            .map_err(|e| failed(table, e))?;
        tracing::info!(table, "old work queue converted into commands and dropped");
    }
    Ok(written)
}
