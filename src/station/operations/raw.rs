//! `POST /cs/{id}/ocpp/{Action}`: any CSMS-initiated action of the
//! station's version with the caller's payload, checked against the
//! official request schema.

use serde_json::Value;

use super::{checked, Call, Untranslatable};
use crate::ocpp::Version;

/// The name raw commands record as their operation.
pub const NAME: &str = "ocpp";

/// The CALL for `action` with `payload` to a station of `version`.
pub fn plan(version: Version, action: &str, payload: Value) -> Result<Call, Untranslatable> {
    checked(version, action, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_calls_are_checked_against_the_version() {
        let call = plan(Version::V201, "Reset", json!({"type": "OnIdle"})).unwrap();
        assert_eq!(call.class, crate::store::DeliveryClass::Immediate);
        let wrong_version = plan(Version::V16, "RequestStartTransaction", json!({})).unwrap_err();
        assert!(
            wrong_version.0.contains("accepted: CancelReservation"),
            "{wrong_version}"
        );
        let station_side = plan(Version::V201, "BootNotification", json!({})).unwrap_err();
        assert!(station_side.0.contains("not an action a CSMS sends"));
        let invalid = plan(Version::V201, "Reset", json!({"type": "Later"})).unwrap_err();
        assert!(invalid.0.contains("/type"), "{invalid}");
    }
}
