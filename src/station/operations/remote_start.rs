//! `POST /cs/{id}/remote-start` `{idToken, idTokenType?, evseId?,
//! connectorId?, chargingProfile?}` → 1.6 `RemoteStartTransaction`, 2.0.1
//! `RequestStartTransaction` (voltgate assigns the `remoteStartId`).
//!
//! The charging profile is an OCPP 2.0.1 ChargingProfileType, as in
//! `setchargingprofile`; 1.6 stations get it translated.

use serde::Deserialize;
use serde_json::{json, Value};

use super::charging_profiles::profile_to_v16;
use super::{id_token, Operation, Untranslatable};
use crate::ocpp::Version;

/// The remote start body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStart {
    /// The token to charge with (1.6 idTag).
    pub id_token: String,
    /// 2.0.1 IdTokenType (default Central).
    pub id_token_type: Option<String>,
    /// 2.0.1 EVSE; on 1.6 the connector when no connectorId is given.
    pub evse_id: Option<i64>,
    /// 1.6 connector.
    pub connector_id: Option<i64>,
    /// An OCPP 2.0.1 ChargingProfileType (purpose TxProfile).
    #[schema(value_type = Option<Object>)]
    pub charging_profile: Option<Value>,
}

impl Operation for RemoteStart {
    const NAME: &'static str = "remote-start";

    fn translate(
        &self,
        version: Version,
        numbers: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        match version {
            Version::V16 => {
                let mut payload = json!({ "idTag": self.id_token });
                super::put(
                    &mut payload,
                    "connectorId",
                    self.connector_id.or(self.evse_id),
                );
                if let Some(profile) = &self.charging_profile {
                    let profile = profile_to_v16(profile).map_err(Untranslatable)?;
                    payload["chargingProfile"] = profile;
                }
                Ok(("RemoteStartTransaction", payload))
            }
            Version::V201 => {
                if self.connector_id.is_some() && self.evse_id.is_none() {
                    return Err(Untranslatable(
                        "OCPP 2.0.1 starts on an EVSE: give evseId, not only connectorId".into(),
                    ));
                }
                let mut payload = json!({
                    "idToken": id_token(&self.id_token, self.id_token_type.as_deref()),
                    "remoteStartId": numbers(),
                });
                super::put(&mut payload, "evseId", self.evse_id);
                super::put(
                    &mut payload,
                    "chargingProfile",
                    self.charging_profile.as_ref(),
                );
                Ok(("RequestStartTransaction", payload))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn starts_translate_per_version() {
        let [v16, v201] = both::<RemoteStart>(json!({"idToken": "TAG1", "evseId": 1}));
        let v16 = v16.unwrap();
        assert_eq!(v16.action, "RemoteStartTransaction");
        assert_eq!(v16.payload, json!({"idTag": "TAG1", "connectorId": 1}));
        let v201 = v201.unwrap();
        assert_eq!(
            v201.payload,
            json!({"idToken": {"idToken": "TAG1", "type": "Central"}, "remoteStartId": 7, "evseId": 1})
        );
        let [_, v201] = both::<RemoteStart>(json!({"idToken": "TAG1", "connectorId": 2}));
        assert!(v201.unwrap_err().0.contains("evseId"));
        let [v16, _] = both::<RemoteStart>(json!({"idToken": "X".repeat(21)}));
        assert!(v16.unwrap_err().0.contains("/idTag"));
    }

    #[test]
    fn a_charging_profile_goes_with_it() {
        let profile = json!({"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}]});
        let [v16, v201] =
            both::<RemoteStart>(json!({"idToken": "T", "evseId": 1, "chargingProfile": profile}));
        let v16 = v16.unwrap();
        assert_eq!(
            v16.payload["chargingProfile"]["chargingProfilePurpose"],
            "TxProfile"
        );
        assert_eq!(v201.unwrap().payload["chargingProfile"]["id"], 1);
    }
}
