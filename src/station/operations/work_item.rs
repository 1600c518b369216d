//! MaEVe's four queueing endpoints (reconfigure, certificates, trigger,
//! setchargingprofile) as version-neutral commands. Pure: no actor, no store.
//!
//! Their callers may queue work for a station that has never connected, so
//! the OCPP version is not known when the command is stored. The command
//! keeps the item as its payload (a [`WorkItem`]) and is written for the
//! station's version when it is sent:
//!
//! * a setting: 1.6 `ChangeConfiguration`; 2.0.1 `SetVariables` (names
//!   parsed by `ocpp::setting_key`);
//! * a certificate: 2.0.1 `InstallCertificate`; 1.6 `InstallCertificate` of
//!   the security extension for CSMS and manufacturer roots, and the
//!   `org.openchargealliance.iso15118pnc` DataTransfer for V2G and MO roots;
//! * a trigger: `TriggerMessage`; on 1.6 the charge point certificate
//!   through `ExtendedTriggerMessage` and the V2G ones through the PnC
//!   DataTransfer;
//! * a charging profile: `SetChargingProfile`, translated to the 1.6 shape.
//!
//! The station's answer becomes a per-item [`Delivery`] (the MaEVe reply)
//! and the command's status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::charging_profiles::profile_to_v16;
use super::configuration::{component_json, variable_json};
use super::outcome;
use crate::ocpp::setting_key::{SettingKey, VariableRef};
use crate::ocpp::Version;
use crate::station::session::CallOutcome;
use crate::store::{
    CertificateUse, CommandError, CommandRecord, CommandStatus, Delivery, DeliveryClass,
    DeliveryStatus, TriggerMessage,
};

const PNC_VENDOR_ID: &str = "org.openchargealliance.iso15118pnc";

/// The operations (command `operation` names) whose payload is a [`WorkItem`].
pub const OPERATIONS: [&str; 4] = [
    "reconfigure",
    "certificates",
    "trigger",
    "setchargingprofile",
];

/// One piece of work queued through MaEVe's endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "item",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum WorkItem {
    /// A configuration key (1.6) or `Component/Variable` name (2.0.1) and its value.
    Setting {
        /// The setting's name.
        key: String,
        /// Its value.
        value: String,
    },
    /// A root certificate to install.
    Certificate {
        /// base64url SHA-256 of its DER.
        certificate_id: String,
        /// What it is for.
        #[serde(rename = "type")]
        certificate_use: CertificateUse,
        /// The PEM text.
        certificate: String,
    },
    /// A message the station is to send.
    Trigger {
        /// Which message.
        trigger: TriggerMessage,
        /// About this EVSE only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evse_id: Option<u32>,
        /// About this connector only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connector_id: Option<u32>,
    },
    /// An OCPP 2.0.1 ChargingProfileType for an EVSE (0: the whole station).
    ChargingProfile {
        /// The profile's own id.
        profile_id: i64,
        /// The EVSE it applies to.
        evse_id: u32,
        /// The profile.
        profile: Value,
    },
}

impl WorkItem {
    /// The item a command carries, when it is one of MaEVe's.
    pub fn of(command: &CommandRecord) -> Option<WorkItem> {
        if !Self::carried_by(command) {
            return None;
        }
        WorkItem::deserialize(&command.payload).ok()
    }

    /// The kind and name of the item a command carries (as [`Self::kind`]
    /// and [`Self::name`]), read from its payload without decoding it all.
    pub fn label_of(command: &CommandRecord) -> Option<(&'static str, Option<String>)> {
        let field = |name: &str| command.payload[name].as_str().map(str::to_owned);
        Some(match command.operation.as_str() {
            "reconfigure" => ("setting", field("key")),
            "certificates" => ("certificate", field("certificateId")),
            "trigger" => ("trigger", None),
            "setchargingprofile" => (
                "chargingProfile",
                command.payload["profileId"]
                    .as_i64()
                    .map(|id| id.to_string()),
            ),
            _ => return None,
        })
    }

    /// Whether the command is one of MaEVe's items (without reading it).
    pub fn carried_by(command: &CommandRecord) -> bool {
        OPERATIONS.contains(&command.operation.as_str())
    }

    /// The endpoint (and command operation) that queues it.
    pub fn operation(&self) -> &'static str {
        match self {
            WorkItem::Setting { .. } => "reconfigure",
            WorkItem::Certificate { .. } => "certificates",
            WorkItem::Trigger { .. } => "trigger",
            WorkItem::ChargingProfile { .. } => "setchargingprofile",
        }
    }

    /// The kind MaEVe's replies name (`setting`, `certificate`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            WorkItem::Setting { .. } => "setting",
            WorkItem::Certificate { .. } => "certificate",
            WorkItem::Trigger { .. } => "trigger",
            WorkItem::ChargingProfile { .. } => "chargingProfile",
        }
    }

    /// The name of the item within its kind: the setting key, certificate
    /// id or profile id; None for a trigger (named by its command id).
    pub fn name(&self) -> Option<String> {
        match self {
            WorkItem::Setting { key, .. } => Some(key.clone()),
            WorkItem::Certificate { certificate_id, .. } => Some(certificate_id.clone()),
            WorkItem::Trigger { .. } => None,
            WorkItem::ChargingProfile { profile_id, .. } => Some(profile_id.to_string()),
        }
    }

    /// Settings and certificates configure the station: one that has some
    /// not yet applied is answered `Pending` at boot, and gets them then.
    pub fn configures(&self) -> bool {
        matches!(
            self,
            WorkItem::Setting { .. } | WorkItem::Certificate { .. }
        )
    }

    /// Triggers and charging profiles wait for an accepted boot; settings
    /// and certificates also go to a station answered `Pending`.
    pub fn needs_accepted_boot(&self) -> bool {
        !self.configures()
    }

    /// The pending command that carries this item: configuration-like (it
    /// waits for an offline station's next boot, without expiry), with no
    /// version or action until it is sent.
    pub fn command(&self, station_id: &str, now: DateTime<Utc>) -> CommandRecord {
        let payload = serde_json::to_value(self).expect("a work item serializes");
        let mut command = CommandRecord::pending(
            station_id,
            self.operation(),
            "",
            None,
            payload,
            DeliveryClass::Configuration,
            now,
        );
        command.delivery = Some(Delivery::pending(now));
        command
    }

    /// The CALL (action and payload) that carries the item to a station of
    /// `version`, or why it cannot.
    pub fn plan(&self, version: Version) -> Result<(&'static str, Value), String> {
        match self {
            WorkItem::Setting { key, value } => setting(version, key, value),
            WorkItem::Certificate {
                certificate_use,
                certificate,
                ..
            } => Ok(install_certificate(version, *certificate_use, certificate)),
            WorkItem::Trigger {
                trigger,
                evse_id,
                connector_id,
            } => trigger_message(version, *trigger, *evse_id, *connector_id),
            WorkItem::ChargingProfile {
                evse_id, profile, ..
            } => set_charging_profile(version, *evse_id, profile),
        }
    }
}

fn setting(version: Version, key: &str, value: &str) -> Result<(&'static str, Value), String> {
    match (
        version,
        SettingKey::parse(key, value).map_err(|e| e.to_string())?,
    ) {
        (Version::V16, SettingKey::V16(key)) => {
            Ok(("ChangeConfiguration", json!({"key": key, "value": value})))
        }
        (Version::V201, SettingKey::V201(var)) => Ok((
            "SetVariables",
            json!({ "setVariableData": [set_variable_data(&var, value)] }),
        )),
        _ => Err(format!("not an OCPP {} setting name", version.label())),
    }
}

fn set_variable_data(var: &VariableRef, value: &str) -> Value {
    let mut data = json!({"attributeValue": value, "component": component_json(var), "variable": variable_json(var)});
    if let Some(attribute) = &var.attribute {
        data["attributeType"] = json!(attribute);
    }
    data
}

fn install_certificate(
    version: Version,
    certificate_use: CertificateUse,
    pem: &str,
) -> (&'static str, Value) {
    match (version, certificate_use) {
        (Version::V201, use_) => {
            let certificate_type = match use_ {
                CertificateUse::V2G => "V2GRootCertificate",
                CertificateUse::MO => "MORootCertificate",
                CertificateUse::MF => "ManufacturerRootCertificate",
                CertificateUse::CSMS => "CSMSRootCertificate",
            };
            (
                "InstallCertificate",
                json!({"certificateType": certificate_type, "certificate": pem}),
            )
        }
        (Version::V16, CertificateUse::CSMS) => (
            "InstallCertificate",
            json!({"certificateType": "CentralSystemRootCertificate", "certificate": pem}),
        ),
        (Version::V16, CertificateUse::MF) => (
            "InstallCertificate",
            json!({"certificateType": "ManufacturerRootCertificate", "certificate": pem}),
        ),
        (Version::V16, use_) => {
            let certificate_type = if use_ == CertificateUse::V2G {
                "V2GRootCertificate"
            } else {
                "MORootCertificate"
            };
            let data = json!({"certificateType": certificate_type, "certificate": pem});
            ("DataTransfer", pnc("InstallCertificate", &data))
        }
    }
}

fn pnc(message_id: &str, data: &Value) -> Value {
    json!({"vendorId": PNC_VENDOR_ID, "messageId": message_id, "data": data.to_string()})
}

fn trigger_message(
    version: Version,
    trigger: TriggerMessage,
    evse_id: Option<u32>,
    connector_id: Option<u32>,
) -> Result<(&'static str, Value), String> {
    let name = match trigger {
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
        Version::V201 => match (evse_id, connector_id) {
            (Some(evse), connector) => {
                request["evse"] = json!({ "id": evse });
                if let Some(connector) = connector {
                    request["evse"]["connectorId"] = json!(connector);
                }
            }
            (None, Some(_)) => {
                return Err(
                    "OCPP 2.0.1 names a connector within an EVSE: evseId is missing".to_owned(),
                );
            }
            (None, None) => {}
        },
        Version::V16 => {
            if let Some(connector) = connector_id.or(evse_id) {
                request["connectorId"] = json!(connector);
            }
        }
    }
    Ok(match (version, trigger) {
        (Version::V201, _)
        | (Version::V16, TriggerMessage::BootNotification | TriggerMessage::StatusNotification) => {
            ("TriggerMessage", request)
        }
        (Version::V16, TriggerMessage::SignChargingStationCertificate) => (
            "ExtendedTriggerMessage",
            json!({"requestedMessage": "SignChargePointCertificate"}),
        ),
        (Version::V16, _) => (
            "DataTransfer",
            pnc("TriggerMessage", &json!({ "requestedMessage": name })),
        ),
    })
}

fn set_charging_profile(
    version: Version,
    evse_id: u32,
    profile: &Value,
) -> Result<(&'static str, Value), String> {
    Ok(match version {
        Version::V201 => (
            "SetChargingProfile",
            json!({"evseId": evse_id, "chargingProfile": profile}),
        ),
        Version::V16 => (
            "SetChargingProfile",
            json!({"connectorId": evse_id, "csChargingProfiles": profile_to_v16(profile)?}),
        ),
    })
}

/// The command status a delivery status stands for.
fn command_status(delivery: DeliveryStatus) -> CommandStatus {
    match delivery {
        DeliveryStatus::Pending => CommandStatus::Pending,
        DeliveryStatus::Accepted | DeliveryStatus::RebootRequired => CommandStatus::Accepted,
        DeliveryStatus::Rejected | DeliveryStatus::NotSupported => CommandStatus::Rejected,
        DeliveryStatus::NotImplemented | DeliveryStatus::Failed => CommandStatus::Failed,
    }
}

/// Settles the command of an item, sent as `action` with payload `sent` to
/// a station of `version`, with the station's answer; answers how the item
/// stands.
pub fn settle(
    command: &mut CommandRecord,
    version: Version,
    action: &'static str,
    sent: &Value,
    answer: CallOutcome,
    now: DateTime<Utc>,
    timeout_secs: u64,
) -> Delivery {
    let mut delivery = delivery_of_answer(action, sent, &answer, timeout_secs);
    delivery.updated_at = now;
    outcome::settle(command, answer, now, timeout_secs);
    // Told as it will read back.
    if let Some(error) = &command.error {
        delivery = delivery_of_error(error, now);
    }
    command.status = command_status(delivery.status);
    command.action = action.to_owned();
    command.version = Some(version);
    command.delivery = Some(delivery.clone());
    delivery
}

/// Settles the command of an item that cannot be written for `version`.
pub fn refuse(command: &mut CommandRecord, version: Version, why: String, now: DateTime<Utc>) {
    let error = outcome::error("NotSupported", why);
    command.delivery = Some(delivery_of_error(&error, now));
    command.settle(CommandStatus::Failed, None, Some(error), now);
    command.version = Some(version);
}

/// The command of an item whose outcome the caller already knows (MaEVe's
/// certificate `status`): settled at once, never sent.
pub fn known(mut command: CommandRecord, accepted: bool) -> CommandRecord {
    let (status, told) = if accepted {
        (CommandStatus::Accepted, DeliveryStatus::Accepted)
    } else {
        (CommandStatus::Rejected, DeliveryStatus::Rejected)
    };
    let at = command.created_at;
    command.settle(status, None, None, at);
    command.delivery = Some(Delivery {
        status: told,
        updated_at: at,
        detail: None,
    });
    command
}

/// How the item of `command` stands, as MaEVe's replies show it (None for
/// a command that is not one of MaEVe's items). A pending item past its
/// expiry reads as failed.
pub fn delivery(command: &CommandRecord) -> Option<Delivery> {
    if command.status == CommandStatus::Expired {
        return Some(Delivery {
            status: DeliveryStatus::Failed,
            updated_at: command.updated_at,
            detail: Some("expired before it was sent".into()),
        });
    }
    command.delivery.clone()
}

/// How an item whose command failed with `error` stands.
fn delivery_of_error(error: &CommandError, at: DateTime<Utc>) -> Delivery {
    let status = match error.code.as_str() {
        "NotImplemented" => DeliveryStatus::NotImplemented,
        "NotSupported" => DeliveryStatus::NotSupported,
        _ => DeliveryStatus::Failed,
    };
    Delivery {
        status,
        updated_at: at,
        detail: Some(format!("{}: {}", error.code, error.description)),
    }
}

fn status_word(word: &str) -> DeliveryStatus {
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

/// What the station's answer to the item's CALL (`sent`) means for it.
/// The instant is left at the epoch: callers stamp it.
fn delivery_of_answer(
    action: &str,
    sent: &Value,
    answer: &CallOutcome,
    timeout_secs: u64,
) -> Delivery {
    let make = |status, detail: Option<String>| Delivery {
        status,
        updated_at: DateTime::<Utc>::UNIX_EPOCH,
        detail,
    };
    let from_word = |word: &str, detail: Option<String>| {
        make(
            status_word(word),
            detail.or_else(|| (word != "Accepted").then(|| word.to_owned())),
        )
    };
    match answer {
        CallOutcome::Timeout => make(
            DeliveryStatus::Failed,
            Some(format!("no answer within {timeout_secs} s")),
        ),
        CallOutcome::Invalid(why) => make(
            DeliveryStatus::Failed,
            Some(format!("invalid answer: {why}")),
        ),
        CallOutcome::Error { code, description } => {
            let status = match code.as_str() {
                "NotImplemented" => DeliveryStatus::NotImplemented,
                "NotSupported" => DeliveryStatus::NotSupported,
                _ => DeliveryStatus::Failed,
            };
            make(status, Some(format!("{code}: {description}")))
        }
        CallOutcome::Result(payload) if action == "SetVariables" => {
            // One variable was sent: its result is the item's.
            let wanted = variable_identity(&sent["setVariableData"][0]);
            let results = payload["setVariableResult"].as_array();
            match results
                .into_iter()
                .flatten()
                .find(|r| variable_identity(r) == wanted)
            {
                Some(r) => from_word(r["attributeStatus"].as_str().unwrap_or("Rejected"), None),
                None => make(
                    DeliveryStatus::Failed,
                    Some("no result for this variable".to_owned()),
                ),
            }
        }
        CallOutcome::Result(payload) if action == "DataTransfer" => {
            let status = payload["status"].as_str().unwrap_or("Rejected");
            // The PnC answer carries the inner message's status in `data`.
            let inner = payload["data"]
                .as_str()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .and_then(|d| d["status"].as_str().map(str::to_owned));
            let word = match inner {
                Some(inner) if status == "Accepted" => inner,
                _ => status.to_owned(),
            };
            from_word(&word, None)
        }
        CallOutcome::Result(payload) => {
            let word = payload["status"].as_str().unwrap_or("Rejected");
            let reason = payload["statusInfo"]["reasonCode"]
                .as_str()
                .map(str::to_owned);
            from_word(word, reason)
        }
    }
}

/// What names a variable in SetVariables data and results.
fn variable_identity(v: &Value) -> (Value, Value, Value, Value, Value, String) {
    (
        v["component"]["name"].clone(),
        v["component"]["instance"].clone(),
        v["component"]["evse"]["id"].clone(),
        v["variable"]["name"].clone(),
        v["variable"]["instance"].clone(),
        v["attributeType"].as_str().unwrap_or("Actual").to_owned(),
    )
}

/// The reset that applies settings answered `RebootRequired`.
pub fn reset(version: Version) -> (&'static str, Value) {
    let kind = match version {
        Version::V16 => "Soft",
        Version::V201 => "OnIdle",
    };
    ("Reset", json!({ "type": kind }))
}

/// The trigger that makes a station answered `Pending` boot again once it
/// is configured.
pub fn reboot_trigger() -> (&'static str, Value) {
    (
        "TriggerMessage",
        json!({"requestedMessage": "BootNotification"}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocpp::schema::{check, Direction};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn valid(version: Version, (action, payload): &(&'static str, Value)) {
        assert_eq!(
            check(version, action, Direction::Request, payload),
            Ok(()),
            "{action} {payload}"
        );
    }

    fn setting(key: &str, value: &str) -> WorkItem {
        WorkItem::Setting {
            key: key.into(),
            value: value.into(),
        }
    }

    /// The command of `item` answered `answer` by a station of `version`.
    fn answered(item: &WorkItem, version: Version, answer: CallOutcome) -> CommandRecord {
        let mut command = item.command("CS1", now());
        let (action, sent) = item.plan(version).unwrap();
        let told = settle(&mut command, version, action, &sent, answer, now(), 30);
        assert_eq!(Some(told), delivery(&command), "read back as settled");
        command
    }

    #[test]
    fn items_round_trip_through_their_command() {
        let item = WorkItem::Trigger {
            trigger: TriggerMessage::StatusNotification,
            evse_id: Some(1),
            connector_id: None,
        };
        let command = item.command("CS1", now());
        assert_eq!(command.operation, "trigger");
        assert_eq!(command.version, None);
        assert_eq!(command.class, DeliveryClass::Configuration);
        assert_eq!(command.expires_at, None);
        assert_eq!(WorkItem::of(&command), Some(item.clone()));
        assert_eq!(
            WorkItem::label_of(&command),
            Some((item.kind(), item.name()))
        );
        assert_eq!(command.payload["item"], "trigger");
        assert_eq!(command.payload["evseId"], 1);
    }

    #[test]
    fn settings_are_written_per_version() {
        let plan = setting("HeartbeatInterval", "60")
            .plan(Version::V16)
            .unwrap();
        valid(Version::V16, &plan);
        assert_eq!(plan.1, json!({"key": "HeartbeatInterval", "value": "60"}));
        assert!(setting("C/V", "3").plan(Version::V16).is_err());

        let plan = setting("EVSE;2/Power;MaxSet", "7000")
            .plan(Version::V201)
            .unwrap();
        valid(Version::V201, &plan);
        assert_eq!(
            plan.1["setVariableData"][0]["component"],
            json!({"name": "EVSE", "evse": {"id": 2}})
        );
        assert_eq!(plan.1["setVariableData"][0]["attributeType"], "MaxSet");
    }

    #[test]
    fn set_variables_answers_map_to_the_item() {
        let item = setting("OCPPCommCtrlr/HeartbeatInterval", "60");
        let answer = json!({"setVariableResult": [
            {"attributeStatus": "RebootRequired", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        ]});
        let command = answered(&item, Version::V201, CallOutcome::Result(answer));
        assert_eq!(command.status, CommandStatus::Accepted);
        assert_eq!(command.action, "SetVariables");
        assert_eq!(command.version, Some(Version::V201));
        assert_eq!(
            delivery(&command).unwrap().status,
            DeliveryStatus::RebootRequired
        );

        let other = json!({"setVariableResult": [
            {"attributeStatus": "Accepted", "component": {"name": "X"}, "variable": {"name": "Y"}},
        ]});
        let command = answered(&item, Version::V201, CallOutcome::Result(other));
        assert_eq!(command.status, CommandStatus::Failed);
        assert_eq!(delivery(&command).unwrap().status, DeliveryStatus::Failed);

        let unknown = json!({"setVariableResult": [
            {"attributeStatus": "UnknownVariable", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        ]});
        let command = answered(&item, Version::V201, CallOutcome::Result(unknown));
        assert_eq!(command.status, CommandStatus::Rejected);
        assert_eq!(
            delivery(&command).unwrap().status,
            DeliveryStatus::NotSupported
        );
    }

    #[test]
    fn certificates_and_triggers_fit_the_request_schemas() {
        let pem = include_str!("../../../tests/fixtures/cert.pem").to_owned();
        for certificate_use in [
            CertificateUse::V2G,
            CertificateUse::MO,
            CertificateUse::MF,
            CertificateUse::CSMS,
        ] {
            let cert = WorkItem::Certificate {
                certificate_id: "id".into(),
                certificate_use,
                certificate: pem.clone(),
            };
            for version in [Version::V16, Version::V201] {
                valid(version, &cert.plan(version).unwrap());
            }
        }
        for trigger in [
            TriggerMessage::BootNotification,
            TriggerMessage::StatusNotification,
            TriggerMessage::SignV2GCertificate,
            TriggerMessage::SignChargingStationCertificate,
            TriggerMessage::SignCombinedCertificate,
        ] {
            let item = WorkItem::Trigger {
                trigger,
                evse_id: None,
                connector_id: None,
            };
            for version in [Version::V16, Version::V201] {
                valid(version, &item.plan(version).unwrap());
            }
        }
        let connector_only = WorkItem::Trigger {
            trigger: TriggerMessage::StatusNotification,
            evse_id: None,
            connector_id: Some(1),
        };
        assert!(connector_only.plan(Version::V201).is_err());
        valid(Version::V16, &connector_only.plan(Version::V16).unwrap());
        for version in [Version::V16, Version::V201] {
            valid(version, &reset(version));
            valid(version, &reboot_trigger());
        }
    }

    #[test]
    fn charging_profiles_translate_to_v16() {
        let profile = json!({"id": 3, "stackLevel": 1, "chargingProfilePurpose": "ChargingStationMaxProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "startSchedule": "2026-11-21T00:00:00Z", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}]}]});
        let item = WorkItem::ChargingProfile {
            profile_id: 3,
            evse_id: 0,
            profile: profile.clone(),
        };
        for version in [Version::V16, Version::V201] {
            valid(version, &item.plan(version).unwrap());
        }
        let (_, v16) = item.plan(Version::V16).unwrap();
        assert_eq!(
            v16["csChargingProfiles"]["chargingProfilePurpose"],
            "ChargePointMaxProfile"
        );
        let mut external = profile;
        external["chargingProfilePurpose"] = json!("ChargingStationExternalConstraints");
        let external = WorkItem::ChargingProfile {
            profile_id: 3,
            evse_id: 0,
            profile: external,
        };
        let why = external.plan(Version::V16).unwrap_err();
        let mut command = external.command("CS1", now());
        refuse(&mut command, Version::V16, why, now());
        assert_eq!(command.status, CommandStatus::Failed);
        assert_eq!(
            delivery(&command).unwrap().status,
            DeliveryStatus::NotSupported
        );
    }

    #[test]
    fn answers_become_delivery_statuses() {
        let item = WorkItem::Trigger {
            trigger: TriggerMessage::BootNotification,
            evse_id: None,
            connector_id: None,
        };
        let check = |version, answer| {
            let command = answered(&item, version, answer);
            (command.status, delivery(&command).unwrap())
        };
        let v201 = Version::V201;
        let accepted = check(v201, CallOutcome::Result(json!({"status": "Accepted"})));
        assert_eq!(
            (accepted.0, accepted.1.status),
            (CommandStatus::Accepted, DeliveryStatus::Accepted)
        );
        let refused = check(
            v201,
            CallOutcome::Result(json!({"status": "NotImplemented"})),
        );
        assert_eq!(
            (refused.0, refused.1.status),
            (CommandStatus::Failed, DeliveryStatus::NotImplemented)
        );
        let (status, timeout) = check(v201, CallOutcome::Timeout);
        assert_eq!(status, CommandStatus::Failed);
        assert_eq!(timeout.status, DeliveryStatus::Failed);
        assert!(timeout.detail.unwrap().contains("no answer within 30 s"));
        let (_, error) = check(
            v201,
            CallOutcome::Error {
                code: "NotSupported".into(),
                description: "no".into(),
            },
        );
        assert_eq!(error.status, DeliveryStatus::NotSupported);

        let v2g = WorkItem::Trigger {
            trigger: TriggerMessage::SignV2GCertificate,
            evse_id: None,
            connector_id: None,
        };
        let pnc = answered(
            &v2g,
            Version::V16,
            CallOutcome::Result(json!({"status": "Accepted", "data": "{\"status\":\"Rejected\"}"})),
        );
        assert_eq!(pnc.action, "DataTransfer");
        assert_eq!(delivery(&pnc).unwrap().status, DeliveryStatus::Rejected);
        assert_eq!(pnc.status, CommandStatus::Rejected);
    }

    #[test]
    fn known_outcomes_are_settled_unsent() {
        let item = WorkItem::Certificate {
            certificate_id: "id".into(),
            certificate_use: CertificateUse::CSMS,
            certificate: "pem".into(),
        };
        let command = known(item.command("CS1", now()), true);
        assert_eq!(command.status, CommandStatus::Accepted);
        assert_eq!(delivery(&command).unwrap().status, DeliveryStatus::Accepted);
        let command = known(item.command("CS1", now()), false);
        assert_eq!(delivery(&command).unwrap().status, DeliveryStatus::Rejected);
    }
}
