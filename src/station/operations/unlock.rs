//! `POST /cs/{id}/unlock` `{evseId?, connectorId}` → `UnlockConnector`
//! (1.6 numbers connectors across the station; 2.0.1 needs the EVSE too).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Operation, Untranslatable};
use crate::ocpp::Version;

/// The unlock body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unlock {
    /// 2.0.1: the EVSE of the connector.
    pub evse_id: Option<i64>,
    /// The connector.
    pub connector_id: i64,
}

impl Operation for Unlock {
    const NAME: &'static str = "unlock";

    fn translate(
        &self,
        version: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let payload = match (version, self.evse_id) {
            (Version::V16, _) => json!({ "connectorId": self.connector_id }),
            (Version::V201, Some(evse)) => {
                json!({ "evseId": evse, "connectorId": self.connector_id })
            }
            (Version::V201, None) => {
                return Err(Untranslatable(
                    "OCPP 2.0.1 unlocks a connector of an EVSE: evseId is required".into(),
                ))
            }
        };
        Ok(("UnlockConnector", payload))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn unlock_needs_the_evse_on_201() {
        let [v16, v201] = both::<Unlock>(json!({"connectorId": 1}));
        assert_eq!(v16.unwrap().payload, json!({"connectorId": 1}));
        assert!(v201.is_err());
        let [_, v201] = both::<Unlock>(json!({"evseId": 2, "connectorId": 1}));
        assert_eq!(
            v201.unwrap().payload,
            json!({"evseId": 2, "connectorId": 1})
        );
    }
}
