//! `/api/v1/chargestations`: charge stations as assets (seed 004), their
//! EVSEs kept in the location they stand at.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::{Map, Value};

use super::body::{self, V1Settings};
use super::envelope::{ok, V1Error};
use crate::locations::stations::{ChargeStationAsset, ChargeStationInput};
use crate::locations::Locations;

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
    let view = locations.patch_station(&id, &fields, Utc::now()).await?;
    Ok(ok(HttpResponse::Ok(), view))
}

/// One charge station: its EVSEs and what it reported (read-only).
#[utoipa::path(get, path = "/api/v1/chargestations/{id}", tag = "v1 charge stations",
    params(("id" = String, Path, description = "Charge station id")),
    responses((status = 200, description = "OCPI envelope with the station; 2003 when unknown", body = ChargeStationAsset)))]
pub async fn show(id: Id, locations: web::Data<Locations>) -> Result<HttpResponse, V1Error> {
    Ok(ok(HttpResponse::Ok(), locations.station(&id).await?))
}
