//! `GET /ocpi/2.2.1/sessions` and `/cdrs`: an eMSP pulls its own Sessions
//! and CDRs (those of tokens it issued) by `last_updated`, with the paging
//! of the Locations list (`Link`, `X-Total-Count`, `X-Limit`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::locations::paging::{page_of, Limits, ListError, ListQuery};
use crate::ocpi::registrar::Registrar;
use crate::ocpi::transport::{caller, code, envelope, OcpiError};
use crate::store::{OcpiObjectKind, OcpiPartner};

/// Page sizes of the Sessions and CDRs lists.
const LIMITS: Limits = Limits {
    default: 50,
    max: 500,
};

/// The party whose objects the caller sees: the one named by the
/// `OCPI-from-*` headers when the partner plays it, else the partner's
/// first eMSP role (or its first role).
fn party_of(req: &HttpRequest, partner: &OcpiPartner) -> Option<String> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let plays = |cc: &str, pid: &str| {
        partner.roles.iter().find(|r| {
            r.country_code.eq_ignore_ascii_case(cc) && r.party_id.eq_ignore_ascii_case(pid)
        })
    };
    let named = match (
        header("OCPI-from-country-code"),
        header("OCPI-from-party-id"),
    ) {
        (Some(cc), Some(pid)) => plays(&cc, &pid),
        _ => None,
    };
    named
        .or_else(|| partner.emsp_role())
        .map(|r| format!("{}-{}", r.country_code, r.party_id))
}

async fn list(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    query: web::Query<ListQuery>,
    (kind, module): (OcpiObjectKind, &str),
) -> Result<HttpResponse, OcpiError> {
    let who = caller(&req, registrar.store(), false).await?;
    let store = registrar.store();
    let party = party_of(&req, &who.partner).unwrap_or_default();
    let listed = page_of(
        &query,
        LIMITS,
        |window| store.ocpi_objects_updated(kind, &party, window),
        |from, to| store.count_ocpi_objects_updated(kind, &party, from, to),
    )
    .await
    .map_err(|e| match e {
        ListError::Invalid(why) => OcpiError::ok_with(code::INVALID_PARAMETERS, why),
        ListError::Store(e) => OcpiError::from(e),
    })?;
    let mut response = HttpResponse::Ok();
    for header in listed.headers(&registrar.identity().module_url(module)) {
        response.insert_header(header);
    }
    let bodies: Vec<Value> = listed.page.into_iter().map(|o| o.body).collect();
    Ok(response.json(envelope(bodies, code::SUCCESS, "Success")))
}

/// `GET /ocpi/2.2.1/sessions`.
pub async fn sessions(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, OcpiError> {
    list(req, registrar, query, (OcpiObjectKind::Session, "sessions")).await
}

/// `GET /ocpi/2.2.1/cdrs`.
pub async fn cdrs(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, OcpiError> {
    list(req, registrar, query, (OcpiObjectKind::Cdr, "cdrs")).await
}
