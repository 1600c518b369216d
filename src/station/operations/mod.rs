//! CSMS-initiated operations: what an operator asks for, as the OCPP CALL
//! for the station's version. Pure: no actor, no store, no clock.
//!
//! * [`catalog`]: the actions each version lets a CSMS send, with their
//!   delivery class (configuration-like or immediate);
//! * [`raw`]: any of those actions with a payload written by the caller;
//! * one module per typed operation (`reset`, `remote_start`, ...): a
//!   version-neutral JSON body translated into the 1.6 or 2.0.1 CALL;
//! * [`work_item`]: MaEVe's queued settings, certificates, triggers and
//!   charging profiles, written for the version when they are sent;
//! * [`outcome`]: the station's answer as a command status.
//!
//! Every CALL an operation produces is checked against the official request
//! schema before it is stored, so a value the station would refuse (say a
//! negative connector id) is the caller's 400, not the station's CALLERROR.

pub mod availability;
pub mod catalog;
pub mod charging_profiles;
pub mod clear_cache;
pub mod configuration;
pub mod dispatch;
pub mod firmware;
pub mod installed_certificates;
pub mod local_list;
pub mod logs;
pub mod outcome;
pub mod raw;
pub mod remote_start;
pub mod remote_stop;
pub mod reservations;
pub mod reset;
pub mod unlock;
pub mod work_item;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ocpp::schema::{self, Direction};
use crate::ocpp::Version;
use crate::store::DeliveryClass;

/// A CALL ready to store and send.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The action (a name from [`catalog`]).
    pub action: &'static str,
    /// The payload, valid against the action's request schema.
    pub payload: Value,
    /// When it may be sent.
    pub class: DeliveryClass,
}

/// Why an operation cannot become a CALL for this station (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Untranslatable(pub String);

/// A version-neutral operation: its REST body and its CALL per version.
pub trait Operation: DeserializeOwned {
    /// The name commands record (`reset`, `remote-start`, ...).
    const NAME: &'static str;

    /// The action and payload for a station of `version`.
    fn translate(
        &self,
        version: Version,
        numbers: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable>;
}

/// The checked CALL of `operation` for a station of `version`.
/// `numbers` hands out the request, reservation and remote-start ids the
/// CSMS assigns.
pub fn plan<O: Operation>(
    operation: &O,
    version: Version,
    numbers: &mut dyn FnMut() -> i32,
) -> Result<Call, Untranslatable> {
    let (action, payload) = operation.translate(version, numbers)?;
    checked(version, action, payload)
}

/// Plans the typed operation named `name` (its REST name, e.g. `reset`)
/// from its JSON body; returns the operation's static name with the CALL.
/// For callers that name the operation in data (the fan-out).
pub fn plan_named(
    name: &str,
    body: &Value,
    version: Version,
    numbers: &mut dyn FnMut() -> i32,
) -> Result<(&'static str, Call), Untranslatable> {
    fn with<O: Operation>(
        body: &Value,
        version: Version,
        numbers: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Call), Untranslatable> {
        let body = if body.is_null() {
            serde_json::json!({})
        } else {
            body.clone()
        };
        let operation: O = serde_path_to_error::deserialize(body)
            .map_err(|e| Untranslatable(format!("invalid payload for {}: {e}", O::NAME)))?;
        Ok((O::NAME, plan(&operation, version, numbers)?))
    }
    match name {
        reset::Reset::NAME => with::<reset::Reset>(body, version, numbers),
        remote_start::RemoteStart::NAME => {
            with::<remote_start::RemoteStart>(body, version, numbers)
        }
        remote_stop::RemoteStop::NAME => with::<remote_stop::RemoteStop>(body, version, numbers),
        unlock::Unlock::NAME => with::<unlock::Unlock>(body, version, numbers),
        availability::Availability::NAME => {
            with::<availability::Availability>(body, version, numbers)
        }
        clear_cache::ClearCache::NAME => with::<clear_cache::ClearCache>(body, version, numbers),
        configuration::ReadConfiguration::NAME => {
            with::<configuration::ReadConfiguration>(body, version, numbers)
        }
        firmware::Firmware::NAME => with::<firmware::Firmware>(body, version, numbers),
        logs::Logs::NAME => with::<logs::Logs>(body, version, numbers),
        reservations::Reserve::NAME => with::<reservations::Reserve>(body, version, numbers),
        reservations::CancelReservation::NAME => {
            with::<reservations::CancelReservation>(body, version, numbers)
        }
        charging_profiles::ClearProfiles::NAME => {
            with::<charging_profiles::ClearProfiles>(body, version, numbers)
        }
        charging_profiles::ReadProfiles::NAME => {
            with::<charging_profiles::ReadProfiles>(body, version, numbers)
        }
        charging_profiles::CompositeSchedule::NAME => {
            with::<charging_profiles::CompositeSchedule>(body, version, numbers)
        }
        installed_certificates::ReadInstalledCertificates::NAME => {
            with::<installed_certificates::ReadInstalledCertificates>(body, version, numbers)
        }
        other => Err(Untranslatable(format!(
            "unknown operation {other:?}; operations: ocpp, {}",
            TYPED.join(", ")
        ))),
    }
}

/// The typed operations' names, as `plan_named` takes them.
pub const TYPED: &[&str] = &[
    "reset",
    "remote-start",
    "remote-stop",
    "unlock",
    "availability",
    "clear-cache",
    "configuration-read",
    "firmware",
    "logs",
    "reserve",
    "cancel-reservation",
    "charging-profiles-clear",
    "charging-profiles-read",
    "composite-schedule",
    "installed-certificates-read",
];

/// `payload` as the CALL of `action`, when the action is one a CSMS may
/// send to `version` and the payload fits its request schema.
pub fn checked(version: Version, action: &str, payload: Value) -> Result<Call, Untranslatable> {
    let (action, class) = catalog::find(version, action).ok_or_else(|| {
        Untranslatable(format!(
            "{action} is not an action a CSMS sends to an OCPP {} station; accepted: {}",
            version.label(),
            catalog::actions(version).collect::<Vec<_>>().join(", ")
        ))
    })?;
    schema::check(version, action, Direction::Request, &payload).map_err(|v| {
        Untranslatable(format!(
            "payload of {action} (OCPP {}) breaks the official schema at {}",
            version.label(),
            v.message
        ))
    })?;
    Ok(Call {
        action,
        payload,
        class,
    })
}

/// A number for the ids the CSMS assigns (remoteStartId, requestId,
/// reservationId): positive, increasing within a process, and started from
/// the clock so a restart does not begin again at the same value.
pub fn next_number() -> i32 {
    static NEXT: OnceLock<AtomicI32> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        // Seconds since 2026-01-01, folded into the positive i32 range.
        let seconds = Utc::now().timestamp() - 1_767_225_600;
        AtomicI32::new((seconds.rem_euclid(1 << 30)) as i32 + 1)
    });
    let n = next.fetch_add(1, Ordering::Relaxed);
    if n <= 0 {
        next.store(2, Ordering::Relaxed);
        1
    } else {
        n
    }
}

/// The 1.6 form of an operation that OCPP 1.6 cannot express.
pub(crate) fn not_in_v16(what: &str) -> Untranslatable {
    Untranslatable(format!("OCPP 1.6 has no {what}"))
}

/// `{"idToken": id, "type": kind}`, the 2.0.1 IdTokenType.
pub(crate) fn id_token(id: &str, kind: Option<&str>) -> Value {
    serde_json::json!({"idToken": id, "type": kind.unwrap_or("Central")})
}

/// Sets `field` to `value` when there is one.
pub(crate) fn put<T: serde::Serialize>(payload: &mut Value, field: &str, value: Option<T>) {
    if let Some(value) = value {
        payload[field] = serde_json::json!(value);
    }
}

/// An RFC 3339 timestamp as OCPP writes it.
pub(crate) fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_name_plans_its_operation() {
        let bodies = serde_json::json!({
            "reset": {"type": "Hard"},
            "remote-start": {"idToken": "T"},
            "remote-stop": {"transactionId": "1"},
            "unlock": {"evseId": 1, "connectorId": 1},
            "availability": {"operative": true},
            "clear-cache": null,
            "configuration-read": {},
            "firmware": {"location": "https://x/fw", "retrieveDate": "2026-12-01T00:00:00Z"},
            "logs": {"remoteLocation": "https://x/logs"},
            "reserve": {"idToken": "T", "expiryDate": "2026-12-01T00:00:00Z", "evseId": 1},
            "cancel-reservation": {"reservationId": 1},
            "charging-profiles-clear": {},
            "charging-profiles-read": {},
            "composite-schedule": {"duration": 60},
            "installed-certificates-read": {"types": ["CSMSRootCertificate"]},
        });
        for name in TYPED {
            let (planned_name, _) = plan_named(name, &bodies[name], Version::V201, &mut || 1)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(planned_name, *name);
        }
        let unknown = plan_named("explode", &Value::Null, Version::V16, &mut || 1).unwrap_err();
        assert!(unknown.0.contains("operations: ocpp, reset"), "{unknown}");
        let bad = plan_named(
            "reset",
            &serde_json::json!({"type": 3}),
            Version::V16,
            &mut || 1,
        )
        .unwrap_err();
        assert!(bad.0.contains("type"), "{bad}");
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Plans `body` (JSON) as operation `O` for both versions, with ids 7, 8, ...
    pub fn both<O: Operation>(body: Value) -> [Result<Call, Untranslatable>; 2] {
        let operation: O = serde_json::from_value(body).expect("valid body");
        [Version::V16, Version::V201].map(|version| {
            let mut n = 6;
            plan(&operation, version, &mut || {
                n += 1;
                n
            })
        })
    }
}
