//! `/api/v0/register`: OCPI party registration records (MaEVe `Registration`).
//!
//! The record is stored; the OCPI credentials handshake with the party's
//! versions endpoint is not part of voltgate yet.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::validate::{invalid, length};
use super::AppState;
use crate::store::{OcpiParty, OcpiRegistrationStatus};

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

/// Register an OCPI party.
#[utoipa::path(post, path = "/api/v0/register", tag = "ocpi", request_body = RegistrationBody,
    responses((status = 201, description = "Registered"), (status = 400, body = ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
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
    let party = OcpiParty {
        token: body.token,
        url: body.url,
        status: body.status.unwrap_or(OcpiRegistrationStatus::Pending),
        registered_at: Utc::now(),
    };
    state.store.put_party(party).await?;
    Ok(HttpResponse::Created().finish())
}
