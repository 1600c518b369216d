//! The per-kind work queues of older stores (settings, certificates to
//! install, triggers, charging profiles, each with a delivery state) as the
//! commands that replaced them. Both backends run this once when they open
//! a store written before commands carried MaEVe's work, so nothing queued
//! is lost and the outcomes already known stay readable.
//!
//! Pure: the backends read the old rows and write the commands.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{
    CertificateUse, CommandRecord, CommandStatus, Delivery, DeliveryStatus, TriggerMessage,
};
use crate::station::operations::outcome;
use crate::station::operations::work_item::{self, WorkItem};

/// A queued setting as older stores kept it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacySetting {
    /// The setting's name.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Where it stood.
    pub delivery: Delivery,
}

/// A certificate to install as older stores kept it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCertificate {
    /// Its id (base64url SHA-256 of its DER).
    pub certificate_id: String,
    /// What it is for.
    #[serde(rename = "type")]
    pub certificate_use: CertificateUse,
    /// The PEM text.
    pub certificate: String,
    /// Where it stood.
    pub delivery: Delivery,
}

/// A queued trigger as older stores kept it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyTrigger {
    /// The message asked for.
    pub trigger: TriggerMessage,
    /// The EVSE it asks about.
    #[serde(default)]
    pub evse_id: Option<u32>,
    /// The connector it asks about.
    #[serde(default)]
    pub connector_id: Option<u32>,
    /// Where it stood.
    pub delivery: Delivery,
}

/// A charging profile to set as older stores kept it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyChargingProfile {
    /// The profile's own id.
    pub profile_id: i64,
    /// The EVSE it applies to (0: the station).
    pub evse_id: u32,
    /// The OCPP 2.0.1 ChargingProfileType.
    pub profile: Value,
    /// Where it stood.
    pub delivery: Delivery,
}

/// One station's old queues, each in its stored order.
#[derive(Debug, Default)]
pub struct LegacyWork {
    /// Settings.
    pub settings: Vec<LegacySetting>,
    /// Certificates.
    pub certificates: Vec<LegacyCertificate>,
    /// Triggers.
    pub triggers: Vec<LegacyTrigger>,
    /// Charging profiles.
    pub charging_profiles: Vec<LegacyChargingProfile>,
}

impl LegacyWork {
    /// The commands of station `station_id` that carry this work, in the
    /// order it would have been delivered; pending items stay pending, the
    /// others are settled with the outcome they had.
    pub fn into_commands(self, station_id: &str, now: DateTime<Utc>) -> Vec<CommandRecord> {
        let mut items: Vec<(WorkItem, Delivery)> = Vec::new();
        items.extend(self.settings.into_iter().map(|s| {
            let item = WorkItem::Setting {
                key: s.key,
                value: s.value,
            };
            (item, s.delivery)
        }));
        items.extend(self.certificates.into_iter().map(|c| {
            let item = WorkItem::Certificate {
                certificate_id: c.certificate_id,
                certificate_use: c.certificate_use,
                certificate: c.certificate,
            };
            (item, c.delivery)
        }));
        items.extend(self.triggers.into_iter().map(|t| {
            let item = WorkItem::Trigger {
                trigger: t.trigger,
                evse_id: t.evse_id,
                connector_id: t.connector_id,
            };
            (item, t.delivery)
        }));
        items.extend(self.charging_profiles.into_iter().map(|p| {
            let item = WorkItem::ChargingProfile {
                profile_id: p.profile_id,
                evse_id: p.evse_id,
                profile: p.profile,
            };
            (item, p.delivery)
        }));
        items
            .into_iter()
            .map(|(item, delivery)| settled_as(item.command(station_id, now), delivery))
            .collect()
    }
}

/// The command with the outcome an old delivery state recorded.
fn settled_as(command: CommandRecord, delivery: Delivery) -> CommandRecord {
    let at = delivery.updated_at;
    let detail = delivery.detail.clone().unwrap_or_default();
    let told = delivery.clone();
    let mut command = match delivery.status {
        DeliveryStatus::Pending => command,
        DeliveryStatus::Accepted | DeliveryStatus::RebootRequired | DeliveryStatus::Rejected => {
            let accepted = delivery.status != DeliveryStatus::Rejected;
            let mut known = work_item::known(command, accepted);
            known.updated_at = at;
            known
        }
        DeliveryStatus::NotSupported | DeliveryStatus::NotImplemented | DeliveryStatus::Failed => {
            let mut command = command;
            let code = match delivery.status {
                DeliveryStatus::NotSupported => "NotSupported",
                DeliveryStatus::NotImplemented => "NotImplemented",
                _ => "Failed",
            };
            command.settle(
                CommandStatus::Failed,
                None,
                Some(outcome::error(code, detail)),
                at,
            );
            command
        }
    };
    // Read back exactly as the old queue had it.
    command.delivery = Some(told);
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn old_queues_become_commands_with_their_outcomes() {
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let delivery = |status| Delivery {
            status,
            updated_at: at,
            detail: Some("why".into()),
        };
        let work = LegacyWork {
            settings: vec![
                LegacySetting { key: "A".into(), value: "1".into(), delivery: delivery(DeliveryStatus::Pending) },
                LegacySetting { key: "B".into(), value: "2".into(), delivery: delivery(DeliveryStatus::RebootRequired) },
            ],
            triggers: vec![serde_json::from_value(json!({
                "seq": 1, "trigger": "StatusNotification", "evseId": 2,
                "delivery": {"status": "NotSupported", "updatedAt": "2026-09-21T00:00:00Z", "detail": "no"}
            }))
            .unwrap()],
            ..LegacyWork::default()
        };
        let commands = work.into_commands("CS1", at);
        assert_eq!(commands.len(), 3);
        assert_eq!(commands[0].status, CommandStatus::Pending);
        assert_eq!(commands[0].operation, "reconfigure");
        assert_eq!(commands[1].status, CommandStatus::Accepted);
        assert_eq!(commands[2].status, CommandStatus::Failed);
        assert!(WorkItem::of(&commands[2]).is_some());
        assert_eq!(
            work_item::delivery(&commands[2]).unwrap().status,
            DeliveryStatus::NotSupported
        );
        assert!(commands[0].id < commands[1].id && commands[1].id < commands[2].id);
    }
}
