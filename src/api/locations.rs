//! `/api/v0/location`: MaEVe's view of the locations `/api/v1` manages. A
//! location posted here is completed with what OCPI requires (`publish`,
//! `time_zone` from `--default-time-zone`, `last_updated`) and replaces
//! the stored one whole; the GETs show the same records.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::paging::{with_next_cursor, PageQuery};
use super::validate::invalid;
use super::AppState;
use crate::locations::Failure;
use crate::store::Location;

type LocationId = web::Path<String>;

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Invalid(e) => ApiError::BadRequest(e.to_string()),
            Failure::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            Failure::Exists(why) => ApiError::Conflict(why),
            Failure::Stale(_) => ApiError::Conflict("the location changed meanwhile".into()),
            Failure::Store(e) => e.into(),
        }
    }
}

/// Create or replace a location.
#[utoipa::path(post, path = "/api/v0/location/{locationId}", tag = "locations",
    params(("locationId" = String, Path, description = "The location id")),
    request_body = Location,
    responses((status = 201, description = "Stored"), (status = 400, body = ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    id: LocationId,
    ValidJson(mut fields): ValidJson<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match fields.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(given)) if given.is_empty() || *given == id => {}
        Some(given) => {
            return Err(invalid(
                "id",
                format!("{given} differs from the id in the path"),
            ));
        }
    }
    fields.insert("id".into(), Value::String(id));
    if !fields.contains_key("time_zone") {
        fields.insert(
            "time_zone".into(),
            Value::String(state.default_time_zone.clone()),
        );
    }
    let location: Location = serde_path_to_error::deserialize(Value::Object(fields))
        .map_err(|e| invalid(&e.path().to_string(), e.into_inner()))?;
    state.locations.put(location, None, Utc::now()).await?;
    Ok(HttpResponse::Created().finish())
}

/// One location.
#[utoipa::path(get, path = "/api/v0/location/{locationId}", tag = "locations",
    params(("locationId" = String, Path, description = "The location id")),
    responses((status = 200, body = Location), (status = 404, body = ErrorBody)))]
pub async fn show(state: web::Data<AppState>, id: LocationId) -> Result<HttpResponse, ApiError> {
    let stored = state.locations.get(&id).await?;
    Ok(HttpResponse::Ok().json(stored.location))
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
