//! `POST` and `PATCH /api/v1/locations/batch` and `POST
//! /api/v1/chargestations/batch`: up to 1,000 creates-or-replaces or merges
//! in one call. Each item is decoded, checked and
//! written on its own (a bad one never stops the others, and is never half
//! written); the answer lists one result per item, in order.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};

use super::body::{self, V1Settings};
use super::envelope::{code, success, V1Error};
use crate::locations::stations::ChargeStationInput;
use crate::locations::{Failure, Locations};
use crate::store::Location;

/// Most items in one batch.
pub const MAX_ITEMS: usize = 1_000;
/// Items written at once.
const WRITES_IN_FLIGHT: usize = 32;
/// Largest batch body: a thousand locations with their EVSEs.
const MAX_BATCH_BODY_BYTES: usize = 32 * 1024 * 1024;

/// One item's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchItemResult {
    /// The item's location id (empty when it has none).
    pub id: String,
    /// Its OCPI status code.
    pub status_code: u16,
    /// What happened.
    pub status_message: String,
}

fn result(id: String, outcome: Result<(), Failure>) -> BatchItemResult {
    let (status_code, status_message) = match outcome {
        Ok(()) => (code::SUCCESS, "Success".to_owned()),
        Err(Failure::Invalid(e)) => (code::INVALID, e.to_string()),
        Err(Failure::NotFound(what)) => (code::UNKNOWN_LOCATION, format!("unknown {what}")),
        Err(Failure::Exists(why)) => (code::INVALID, why),
        Err(Failure::Stale(_)) => (code::CLIENT_ERROR, "changed meanwhile".into()),
        Err(Failure::Store(e)) => {
            tracing::error!(error = %e, "a batch item was not stored");
            (code::SERVER_ERROR, "internal error".into())
        }
    };
    BatchItemResult {
        id,
        status_code,
        status_message,
    }
}

async fn items(
    req: &HttpRequest,
    payload: web::Payload,
    settings: &V1Settings,
) -> Result<Vec<Value>, V1Error> {
    let batch = V1Settings {
        max_body_bytes: settings.max_body_bytes.max(MAX_BATCH_BODY_BYTES),
    };
    let items: Vec<Value> = body::json(req, payload, &batch).await?;
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(V1Error::invalid(format!(
            "a batch holds 1 to {MAX_ITEMS} items, not {}",
            items.len()
        )));
    }
    Ok(items)
}

fn id_of(item: &Value) -> String {
    item.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Answers each item's result, in order: `apply` gets the item's `id`
/// (an item without one is refused here) and the item.
async fn run<F, Fut>(items: Vec<Value>, apply: F) -> HttpResponse
where
    F: Fn(String, Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let results: Vec<BatchItemResult> = stream::iter(items)
        .map(|item| {
            let id = id_of(&item);
            let done = (!id.is_empty()).then(|| apply(id.clone(), item));
            async move {
                let outcome = match done {
                    Some(done) => done.await,
                    None => Err(Failure::Invalid(crate::locations::rules::invalid(
                        "id", "missing",
                    ))),
                };
                result(id, outcome)
            }
        })
        .buffered(WRITES_IN_FLIGHT)
        .collect()
        .await;
    HttpResponse::Ok().json(success(results))
}

fn decode<T: serde::de::DeserializeOwned>(item: Value) -> Result<T, Failure> {
    crate::locations::rules::decode(item).map_err(Failure::Invalid)
}

/// Create or replace each charge station by its `id`.
#[utoipa::path(post, path = "/api/v1/chargestations/batch", tag = "v1 charge stations",
    responses((status = 200, description = "OCPI envelope with one {id, status_code, status_message} per item, in order")))]
pub async fn put_stations(
    req: HttpRequest,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let items = items(&req, payload, &settings).await?;
    let now = Utc::now();
    Ok(run(items, |id, item| {
        let locations = locations.clone();
        async move {
            let station: ChargeStationInput = decode(item)?;
            locations
                .put_station(&id, station, false, now)
                .await
                .map(drop)
        }
    })
    .await)
}

/// Merge into each charge station named by `id` (as PATCH).
#[utoipa::path(patch, path = "/api/v1/chargestations/batch", tag = "v1 charge stations",
    responses((status = 200, description = "OCPI envelope with one {id, status_code, status_message} per item, in order")))]
pub async fn patch_stations(
    req: HttpRequest,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let items = items(&req, payload, &settings).await?;
    let now = Utc::now();
    Ok(run(items, |id, item| {
        let locations = locations.clone();
        async move {
            let fields: Map<String, Value> = decode(item)?;
            locations.patch_station(&id, &fields, now).await.map(drop)
        }
    })
    .await)
}

/// Create or replace each location by its `id`.
#[utoipa::path(post, path = "/api/v1/locations/batch", tag = "v1 locations", request_body = Vec<Location>,
    responses((status = 200, description = "OCPI envelope with one {id, status_code, status_message} per item, in order")))]
pub async fn put(
    req: HttpRequest,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let items = items(&req, payload, &settings).await?;
    let now = Utc::now();
    Ok(run(items, |_, item| {
        let locations = locations.clone();
        async move {
            let location: Location = decode(item)?;
            locations.put(location, None, now).await.map(drop)
        }
    })
    .await)
}

/// Merge into each location named by `id` (each item needs `last_updated`).
#[utoipa::path(patch, path = "/api/v1/locations/batch", tag = "v1 locations",
    responses((status = 200, description = "OCPI envelope with one {id, status_code, status_message} per item, in order")))]
pub async fn patch(
    req: HttpRequest,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let items = items(&req, payload, &settings).await?;
    let now = Utc::now();
    Ok(run(items, |id, item| {
        let locations = locations.clone();
        async move {
            let fields: Map<String, Value> = decode(item)?;
            locations.patch(&id, &fields, None, now).await.map(drop)
        }
    })
    .await)
}
