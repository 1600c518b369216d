//! `POST /cs/{id}/reservations` `{idToken, idTokenType?, expiryDate,
//! evseId?, connectorId?}` → `ReserveNow` (voltgate assigns the reservation
//! id, which the command's payload shows); `DELETE
//! /cs/{id}/reservations/{reservationId}` → `CancelReservation`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{id_token, timestamp, Operation, Untranslatable};
use crate::ocpp::Version;

/// The reservation body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reserve {
    /// The token the reservation is for (1.6 idTag).
    pub id_token: String,
    /// 2.0.1 IdTokenType (default Central).
    pub id_token_type: Option<String>,
    /// When the reservation ends.
    pub expiry_date: DateTime<Utc>,
    /// 2.0.1: the EVSE (on 1.6, the connector when no connectorId is given).
    pub evse_id: Option<i64>,
    /// 1.6: the connector (0, the default, is any connector).
    pub connector_id: Option<i64>,
}

impl Operation for Reserve {
    const NAME: &'static str = "reserve";

    fn translate(
        &self,
        version: Version,
        numbers: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let payload = match version {
            Version::V16 => json!({
                "connectorId": self.connector_id.or(self.evse_id).unwrap_or(0),
                "expiryDate": timestamp(self.expiry_date),
                "idTag": self.id_token,
                "reservationId": numbers(),
            }),
            Version::V201 => {
                if self.connector_id.is_some() && self.evse_id.is_none() {
                    return Err(Untranslatable(
                        "OCPP 2.0.1 reserves an EVSE: give evseId, not only connectorId".into(),
                    ));
                }
                let mut payload = json!({
                    "id": numbers(),
                    "expiryDateTime": timestamp(self.expiry_date),
                    "idToken": id_token(&self.id_token, self.id_token_type.as_deref()),
                });
                super::put(&mut payload, "evseId", self.evse_id);
                payload
            }
        };
        Ok(("ReserveNow", payload))
    }
}

/// A reservation to cancel (from the path; in a fan-out, `{reservationId}`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelReservation {
    /// The reservation id ReserveNow carried.
    pub reservation_id: i64,
}

impl Operation for CancelReservation {
    const NAME: &'static str = "cancel-reservation";

    fn translate(
        &self,
        _: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        Ok((
            "CancelReservation",
            json!({ "reservationId": self.reservation_id }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn reservations_translate_per_version() {
        let [v16, v201] = both::<Reserve>(
            json!({"idToken": "T", "expiryDate": "2026-12-01T12:00:00Z", "evseId": 1}),
        );
        assert_eq!(
            v16.unwrap().payload,
            json!({"connectorId": 1, "expiryDate": "2026-12-01T12:00:00.000Z", "idTag": "T", "reservationId": 7})
        );
        assert_eq!(
            v201.unwrap().payload,
            json!({"id": 7, "expiryDateTime": "2026-12-01T12:00:00.000Z", "idToken": {"idToken": "T", "type": "Central"}, "evseId": 1})
        );
        let [v16, v201] = both::<CancelReservation>(json!({"reservationId": 7}));
        assert_eq!(v16.unwrap().payload, json!({"reservationId": 7}));
        assert_eq!(v201.unwrap().action, "CancelReservation");
    }
}
