//! The official OCA JSON schemas (vendored under `schema/ocpp/`), embedded in
//! the binary and compiled once on first use.

use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

/// The OCPP 2.0.1 SetChargingProfileRequest schema: the source of the
/// `ChargingProfileType` definition the REST API accepts.
const V201_SET_CHARGING_PROFILE: &str =
    include_str!("../../schema/ocpp/v201/SetChargingProfileRequest.json");

/// Checks an OCPP 2.0.1 `ChargingProfileType` value. Returns every violation,
/// each as "<JSON pointer>: <what is wrong>" (pointer "/" for the root).
pub fn check_charging_profile(profile: &Value) -> Result<(), Vec<String>> {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    let validator = VALIDATOR
        .get_or_init(|| compile_definition(V201_SET_CHARGING_PROFILE, "ChargingProfileType"));
    let errors: Vec<String> = validator
        .iter_errors(profile)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            format!("{path}: {e}")
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Compiles one definition of an embedded schema as a schema of its own.
///
/// Panics only if a vendored schema is broken, which the unit tests below
/// rule out for every schema used.
fn compile_definition(schema_text: &str, definition: &str) -> Validator {
    let schema: Value = serde_json::from_str(schema_text).expect("vendored OCPP schema is JSON");
    let wrapped = serde_json::json!({
        "$schema": schema["$schema"],
        "definitions": schema["definitions"],
        "$ref": format!("#/definitions/{definition}"),
    });
    jsonschema::validator_for(&wrapped).expect("vendored OCPP schema compiles")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
