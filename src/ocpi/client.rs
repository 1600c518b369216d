//! OCPI 2.2.1 transport on the client side: one call to a partner with the
//! token base64-encoded, fresh request and correlation ids, a timeout, and
//! the answer read as an envelope. What can go wrong is told apart
//! (unreachable, timeout, HTTP error, garbage, OCPI error), because the
//! callers retry some and report all.

use std::time::Duration;

use awc::http::Method;
use base64::Engine;
use serde_json::Value;

use super::credentials::Identity;
use crate::store::OcpiPartner;

/// Why a call to a partner failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No connection (refused, DNS, TLS).
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The connector's reason.
        reason: String,
    },
    /// No complete answer in time.
    #[error("{url} did not answer within {secs} s")]
    Timeout {
        /// The URL called.
        url: String,
        /// The timeout.
        secs: u64,
    },
    /// An HTTP error status.
    #[error("{url} answered HTTP {status}{detail}")]
    Http {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The envelope's status, when the answer had one (` (OCPI 3000: ...)`).
        detail: String,
    },
    /// An answer that is not an OCPI envelope.
    #[error("{url} answered something that is not an OCPI envelope: {what}")]
    Garbage {
        /// The URL called.
        url: String,
        /// What was wrong with it.
        what: String,
    },
    /// An envelope with a status_code other than 1xxx.
    #[error("{url} answered OCPI status {status_code}: {message}")]
    Refused {
        /// The URL called.
        url: String,
        /// The OCPI status_code.
        status_code: i64,
        /// Its status_message.
        message: String,
    },
}

impl CallError {
    /// Whether trying again later may succeed (the partner was away or broken
    /// for a while, not refusing what was sent).
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Unreachable { .. } | CallError::Timeout { .. } => true,
            CallError::Http { status, .. } => *status >= 500 || *status == 429,
            CallError::Garbage { .. } => true,
            CallError::Refused { status_code, .. } => *status_code >= 3000,
        }
    }
}

/// A partner's successful answer: the envelope's `data`.
pub type Data = Value;

/// The routing headers of a call to a functional module (OCPI 2.2.1
/// transport, 4.1.3): the party sending and the party it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// voltgate's country code and party id.
    pub from: (String, String),
    /// The receiving party's.
    pub to: (String, String),
}

impl Route {
    /// From voltgate to the partner's first party (its eMSP role first);
    /// None when the partner named no role.
    pub fn to_partner(identity: &Identity, partner: &OcpiPartner) -> Option<Route> {
        let role = partner.emsp_role()?;
        Some(Route {
            from: (identity.country_code.clone(), identity.party_id.clone()),
            to: (role.country_code.clone(), role.party_id.clone()),
        })
    }
}

/// Calls `url` with `method`, `token` and an optional JSON body (for the
/// configuration modules: versions, credentials).
pub async fn call(
    method: Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Data, CallError> {
    call_routed(method, url, token, body, timeout, None).await
}

/// Calls a functional module's `url`, with the routing headers of `route`.
pub async fn call_routed(
    method: Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
    timeout: Duration,
    route: Option<&Route>,
) -> Result<Data, CallError> {
    let client = awc::Client::builder()
        .timeout(timeout)
        .disable_redirects()
        .finish();
    let encoded = base64::engine::general_purpose::STANDARD.encode(token);
    let mut request = client
        .request(method, url)
        .insert_header(("Authorization", format!("Token {encoded}")))
        .insert_header(("X-Request-ID", request_id()))
        .insert_header(("X-Correlation-ID", request_id()))
        .insert_header(("Accept", "application/json"));
    if let Some(route) = route {
        request = request
            .insert_header(("OCPI-from-country-code", route.from.0.as_str()))
            .insert_header(("OCPI-from-party-id", route.from.1.as_str()))
            .insert_header(("OCPI-to-country-code", route.to.0.as_str()))
            .insert_header(("OCPI-to-party-id", route.to.1.as_str()));
    }
    let sent = match body {
        Some(body) => request.send_json(body).await,
        None => request.send().await,
    };
    let mut response = sent.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => CallError::Timeout {
            url: url.to_owned(),
            secs: timeout.as_secs(),
        },
        other => CallError::Unreachable {
            url: url.to_owned(),
            reason: other.to_string(),
        },
    })?;
    let status = response.status().as_u16();
    let bytes = response
        .body()
        .limit(16 * 1024 * 1024)
        .await
        .map_err(|e| CallError::Garbage {
            url: url.to_owned(),
            what: format!("unreadable body: {e}"),
        })?;
    read_envelope(url, status, &bytes)
}

/// The `data` of an answer, or why it is not a successful one.
pub fn read_envelope(url: &str, status: u16, bytes: &[u8]) -> Result<Data, CallError> {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    let envelope = parsed.filter(|v| v.get("status_code").is_some());
    let message = |envelope: &Value| -> String {
        envelope["status_message"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect()
    };
    if !(200..300).contains(&status) {
        let detail = envelope.as_ref().map_or_else(String::new, |e| {
            format!(" (OCPI {}: {})", e["status_code"], message(e))
        });
        return Err(CallError::Http {
            url: url.to_owned(),
            status,
            detail,
        });
    }
    let Some(envelope) = envelope else {
        return Err(CallError::Garbage {
            url: url.to_owned(),
            what: "no JSON object with status_code".into(),
        });
    };
    let status_code = envelope["status_code"].as_i64().unwrap_or(0);
    if !(1000..2000).contains(&status_code) {
        return Err(CallError::Refused {
            url: url.to_owned(),
            status_code,
            message: message(&envelope),
        });
    }
    Ok(envelope.get("data").cloned().unwrap_or(Value::Null))
}

/// A request id: 16 random bytes as hex (unique enough to trace a call).
fn request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("{:x}", std::process::id());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_told_apart() {
        let ok = br#"{"data": [1], "status_code": 1000, "timestamp": "2026-12-01T00:00:00Z"}"#;
        assert_eq!(read_envelope("u", 200, ok), Ok(serde_json::json!([1])));
        let refused = br#"{"status_code": 2001, "status_message": "bad"}"#;
        assert!(matches!(
            read_envelope("u", 200, refused),
            Err(CallError::Refused {
                status_code: 2001,
                ..
            })
        ));
        assert!(matches!(
            read_envelope("u", 503, b"down"),
            Err(CallError::Http { status: 503, .. })
        ));
        let garbage = read_envelope("u", 200, b"<html>").unwrap_err();
        assert!(matches!(garbage, CallError::Garbage { .. }));
        assert!(garbage.is_transient());
        assert!(!read_envelope("u", 200, refused).unwrap_err().is_transient());
    }
}
