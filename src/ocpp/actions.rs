//! Which station-initiated actions voltgate answers, per version. A CALL for
//! an action the version defines but voltgate does not handle gets
//! `NotSupported`; one the version does not define gets `NotImplemented`.

use super::error::ErrorCode;
use super::schema::is_known_action;
use super::Version;

/// OCPP 1.6 actions a station may send that voltgate handles.
pub const V16_HANDLED: &[&str] = &[
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "SecurityEventNotification",
    "SignCertificate",
    "SignedFirmwareStatusNotification",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
];

/// OCPP 2.0.1 actions a station may send that voltgate handles.
pub const V201_HANDLED: &[&str] = &[
    "Authorize",
    "BootNotification",
    "ClearedChargingLimit",
    "DataTransfer",
    "FirmwareStatusNotification",
    "Get15118EVCertificate",
    "GetCertificateStatus",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "NotifyChargingLimit",
    "NotifyEVChargingNeeds",
    "NotifyEvent",
    "NotifyReport",
    "ReportChargingProfiles",
    "SecurityEventNotification",
    "SignCertificate",
    "StatusNotification",
    "TransactionEvent",
];

/// The handled actions of a version.
pub fn handled(version: Version) -> &'static [&'static str] {
    match version {
        Version::V16 => V16_HANDLED,
        Version::V201 => V201_HANDLED,
    }
}

/// Label for actions outside the closed set (metrics).
pub const OTHER: &str = "other";

/// A closed-set label for a station-initiated action: its name when
/// voltgate handles it, [`OTHER`] otherwise (a station may send anything; a
/// metric label must not grow with what it sends).
pub fn label(version: Version, action: &str) -> &'static str {
    handled(version)
        .iter()
        .find(|handled| **handled == action)
        .copied()
        .unwrap_or(OTHER)
}

/// `Ok` when voltgate answers this action, else the CALLERROR code to send.
pub fn admit(version: Version, action: &str) -> Result<(), ErrorCode> {
    if handled(version).contains(&action) {
        Ok(())
    } else if is_known_action(version, action) {
        Err(ErrorCode::NotSupported)
    } else {
        Err(ErrorCode::NotImplemented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_handled_names_or_other() {
        assert_eq!(label(Version::V16, "Heartbeat"), "Heartbeat");
        assert_eq!(label(Version::V201, "TransactionEvent"), "TransactionEvent");
        assert_eq!(label(Version::V16, "TransactionEvent"), OTHER);
        assert_eq!(label(Version::V201, "station-chosen-123"), OTHER);
    }

    #[test]
    fn every_handled_action_has_a_schema() {
        for version in [Version::V16, Version::V201] {
            for action in handled(version) {
                assert!(is_known_action(version, action), "{version:?} {action}");
            }
        }
    }

    #[test]
    fn unhandled_actions_get_the_right_code() {
        assert_eq!(admit(Version::V16, "Heartbeat"), Ok(()));
        assert_eq!(
            admit(Version::V201, "ReservationStatusUpdate"),
            Err(ErrorCode::NotSupported)
        );
        assert_eq!(
            admit(Version::V16, "TransactionEvent"),
            Err(ErrorCode::NotImplemented)
        );
        assert_eq!(
            admit(Version::V201, "Dance"),
            Err(ErrorCode::NotImplemented)
        );
    }
}
