//! The official OCA JSON schemas (vendored under `schema/ocpp/`), embedded in
//! the binary by `build.rs` and each compiled once, on first use or at
//! start-up through [`warm_up`].
//!
//! A violation is reported with the CALLERROR code OCPP-J gives it: missing
//! fields and array sizes are occurrence violations, wrong JSON types are
//! type violations, unexpected fields are format violations, everything else
//! (enums, lengths, ranges, formats) is a property violation.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::Validator;
use serde_json::Value;

use super::error::ErrorCode;
use super::Version;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ocpp_schemas.rs"));
}

/// Which side of an exchange a payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The CALL's payload.
    Request,
    /// The CALLRESULT's payload.
    Response,
}

/// A payload that breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The CALLERROR code for it.
    pub code: ErrorCode,
    /// "<JSON pointer>: <what is wrong>".
    pub message: String,
}

struct Entry {
    text: &'static str,
    compiled: OnceLock<Option<Validator>>,
}

/// Schemas by "<version dir>/<file stem>", e.g. "v16/AuthorizeResponse".
fn registry() -> &'static HashMap<String, Entry> {
    static REGISTRY: OnceLock<HashMap<String, Entry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        embedded::FILES
            .iter()
            .map(|&(dir, stem, text)| {
                (
                    format!("{dir}/{stem}"),
                    Entry {
                        text,
                        compiled: OnceLock::new(),
                    },
                )
            })
            .collect()
    })
}

fn dir(version: Version) -> &'static str {
    match version {
        Version::V16 => "v16",
        Version::V201 => "v201",
    }
}

/// The registry key: 1.6 `v16/Authorize` and `v16/AuthorizeResponse`,
/// 2.0.1 `v201/AuthorizeRequest` and `v201/AuthorizeResponse`.
fn key(version: Version, action: &str, direction: Direction) -> String {
    let dir = dir(version);
    match (version, direction) {
        (Version::V16, Direction::Request) => format!("{dir}/{action}"),
        (Version::V201, Direction::Request) => format!("{dir}/{action}Request"),
        (_, Direction::Response) => format!("{dir}/{action}Response"),
    }
}

fn validator(version: Version, action: &str, direction: Direction) -> Option<&'static Validator> {
    let entry = registry().get(&key(version, action, direction))?;
    entry
        .compiled
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(entry.text).ok()?;
            match jsonschema::validator_for(&schema) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!(%e, action, "vendored OCPP schema does not compile");
                    None
                }
            }
        })
        .as_ref()
}

/// True when the version defines this action (has a schema for its request).
pub fn is_known_action(version: Version, action: &str) -> bool {
    registry().contains_key(&key(version, action, Direction::Request))
}

/// Compiles the schemas of these actions now (both directions), so the
/// first message of each kind does not pay for it.
pub fn warm_up<'a>(version: Version, actions: impl IntoIterator<Item = &'a str>) {
    for action in actions {
        validator(version, action, Direction::Request);
        validator(version, action, Direction::Response);
    }
}

/// Checks a payload against its schema. An action without a schema passes:
/// whether it is known at all is the caller's question.
pub fn check(
    version: Version,
    action: &str,
    direction: Direction,
    payload: &Value,
) -> Result<(), Violation> {
    let Some(validator) = validator(version, action, direction) else {
        return Ok(());
    };
    let Err(first) = validator.validate(payload) else {
        return Ok(());
    };
    let code = match first.kind() {
        ValidationErrorKind::Required { .. }
        | ValidationErrorKind::MinItems { .. }
        | ValidationErrorKind::MaxItems { .. } => ErrorCode::OccurrenceConstraintViolation,
        ValidationErrorKind::Type { .. } => ErrorCode::TypeConstraintViolation,
        ValidationErrorKind::AdditionalProperties { .. } => ErrorCode::Format,
        _ => ErrorCode::PropertyConstraintViolation,
    };
    Err(Violation {
        code,
        message: describe(&first),
    })
}

fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    let path = error.instance_path().to_string();
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    format!("{path}: {error}")
}

/// The OCPP 2.0.1 SetChargingProfileRequest schema: the source of the
/// `ChargingProfileType` definition the REST API accepts.
const V201_SET_CHARGING_PROFILE: &str =
    include_str!("../../schema/ocpp/v201/SetChargingProfileRequest.json");

/// Checks an OCPP 2.0.1 `ChargingProfileType` value. Returns every violation,
/// each as "<JSON pointer>: <what is wrong>" (pointer "/" for the root).
pub fn check_charging_profile(profile: &Value) -> Result<(), Vec<String>> {
    static VALIDATOR: OnceLock<Option<Validator>> = OnceLock::new();
    let validator = VALIDATOR
        .get_or_init(|| compile_definition(V201_SET_CHARGING_PROFILE, "ChargingProfileType"));
    let Some(validator) = validator else {
        return Err(vec!["charging profile schema unavailable".to_owned()]);
    };
    let errors: Vec<String> = validator
        .iter_errors(profile)
        .map(|e| describe(&e))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Compiles one definition of an embedded schema as a schema of its own.
fn compile_definition(schema_text: &str, definition: &str) -> Option<Validator> {
    let schema: Value = serde_json::from_str(schema_text).ok()?;
    let wrapped = serde_json::json!({
        "$schema": schema["$schema"],
        "definitions": schema["definitions"],
        "$ref": format!("#/definitions/{definition}"),
    });
    jsonschema::validator_for(&wrapped).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_embedded_schema_compiles() {
        assert!(
            embedded::FILES.len() > 190,
            "{} files",
            embedded::FILES.len()
        );
        for &(dir, stem, text) in embedded::FILES {
            let schema: Value = serde_json::from_str(text).expect(stem);
            assert!(jsonschema::validator_for(&schema).is_ok(), "{dir}/{stem}");
        }
    }

    #[test]
    fn knows_actions_per_version() {
        assert!(is_known_action(Version::V16, "StartTransaction"));
        assert!(!is_known_action(Version::V201, "StartTransaction"));
        assert!(is_known_action(Version::V201, "TransactionEvent"));
        assert!(!is_known_action(Version::V16, "Launch"));
    }

    #[test]
    fn violations_map_to_callerror_codes() {
        let boot = |payload: Value| {
            check(
                Version::V201,
                "BootNotification",
                Direction::Request,
                &payload,
            )
        };
        let station = json!({"model": "M", "vendorName": "V"});
        assert_eq!(
            boot(json!({"reason": "PowerUp", "chargingStation": station})),
            Ok(())
        );
        let code = |r: Result<(), Violation>| r.map_err(|v| v.code).unwrap_err();
        assert_eq!(
            code(boot(json!({"chargingStation": station}))),
            ErrorCode::OccurrenceConstraintViolation
        );
        assert_eq!(
            code(boot(json!({"reason": 5, "chargingStation": station}))),
            ErrorCode::TypeConstraintViolation
        );
        assert_eq!(
            code(boot(json!({"reason": "Bored", "chargingStation": station}))),
            ErrorCode::PropertyConstraintViolation
        );
        assert_eq!(
            code(boot(
                json!({"reason": "PowerUp", "chargingStation": station, "x": 1})
            )),
            ErrorCode::Format
        );
        let v = boot(json!({"reason": "PowerUp", "chargingStation": {"model": "M"}})).unwrap_err();
        assert!(v.message.starts_with("/chargingStation: "), "{}", v.message);
    }

    fn profile() -> Value {
        json!({
            "id": 1, "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [{
                "id": 1, "chargingRateUnit": "W", "startSchedule": "2026-11-21T00:00:00Z",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]
            }]
        })
    }

    #[test]
    fn accepts_a_valid_profile() {
        assert_eq!(check_charging_profile(&profile()), Ok(()));
    }

    #[test]
    fn names_the_field_of_an_unknown_enum_value() {
        let mut p = profile();
        p["chargingSchedule"][0]["chargingRateUnit"] = json!("kW");
        let errors = check_charging_profile(&p).unwrap_err();
        assert!(
            errors[0].starts_with("/chargingSchedule/0/chargingRateUnit: "),
            "{errors:?}"
        );
    }

    #[test]
    fn reports_a_missing_required_field() {
        let mut p = profile();
        p.as_object_mut().unwrap().remove("stackLevel");
        let errors = check_charging_profile(&p).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("stackLevel")),
            "{errors:?}"
        );
    }
}
