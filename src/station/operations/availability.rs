//! `POST /cs/{id}/availability` `{operative, evseId?, connectorId?}` →
//! `ChangeAvailability`. 1.6 addresses connector 0 (the whole station) or
//! one connector; 2.0.1 the station, an EVSE, or a connector of an EVSE.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Operation, Untranslatable};
use crate::ocpp::Version;

/// The availability body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Availability {
    /// True: Operative; false: Inoperative.
    pub operative: bool,
    /// 2.0.1: the EVSE (on 1.6, the connector when no connectorId is given).
    pub evse_id: Option<i64>,
    /// The connector (2.0.1: of the EVSE).
    pub connector_id: Option<i64>,
}

impl Operation for Availability {
    const NAME: &'static str = "availability";

    fn translate(
        &self,
        version: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let status = if self.operative {
            "Operative"
        } else {
            "Inoperative"
        };
        let payload = match version {
            Version::V16 => json!({
                "connectorId": self.connector_id.or(self.evse_id).unwrap_or(0),
                "type": status,
            }),
            Version::V201 => {
                let mut payload = json!({ "operationalStatus": status });
                match (self.evse_id, self.connector_id) {
                    (Some(evse), connector) => {
                        let mut target = json!({ "id": evse });
                        super::put(&mut target, "connectorId", connector);
                        payload["evse"] = target;
                    }
                    (None, Some(_)) => {
                        return Err(Untranslatable(
                            "OCPP 2.0.1 addresses a connector within an EVSE: give evseId too"
                                .into(),
                        ))
                    }
                    (None, None) => {}
                }
                payload
            }
        };
        Ok(("ChangeAvailability", payload))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn availability_translates_per_version() {
        let [v16, v201] = both::<Availability>(json!({"operative": false}));
        assert_eq!(
            v16.unwrap().payload,
            json!({"connectorId": 0, "type": "Inoperative"})
        );
        assert_eq!(
            v201.unwrap().payload,
            json!({"operationalStatus": "Inoperative"})
        );
        let [v16, v201] =
            both::<Availability>(json!({"operative": true, "evseId": 1, "connectorId": 2}));
        assert_eq!(
            v16.unwrap().payload,
            json!({"connectorId": 2, "type": "Operative"})
        );
        assert_eq!(
            v201.unwrap().payload,
            json!({"operationalStatus": "Operative", "evse": {"id": 1, "connectorId": 2}})
        );
    }
}
