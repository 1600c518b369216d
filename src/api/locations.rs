//! `/api/v0/location`: charging locations with their EVSEs and connectors.

use actix_web::{web, HttpResponse};
use chrono::Utc;

use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::paging::{with_next_cursor, PageQuery};
use super::validate::{coordinate, invalid, length, optional_length};
use super::AppState;
use crate::store::Location;

type LocationId = web::Path<String>;

/// Create or replace a location.
#[utoipa::path(post, path = "/api/v0/location/{locationId}", tag = "locations",
    params(("locationId" = String, Path, description = "The location id")),
    request_body = Location,
    responses((status = 201, description = "Stored"), (status = 400, body = ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    id: LocationId,
    ValidJson(mut location): ValidJson<Location>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    length("locationId", &id, 1, 36)?;
    if !location.id.is_empty() && location.id != id {
        return Err(invalid(
            "id",
            format!("{:?} differs from the id in the path", location.id),
        ));
    }
    check(&location)?;
    location.id = id;
    location.last_updated = Some(Utc::now());
    state.store.put_location(location).await?;
    Ok(HttpResponse::Created().finish())
}

/// One location.
#[utoipa::path(get, path = "/api/v0/location/{locationId}", tag = "locations",
    params(("locationId" = String, Path, description = "The location id")),
    responses((status = 200, body = Location), (status = 404, body = ErrorBody)))]
pub async fn show(state: web::Data<AppState>, id: LocationId) -> Result<HttpResponse, ApiError> {
    let location = state
        .store
        .location(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("location", &id))?;
    Ok(HttpResponse::Ok().json(location))
}

/// Locations in id order; a full page carries `X-Next-Cursor`.
#[utoipa::path(get, path = "/api/v0/location", tag = "locations", params(PageQuery),
    responses((status = 200, body = Vec<Location>), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let locations = state.store.list_locations(page.clone()).await?;
    let last = locations.last().map(|l| l.id.as_str());
    Ok(with_next_cursor(HttpResponse::Ok(), &page, locations.len(), last).json(&locations))
}

/// OCPI field rules beyond the JSON types.
fn check(location: &Location) -> Result<(), ApiError> {
    length("country_code", &location.country_code, 2, 2)?;
    length("party_id", &location.party_id, 3, 3)?;
    optional_length("name", &location.name, 0, 255)?;
    length("address", &location.address, 1, 45)?;
    length("city", &location.city, 1, 45)?;
    optional_length("postal_code", &location.postal_code, 0, 10)?;
    length("country", &location.country, 3, 3)?;
    coordinate("coordinates.latitude", &location.coordinates.latitude, 90.0)?;
    coordinate(
        "coordinates.longitude",
        &location.coordinates.longitude,
        180.0,
    )?;
    for (i, evse) in location.evses.iter().flatten().enumerate() {
        length(&format!("evses[{i}].uid"), &evse.uid, 1, 36)?;
        optional_length(&format!("evses[{i}].evse_id"), &evse.evse_id, 1, 48)?;
        if evse.connectors.is_empty() {
            return Err(invalid(
                &format!("evses[{i}].connectors"),
                "an EVSE needs at least one connector",
            ));
        }
        for (j, connector) in evse.connectors.iter().enumerate() {
            let field = format!("evses[{i}].connectors[{j}]");
            length(&format!("{field}.id"), &connector.id, 1, 36)?;
            if connector.max_voltage < 0 || connector.max_amperage < 0 {
                return Err(invalid(
                    &field,
                    "max_voltage and max_amperage must not be negative",
                ));
            }
        }
    }
    Ok(())
}
