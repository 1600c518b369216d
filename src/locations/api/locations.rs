//! `/api/v1/locations`: create, replace, merge, delete and read locations,
//! their EVSEs and connectors, and list them by `last_updated` with OCPI
//! paging (`Link` rel="next", `X-Total-Count`, `X-Limit`). Reads and writes
//! of one location carry its `ETag`; `If-Match` makes a write conditional.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::body::{self, V1Settings};
use super::envelope::{etag_header, ok, success, V1Error};
use crate::locations::{Changed, Locations};
use crate::store::{ocpi_time, Connector, Evse, Location, StoredLocation, UpdatedWindow};

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

/// The list's query: OCPI's window and paging, plus the seek cursor the
/// `Link` header carries.
#[derive(Debug, Deserialize, Serialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only locations updated at or after this time (RFC 3339).
    pub date_from: Option<String>,
    /// Only locations updated before this time (RFC 3339).
    pub date_to: Option<String>,
    /// Locations to skip (ignored when `cursor` is given).
    pub offset: Option<u64>,
    /// Most locations in the page (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Where the previous page ended (from the `Link` header): seeks there.
    pub cursor: Option<String>,
}

fn time(field: &str, text: &Option<String>) -> Result<Option<DateTime<Utc>>, V1Error> {
    text.as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    V1Error::invalid(format!(
                        "invalid parameter {field}: {t:?} is not an RFC 3339 time ({e})"
                    ))
                })
        })
        .transpose()
}

fn cursor(text: &Option<String>) -> Result<Option<(DateTime<Utc>, String)>, V1Error> {
    let Some(text) = text else {
        return Ok(None);
    };
    let bad = || {
        V1Error::invalid(format!(
            "invalid parameter cursor: {text:?} is not a cursor from a Link header"
        ))
    };
    let (ms, id) = text.split_once('.').ok_or_else(bad)?;
    let at = ms
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(bad)?;
    Ok(Some((at, id.to_owned())))
}

/// Locations by `last_updated`, oldest first, with OCPI paging headers.
#[utoipa::path(get, path = "/api/v1/locations", tag = "v1 locations", params(ListQuery),
    responses((status = 200, description = "OCPI envelope with a page of locations; Link, X-Total-Count and X-Limit headers")))]
pub async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let from = time("date_from", &query.date_from)?;
    let to = time("date_to", &query.date_to)?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(V1Error::invalid(
                "invalid parameters: date_from is after date_to",
            ));
        }
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    if limit == 0 {
        return Err(V1Error::invalid(
            "invalid parameter limit: must be 1 or more",
        ));
    }
    let after = cursor(&query.cursor)?;
    let offset = query.offset.unwrap_or(0);
    let window = UpdatedWindow {
        from,
        to,
        offset: if after.is_some() { 0 } else { offset },
        after,
        limit,
        published_only: false,
    };
    let store = locations.store();
    let (page, total) = futures_util::try_join!(
        store.locations_updated(window),
        store.count_locations_updated(from, to, false)
    )?;
    let mut response = HttpResponse::Ok();
    response.insert_header(("X-Total-Count", total.to_string()));
    response.insert_header(("X-Limit", limit.to_string()));
    if page.len() == limit as usize {
        if let Some(last) = page.last() {
            let next = ListQuery {
                date_from: from.as_ref().map(ocpi_time::format),
                date_to: to.as_ref().map(ocpi_time::format),
                offset: Some(offset + u64::from(limit)),
                limit: Some(limit),
                cursor: Some(format!(
                    "{}.{}",
                    last.last_updated.map_or(0, |t| t.timestamp_millis()),
                    last.id
                )),
            };
            let query = serde_urlencoded::to_string(&next).unwrap_or_default();
            let info = req.connection_info();
            let url = format!("{}://{}{}?{query}", info.scheme(), info.host(), req.path());
            response.insert_header(("Link", format!("<{url}>; rel=\"next\"")));
        }
    }
    Ok(response.json(success(page)))
}
