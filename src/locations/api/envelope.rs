//! The OCPI response envelope of `/api/v1` (`{data, status_code,
//! status_message, timestamp}`) and how each failure maps onto it: a
//! well-formed request that reaches the API gets HTTP 200 with an OCPI
//! status code (2001 invalid, 2003 unknown, 3000 server error); what never
//! reached it keeps its HTTP code (400 malformed JSON, 413, 415), and a
//! stale `If-Match` is HTTP 412 with status 2000 and the current ETag.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::locations::Failure;
use crate::store::{ocpi_time, StoreError};

/// OCPI status codes used here.
pub mod code {
    /// Success.
    pub const SUCCESS: u16 = 1000;
    /// Generic client error (a stale `If-Match`).
    pub const CLIENT_ERROR: u16 = 2000;
    /// Invalid or missing parameters.
    pub const INVALID: u16 = 2001;
    /// Unknown location (or EVSE, connector).
    pub const UNKNOWN_LOCATION: u16 = 2003;
    /// Generic server error.
    pub const SERVER_ERROR: u16 = 3000;
}

/// The OCPI envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// The payload (absent on errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    /// OCPI status code.
    pub status_code: u16,
    /// What happened, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// When the answer was made.
    pub timestamp: String,
}

/// Wraps `data` in a success envelope.
pub fn success<T: Serialize>(data: T) -> Envelope<T> {
    Envelope {
        data: Some(data),
        status_code: code::SUCCESS,
        status_message: Some("Success".into()),
        timestamp: ocpi_time::format(&Utc::now()),
    }
}

/// An `ETag` header value for tag `etag`.
pub fn etag_header(etag: &str) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{etag}\""))
}

/// A 200 answer with `data` in the envelope.
pub fn ok<T: Serialize>(mut response: HttpResponseBuilder, data: T) -> HttpResponse {
    response.json(success(data))
}

/// A failed `/api/v1` call.
#[derive(Debug)]
pub struct V1Error {
    http: StatusCode,
    code: u16,
    message: String,
    etag: Option<String>,
}

impl V1Error {
    /// HTTP 200 with OCPI `code`.
    pub fn ocpi(code: u16, message: impl Into<String>) -> Self {
        V1Error {
            http: StatusCode::OK,
            code,
            message: message.into(),
            etag: None,
        }
    }

    /// Invalid or missing parameters (2001).
    pub fn invalid(message: impl Into<String>) -> Self {
        V1Error::ocpi(code::INVALID, message)
    }

    /// A request that never reached the API: HTTP `http` with 2001.
    pub fn http(http: StatusCode, message: impl Into<String>) -> Self {
        V1Error {
            http,
            code: code::INVALID,
            message: message.into(),
            etag: None,
        }
    }
}

impl std::fmt::Display for V1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl ResponseError for V1Error {
    fn status_code(&self) -> StatusCode {
        self.http
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.http);
        if let Some(etag) = &self.etag {
            response.insert_header(etag_header(etag));
        }
        if self.http == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(Envelope::<()> {
            data: None,
            status_code: self.code,
            status_message: Some(self.message.clone()),
            timestamp: ocpi_time::format(&Utc::now()),
        })
    }
}

impl From<Failure> for V1Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Invalid(e) => V1Error::invalid(e.to_string()),
            Failure::NotFound(what) => {
                V1Error::ocpi(code::UNKNOWN_LOCATION, format!("unknown {what}"))
            }
            Failure::Exists(why) => V1Error::invalid(why),
            Failure::Stale(current) => V1Error {
                http: StatusCode::PRECONDITION_FAILED,
                code: code::CLIENT_ERROR,
                message: match current {
                    Some(_) => "the location changed since the version If-Match names".into(),
                    None => "the location If-Match names does not exist".into(),
                },
                etag: current,
            },
            Failure::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for V1Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Unreachable(_) => {
                crate::api::log_limited::warn("store_unreachable", &e.to_string());
                V1Error {
                    http: StatusCode::SERVICE_UNAVAILABLE,
                    code: code::SERVER_ERROR,
                    message: "service unavailable, retry later".into(),
                    etag: None,
                }
            }
            other => {
                tracing::error!(cause = %other, "store call failed");
                V1Error::ocpi(code::SERVER_ERROR, "internal error")
            }
        }
    }
}
