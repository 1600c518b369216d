//! `/api/v1/locations/nearby` and `/api/v1/filters`: the search of
//! drivers' apps (seed 003) in the OCPI envelope.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};

use super::envelope::{success, V1Error};
use crate::locations::search::{filter_values, Nearby};
use crate::locations::{Failure, Locations};

/// Published locations within `distance_km` of (`lat`, `lng`), nearest
/// first, each with `distance_km`; filters are comma-separated (any value
/// may match) and all must match.
#[utoipa::path(get, path = "/api/v1/locations/nearby", tag = "v1 locations",
    params(
        ("lat" = f64, Query, description = "Latitude of the centre"),
        ("lng" = f64, Query, description = "Longitude of the centre"),
        ("distance_km" = Option<f64>, Query, description = "Radius, default 10, at most 500"),
        ("city" = Option<String>, Query, description = "Cities, comma-separated"),
        ("province" = Option<String>, Query, description = "Provinces"),
        ("facilities" = Option<String>, Query, description = "OCPI facilities"),
        ("capabilities" = Option<String>, Query, description = "EVSE capabilities"),
        ("payment_types" = Option<String>, Query, description = "EVSE payment types"),
        ("parking_types" = Option<String>, Query, description = "OCPI parking types"),
        ("connector_standard" = Option<String>, Query, description = "Connector standards"),
        ("power_type" = Option<String>, Query, description = "Power types"),
        ("min_power_kw" = Option<f64>, Query, description = "Some connector at least this powerful"),
        ("available_only" = Option<bool>, Query, description = "Some EVSE AVAILABLE"),
        ("offset" = Option<usize>, Query, description = "Results to skip"),
        ("limit" = Option<usize>, Query, description = "Most results, default 20, at most 100"),
    ),
    responses((status = 200, description = "OCPI envelope with the locations and X-Total-Count; 2001 naming a bad parameter")))]
pub async fn nearby(
    query: web::Query<HashMap<String, String>>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let search = Nearby::from_params(&query).map_err(Failure::Invalid)?;
    let results = locations.nearby(&search).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", results.total.to_string()))
        .insert_header(("X-Limit", search.limit.to_string()))
        .json(success(results.page)))
}

/// The valid values of each search filter.
#[utoipa::path(get, path = "/api/v1/filters", tag = "v1 locations",
    responses((status = 200, description = "OCPI envelope: filter name → valid values")))]
pub async fn filters(locations: web::Data<Locations>) -> HttpResponse {
    HttpResponse::Ok().json(success(filter_values(locations.payment_types())))
}

/// The cities of a province's published locations, sorted.
#[utoipa::path(get, path = "/api/v1/filters/cities", tag = "v1 locations",
    params(("province" = String, Query, description = "The province (any case)")),
    responses((status = 200, description = "OCPI envelope with the city names; 2001 without a province")))]
pub async fn cities(
    query: web::Query<HashMap<String, String>>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let province = query
        .get("province")
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| V1Error::invalid("invalid parameter province: is required"))?;
    let cities = locations.store().cities_of_province(province).await?;
    Ok(HttpResponse::Ok().json(success(cities)))
}
