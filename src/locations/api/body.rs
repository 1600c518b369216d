//! Request bodies and headers of `/api/v1`: JSON read within the body size
//! limit (413 past it, 415 for another content type, 400 when it is not
//! JSON, each in the envelope), decoded with the path of a field that does
//! not fit (2001), and `If-Match` read into the version a write expects.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::envelope::V1Error;
use crate::store::Expect;

/// What the `/api/v1` handlers are configured with.
#[derive(Debug, Clone)]
pub struct V1Settings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

/// Reads the body of `req` as JSON and decodes it into `T`.
pub async fn json<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
    settings: &V1Settings,
) -> Result<T, V1Error> {
    if let Some(kind) = req.headers().get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("");
        let essence = kind.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(V1Error::http(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {kind:?} is not application/json"),
            ));
        }
    }
    let limit = settings.max_body_bytes;
    let too_large = || {
        V1Error::http(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            V1Error::http(
                StatusCode::BAD_REQUEST,
                format!("cannot read request body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    // Malformed JSON never reached the API: HTTP 400. JSON of the wrong
    // shape did: 200 with 2001, naming the field.
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| V1Error::http(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            V1Error::invalid(format!("invalid body: {inner}"))
        } else {
            V1Error::invalid(format!("invalid field {path}: {inner}"))
        }
    })
}

/// The version `If-Match` names: None without the header, `Any` for `*`.
pub fn if_match(req: &HttpRequest) -> Result<Option<Expect>, V1Error> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| V1Error::invalid("If-Match is not ASCII"))?
        .trim();
    if value == "*" {
        return Ok(Some(Expect::Any));
    }
    let tag = value.strip_prefix("W/").unwrap_or(value);
    let tag = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(|| {
            V1Error::invalid(format!("If-Match {value:?} is not a quoted entity tag"))
        })?;
    Ok(Some(Expect::Etag(tag.to_owned())))
}
