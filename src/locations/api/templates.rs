//! `/api/v1/templates`: hardware templates, the EVSE and connector layouts
//! a charge station can be created from (`template_id`: a copy, not a link).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;

use super::body::{self, V1Settings};
use super::envelope::{ok, V1Error};
use crate::locations::{Failure, Locations};
use crate::store::{HardwareTemplate, Page};

type Id = web::Path<String>;

/// Create a hardware template (its `id` in the body).
#[utoipa::path(post, path = "/api/v1/templates", tag = "v1 charge stations", request_body = HardwareTemplate,
    responses((status = 200, description = "OCPI envelope with the template; 2001 when invalid or existing")))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let template: HardwareTemplate = body::json(&req, payload, &settings).await?;
    let stored = locations.put_template(template, true, Utc::now()).await?;
    Ok(ok(HttpResponse::Ok(), stored))
}

/// Create or replace a hardware template.
#[utoipa::path(put, path = "/api/v1/templates/{id}", tag = "v1 charge stations", request_body = HardwareTemplate,
    params(("id" = String, Path, description = "Template id")),
    responses((status = 200, description = "OCPI envelope with the template")))]
pub async fn put(
    req: HttpRequest,
    id: Id,
    payload: web::Payload,
    settings: web::Data<V1Settings>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let mut template: HardwareTemplate = body::json(&req, payload, &settings).await?;
    if template.id.is_empty() {
        template.id = id.into_inner();
    } else if template.id != *id {
        return Err(V1Error::invalid(format!(
            "invalid field id: {:?} differs from the id in the path",
            template.id
        )));
    }
    let stored = locations.put_template(template, false, Utc::now()).await?;
    Ok(ok(HttpResponse::Ok(), stored))
}

/// One hardware template.
#[utoipa::path(get, path = "/api/v1/templates/{id}", tag = "v1 charge stations",
    params(("id" = String, Path, description = "Template id")),
    responses((status = 200, description = "OCPI envelope with the template; 2003 when unknown")))]
pub async fn show(id: Id, locations: web::Data<Locations>) -> Result<HttpResponse, V1Error> {
    let template = locations
        .store()
        .template(&id)
        .await?
        .ok_or_else(|| Failure::NotFound(format!("hardware template {:?}", id.as_str())))?;
    Ok(ok(HttpResponse::Ok(), template))
}

/// Paging of the template list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TemplatePage {
    /// Templates to skip.
    pub offset: Option<u64>,
    /// Most templates (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Hardware templates in id order.
#[utoipa::path(get, path = "/api/v1/templates", tag = "v1 charge stations", params(TemplatePage),
    responses((status = 200, description = "OCPI envelope with the templates")))]
pub async fn list(
    query: web::Query<TemplatePage>,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let page = Page::new(
        query.offset.unwrap_or(0),
        query.limit.unwrap_or(100).clamp(1, 1000),
    );
    let templates = locations.store().list_templates(page).await?;
    Ok(ok(HttpResponse::Ok(), templates))
}
