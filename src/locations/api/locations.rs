//! `/api/v1/locations`: create, replace, merge, delete and read locations,
//! their EVSEs and connectors, and list them by `last_updated` with OCPI
//! paging (`Link` rel="next", `X-Total-Count`, `X-Limit`). Reads and writes
//! of one location carry its `ETag`; `If-Match` makes a write conditional.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};

use super::body::{self, V1Settings};
use super::envelope::{etag_header, ok, success, V1Error};
use crate::locations::paging::{page_by_updated, Limits, ListError, ListQuery};
use crate::locations::{Changed, Locations};
use crate::store::{Connector, Evse, Location, StoredLocation};

/// Locations a list page holds unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most locations a list page holds.
pub const MAX_LIMIT: u32 = 1_000;

type Id = web::Path<String>;
type EvsePath = web::Path<(String, String)>;
type ConnectorPath = web::Path<(String, String, String)>;

fn answer(stored: &StoredLocation, data: impl Serialize) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header(etag_header(&stored.etag));
    ok(response, data)
}

fn changed(changed: Changed) -> HttpResponse {
    answer(&changed.stored, &changed.stored.location)
}

/// Create a location (its `id` in the body); an existing id is refused.
#[utoipa::path(post, path = "/api/v1/locations", tag = "v1 locations", request_body = Location,
    responses((status = 200, description = "OCPI envelope; status_code 1000 with the location, 2001 when invalid or existing")))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let location: Location = body::json(&req, payload, &settings).await?;
    if location.id.is_empty() {
        return Err(V1Error::invalid("invalid field id: missing"));
    }
    Ok(changed(locations.create(location, Utc::now()).await?))
}

/// Create or replace a location whole (optional fields not sent are cleared).
#[utoipa::path(put, path = "/api/v1/locations/{id}", tag = "v1 locations", request_body = Location,
    params(("id" = String, Path, description = "Location id"), ("If-Match" = Option<String>, Header, description = "ETag the write expects")),
    responses((status = 200, description = "OCPI envelope with the stored location and its ETag"), (status = 412, description = "If-Match no longer matches (status_code 2000)")))]
pub async fn put(
    req: HttpRequest,
    id: Id,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let if_match = body::if_match(&req)?;
    let mut location: Location = body::json(&req, payload, &settings).await?;
    if location.id.is_empty() {
        location.id = id.into_inner();
    } else if location.id != *id {
        return Err(V1Error::invalid(format!(
            "invalid field id: {:?} differs from the id in the path",
            location.id
        )));
    }
    Ok(changed(
        locations.put(location, if_match, Utc::now()).await?,
    ))
}

/// Merge fields into a location (each replaced whole; `last_updated` required).
#[utoipa::path(patch, path = "/api/v1/locations/{id}", tag = "v1 locations",
    params(("id" = String, Path, description = "Location id"), ("If-Match" = Option<String>, Header, description = "ETag the write expects")),
    responses((status = 200, description = "OCPI envelope with the merged location"), (status = 412, description = "If-Match no longer matches")))]
pub async fn patch(
    req: HttpRequest,
    id: Id,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let if_match = body::if_match(&req)?;
    let fields: Map<String, Value> = body::json(&req, payload, &settings).await?;
    Ok(changed(
        locations.patch(&id, &fields, if_match, Utc::now()).await?,
    ))
}

/// Delete a location.
#[utoipa::path(delete, path = "/api/v1/locations/{id}", tag = "v1 locations",
    params(("id" = String, Path, description = "Location id"), ("If-Match" = Option<String>, Header, description = "ETag the delete expects")),
    responses((status = 200, description = "OCPI envelope; 2003 when unknown"), (status = 412, description = "If-Match no longer matches")))]
pub async fn delete(
    req: HttpRequest,
    id: Id,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    locations.delete(&id, body::if_match(&req)?).await?;
    Ok(ok(HttpResponse::Ok(), ()))
}

/// One location, with its ETag.
#[utoipa::path(get, path = "/api/v1/locations/{id}", tag = "v1 locations",
    params(("id" = String, Path, description = "Location id")),
    responses((status = 200, description = "OCPI envelope with the location; 2003 when unknown")))]
pub async fn show(id: Id, locations: web::Data<Locations>) -> Result<HttpResponse, V1Error> {
    let stored = locations.get(&id).await?;
    Ok(answer(&stored, &stored.location))
}

/// One EVSE of a location.
#[utoipa::path(get, path = "/api/v1/locations/{id}/evses/{uid}", tag = "v1 locations",
    params(("id" = String, Path, description = "Location id"), ("uid" = String, Path, description = "EVSE uid")),
    responses((status = 200, description = "OCPI envelope with the EVSE; 2003 when unknown")))]
pub async fn show_evse(
    path: EvsePath,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let (id, uid) = path.into_inner();
    let stored = locations.get(&id).await?;
    let evse = find_evse(&stored.location, &uid)?;
    Ok(answer(&stored, evse))
}

/// Create or replace one EVSE of a location.
#[utoipa::path(put, path = "/api/v1/locations/{id}/evses/{uid}", tag = "v1 locations", request_body = Evse,
    params(("id" = String, Path, description = "Location id"), ("uid" = String, Path, description = "EVSE uid")),
    responses((status = 200, description = "OCPI envelope with the EVSE as stored")))]
pub async fn put_evse(
    req: HttpRequest,
    path: EvsePath,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let (id, uid) = path.into_inner();
    let if_match = body::if_match(&req)?;
    let evse: Evse = body::json(&req, payload, &settings).await?;
    if evse.uid != uid {
        return Err(V1Error::invalid(format!(
            "invalid field uid: {:?} differs from the uid in the path",
            evse.uid
        )));
    }
    let done = locations.put_evse(&id, evse, if_match, Utc::now()).await?;
    Ok(answer(
        &done.stored,
        find_evse(&done.stored.location, &uid)?,
    ))
}

/// Merge fields into one EVSE (`last_updated` required).
#[utoipa::path(patch, path = "/api/v1/locations/{id}/evses/{uid}", tag = "v1 locations",
    params(("id" = String, Path, description = "Location id"), ("uid" = String, Path, description = "EVSE uid")),
    responses((status = 200, description = "OCPI envelope with the merged EVSE")))]
pub async fn patch_evse(
    req: HttpRequest,
    path: EvsePath,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let (id, uid) = path.into_inner();
    let if_match = body::if_match(&req)?;
    let fields: Map<String, Value> = body::json(&req, payload, &settings).await?;
    let done = locations
        .patch_evse(&id, &uid, &fields, if_match, Utc::now())
        .await?;
    Ok(answer(
        &done.stored,
        find_evse(&done.stored.location, &uid)?,
    ))
}

/// One connector of an EVSE.
#[utoipa::path(get, path = "/api/v1/locations/{id}/evses/{uid}/connectors/{cid}", tag = "v1 locations",
    params(("id" = String, Path, description = "Location id"), ("uid" = String, Path, description = "EVSE uid"), ("cid" = String, Path, description = "Connector id")),
    responses((status = 200, description = "OCPI envelope with the connector; 2003 when unknown")))]
pub async fn show_connector(
    path: ConnectorPath,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let (id, uid, cid) = path.into_inner();
    let stored = locations.get(&id).await?;
    let connector = find_connector(&stored.location, &uid, &cid)?;
    Ok(answer(&stored, connector))
}

/// Create or replace one connector of an EVSE.
#[utoipa::path(put, path = "/api/v1/locations/{id}/evses/{uid}/connectors/{cid}", tag = "v1 locations", request_body = Connector,
    params(("id" = String, Path, description = "Location id"), ("uid" = String, Path, description = "EVSE uid"), ("cid" = String, Path, description = "Connector id")),
    responses((status = 200, description = "OCPI envelope with the connector as stored")))]
pub async fn put_connector(
    req: HttpRequest,
    path: ConnectorPath,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let (id, uid, cid) = path.into_inner();
    let if_match = body::if_match(&req)?;
    let connector: Connector = body::json(&req, payload, &settings).await?;
    if connector.id != cid {
        return Err(V1Error::invalid(format!(
            "invalid field id: {:?} differs from the connector id in the path",
            connector.id
        )));
    }
    let done = locations
        .put_connector(&id, &uid, connector, if_match, Utc::now())
        .await?;
    Ok(answer(
        &done.stored,
        find_connector(&done.stored.location, &uid, &cid)?,
    ))
}

/// Merge fields into one connector (`last_updated` required).
#[utoipa::path(patch, path = "/api/v1/locations/{id}/evses/{uid}/connectors/{cid}", tag = "v1 locations",
    params(("id" = String, Path, description = "Location id"), ("uid" = String, Path, description = "EVSE uid"), ("cid" = String, Path, description = "Connector id")),
    responses((status = 200, description = "OCPI envelope with the merged connector")))]
pub async fn patch_connector(
    req: HttpRequest,
    path: ConnectorPath,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let (id, uid, cid) = path.into_inner();
    let if_match = body::if_match(&req)?;
    let fields: Map<String, Value> = body::json(&req, payload, &settings).await?;
    let done = locations
        .patch_connector(&id, &uid, &cid, &fields, if_match, Utc::now())
        .await?;
    Ok(answer(
        &done.stored,
        find_connector(&done.stored.location, &uid, &cid)?,
    ))
}

fn find_evse<'a>(location: &'a Location, uid: &str) -> Result<&'a Evse, V1Error> {
    location
        .evses()
        .iter()
        .find(|e| e.uid == uid)
        .ok_or_else(|| {
            V1Error::from(crate::locations::Failure::NotFound(format!(
                "EVSE {uid:?} of location {:?}",
                location.id
            )))
        })
}

fn find_connector<'a>(
    location: &'a Location,
    uid: &str,
    cid: &str,
) -> Result<&'a Connector, V1Error> {
    let evse = find_evse(location, uid)?;
    evse.connectors.iter().find(|c| c.id == cid).ok_or_else(|| {
        V1Error::from(crate::locations::Failure::NotFound(format!(
            "connector {cid:?} of EVSE {uid:?}"
        )))
    })
}

/// Locations by `last_updated`, oldest first, with OCPI paging headers.
#[utoipa::path(get, path = "/api/v1/locations", tag = "v1 locations", params(ListQuery),
    responses((status = 200, description = "OCPI envelope with a page of locations; Link, X-Total-Count and X-Limit headers")))]
pub async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let limits = Limits {
        default: DEFAULT_LIMIT,
        max: MAX_LIMIT,
    };
    let listed = page_by_updated(locations.store(), &query, limits, false)
        .await
        .map_err(|e| match e {
            ListError::Invalid(why) => V1Error::invalid(why),
            ListError::Store(e) => V1Error::from(e),
        })?;
    let info = req.connection_info();
    let url = format!("{}://{}{}", info.scheme(), info.host(), req.path());
    let mut response = HttpResponse::Ok();
    for header in listed.headers(&url) {
        response.insert_header(header);
    }
    Ok(response.json(success(listed.page)))
}
