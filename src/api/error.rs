//! `ApiError`: every way a REST call can fail, and its one mapping to an HTTP
//! answer with the MaEVe error body `{"status": "...", "error": "..."}`.
//!
//! Client faults say what is wrong; server faults say "internal error" and
//! leave the cause to the log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// Seconds a client is told to wait after a 503 (`Retry-After`).
pub const RETRY_AFTER_SECS: &str = "5";

/// A failed REST call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or breaks a rule; the text names the field.
    #[error("{0}")]
    BadRequest(String),
    /// No valid API token.
    #[error("{0}")]
    Unauthorized(String),
    /// The addressed resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the resource's state (e.g. an immediate
    /// command to a station that is not connected).
    #[error("{0}")]
    Conflict(String),
    /// The route exists but not for this method.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The body is larger than the configured limit.
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// The server cannot take the request now (store closing, queue full).
    #[error("service unavailable, retry later")]
    Unavailable,
    /// Anything that is the server's fault; the cause is logged, not shown.
    #[error("internal error")]
    Internal,
}

/// The error body of every failed call (MaEVe `Status`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status text, e.g. "Bad Request".
    pub status: String,
    /// What is wrong.
    pub error: String,
}

impl ApiError {
    /// A 404 for `what` (e.g. "charge station") named `id`.
    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::NotFound(format!("{what} {id:?} not found"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        if let ApiError::Unauthorized(_) = self {
            response.insert_header((
                actix_web::http::header::WWW_AUTHENTICATE,
                "Bearer realm=\"voltgate\"",
            ));
        }
        if let ApiError::Unavailable = self {
            response.insert_header((actix_web::http::header::RETRY_AFTER, RETRY_AFTER_SECS));
        }
        response.json(ErrorBody {
            status: status.canonical_reason().unwrap_or("Error").to_owned(),
            error: self.to_string(),
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Unavailable(reason) => {
                crate::api::log_limited::warn("store_unavailable", reason);
                ApiError::Unavailable
            }
            StoreError::Unreachable(cause) => {
                crate::api::log_limited::warn("store_unreachable", &cause);
                ApiError::Unavailable
            }
            StoreError::Backend(cause) => {
                tracing::error!(%cause, "store call failed");
                ApiError::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(e: ApiError) -> (u16, serde_json::Value) {
        let response = e.error_response();
        let status = response.status().as_u16();
        let bytes = response.into_body().try_into_bytes().expect("plain body");
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    #[test]
    fn backend_failures_are_500_without_details() {
        let (status, body) = body_of(StoreError::Backend("disk /secret/path failed".into()).into());
        assert_eq!(status, 500);
        assert_eq!(
            body,
            serde_json::json!({"status": "Internal Server Error", "error": "internal error"})
        );
    }

    #[test]
    fn every_variant_has_the_error_body() {
        for (e, code, status) in [
            (ApiError::BadRequest("x".into()), 400, "Bad Request"),
            (ApiError::NotFound("x".into()), 404, "Not Found"),
            (
                ApiError::MethodNotAllowed("PUT".into()),
                405,
                "Method Not Allowed",
            ),
            (ApiError::PayloadTooLarge(10), 413, "Payload Too Large"),
            (ApiError::Unavailable, 503, "Service Unavailable"),
        ] {
            let (got, body) = body_of(e);
            assert_eq!(got, code);
            assert_eq!(body["status"], status);
            assert!(body["error"].as_str().is_some_and(|s| !s.is_empty()));
        }
    }
}
