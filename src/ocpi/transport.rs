//! OCPI 2.2.1 transport on the server side: the response envelope and its
//! status codes, the `Authorization: Token` check against the partners'
//! token hashes, and the request and correlation ids echoed back.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use base64::Engine;
use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Value};

use crate::store::{ocpi_time, token_hash, OcpiPartner, OcpiRegistrationStatus, Store};

/// OCPI status codes voltgate answers with.
pub mod code {
    /// Success.
    pub const SUCCESS: u16 = 1000;
    /// Generic client error (also: unknown token).
    pub const CLIENT_ERROR: u16 = 2000;
    /// Invalid or missing parameters.
    pub const INVALID_PARAMETERS: u16 = 2001;
    /// Unknown location.
    pub const UNKNOWN_LOCATION: u16 = 2003;
    /// Unknown token.
    pub const UNKNOWN_TOKEN: u16 = 2004;
    /// Generic server error.
    pub const SERVER_ERROR: u16 = 3000;
    /// Unable to use the client's API.
    pub const CLIENT_API_UNUSABLE: u16 = 3001;
    /// Unsupported version.
    pub const UNSUPPORTED_VERSION: u16 = 3002;
    /// No matching endpoints or expected endpoints missing.
    pub const NO_MATCHING_ENDPOINTS: u16 = 3003;
}

/// The OCPI envelope around `data`.
pub fn envelope(data: impl Serialize, status_code: u16, message: &str) -> Value {
    json!({
        "data": data,
        "status_code": status_code,
        "status_message": message,
        "timestamp": ocpi_time::format(&Utc::now()),
    })
}

/// HTTP 200 with `data` and status_code 1000.
pub fn success(data: impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(envelope(data, code::SUCCESS, "Success"))
}

/// An OCPI error answer: its HTTP status, OCPI status code and message.
#[derive(Debug)]
pub struct OcpiError {
    /// HTTP status.
    pub http: StatusCode,
    /// OCPI status_code.
    pub code: u16,
    /// What went wrong, for the partner.
    pub message: String,
}

impl OcpiError {
    /// An error with HTTP 200 (OCPI's way for most client errors).
    pub fn ok_with(code: u16, message: impl Into<String>) -> Self {
        OcpiError {
            http: StatusCode::OK,
            code,
            message: message.into(),
        }
    }

    /// Invalid or missing parameters (2001), naming the field.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        OcpiError::ok_with(
            code::INVALID_PARAMETERS,
            format!("invalid field {field}: {reason}"),
        )
    }

    /// HTTP 401, 2000: the token is not known.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        OcpiError {
            http: StatusCode::UNAUTHORIZED,
            code: code::CLIENT_ERROR,
            message: message.into(),
        }
    }

    /// HTTP 405, 2000: the method is not allowed in the registration's state.
    pub fn not_allowed(message: impl Into<String>) -> Self {
        OcpiError {
            http: StatusCode::METHOD_NOT_ALLOWED,
            code: code::CLIENT_ERROR,
            message: message.into(),
        }
    }

    /// HTTP 500, 3000, without internals (they are logged).
    pub fn server(internal: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %internal, "OCPI request failed");
        OcpiError {
            http: StatusCode::INTERNAL_SERVER_ERROR,
            code: code::SERVER_ERROR,
            message: "server error".into(),
        }
    }
}

impl std::fmt::Display for OcpiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl ResponseError for OcpiError {
    fn status_code(&self) -> StatusCode {
        self.http
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.http).json(envelope(Value::Null, self.code, &self.message))
    }
}

impl From<crate::store::StoreError> for OcpiError {
    fn from(e: crate::store::StoreError) -> Self {
        OcpiError::server(e)
    }
}

/// The tokens an `Authorization: Token <token>` header may carry, most
/// likely first: OCPI 2.2.1 sends the token base64-encoded, and the plain
/// token is taken too, as the spec allows for partners of older versions
/// (a plain token that happens to be valid base64 is tried both ways).
pub fn presented_tokens(req: &HttpRequest) -> Vec<String> {
    let Some(header) = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok())
    else {
        return Vec::new();
    };
    let Some((scheme, value)) = header.trim().split_once(' ') else {
        return Vec::new();
    };
    let value = value.trim();
    if !scheme.eq_ignore_ascii_case("Token") || value.is_empty() {
        return Vec::new();
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|text| !text.is_empty() && text.bytes().all(|b| (0x21..0x7f).contains(&b)));
    decoded
        .into_iter()
        .chain(std::iter::once(value.to_owned()))
        .collect()
}

/// The partner calling, and the token it called with.
pub struct Caller {
    /// Its registration.
    pub partner: OcpiPartner,
    /// The token it presented (plain).
    pub token: String,
}

/// The partner behind the request's token, or 401. `pending_ok`: whether a
/// PENDING registration may make this call (versions, version details,
/// credentials).
pub async fn caller(
    req: &HttpRequest,
    store: &dyn Store,
    pending_ok: bool,
) -> Result<Caller, OcpiError> {
    let tokens = presented_tokens(req);
    if tokens.is_empty() {
        return Err(OcpiError::unauthorized(
            "missing Authorization: Token header",
        ));
    }
    let mut found = None;
    for token in tokens {
        if let Some(partner) = store.partner_by_token(&token_hash(&token)).await? {
            found = Some((partner, token));
            break;
        }
    }
    let (partner, token) = found.ok_or_else(|| OcpiError::unauthorized("unknown token"))?;
    if partner.status == OcpiRegistrationStatus::Pending && !pending_ok {
        return Err(OcpiError::unauthorized(
            "the registration is pending: this token reaches only versions and credentials",
        ));
    }
    Ok(Caller { partner, token })
}

/// A fresh credentials token: 32 random bytes, base64url (43 characters).
pub fn new_token() -> Result<String, OcpiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| OcpiError::server(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn tokens_are_read_base64_or_plain() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("abc-123");
        let req = TestRequest::default()
            .insert_header(("Authorization", format!("Token {encoded}")))
            .to_http_request();
        assert_eq!(presented_tokens(&req), ["abc-123".to_owned(), encoded]);
        let req = TestRequest::default()
            .insert_header(("Authorization", "Token abc-123"))
            .to_http_request();
        assert_eq!(presented_tokens(&req), ["abc-123"]);
        let req = TestRequest::default()
            .insert_header(("Authorization", "Bearer abc"))
            .to_http_request();
        assert!(presented_tokens(&req).is_empty());
    }

    #[test]
    fn fresh_tokens_differ() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
