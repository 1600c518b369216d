//! The CSMS-initiated actions of each OCPP version, and when each may be
//! sent (its [`DeliveryClass`]). The raw operation accepts exactly these;
//! every typed operation produces one of them.

use crate::ocpp::Version;
use crate::store::DeliveryClass::{self, Configuration, Immediate};

/// OCPP 1.6 (with the security extensions) actions a CSMS may send.
const V16: &[(&str, DeliveryClass)] = &[
    ("CancelReservation", Immediate),
    ("CertificateSigned", Configuration),
    ("ChangeAvailability", Immediate),
    ("ChangeConfiguration", Configuration),
    ("ClearCache", Immediate),
    ("ClearChargingProfile", Configuration),
    ("DataTransfer", Immediate),
    ("DeleteCertificate", Configuration),
    ("ExtendedTriggerMessage", Immediate),
    ("GetCompositeSchedule", Immediate),
    ("GetConfiguration", Immediate),
    ("GetDiagnostics", Immediate),
    ("GetInstalledCertificateIds", Immediate),
    ("GetLocalListVersion", Immediate),
    ("GetLog", Immediate),
    ("InstallCertificate", Configuration),
    ("RemoteStartTransaction", Immediate),
    ("RemoteStopTransaction", Immediate),
    ("ReserveNow", Immediate),
    ("Reset", Immediate),
    ("SendLocalList", Configuration),
    ("SetChargingProfile", Configuration),
    ("SignedUpdateFirmware", Configuration),
    ("TriggerMessage", Immediate),
    ("UnlockConnector", Immediate),
    ("UpdateFirmware", Configuration),
];

/// OCPP 2.0.1 actions a CSMS may send.
const V201: &[(&str, DeliveryClass)] = &[
    ("CancelReservation", Immediate),
    ("CertificateSigned", Configuration),
    ("ChangeAvailability", Immediate),
    ("ClearCache", Immediate),
    ("ClearChargingProfile", Configuration),
    ("ClearDisplayMessage", Configuration),
    ("ClearVariableMonitoring", Configuration),
    ("CostUpdated", Immediate),
    ("CustomerInformation", Immediate),
    ("DataTransfer", Immediate),
    ("DeleteCertificate", Configuration),
    ("GetBaseReport", Immediate),
    ("GetChargingProfiles", Immediate),
    ("GetCompositeSchedule", Immediate),
    ("GetDisplayMessages", Immediate),
    ("GetInstalledCertificateIds", Immediate),
    ("GetLocalListVersion", Immediate),
    ("GetLog", Immediate),
    ("GetMonitoringReport", Immediate),
    ("GetReport", Immediate),
    ("GetTransactionStatus", Immediate),
    ("GetVariables", Immediate),
    ("InstallCertificate", Configuration),
    ("PublishFirmware", Configuration),
    ("RequestStartTransaction", Immediate),
    ("RequestStopTransaction", Immediate),
    ("ReserveNow", Immediate),
    ("Reset", Immediate),
    ("SendLocalList", Configuration),
    ("SetChargingProfile", Configuration),
    ("SetDisplayMessage", Configuration),
    ("SetMonitoringBase", Configuration),
    ("SetMonitoringLevel", Configuration),
    ("SetNetworkProfile", Configuration),
    ("SetVariableMonitoring", Configuration),
    ("SetVariables", Configuration),
    ("TriggerMessage", Immediate),
    ("UnlockConnector", Immediate),
    ("UnpublishFirmware", Configuration),
    ("UpdateFirmware", Configuration),
];

fn table(version: Version) -> &'static [(&'static str, DeliveryClass)] {
    match version {
        Version::V16 => V16,
        Version::V201 => V201,
    }
}

/// The action's static name and class, when the CSMS may send it to a
/// station of this version.
pub fn find(version: Version, action: &str) -> Option<(&'static str, DeliveryClass)> {
    table(version)
        .iter()
        .find(|(name, _)| *name == action)
        .copied()
}

/// Every CSMS-initiated action of the version, in name order.
pub fn actions(version: Version) -> impl Iterator<Item = &'static str> {
    table(version).iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocpp::schema::is_known_action;

    #[test]
    fn every_listed_action_has_official_schemas_and_the_lists_are_sorted() {
        for version in [Version::V16, Version::V201] {
            let names: Vec<&str> = actions(version).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(names, sorted, "{version:?}");
            for name in names {
                assert!(is_known_action(version, name), "{version:?} {name}");
            }
        }
        assert_eq!(V16.len(), 26);
        assert_eq!(V201.len(), 40);
    }
}
