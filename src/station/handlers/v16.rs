//! OCPP 1.6 station-initiated actions.
//!
//! 1.6 transactions have no seqNo, so events get one that makes retries
//! idempotent: StartTransaction is 0, StopTransaction is `u64::MAX`, and a
//! MeterValues message is keyed by its first sample's time in milliseconds
//! (a retried message carries the same samples).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::follow_up::{self, report_progress};
use super::{
    boot, decide_token, opt_str, parse_time, security_event, store_runtime, Env, Handled,
    HandlerError, HandlerResult, Station, TokenDecision,
};
use super::{pnc, signing};
use crate::ocpp::error::ErrorCode;
use crate::station::evse_status::{Seen, Spot};
use crate::store::{
    BootInfo, ConnectorStatus, IdTokenRef, MeterValue, SampledValue, TransactionEvent,
    TransactionEventKind,
};

/// How long a remote start's acceptance may take to be readable among
/// the station's commands: a start within it keeps the marker even when its
/// read found no accepted remote start.
const REMOTE_START_SETTLING: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// How long after its acceptance a 1.6 remote start may still be what
/// caused a start (matched by idTag and connector only). A station drops
/// a remote start when no cable is plugged in within its ConnectionTimeOut
/// (a minute or a few); this leaves room for a slow one, and for a start
/// reported with the time it happened after the station was offline.
const REMOTE_START_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The vendor id of the ISO 15118 Plug & Charge messages tunnelled through DataTransfer.
pub const PNC_VENDOR_ID: &str = "org.openchargealliance.iso15118pnc";

pub(super) async fn handle(
    env: &Env,
    station: &Station,
    action: &str,
    p: &Value,
    now: DateTime<Utc>,
) -> HandlerResult {
    match action {
        "BootNotification" => {
            let info = BootInfo {
                vendor: p["chargePointVendor"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                model: p["chargePointModel"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                serial_number: opt_str(&p["chargePointSerialNumber"])
                    .or_else(|| opt_str(&p["chargeBoxSerialNumber"])),
                firmware_version: opt_str(&p["firmwareVersion"]),
                reason: None,
            };
            boot(env, station, info, now).await
        }
        "Heartbeat" => Ok(super::heartbeat(now)),
        "StatusNotification" => {
            let connector_id = p["connectorId"].as_u64().unwrap_or(0);
            let connector = connector_id.to_string();
            let error_code = opt_str(&p["errorCode"]).filter(|c| c != "NoError");
            let status = ConnectorStatus {
                status: p["status"].as_str().unwrap_or_default().to_owned(),
                error_code,
                updated_at: parse_time(&p["timestamp"], now),
            };
            let spot = Spot {
                station: station.id.clone(),
                evse: None,
                connector: i32::try_from(connector_id).ok(),
            };
            env.statuses
                .report(spot, Seen::Status(status.status.clone()), now);
            store_runtime(env, station, |r| {
                r.connectors.insert(connector, status);
            })
            .await?;
            Ok(Handled::reply(json!({})))
        }
        "Authorize" => {
            let tag = p["idTag"].as_str().unwrap_or_default();
            let info = id_tag_info(env, tag, Some(&station.id)).await?;
            Ok(Handled::reply(json!({ "idTagInfo": info })))
        }
        "StartTransaction" => start_transaction(env, station, p, now).await,
        "StopTransaction" => stop_transaction(env, station, p, now).await,
        "MeterValues" => {
            let values = meter_values(&p["meterValue"], now);
            let transaction_id = p["transactionId"]
                .as_i64()
                .map(|id| id.to_string())
                .unwrap_or_default();
            let seq_no = values
                .first()
                .map_or(0, |v| v.timestamp.timestamp_millis().max(1) as u64);
            let event = TransactionEvent {
                station_id: station.id.clone(),
                transaction_id,
                seq_no,
                kind: TransactionEventKind::Updated,
                timestamp: values.first().map_or(now, |v| v.timestamp),
                id_token: None,
                offline: false,
                evse_id: None,
                connector_id: p["connectorId"].as_u64().map(|c| c as u32),
                stop_reason: None,
                meter_values: values,
            };
            env.apply_transaction_event(event).await?;
            Ok(Handled::reply(json!({})))
        }
        "DataTransfer" => {
            if p["vendorId"] == PNC_VENDOR_ID {
                pnc::handle(
                    env,
                    station,
                    p["messageId"].as_str(),
                    p["data"].as_str(),
                    now,
                )
                .await
            } else {
                Ok(Handled::reply(json!({"status": "UnknownVendorId"})))
            }
        }
        "SecurityEventNotification" => security_event(env, station, p, now).await,
        "FirmwareStatusNotification" | "SignedFirmwareStatusNotification" => {
            let status = opt_str(&p["status"]);
            let asked_by = if action == "FirmwareStatusNotification" {
                "UpdateFirmware"
            } else {
                "SignedUpdateFirmware"
            };
            report_progress(env, station, asked_by, p, now).await;
            store_runtime(env, station, |r| r.firmware_status = status).await?;
            Ok(Handled::reply(json!({})))
        }
        "DiagnosticsStatusNotification" => {
            let status = opt_str(&p["status"]);
            report_progress(env, station, "GetDiagnostics", p, now).await;
            store_runtime(env, station, |r| r.diagnostics_status = status).await?;
            Ok(Handled::reply(json!({})))
        }
        "LogStatusNotification" => {
            let status = opt_str(&p["status"]);
            report_progress(env, station, "GetLog", p, now).await;
            store_runtime(env, station, |r| r.log_status = status).await?;
            Ok(Handled::reply(json!({})))
        }
        "SignCertificate" => {
            let (status, command) =
                signing::sign(env, station, p, signing::Route::Direct, now).await?;
            Ok(Handled {
                command,
                ..Handled::reply(json!({ "status": status }))
            })
        }
        other => Err(HandlerError::Refused(
            ErrorCode::NotSupported,
            format!("{other} is not supported"),
        )),
    }
}

/// 1.6 `IdTagInfo` for an id tag (`asking_at`: see [`decide_token`]).
async fn id_tag_info(
    env: &Env,
    id_tag: &str,
    asking_at: Option<&str>,
) -> Result<Value, HandlerError> {
    Ok(match decide_token(env, id_tag, asking_at).await? {
        TokenDecision::Accepted(token) => {
            let mut info = json!({"status": "Accepted"});
            // parentIdTag is at most 20 characters in 1.6.
            if let Some(group) = token.group_id.filter(|g| g.chars().count() <= 20) {
                info["parentIdTag"] = json!(group);
            }
            info
        }
        TokenDecision::Blocked => json!({"status": "Blocked"}),
        TokenDecision::Expired => json!({"status": "Expired"}),
        // 1.6 has no finer status for these.
        TokenDecision::NoCredit | TokenDecision::NotAllowed | TokenDecision::Unknown => {
            json!({"status": "Invalid"})
        }
    })
}

fn id_tag(p: &Value) -> Option<IdTokenRef> {
    p["idTag"].as_str().map(|id| IdTokenRef {
        id: id.to_owned(),
        token_type: "IdTag".to_owned(),
    })
}

fn energy_register(wh: i64, at: DateTime<Utc>, context: &str) -> MeterValue {
    MeterValue {
        seq_no: 0,
        timestamp: at,
        sampled_values: vec![SampledValue {
            value: wh as f64,
            measurand: Some("Energy.Active.Import.Register".to_owned()),
            phase: None,
            unit: Some("Wh".to_owned()),
            context: Some(context.to_owned()),
            location: None,
        }],
    }
}

async fn start_transaction(
    env: &Env,
    station: &Station,
    p: &Value,
    now: DateTime<Utc>,
) -> HandlerResult {
    let tag = p["idTag"].as_str().unwrap_or_default();
    let info = id_tag_info(env, tag, Some(&station.id)).await?;
    let transaction_id = env.store.next_transaction_number(&station.id).await?;
    let started = parse_time(&p["timestamp"], now);
    let event = TransactionEvent {
        station_id: station.id.clone(),
        transaction_id: transaction_id.to_string(),
        seq_no: 0,
        kind: TransactionEventKind::Started,
        timestamp: started,
        id_token: id_tag(p),
        offline: false,
        evse_id: None,
        connector_id: p["connectorId"].as_u64().map(|c| c as u32),
        stop_reason: None,
        meter_values: vec![energy_register(
            p["meterStart"].as_i64().unwrap_or(0),
            started,
            "Transaction.Begin",
        )],
    };
    env.apply_transaction_event(event).await?;
    // A 1.6 start does not say whether a remote start caused it: the
    // station's commands are read only while one it accepted may still
    // wait for its transaction (most starts are local, and that read would
    // be a second store round trip on each of them).
    if let Some(accepted_at) = station.runtime(|r| r.remote_start_accepted_at) {
        let (tag, connector) = (p["idTag"].clone(), p["connectorId"].clone());
        let others_open = follow_up::remote_start(
            env,
            station,
            "RemoteStartTransaction",
            &transaction_id.to_string(),
            Some(started.min(now) - REMOTE_START_WINDOW),
            |sent| {
                sent["idTag"] == tag
                    && (sent["connectorId"].is_null() || sent["connectorId"] == connector)
            },
        )
        .await;
        // The acceptance is recorded apart from the marker: a read soon
        // after may not see it yet, so a fresh marker stays.
        if !others_open && now - accepted_at > REMOTE_START_SETTLING {
            station.forget_remote_start(accepted_at);
        }
    }
    Ok(Handled::reply(
        json!({"transactionId": transaction_id, "idTagInfo": info}),
    ))
}

async fn stop_transaction(
    env: &Env,
    station: &Station,
    p: &Value,
    now: DateTime<Utc>,
) -> HandlerResult {
    let stopped = parse_time(&p["timestamp"], now);
    let mut values = meter_values(&p["transactionData"], now);
    values.push(energy_register(
        p["meterStop"].as_i64().unwrap_or(0),
        stopped,
        "Transaction.End",
    ));
    let event = TransactionEvent {
        station_id: station.id.clone(),
        transaction_id: p["transactionId"].as_i64().unwrap_or_default().to_string(),
        seq_no: u64::MAX,
        kind: TransactionEventKind::Ended,
        timestamp: stopped,
        id_token: id_tag(p),
        offline: false,
        evse_id: None,
        connector_id: None,
        stop_reason: opt_str(&p["reason"]).or_else(|| Some("Local".to_owned())),
        meter_values: values,
    };
    env.apply_transaction_event(event).await?;
    let response = match p["idTag"].as_str() {
        Some(tag) => json!({ "idTagInfo": id_tag_info(env, tag, None).await? }),
        None => json!({}),
    };
    Ok(Handled::reply(response))
}

/// 1.6 `MeterValue[]` to records; samples whose value is not a number
/// (e.g. signed data) are left out.
pub(super) fn meter_values(list: &Value, now: DateTime<Utc>) -> Vec<MeterValue> {
    super::meter_values(list, now, |sv| {
        let value = sv["value"].as_str()?.trim().parse::<f64>().ok()?;
        Some((value, opt_str(&sv["unit"])))
    })
}
