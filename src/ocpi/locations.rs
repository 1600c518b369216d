//! The Locations module, sender side (pull): partners page through the
//! published locations by `last_updated` and read one location, EVSE or
//! connector. What they see is the OCPI object only: voltgate's private
//! fields (station links, province, payment types...) are left out by an
//! allow-list of the OCPI 2.2.1 fields, so a field added to the model later
//! stays private until it is added here.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::registrar::Registrar;
use super::transport::{caller, code, envelope, success, OcpiError};
use crate::locations::paging::{page_by_updated, Limits, ListError, ListQuery};
use crate::store::Location;

/// Page sizes of the OCPI Locations list.
const LIMITS: Limits = Limits {
    default: 50,
    max: 500,
};

/// The OCPI 2.2.1 fields of a Location.
const LOCATION_FIELDS: &[&str] = &[
    "country_code",
    "party_id",
    "id",
    "publish",
    "publish_allowed_to",
    "name",
    "address",
    "city",
    "postal_code",
    "state",
    "country",
    "coordinates",
    "related_locations",
    "parking_type",
    "evses",
    "directions",
    "operator",
    "suboperator",
    "owner",
    "facilities",
    "time_zone",
    "opening_times",
    "charging_when_closed",
    "images",
    "energy_mix",
    "last_updated",
];
/// The OCPI 2.2.1 fields of an EVSE.
const EVSE_FIELDS: &[&str] = &[
    "uid",
    "evse_id",
    "status",
    "status_schedule",
    "capabilities",
    "connectors",
    "floor_level",
    "coordinates",
    "physical_reference",
    "directions",
    "parking_restrictions",
    "images",
    "last_updated",
];
/// The OCPI 2.2.1 fields of a Connector.
const CONNECTOR_FIELDS: &[&str] = &[
    "id",
    "standard",
    "format",
    "power_type",
    "max_voltage",
    "max_amperage",
    "max_electric_power",
    "tariff_ids",
    "terms_and_conditions",
    "last_updated",
];

fn keep(value: &mut Value, fields: &[&str]) {
    if let Value::Object(map) = value {
        map.retain(|key, _| fields.contains(&key.as_str()));
    }
}

/// A connector as partners see it.
pub fn connector_view(mut connector: Value) -> Value {
    keep(&mut connector, CONNECTOR_FIELDS);
    connector
}

/// An EVSE as partners see it.
pub fn evse_view(mut evse: Value) -> Value {
    keep(&mut evse, EVSE_FIELDS);
    if let Some(Value::Array(connectors)) = evse.get_mut("connectors") {
        for connector in connectors.iter_mut() {
            *connector = connector_view(std::mem::take(connector));
        }
    }
    evse
}

/// A location as partners see it.
pub fn location_view(location: &Location) -> Value {
    let mut value = serde_json::to_value(location).unwrap_or_else(|_| Value::Object(Map::new()));
    keep(&mut value, LOCATION_FIELDS);
    if let Some(Value::Array(evses)) = value.get_mut("evses") {
        for evse in evses.iter_mut() {
            *evse = evse_view(std::mem::take(evse));
        }
    }
    value
}

/// `GET /ocpi/2.2.1/locations`: published locations by `last_updated`.
pub async fn list(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, OcpiError> {
    caller(&req, registrar.store(), false).await?;
    let listed = page_by_updated(registrar.store(), &query, LIMITS, true)
        .await
        .map_err(|e| match e {
            ListError::Invalid(why) => OcpiError::ok_with(code::INVALID_PARAMETERS, why),
            ListError::Store(e) => OcpiError::from(e),
        })?;
    let views: Vec<Value> = listed.page.iter().map(location_view).collect();
    let mut response = HttpResponse::Ok();
    for header in listed.headers(&registrar.identity().module_url("locations")) {
        response.insert_header(header);
    }
    Ok(response.json(envelope(views, code::SUCCESS, "Success")))
}

/// The published location `id`, or 2003.
async fn published(registrar: &Registrar, id: &str) -> Result<Location, OcpiError> {
    let unknown = || OcpiError::ok_with(code::UNKNOWN_LOCATION, format!("unknown location {id:?}"));
    let stored = registrar.store().location(id).await?.ok_or_else(unknown)?;
    if !stored.location.publish {
        return Err(unknown());
    }
    Ok(stored.location)
}

/// `GET /ocpi/2.2.1/locations/{id}[/{evse_uid}[/{connector_id}]]`.
pub async fn object(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    path: web::Path<String>,
) -> Result<HttpResponse, OcpiError> {
    caller(&req, registrar.store(), false).await?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some((id, rest)) = parts.split_first() else {
        return Err(OcpiError::invalid("location_id", "missing"));
    };
    if rest.len() > 2 {
        return Err(OcpiError::ok_with(
            code::CLIENT_ERROR,
            "no such object below a connector",
        ));
    }
    let location = published(&registrar, id).await?;
    let view = location_view(&location);
    let Some(uid) = rest.first() else {
        return Ok(success(view));
    };
    let evse = view["evses"]
        .as_array()
        .and_then(|evses| evses.iter().find(|e| e["uid"] == *uid))
        .cloned()
        .ok_or_else(|| {
            OcpiError::ok_with(
                code::UNKNOWN_LOCATION,
                format!("unknown EVSE {uid:?} of location {id:?}"),
            )
        })?;
    let Some(connector_id) = rest.get(1) else {
        return Ok(success(evse));
    };
    let connector = evse["connectors"]
        .as_array()
        .and_then(|connectors| connectors.iter().find(|c| c["id"] == *connector_id))
        .cloned()
        .ok_or_else(|| {
            OcpiError::ok_with(
                code::UNKNOWN_LOCATION,
                format!("unknown connector {connector_id:?} of EVSE {uid:?}"),
            )
        })?;
    Ok(success(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partners_see_ocpi_fields_only() {
        let location: Location = serde_json::from_value(serde_json::json!({
            "id": "L1", "country_code": "GB", "party_id": "TWK", "publish": true,
            "address": "1 High Street", "city": "London", "country": "GBR", "province": "Greater London",
            "coordinates": {"latitude": "51.5", "longitude": "-0.12"}, "time_zone": "UTC",
            "evses": [{"uid": "E1", "status": "AVAILABLE", "station_id": "CS1", "ocpp_evse_id": 1,
                "payment_types": ["GCASH"], "capabilities": ["RFID_READER"],
                "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                    "power_type": "AC_3_PHASE", "max_voltage": 400, "max_amperage": 32,
                    "last_updated": "2026-12-01T00:00:00Z"}],
                "last_updated": "2026-12-01T00:00:00Z"}],
            "last_updated": "2026-12-01T00:00:00Z"}))
        .unwrap();
        let view = location_view(&location);
        assert!(view.get("province").is_none());
        let evse = &view["evses"][0];
        for private in ["station_id", "ocpp_evse_id", "payment_types"] {
            assert!(evse.get(private).is_none(), "{private} leaked: {evse}");
        }
        assert_eq!(evse["capabilities"][0], "RFID_READER");
        assert_eq!(evse["connectors"][0]["max_voltage"], 400);
        assert_eq!(view["city"], "London");
    }
}
