//! `/api/v0/certificate`: client certificates uploaded so that stations behind
//! a TLS-terminating proxy can be recognised by certificate hash.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::validate::invalid;
use super::AppState;
use crate::pki;
use crate::store::StoredCertificate;

/// A client certificate (MaEVe `Certificate`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificateBody {
    /// The PEM text (leaf first when a chain is given).
    certificate: String,
}

type Hash = web::Path<String>;

/// Upload a certificate; it is stored under the base64url SHA-256 of its DER,
/// which the `Location` header names.
#[utoipa::path(post, path = "/api/v0/certificate", tag = "certificates",
    request_body = CertificateBody,
    responses((status = 201, description = "Stored; Location names it by hash"),
        (status = 400, body = ErrorBody)))]
pub async fn upload_certificate(
    state: web::Data<AppState>,
    ValidJson(body): ValidJson<CertificateBody>,
) -> Result<HttpResponse, ApiError> {
    let der =
        pki::leaf_certificate_der(&body.certificate).map_err(|e| invalid("certificate", e))?;
    let hash = pki::certificate_hash(&der);
    let location = format!("/api/v0/certificate/{hash}");
    let record = StoredCertificate {
        hash,
        pem: body.certificate,
        uploaded_at: Utc::now(),
    };
    state.store.put_certificate(record).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .finish())
}

/// Look a certificate up by hash.
#[utoipa::path(get, path = "/api/v0/certificate/{certificateHash}", tag = "certificates",
    params(("certificateHash" = String, Path, description = "base64url SHA-256 of the DER")),
    responses((status = 200, body = CertificateBody), (status = 404, body = ErrorBody)))]
pub async fn show_certificate(
    state: web::Data<AppState>,
    hash: Hash,
) -> Result<HttpResponse, ApiError> {
    let record = state
        .store
        .certificate(&hash)
        .await?
        .ok_or_else(|| ApiError::not_found("certificate", &hash))?;
    Ok(HttpResponse::Ok().json(CertificateBody {
        certificate: record.pem,
    }))
}

/// Delete a certificate by hash.
#[utoipa::path(delete, path = "/api/v0/certificate/{certificateHash}", tag = "certificates",
    params(("certificateHash" = String, Path, description = "base64url SHA-256 of the DER")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete_certificate(
    state: web::Data<AppState>,
    hash: Hash,
) -> Result<HttpResponse, ApiError> {
    if state.store.delete_certificate(&hash).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("certificate", &hash))
    }
}
