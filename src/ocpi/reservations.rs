//! RESERVE_NOW and CANCEL_RESERVATION from an eMSP: an OCPI reservation
//! (a string id the eMSP chose) is kept as a record that names the station
//! and the OCPP reservation id (an integer voltgate chose) it became, so a
//! RESERVE_NOW with the same id replaces the reservation at the station
//! (OCPP ReserveNow with the same id does) and a CANCEL_RESERVATION finds
//! it again. The commands then go the way of the other commands.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::commands::{target, text, Planner, Target};
use super::tokens::read_token;
use super::transport::{Caller, OcpiError};
use crate::station::operations::reservations::{CancelReservation, Reserve};
use crate::station::operations::{self, Operation};
use crate::store::{ocpi_time, OcpiObject, OcpiObjectKind, Store, TokenType};

/// What a reservation command became: a command to send, or an answer
/// (CommandResponseType and why) to give at once.
pub enum Planned {
    /// Send this operation to this target.
    Send(Target, &'static str, Planner),
    /// Answer with this result and message, sending nothing.
    Answer(&'static str, String),
}

/// The record id of the eMSP's reservation `id`: its party and the id, as
/// two eMSPs may choose the same id.
fn record_id(who: &Caller, reservation_id: &str) -> String {
    let party = who.partner.parties().into_iter().next().unwrap_or_default();
    format!("{party}/{reservation_id}")
}

/// The OCPP 2.0.1 IdTokenType of an OCPI token type.
pub fn id_token_type(kind: TokenType) -> &'static str {
    match kind {
        TokenType::Rfid => "ISO14443",
        TokenType::AppUser | TokenType::AdHocUser | TokenType::Other => "Central",
    }
}

/// `RESERVE_NOW`: the EVSE named (or the location's first one linked to a
/// station) reserved for the token until `expiry_date`.
pub async fn reserve_now(
    store: &dyn Store,
    who: &Caller,
    body: &Value,
) -> Result<Planned, OcpiError> {
    let token = read_token(&body["token"]).map_err(|e| OcpiError {
        message: format!("token: {}", e.message),
        ..e
    })?;
    let expiry: DateTime<Utc> = DateTime::parse_from_rfc3339(text(body, "expiry_date")?)
        .map_err(|e| OcpiError::invalid("expiry_date", format!("not an RFC 3339 time: {e}")))?
        .with_timezone(&Utc);
    let reservation_id = text(body, "reservation_id")?;
    if reservation_id.chars().count() > 36 {
        return Err(OcpiError::invalid(
            "reservation_id",
            "longer than 36 characters",
        ));
    }
    if expiry <= Utc::now() {
        return Ok(Planned::Answer(
            "REJECTED",
            format!("expiry_date {} has passed", ocpi_time::format(&expiry)),
        ));
    }
    let evse = target(store, text(body, "location_id")?, body["evse_uid"].as_str()).await?;
    let Some(station) = evse.station_id.clone() else {
        return Ok(Planned::Answer(
            "REJECTED",
            format!("EVSE {:?} is not remotely controllable", evse.uid),
        ));
    };
    let id = record_id(who, reservation_id);
    let kept = store.ocpi_object(OcpiObjectKind::Reservation, &id).await?;
    // The same reservation at the same station keeps its OCPP id: the
    // station replaces it. Elsewhere it is a new one.
    let ocpp_id = kept
        .filter(|k| k.station_id == station)
        .and_then(|k| k.body["ocpp_reservation_id"].as_i64())
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or_else(operations::next_number);
    let now = ocpi_time::truncate(Utc::now());
    store
        .put_ocpi_object(OcpiObject {
            kind: OcpiObjectKind::Reservation,
            id,
            party: who.partner.parties().into_iter().next().unwrap_or_default(),
            station_id: station,
            transaction_id: String::new(),
            body: json!({
                "reservation_id": reservation_id,
                "ocpp_reservation_id": ocpp_id,
                "location_id": body["location_id"],
                "evse_uid": evse.uid,
                "token_uid": token.uid,
                "expiry_date": ocpi_time::format(&expiry),
            }),
            last_updated: now,
        })
        .await?;
    let reserve = Reserve {
        id_token: token.uid.clone(),
        id_token_type: Some(id_token_type(token.token_type).to_owned()),
        expiry_date: expiry,
        evse_id: evse.ocpp_evse_id.map(i64::from),
        connector_id: evse.ocpp_connector_id.map(i64::from),
    };
    Ok(Planned::Send(
        Target::of(&evse),
        Reserve::NAME,
        Box::new(move |version| {
            operations::plan(&reserve, version, &mut || ocpp_id).map_err(|e| e.0)
        }),
    ))
}

/// `CANCEL_RESERVATION`: the eMSP's reservation cancelled at its station.
pub async fn cancel(store: &dyn Store, who: &Caller, body: &Value) -> Result<Planned, OcpiError> {
    let reservation_id = text(body, "reservation_id")?;
    let kept = store
        .ocpi_object(OcpiObjectKind::Reservation, &record_id(who, reservation_id))
        .await?;
    let found = kept.and_then(|k| {
        let ocpp_id = k.body["ocpp_reservation_id"].as_i64()?;
        Some((k.station_id, ocpp_id))
    });
    let Some((station, ocpp_id)) = found else {
        return Ok(Planned::Answer(
            "REJECTED",
            format!("no reservation {reservation_id:?} of yours"),
        ));
    };
    let cancel = CancelReservation {
        reservation_id: ocpp_id,
    };
    Ok(Planned::Send(
        Target {
            station: Some(station),
            named: format!("reservation {reservation_id:?}"),
        },
        CancelReservation::NAME,
        Box::new(move |version| {
            operations::plan(&cancel, version, &mut operations::next_number).map_err(|e| e.0)
        }),
    ))
}
