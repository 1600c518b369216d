//! Queued work as OCPP CALLs, and OCPP answers as delivery statuses. Pure:
//! no actor, no store.
//!
//! * settings: 1.6 `ChangeConfiguration` per key; 2.0.1 one `SetVariables`
//!   with every key (names parsed by `ocpp::setting_key`);
//! * certificates: 2.0.1 `InstallCertificate`; 1.6 `InstallCertificate` of
//!   the security extension for CSMS and manufacturer roots, and the
//!   `org.openchargealliance.iso15118pnc` DataTransfer for V2G and MO roots;
//! * triggers: `TriggerMessage`; on 1.6 the charge point certificate through
//!   `ExtendedTriggerMessage` and the V2G ones through the PnC DataTransfer;
//! * charging profiles: `SetChargingProfile`, translated to the 1.6 shape
//!   for 1.6 stations;
//! * reset after settings that need a reboot.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::session::{CallOutcome, OutboundCall};
use crate::ocpp::setting_key::{SettingKey, VariableRef};
use crate::ocpp::Version;
use crate::store::{
    CertificateUse, ChargingProfileRecord, Delivery, DeliveryStatus, InstallCertificateRecord,
    SettingRecord, TriggerMessage, TriggerRecord, WorkItemRef,
};

const PNC_VENDOR_ID: &str = "org.openchargealliance.iso15118pnc";

/// What a CSMS CALL was for, so its answer can be recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Purpose {
    /// Queued work items (several for one SetVariables).
    Work(Vec<WorkItemRef>),
    /// The reset after settings that need a reboot.
    Reset,
    /// The trigger that makes a configured station boot again.
    Reboot,
    /// A stored command, by id.
    Command(String),
}

/// A CALL to send, or an item that cannot be sent to this station at all.
pub type Planned = Result<OutboundCall<Purpose>, (WorkItemRef, Delivery)>;

fn not_supported(item: WorkItemRef, now: DateTime<Utc>, why: String) -> (WorkItemRef, Delivery) {
    (
        item,
        Delivery {
            status: DeliveryStatus::NotSupported,
            updated_at: now,
            detail: Some(why),
        },
    )
}

fn work(action: &'static str, payload: Value, item: WorkItemRef) -> OutboundCall<Purpose> {
    OutboundCall {
        action,
        payload,
        tag: Purpose::Work(vec![item]),
    }
}

/// The CALLs that deliver these settings.
pub fn settings(version: Version, settings: &[SettingRecord], now: DateTime<Utc>) -> Vec<Planned> {
    let mut planned = Vec::new();
    let mut variables = Vec::new();
    for s in settings {
        let item = WorkItemRef::Setting(s.key.clone());
        match (version, SettingKey::parse(&s.key, &s.value)) {
            (Version::V16, Ok(SettingKey::V16(key))) => planned.push(Ok(work(
                "ChangeConfiguration",
                json!({"key": key, "value": s.value}),
                item,
            ))),
            (Version::V201, Ok(SettingKey::V201(var))) => {
                variables.push((item, var, s.value.clone()))
            }
            (_, Ok(_)) => planned.push(Err(not_supported(
                item,
                now,
                format!("not an OCPP {} setting name", version.label()),
            ))),
            (_, Err(e)) => planned.push(Err(not_supported(item, now, e.to_string()))),
        }
    }
    if !variables.is_empty() {
        let data: Vec<Value> = variables
            .iter()
            .map(|(_, var, value)| set_variable_data(var, value))
            .collect();
        let items = variables.into_iter().map(|(item, _, _)| item).collect();
        planned.push(Ok(OutboundCall {
            action: "SetVariables",
            payload: json!({ "setVariableData": data }),
            tag: Purpose::Work(items),
        }));
    }
    planned
}

pub(crate) fn component_json(var: &VariableRef) -> Value {
    let mut component = json!({"name": var.component});
    if let Some(instance) = &var.component_instance {
        component["instance"] = json!(instance);
    }
    if let Some(evse) = var.evse {
        component["evse"] = json!({"id": evse});
    }
    component
}

pub(crate) fn variable_json(var: &VariableRef) -> Value {
    let mut variable = json!({"name": var.variable});
    if let Some(instance) = &var.variable_instance {
        variable["instance"] = json!(instance);
    }
    variable
}

fn set_variable_data(var: &VariableRef, value: &str) -> Value {
    let mut data = json!({"attributeValue": value, "component": component_json(var), "variable": variable_json(var)});
    if let Some(attribute) = &var.attribute {
        data["attributeType"] = json!(attribute);
    }
    data
}

/// The CALL that installs this certificate.
pub fn certificate(version: Version, cert: &InstallCertificateRecord) -> Planned {
    let item = WorkItemRef::Certificate(cert.certificate_id.clone());
    let pem = &cert.certificate;
    Ok(match (version, cert.certificate_use) {
        (Version::V201, use_) => {
            let certificate_type = match use_ {
                CertificateUse::V2G => "V2GRootCertificate",
                CertificateUse::MO => "MORootCertificate",
                CertificateUse::MF => "ManufacturerRootCertificate",
                CertificateUse::CSMS => "CSMSRootCertificate",
            };
            work(
                "InstallCertificate",
                json!({"certificateType": certificate_type, "certificate": pem}),
                item,
            )
        }
        (Version::V16, CertificateUse::CSMS) => work(
            "InstallCertificate",
            json!({"certificateType": "CentralSystemRootCertificate", "certificate": pem}),
            item,
        ),
        (Version::V16, CertificateUse::MF) => work(
            "InstallCertificate",
            json!({"certificateType": "ManufacturerRootCertificate", "certificate": pem}),
            item,
        ),
        (Version::V16, use_) => {
            let certificate_type = if use_ == CertificateUse::V2G {
                "V2GRootCertificate"
            } else {
                "MORootCertificate"
            };
            let data = json!({"certificateType": certificate_type, "certificate": pem});
            work("DataTransfer", pnc("InstallCertificate", &data), item)
        }
    })
}

fn pnc(message_id: &str, data: &Value) -> Value {
    json!({"vendorId": PNC_VENDOR_ID, "messageId": message_id, "data": data.to_string()})
}

/// The CALL that asks for this trigger.
pub fn trigger(version: Version, trigger: &TriggerRecord) -> Planned {
    let item = WorkItemRef::Trigger(trigger.seq);
    let name = match trigger.trigger {
        TriggerMessage::BootNotification => "BootNotification",
        TriggerMessage::StatusNotification => "StatusNotification",
        TriggerMessage::SignV2GCertificate => "SignV2GCertificate",
        TriggerMessage::SignChargingStationCertificate => "SignChargingStationCertificate",
        TriggerMessage::SignCombinedCertificate => "SignCombinedCertificate",
    };
    // The EVSE or connector asked about: 2.0.1 `evse {id, connectorId}`
    // (a connector needs its EVSE); 1.6 `connectorId` (station-wide).
    let mut request = json!({ "requestedMessage": name });
    match version {
        Version::V201 => match (trigger.evse_id, trigger.connector_id) {
            (Some(evse), connector) => {
                request["evse"] = json!({ "id": evse });
                if let Some(connector) = connector {
                    request["evse"]["connectorId"] = json!(connector);
                }
            }
            (None, Some(_)) => {
                let why = "OCPP 2.0.1 names a connector within an EVSE: evseId is missing";
                return Err(not_supported(item, Utc::now(), why.to_owned()));
            }
            (None, None) => {}
        },
        Version::V16 => {
            if let Some(connector) = trigger.connector_id.or(trigger.evse_id) {
                request["connectorId"] = json!(connector);
            }
        }
    }
    Ok(match (version, trigger.trigger) {
        (Version::V201, _)
        | (Version::V16, TriggerMessage::BootNotification | TriggerMessage::StatusNotification) => {
            work("TriggerMessage", request, item)
        }
        (Version::V16, TriggerMessage::SignChargingStationCertificate) => work(
            "ExtendedTriggerMessage",
            json!({"requestedMessage": "SignChargePointCertificate"}),
            item,
        ),
        (Version::V16, _) => work(
            "DataTransfer",
            pnc("TriggerMessage", &json!({ "requestedMessage": name })),
            item,
        ),
    })
}

/// The CALL that sets this charging profile.
pub fn charging_profile(
    version: Version,
    record: &ChargingProfileRecord,
    now: DateTime<Utc>,
) -> Planned {
    let item = WorkItemRef::ChargingProfile(record.profile_id);
    match version {
        Version::V201 => Ok(work(
            "SetChargingProfile",
            json!({"evseId": record.evse_id, "chargingProfile": record.profile}),
            item,
        )),
        Version::V16 => match profile_to_v16(&record.profile) {
            Ok(profile) => Ok(work(
                "SetChargingProfile",
                json!({"connectorId": record.evse_id, "csChargingProfiles": profile}),
                item,
            )),
            Err(why) => Err(not_supported(item, now, why)),
        },
    }
}

/// Translates an OCPP 2.0.1 ChargingProfileType into the 1.6 ChargingProfile.
pub(crate) fn profile_to_v16(p: &Value) -> Result<Value, String> {
    let purpose = match p["chargingProfilePurpose"].as_str() {
        Some("ChargingStationMaxProfile") => "ChargePointMaxProfile",
        Some(same @ ("TxDefaultProfile" | "TxProfile")) => same,
        other => {
            return Err(format!(
                "purpose {} has no OCPP 1.6 equivalent",
                other.unwrap_or("?")
            ))
        }
    };
    let schedules = p["chargingSchedule"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [schedule] = schedules else {
        return Err("OCPP 1.6 takes exactly one charging schedule".to_owned());
    };
    let mut out = Map::new();
    out.insert("chargingProfileId".into(), p["id"].clone());
    out.insert("stackLevel".into(), p["stackLevel"].clone());
    out.insert("chargingProfilePurpose".into(), json!(purpose));
    out.insert(
        "chargingProfileKind".into(),
        p["chargingProfileKind"].clone(),
    );
    for field in ["recurrencyKind", "validFrom", "validTo"] {
        if let Some(v) = p.get(field) {
            out.insert(field.into(), v.clone());
        }
    }
    if let Some(tx) = p.get("transactionId") {
        let id = tx
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or("OCPP 1.6 transaction ids are integers")?;
        out.insert("transactionId".into(), json!(id));
    }
    let mut sched = Map::new();
    for field in [
        "duration",
        "startSchedule",
        "chargingRateUnit",
        "minChargingRate",
    ] {
        if let Some(v) = schedule.get(field) {
            sched.insert(field.into(), v.clone());
        }
    }
    let periods: Vec<Value> = schedule["chargingSchedulePeriod"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|period| {
            let mut p16 = json!({"startPeriod": period["startPeriod"], "limit": period["limit"]});
            if let Some(n) = period.get("numberPhases") {
                p16["numberPhases"] = n.clone();
            }
            p16
        })
        .collect();
    sched.insert("chargingSchedulePeriod".into(), Value::Array(periods));
    out.insert("chargingSchedule".into(), Value::Object(sched));
    Ok(Value::Object(out))
}

/// The reset that applies settings answered `RebootRequired`.
pub fn reset(version: Version) -> OutboundCall<Purpose> {
    let kind = match version {
        Version::V16 => "Soft",
        Version::V201 => "OnIdle",
    };
    OutboundCall {
        action: "Reset",
        payload: json!({ "type": kind }),
        tag: Purpose::Reset,
    }
}

/// The trigger that makes a station answered `Pending` boot again once it is configured.
pub fn reboot_trigger() -> OutboundCall<Purpose> {
    OutboundCall {
        action: "TriggerMessage",
        payload: json!({"requestedMessage": "BootNotification"}),
        tag: Purpose::Reboot,
    }
}

fn status_of(word: &str) -> DeliveryStatus {
    match word {
        "Accepted" => DeliveryStatus::Accepted,
        "RebootRequired" => DeliveryStatus::RebootRequired,
        "NotSupported"
        | "UnknownComponent"
        | "UnknownVariable"
        | "NotSupportedAttributeType"
        | "UnknownMessageId"
        | "UnknownVendorId" => DeliveryStatus::NotSupported,
        "NotImplemented" => DeliveryStatus::NotImplemented,
        _ => DeliveryStatus::Rejected,
    }
}

fn delivery(status: DeliveryStatus, now: DateTime<Utc>, detail: Option<String>) -> Delivery {
    Delivery {
        status,
        updated_at: now,
        detail,
    }
}

/// What the station's answer means for each item the CALL carried.
pub fn outcome(
    items: &[WorkItemRef],
    action: &str,
    sent: &Value,
    answer: &CallOutcome,
    now: DateTime<Utc>,
    timeout_secs: u64,
) -> Vec<(WorkItemRef, Delivery)> {
    let all = |d: Delivery| {
        items
            .iter()
            .map(|i| (i.clone(), d.clone()))
            .collect::<Vec<_>>()
    };
    match answer {
        CallOutcome::Timeout => all(delivery(
            DeliveryStatus::Failed,
            now,
            Some(format!("no answer within {timeout_secs} s")),
        )),
        CallOutcome::Invalid(why) => all(delivery(
            DeliveryStatus::Failed,
            now,
            Some(format!("invalid answer: {why}")),
        )),
        CallOutcome::Error { code, description } => {
            let status = match code.as_str() {
                "NotImplemented" => DeliveryStatus::NotImplemented,
                "NotSupported" => DeliveryStatus::NotSupported,
                _ => DeliveryStatus::Failed,
            };
            all(delivery(
                status,
                now,
                Some(format!("{code}: {description}")),
            ))
        }
        CallOutcome::Result(payload) if action == "SetVariables" => {
            set_variables_outcome(items, sent, payload, now)
        }
        CallOutcome::Result(payload) if action == "DataTransfer" => {
            let status = payload["status"].as_str().unwrap_or("Rejected");
            // The PnC answer carries the inner message's status in `data`.
            let inner = payload["data"]
                .as_str()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .and_then(|d| d["status"].as_str().map(str::to_owned));
            let word = if status == "Accepted" {
                inner.unwrap_or_else(|| status.to_owned())
            } else {
                status.to_owned()
            };
            all(delivery(
                status_of(&word),
                now,
                (word != "Accepted").then_some(word.clone()),
            ))
        }
        CallOutcome::Result(payload) => {
            let word = payload["status"].as_str().unwrap_or("Rejected");
            let detail = payload["statusInfo"]["reasonCode"]
                .as_str()
                .map(str::to_owned);
            all(delivery(
                status_of(word),
                now,
                detail.or_else(|| (word != "Accepted").then(|| word.to_owned())),
            ))
        }
    }
}

/// Matches each setVariableResult to the key that asked for it.
fn set_variables_outcome(
    items: &[WorkItemRef],
    sent: &Value,
    answer: &Value,
    now: DateTime<Utc>,
) -> Vec<(WorkItemRef, Delivery)> {
    let identity = |v: &Value| {
        (
            v["component"]["name"].clone(),
            v["component"]["instance"].clone(),
            v["component"]["evse"]["id"].clone(),
            v["variable"]["name"].clone(),
            v["variable"]["instance"].clone(),
            v["attributeType"].as_str().unwrap_or("Actual").to_owned(),
        )
    };
    let results = answer["setVariableResult"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let requested = sent["setVariableData"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    items
        .iter()
        .zip(requested)
        .map(|(item, request)| {
            let wanted = identity(request);
            let d = match results.iter().find(|r| identity(r) == wanted) {
                Some(r) => {
                    let word = r["attributeStatus"].as_str().unwrap_or("Rejected");
                    delivery(
                        status_of(word),
                        now,
                        (word != "Accepted").then(|| word.to_owned()),
                    )
                }
                None => delivery(
                    DeliveryStatus::Failed,
                    now,
                    Some("no result for this variable".to_owned()),
                ),
            };
            (item.clone(), d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocpp::schema::{check, Direction};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn setting(key: &str, value: &str) -> SettingRecord {
        SettingRecord {
            key: key.into(),
            value: value.into(),
            delivery: Delivery::pending(now()),
        }
    }

    fn valid(version: Version, call: &OutboundCall<Purpose>) {
        assert_eq!(
            check(version, call.action, Direction::Request, &call.payload),
            Ok(()),
            "{} {}",
            call.action,
            call.payload
        );
    }

    #[test]
    fn v16_settings_are_one_change_configuration_each() {
        let planned = settings(
            Version::V16,
            &[setting("A", "1"), setting("B", "2"), setting("C/V", "3")],
            now(),
        );
        assert_eq!(planned.len(), 3);
        let calls: Vec<_> = planned.iter().filter_map(|p| p.as_ref().ok()).collect();
        assert_eq!(calls.len(), 2);
        calls.iter().for_each(|c| valid(Version::V16, c));
        assert_eq!(calls[0].payload, json!({"key": "A", "value": "1"}));
        let refused = planned.iter().find_map(|p| p.as_ref().err()).unwrap();
        assert_eq!(refused.0, WorkItemRef::Setting("C/V".into()));
        assert_eq!(refused.1.status, DeliveryStatus::NotSupported);
    }

    #[test]
    fn v201_settings_are_one_set_variables_and_answers_map_back() {
        let records = [
            setting("OCPPCommCtrlr/HeartbeatInterval", "60"),
            setting("EVSE;2/Power;MaxSet", "7000"),
        ];
        let planned = settings(Version::V201, &records, now());
        let call = planned[0].as_ref().unwrap();
        valid(Version::V201, call);
        assert_eq!(
            call.payload["setVariableData"][1]["component"],
            json!({"name": "EVSE", "evse": {"id": 2}})
        );
        assert_eq!(
            call.payload["setVariableData"][1]["attributeType"],
            "MaxSet"
        );
        let answer = json!({"setVariableResult": [
            {"attributeType": "MaxSet", "attributeStatus": "Rejected", "component": {"name": "EVSE", "evse": {"id": 2}}, "variable": {"name": "Power"}},
            {"attributeStatus": "RebootRequired", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        ]});
        let Purpose::Work(items) = &call.tag else {
            panic!()
        };
        let result = outcome(
            items,
            "SetVariables",
            &call.payload,
            &CallOutcome::Result(answer),
            now(),
            30,
        );
        assert_eq!(result[0].1.status, DeliveryStatus::RebootRequired);
        assert_eq!(result[1].1.status, DeliveryStatus::Rejected);
    }

    #[test]
    fn certificates_and_triggers_fit_the_request_schemas() {
        let pem = include_str!("../../tests/fixtures/cert.pem").to_owned();
        for certificate_use in [
            CertificateUse::V2G,
            CertificateUse::MO,
            CertificateUse::MF,
            CertificateUse::CSMS,
        ] {
            let cert = InstallCertificateRecord {
                certificate_id: "id".into(),
                certificate_use,
                certificate: pem.clone(),
                delivery: Delivery::pending(now()),
            };
            for version in [Version::V16, Version::V201] {
                valid(version, &certificate(version, &cert).unwrap());
            }
        }
        for t in [
            TriggerMessage::BootNotification,
            TriggerMessage::StatusNotification,
            TriggerMessage::SignV2GCertificate,
            TriggerMessage::SignChargingStationCertificate,
            TriggerMessage::SignCombinedCertificate,
        ] {
            let record = TriggerRecord {
                seq: 1,
                trigger: t,
                evse_id: None,
                connector_id: None,
                delivery: Delivery::pending(now()),
            };
            for version in [Version::V16, Version::V201] {
                valid(version, &trigger(version, &record).unwrap());
            }
        }
        for version in [Version::V16, Version::V201] {
            valid(version, &reset(version));
        }
        valid(Version::V16, &reboot_trigger());
        valid(Version::V201, &reboot_trigger());
    }

    #[test]
    fn charging_profiles_translate_to_v16() {
        let profile = json!({"id": 3, "stackLevel": 1, "chargingProfilePurpose": "ChargingStationMaxProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "startSchedule": "2026-11-21T00:00:00Z", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}]}]});
        let record = ChargingProfileRecord {
            profile_id: 3,
            evse_id: 0,
            profile,
            delivery: Delivery::pending(now()),
        };
        for version in [Version::V16, Version::V201] {
            valid(version, &charging_profile(version, &record, now()).unwrap());
        }
        let v16 = charging_profile(Version::V16, &record, now()).unwrap();
        assert_eq!(
            v16.payload["csChargingProfiles"]["chargingProfilePurpose"],
            "ChargePointMaxProfile"
        );
        assert_eq!(
            v16.payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]
                ["limit"],
            16.0
        );

        let mut external = record.clone();
        external.profile["chargingProfilePurpose"] = json!("ChargingStationExternalConstraints");
        let (_, d) = charging_profile(Version::V16, &external, now()).unwrap_err();
        assert_eq!(d.status, DeliveryStatus::NotSupported);
    }

    #[test]
    fn answers_become_delivery_statuses() {
        let items = [WorkItemRef::Trigger(1)];
        let check = |answer: CallOutcome| {
            outcome(&items, "TriggerMessage", &json!({}), &answer, now(), 30)[0]
                .1
                .clone()
        };
        assert_eq!(
            check(CallOutcome::Result(json!({"status": "Accepted"}))).status,
            DeliveryStatus::Accepted
        );
        assert_eq!(
            check(CallOutcome::Result(json!({"status": "NotImplemented"}))).status,
            DeliveryStatus::NotImplemented
        );
        let timeout = check(CallOutcome::Timeout);
        assert_eq!(
            (timeout.status, timeout.detail.as_deref()),
            (DeliveryStatus::Failed, Some("no answer within 30 s"))
        );
        let error = check(CallOutcome::Error {
            code: "NotSupported".into(),
            description: "no".into(),
        });
        assert_eq!(error.status, DeliveryStatus::NotSupported);
        let pnc = outcome(
            &items,
            "DataTransfer",
            &json!({}),
            &CallOutcome::Result(
                json!({"status": "Accepted", "data": "{\"status\":\"Rejected\"}"}),
            ),
            now(),
            30,
        );
        assert_eq!(pnc[0].1.status, DeliveryStatus::Rejected);
    }
}
