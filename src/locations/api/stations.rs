//! `/api/v1/chargestations`: charge stations as assets (seed 004), their
//! EVSEs kept in the location they stand at.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::{Map, Value};

use super::body::{self, V1Settings};
use super::envelope::{ok, V1Error};
use crate::locations::stations::{ChargeStationAsset, ChargeStationInput};
use crate::locations::{Failure, Locations};

type Id = web::Path<String>;

/// Create a charge station (its `id` in the body): where it stands, its
/// EVSEs, and optionally its OCPP registration.
#[utoipa::path(post, path = "/api/v1/chargestations", tag = "v1 charge stations", request_body = ChargeStationInput,
    responses((status = 200, description = "OCPI envelope with the station; 2001 when invalid or existing", body = ChargeStationAsset)))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let input: ChargeStationInput = body::json(&req, payload, &settings).await?;
    let id = input.id.clone();
    if id.is_empty() {
        return Err(V1Error::invalid("invalid field id: missing"));
    }
    let view = locations.put_station(&id, input, true, Utc::now()).await?;
    Ok(ok(HttpResponse::Ok(), view))
}

/// Create or replace a charge station.
#[utoipa::path(put, path = "/api/v1/chargestations/{id}", tag = "v1 charge stations", request_body = ChargeStationInput,
    params(("id" = String, Path, description = "Charge station id")),
    responses((status = 200, description = "OCPI envelope with the station", body = ChargeStationAsset)))]
pub async fn put(
    req: HttpRequest,
    id: Id,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let input: ChargeStationInput = body::json(&req, payload, &settings).await?;
    let view = locations.put_station(&id, input, false, Utc::now()).await?;
    Ok(ok(HttpResponse::Ok(), view))
}

/// Merge fields into a charge station (`location_id` moves it, `evses`
/// replaces its EVSEs, `registration` registers it again).
#[utoipa::path(patch, path = "/api/v1/chargestations/{id}", tag = "v1 charge stations",
    params(("id" = String, Path, description = "Charge station id")),
    responses((status = 200, description = "OCPI envelope with the station; 2003 when unknown", body = ChargeStationAsset)))]
pub async fn patch(
    req: HttpRequest,
    id: Id,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let fields: Map<String, Value> = body::json(&req, payload, &settings).await?;
    let current = locations.station(&id).await?;
    let mut merged = Map::new();
    merged.insert("id".into(), Value::String(current.id.clone()));
    merged.insert(
        "location_id".into(),
        Value::String(current.location_id.clone()),
    );
    merged.insert(
        "evses".into(),
        serde_json::to_value(&current.evses).unwrap_or_default(),
    );
    for key in ["location_id", "evses", "registration"] {
        if let Some(value) = fields.get(key) {
            merged.insert(key.into(), value.clone());
        }
    }
    let input: ChargeStationInput = serde_path_to_error::deserialize(Value::Object(merged))
        .map_err(|e| {
            let field = e.path().to_string();
            V1Error::from(Failure::Invalid(crate::locations::rules::invalid(
                field,
                e.into_inner().to_string(),
            )))
        })?;
    let view = locations.put_station(&id, input, false, Utc::now()).await?;
    Ok(ok(HttpResponse::Ok(), view))
}

/// One charge station: its EVSEs and what it reported (read-only).
#[utoipa::path(get, path = "/api/v1/chargestations/{id}", tag = "v1 charge stations",
    params(("id" = String, Path, description = "Charge station id")),
    responses((status = 200, description = "OCPI envelope with the station; 2003 when unknown", body = ChargeStationAsset)))]
pub async fn show(id: Id, locations: web::Data<Locations>) -> Result<HttpResponse, V1Error> {
    Ok(ok(HttpResponse::Ok(), locations.station(&id).await?))
}
