//! `POST /cs/{id}/reset` `{type, evseId?}` → `Reset` on both versions.
//!
//! 1.6 knows Soft and Hard resets of the whole charge point; 2.0.1 knows
//! Immediate and OnIdle, optionally of one EVSE. Hard and Immediate both
//! reboot at once and translate into each other; Soft (stop transactions,
//! then reboot) is Immediate on 2.0.1; OnIdle has no 1.6 form.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{not_in_v16, Operation, Untranslatable};
use crate::ocpp::Version;

/// The reset kinds of both versions.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
pub enum ResetKind {
    /// 1.6: stop transactions, then reboot.
    Soft,
    /// 1.6: reboot at once.
    Hard,
    /// 2.0.1: reboot at once.
    Immediate,
    /// 2.0.1: reboot once no transaction is running.
    OnIdle,
}

/// The reset body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reset {
    /// The kind of reset.
    #[serde(rename = "type")]
    pub kind: ResetKind,
    /// 2.0.1: reset only this EVSE.
    pub evse_id: Option<i64>,
}

impl Operation for Reset {
    const NAME: &'static str = "reset";

    fn translate(
        &self,
        version: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let payload = match version {
            Version::V16 => {
                if self.evse_id.is_some() {
                    return Err(not_in_v16("reset of one EVSE (evseId)"));
                }
                let kind = match self.kind {
                    ResetKind::Soft => "Soft",
                    ResetKind::Hard | ResetKind::Immediate => "Hard",
                    ResetKind::OnIdle => return Err(not_in_v16("reset on idle (OnIdle)")),
                };
                json!({ "type": kind })
            }
            Version::V201 => {
                let kind = match self.kind {
                    ResetKind::OnIdle => "OnIdle",
                    ResetKind::Soft | ResetKind::Hard | ResetKind::Immediate => "Immediate",
                };
                let mut payload = json!({ "type": kind });
                super::put(&mut payload, "evseId", self.evse_id);
                payload
            }
        };
        Ok(("Reset", payload))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn kinds_translate_per_version() {
        let [v16, v201] = both::<Reset>(json!({"type": "Hard"}));
        assert_eq!(v16.unwrap().payload, json!({"type": "Hard"}));
        assert_eq!(v201.unwrap().payload, json!({"type": "Immediate"}));
        let [v16, v201] = both::<Reset>(json!({"type": "OnIdle", "evseId": 2}));
        assert!(v16.unwrap_err().0.contains("OCPP 1.6 has no"));
        assert_eq!(
            v201.unwrap().payload,
            json!({"type": "OnIdle", "evseId": 2})
        );
        let [v16, v201] = both::<Reset>(json!({"type": "Soft", "evseId": 1}));
        assert!(v16.unwrap_err().0.contains("one EVSE"));
        assert_eq!(
            v201.unwrap().payload,
            json!({"type": "Immediate", "evseId": 1})
        );
    }
}
