//! OCPP 2.0.1 station-initiated actions.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::follow_up::{self, report_progress};
use super::pnc::id_token_info;
use super::signing;
use super::{
    boot, opt_str, parse_time, security_event, store_runtime, Env, Handled, HandlerError,
    HandlerResult, Station,
};
use crate::metrics::unconfigured_service;
use crate::ocpp::error::ErrorCode;
use crate::station::evse_status::{Seen, Spot};
use crate::store::{
    BootInfo, ConnectorStatus, IdTokenRef, MeterValue, TransactionEvent, TransactionEventKind,
};

pub(super) async fn handle(
    env: &Env,
    station: &Station,
    action: &str,
    p: &Value,
    now: DateTime<Utc>,
) -> HandlerResult {
    let empty = || Ok(Handled::reply(json!({})));
    match action {
        "BootNotification" => {
            let cs = &p["chargingStation"];
            let info = BootInfo {
                vendor: cs["vendorName"].as_str().unwrap_or_default().to_owned(),
                model: cs["model"].as_str().unwrap_or_default().to_owned(),
                serial_number: opt_str(&cs["serialNumber"]),
                firmware_version: opt_str(&cs["firmwareVersion"]),
                reason: opt_str(&p["reason"]),
            };
            boot(env, station, info, now).await
        }
        "Heartbeat" => Ok(super::heartbeat(now)),
        "StatusNotification" => {
            let key = format!(
                "{}/{}",
                p["evseId"].as_u64().unwrap_or(0),
                p["connectorId"].as_u64().unwrap_or(0)
            );
            let status = ConnectorStatus {
                status: p["connectorStatus"].as_str().unwrap_or_default().to_owned(),
                error_code: None,
                updated_at: parse_time(&p["timestamp"], now),
            };
            let id = |field: &str| p[field].as_u64().and_then(|n| i32::try_from(n).ok());
            let spot = Spot {
                station: station.id.clone(),
                evse: id("evseId"),
                connector: id("connectorId"),
            };
            env.statuses
                .report(spot, Seen::Status(status.status.clone()), now);
            store_runtime(env, station, |r| {
                r.connectors.insert(key, status);
            })
            .await?;
            empty()
        }
        "Authorize" => {
            let id_token = &p["idToken"];
            let info = token_info(env, id_token, Some(&station.id)).await?;
            if p.get("certificate").is_some() || p.get("iso15118CertificateHashData").is_some() {
                // Checking the contract certificate needs an OCSP responder.
                unconfigured_service("ocsp_responder");
            }
            Ok(Handled::reply(json!({ "idTokenInfo": info })))
        }
        "TransactionEvent" => transaction_event(env, station, p, now).await,
        "MeterValues" => {
            let values = meter_values(&p["meterValue"], now);
            let seq_no = values
                .first()
                .map_or(0, |v| v.timestamp.timestamp_millis().max(1) as u64);
            let event = TransactionEvent {
                station_id: station.id.clone(),
                transaction_id: String::new(),
                seq_no,
                kind: TransactionEventKind::Updated,
                timestamp: values.first().map_or(now, |v| v.timestamp),
                id_token: None,
                offline: false,
                evse_id: p["evseId"].as_u64().map(|e| e as u32),
                connector_id: None,
                stop_reason: None,
                meter_values: values,
            };
            env.apply_transaction_event(event).await?;
            empty()
        }
        "SecurityEventNotification" => security_event(env, station, p, now).await,
        "FirmwareStatusNotification" => {
            let status = opt_str(&p["status"]);
            report_progress(env, station, "UpdateFirmware", p, now).await;
            store_runtime(env, station, |r| r.firmware_status = status).await?;
            empty()
        }
        "LogStatusNotification" => {
            let status = opt_str(&p["status"]);
            report_progress(env, station, "GetLog", p, now).await;
            store_runtime(env, station, |r| r.log_status = status).await?;
            empty()
        }
        "SignCertificate" => {
            let (status, command) =
                signing::sign(env, station, p, signing::Route::Direct, now).await?;
            Ok(Handled {
                command,
                ..Handled::reply(json!({ "status": status }))
            })
        }
        "GetCertificateStatus" => {
            unconfigured_service("ocsp_responder");
            Ok(Handled::reply(json!({"status": "Failed"})))
        }
        "Get15118EVCertificate" => {
            unconfigured_service("contract_certificate_pool");
            Ok(Handled::reply(
                json!({"status": "Failed", "exiResponse": ""}),
            ))
        }
        "DataTransfer" => Ok(Handled::reply(json!({"status": "UnknownVendorId"}))),
        "NotifyEVChargingNeeds" => {
            // No smart charging service computes schedules for EVs.
            unconfigured_service("smart_charging");
            Ok(Handled::reply(json!({"status": "Rejected"})))
        }
        "NotifyReport" => {
            let learnt = crate::station::reported::from_notify_report(p, now);
            if !learnt.is_empty() {
                env.store.put_variables(&station.id, learnt).await?;
            }
            empty()
        }
        "NotifyEvent"
        | "ClearedChargingLimit"
        | "NotifyChargingLimit"
        | "ReportChargingProfiles" => empty(),
        other => Err(HandlerError::Refused(
            ErrorCode::NotSupported,
            format!("{other} is not supported"),
        )),
    }
}

async fn token_info(
    env: &Env,
    id_token: &Value,
    asking_at: Option<&str>,
) -> Result<Value, HandlerError> {
    if id_token["type"] == "NoAuthorization" {
        return Ok(json!({"status": "Accepted"}));
    }
    id_token_info(
        env,
        id_token["idToken"].as_str().unwrap_or_default(),
        asking_at,
    )
    .await
}

async fn transaction_event(
    env: &Env,
    station: &Station,
    p: &Value,
    now: DateTime<Utc>,
) -> HandlerResult {
    let kind = match p["eventType"].as_str() {
        Some("Started") => TransactionEventKind::Started,
        Some("Ended") => TransactionEventKind::Ended,
        _ => TransactionEventKind::Updated,
    };
    let info = &p["transactionInfo"];
    let id_token = p["idToken"].as_object().map(|t| IdTokenRef {
        id: t
            .get("idToken")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        token_type: t
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    });
    let event = TransactionEvent {
        station_id: station.id.clone(),
        transaction_id: info["transactionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        seq_no: p["seqNo"].as_u64().unwrap_or(0),
        kind,
        timestamp: parse_time(&p["timestamp"], now),
        id_token,
        offline: p["offline"].as_bool().unwrap_or(false),
        evse_id: p["evse"]["id"].as_u64().map(|e| e as u32),
        connector_id: p["evse"]["connectorId"].as_u64().map(|c| c as u32),
        stop_reason: opt_str(&info["stoppedReason"]),
        meter_values: meter_values(&p["meterValue"], now),
    };
    let transaction_id = event.transaction_id.clone();
    // Idempotent by seqNo: a retried event is answered again, stored once.
    let first_time = env.apply_transaction_event(event).await?;
    if let (true, Some(remote_start_id)) = (first_time, info["remoteStartId"].as_i64()) {
        follow_up::remote_start(
            env,
            station,
            "RequestStartTransaction",
            &transaction_id,
            // Named by its id: linked however late the event comes.
            None,
            |sent| sent["remoteStartId"].as_i64() == Some(remote_start_id),
        )
        .await;
        // (The event names its remote start: no marker is needed to know
        // when to look.)
    }
    let response = match p.get("idToken") {
        Some(token) => json!({ "idTokenInfo": token_info(env, token, None).await? }),
        None => json!({}),
    };
    Ok(Handled::reply(response))
}

/// 2.0.1 `MeterValueType[]` to records, with the unit multiplier applied.
fn meter_values(list: &Value, now: DateTime<Utc>) -> Vec<MeterValue> {
    super::meter_values(list, now, |sv| {
        let multiplier = sv["unitOfMeasure"]["multiplier"].as_i64().unwrap_or(0);
        let value = sv["value"].as_f64()? * 10f64.powi(multiplier as i32);
        Some((value, opt_str(&sv["unitOfMeasure"]["unit"])))
    })
}
