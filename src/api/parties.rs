//! `/api/v0/register`: OCPI partner registrations (MaEVe `Registration`).
//! With a `url` voltgate runs the credentials handshake itself (retried
//! with back-off; the state and last failure show in `GET`); without, the
//! token waits for the partner to register.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::validate::{invalid, length};
use crate::ocpi::Registrar;
use crate::store::{OcpiPartner, OcpiRegistrationStatus, PartnerEndpoint};

/// Initial connection details for the OCPI registration process.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegistrationBody {
    /// CREDENTIALS_TOKEN_A for the party.
    token: String,
    /// The party's OCPI versions endpoint (http or https URL).
    #[serde(default)]
    url: Option<String>,
    /// PENDING (default) or REGISTERED.
    #[serde(default)]
    status: Option<OcpiRegistrationStatus>,
}

/// A registration as operators see it (no tokens).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationView {
    /// Registration id.
    id: String,
    /// PENDING or REGISTERED.
    status: OcpiRegistrationStatus,
    /// The partner's versions URL, once known.
    url: Option<String>,
    /// The partner's roles, `{role, countryCode, partyId}` each.
    roles: Vec<RoleView>,
    /// The partner's 2.2.1 endpoints.
    #[schema(value_type = Vec<Object>)]
    endpoints: Vec<PartnerEndpoint>,
    /// Why the last handshake attempt failed.
    last_error: Option<String>,
    /// Failed attempts in a row.
    failed_attempts: u32,
    /// When the registration was made.
    created_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

/// One role of a partner.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    role: String,
    country_code: String,
    party_id: String,
}

impl From<OcpiPartner> for RegistrationView {
    fn from(p: OcpiPartner) -> Self {
        RegistrationView {
            id: p.id,
            status: p.status,
            url: p.versions_url,
            roles: p
                .roles
                .into_iter()
                .map(|r| RoleView {
                    role: r.role,
                    country_code: r.country_code,
                    party_id: r.party_id,
                })
                .collect(),
            endpoints: p.endpoints,
            last_error: p.last_error,
            failed_attempts: p.failed_attempts,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// Register an OCPI party.
#[utoipa::path(post, path = "/api/v0/register", tag = "ocpi", request_body = RegistrationBody,
    responses((status = 201, description = "Registered; with a url the handshake runs in the background", body = RegistrationView),
        (status = 400, body = ErrorBody)))]
pub async fn register(
    registrar: web::Data<Registrar>,
    ValidJson(body): ValidJson<RegistrationBody>,
) -> Result<HttpResponse, ApiError> {
    length("token", &body.token, 1, 64)?;
    if let Some(url) = &body.url {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host_ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
        if !host_ok || url.len() > 255 || url.chars().any(char::is_whitespace) {
            return Err(invalid(
                "url",
                "must be an absolute http(s) URL of at most 255 characters",
            ));
        }
    }
    let partner = OcpiPartner::from_registration(
        &body.token,
        body.url,
        body.status.unwrap_or(OcpiRegistrationStatus::Pending),
        Utc::now(),
    );
    let partner = registrar.register(partner).await?;
    Ok(HttpResponse::Created().json(RegistrationView::from(partner)))
}

/// List OCPI registrations and where each stands.
#[utoipa::path(get, path = "/api/v0/register", tag = "ocpi",
    responses((status = 200, body = Vec<RegistrationView>)))]
pub async fn list(registrar: web::Data<Registrar>) -> Result<HttpResponse, ApiError> {
    let partners = registrar.store().list_partners().await?;
    let views: Vec<RegistrationView> = partners.into_iter().map(RegistrationView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}
