//! The OCPP-J frames a simulated station sends, and its answers to the CSMS's
//! CALLs, for 1.6 and 2.0.1. Pure: the caller passes the time and ids.
//!
//! Payloads follow the official schemas in `schema/ocpp/` (the unit tests
//! validate the answers against the response schemas). Only what a load test
//! needs is simulated; other CSMS CALLs get a CALLERROR `NotImplemented`, and
//! triggers for messages we cannot produce are answered `NotImplemented`
//! rather than accepted and then never sent.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::Version;

/// A CALL the station sends. Copy and small: it sits in every station's
/// queue and in-flight slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Authorize the load-test token.
    Authorize,
    /// BootNotification.
    BootNotification,
    /// Heartbeat.
    Heartbeat,
    /// 1.6 MeterValues of a running transaction.
    MeterValues {
        /// The transaction id the CSMS gave.
        transaction_id: i64,
        /// Energy register, Wh.
        meter_wh: u64,
    },
    /// 1.6 StartTransaction.
    StartTransaction {
        /// Energy register at start, Wh.
        meter_wh: u64,
    },
    /// StatusNotification for connector 1 (EVSE 1).
    StatusNotification,
    /// 1.6 StopTransaction.
    StopTransaction {
        /// The transaction id the CSMS gave.
        transaction_id: i64,
        /// Energy register at stop, Wh.
        meter_wh: u64,
    },
    /// 2.0.1 TransactionEvent.
    TransactionEvent {
        /// Started, Updated or Ended.
        event: TransactionEventType,
        /// The station-chosen transaction id (formatted UUID-like).
        transaction: u128,
        /// Sequence number within the transaction.
        seq_no: u32,
        /// Energy register, Wh.
        meter_wh: u64,
    },
}

/// 2.0.1 `eventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionEventType {
    /// The last event of a transaction.
    Ended,
    /// The first event of a transaction.
    Started,
    /// Periodic meter values in between.
    Updated,
}

/// Every action a station sends, for per-action counts.
pub const ACTIONS: [&str; 8] = [
    "Authorize",
    "BootNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
    "TransactionEvent",
];

impl Request {
    /// The OCPP action name.
    pub fn action(self) -> &'static str {
        match self {
            Request::Authorize => "Authorize",
            Request::BootNotification => "BootNotification",
            Request::Heartbeat => "Heartbeat",
            Request::MeterValues { .. } => "MeterValues",
            Request::StartTransaction { .. } => "StartTransaction",
            Request::StatusNotification => "StatusNotification",
            Request::StopTransaction { .. } => "StopTransaction",
            Request::TransactionEvent { .. } => "TransactionEvent",
        }
    }
}

/// RFC 3339 UTC with milliseconds, as OCPP wants date-times.
pub fn timestamp(utc: DateTime<Utc>) -> String {
    utc.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A station-chosen transaction id in the 8-4-4-4-12 hex form (36 characters,
/// the 2.0.1 maximum).
pub fn transaction_id(transaction: u128) -> String {
    let hex = format!("{transaction:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The CALL frame `[2, id, action, payload]` for `request`.
pub fn call_frame(
    id: u32,
    version: Version,
    request: Request,
    utc: DateTime<Utc>,
    id_token: &str,
) -> String {
    if request == Request::Heartbeat {
        // The hot path of the heartbeat scenario: no JSON tree to build.
        return format!(r#"[2,"{id}","Heartbeat",{{}}]"#);
    }
    let payload = payload(version, request, utc, id_token);
    json!([2, id.to_string(), request.action(), payload]).to_string()
}

fn payload(version: Version, request: Request, utc: DateTime<Utc>, id_token: &str) -> Value {
    let now = timestamp(utc);
    let token_201 = || json!({"idToken": id_token, "type": "ISO14443"});
    match (version, request) {
        (_, Request::Heartbeat) => json!({}),
        (Version::V16, Request::BootNotification) => {
            json!({"chargePointVendor": "VoltgateLoadtest", "chargePointModel": "Simulated"})
        }
        (Version::V201, Request::BootNotification) => json!({
            "chargingStation": {"model": "Simulated", "vendorName": "VoltgateLoadtest"},
            "reason": "PowerUp"
        }),
        (Version::V16, Request::StatusNotification) => {
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": now})
        }
        (Version::V201, Request::StatusNotification) => json!({
            "timestamp": now, "connectorStatus": "Available", "evseId": 1, "connectorId": 1
        }),
        (Version::V16, Request::Authorize) => json!({"idTag": id_token}),
        (Version::V201, Request::Authorize) => json!({"idToken": token_201()}),
        (_, Request::StartTransaction { meter_wh }) => json!({
            "connectorId": 1, "idTag": id_token, "meterStart": meter_wh, "timestamp": now
        }),
        (
            _,
            Request::MeterValues {
                transaction_id,
                meter_wh,
            },
        ) => json!({
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [{"timestamp": now, "sampledValue": [{
                "value": meter_wh.to_string(),
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh"
            }]}]
        }),
        (
            _,
            Request::StopTransaction {
                transaction_id,
                meter_wh,
            },
        ) => json!({
            "transactionId": transaction_id, "idTag": id_token, "meterStop": meter_wh,
            "timestamp": now, "reason": "Local"
        }),
        (
            _,
            Request::TransactionEvent {
                event,
                transaction,
                seq_no,
                meter_wh,
            },
        ) => {
            let (event_type, trigger) = match event {
                TransactionEventType::Started => ("Started", "Authorized"),
                TransactionEventType::Updated => ("Updated", "MeterValuePeriodic"),
                TransactionEventType::Ended => ("Ended", "StopAuthorized"),
            };
            let mut payload = json!({
                "eventType": event_type,
                "timestamp": now,
                "triggerReason": trigger,
                "seqNo": seq_no,
                "transactionInfo": {"transactionId": transaction_id(transaction)},
                "evse": {"id": 1, "connectorId": 1},
                "meterValue": [{"timestamp": now, "sampledValue": [{
                    "value": meter_wh as f64,
                    "measurand": "Energy.Active.Import.Register"
                }]}]
            });
            if event == TransactionEventType::Started {
                payload["idToken"] = token_201();
            }
            payload
        }
    }
}

/// A CALL from the CSMS, as the station understood it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsmsCall {
    /// 1.6 ChangeConfiguration (answered Accepted).
    ChangeConfiguration,
    /// 1.6 ExtendedTriggerMessage; the message it asks for when we can send it.
    ExtendedTriggerMessage(Option<Request>),
    /// Anything else (answered with a CALLERROR NotImplemented).
    Other,
    /// Reset (answered Accepted; the station boots again).
    Reset,
    /// 2.0.1 SetVariables (every variable Accepted).
    SetVariables,
    /// TriggerMessage; the message it asks for when we can send it.
    TriggerMessage(Option<Request>),
}

impl CsmsCall {
    /// Whether this is what the load test's REST commands produce (trigger
    /// StatusNotification, reconfigure HeartbeatInterval), so the station can
    /// time its arrival.
    pub fn is_load_test_command(self) -> bool {
        matches!(
            self,
            CsmsCall::ChangeConfiguration
                | CsmsCall::SetVariables
                | CsmsCall::TriggerMessage(Some(Request::StatusNotification))
        )
    }
}

/// The station's answer to a CSMS CALL.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// What the CALL was.
    pub call: CsmsCall,
    /// The CALLRESULT or CALLERROR frame.
    pub frame: String,
    /// A CALL the station sends because of it (a triggered message, the boot
    /// after a reset).
    pub follow_up: Option<Request>,
}

/// Answers the CSMS CALL `[2, id, action, payload]`.
pub fn answer(version: Version, id: &str, action: &str, payload: &Value) -> Answer {
    let result = |call: CsmsCall, body: Value, follow_up: Option<Request>| Answer {
        call,
        frame: json!([3, id, body]).to_string(),
        follow_up,
    };
    let error = |call: CsmsCall, code: &str, description: String| Answer {
        call,
        frame: json!([4, id, code, description, {}]).to_string(),
        follow_up: None,
    };
    let requested = payload.get("requestedMessage").and_then(Value::as_str);
    let triggered = requested.and_then(triggerable);
    match (version, action) {
        (Version::V16, "ChangeConfiguration") => result(
            CsmsCall::ChangeConfiguration,
            json!({"status": "Accepted"}),
            None,
        ),
        (Version::V16, "ExtendedTriggerMessage") => {
            let status = if triggered.is_some() {
                "Accepted"
            } else {
                "NotImplemented"
            };
            result(
                CsmsCall::ExtendedTriggerMessage(triggered),
                json!({ "status": status }),
                triggered,
            )
        }
        (_, "TriggerMessage") => {
            let status = if triggered.is_some() {
                "Accepted"
            } else {
                "NotImplemented"
            };
            result(
                CsmsCall::TriggerMessage(triggered),
                json!({ "status": status }),
                triggered,
            )
        }
        (_, "Reset") => result(
            CsmsCall::Reset,
            json!({"status": "Accepted"}),
            Some(Request::BootNotification),
        ),
        (Version::V201, "SetVariables") => match set_variables_result(payload) {
            Some(results) => result(
                CsmsCall::SetVariables,
                json!({ "setVariableResult": results }),
                None,
            ),
            None => error(
                CsmsCall::SetVariables,
                "FormatViolation",
                "setVariableData must be a non-empty array".into(),
            ),
        },
        _ => error(
            CsmsCall::Other,
            "NotImplemented",
            format!("{action} is not simulated by the load test"),
        ),
    }
}

/// The messages a trigger may ask for that the simulation can send.
fn triggerable(requested: &str) -> Option<Request> {
    match requested {
        "BootNotification" => Some(Request::BootNotification),
        "Heartbeat" => Some(Request::Heartbeat),
        "StatusNotification" => Some(Request::StatusNotification),
        _ => None,
    }
}

/// One `Accepted` result per requested variable, naming the same
/// component, variable and attribute type.
fn set_variables_result(payload: &Value) -> Option<Vec<Value>> {
    let data = payload.get("setVariableData")?.as_array()?;
    if data.is_empty() {
        return None;
    }
    Some(
        data.iter()
            .map(|entry| {
                let mut result = json!({
                    "attributeStatus": "Accepted",
                    "component": entry.get("component").cloned().unwrap_or_else(|| json!({})),
                    "variable": entry.get("variable").cloned().unwrap_or_else(|| json!({})),
                });
                if let Some(kind) = entry.get("attributeType") {
                    result["attributeType"] = kind.clone();
                }
                result
            })
            .collect(),
    )
}
