//! OCPI 2.2.1 CPO interface tests: the real server on 127.0.0.1, OCPI
//! calls with a real HTTP client, and an independent OCPI implementation
//! (the Python `extrawest-ocpi` library, `tests/ocpi_peer/`) as the eMSP.

#[path = "../ocpp/client.rs"]
#[allow(dead_code)]
mod client;
mod commands;
#[path = "../api/common.rs"]
#[allow(dead_code)]
mod common;
mod locations;
mod peer;
mod pushes;
mod registration;
mod sessions;
mod tokens;
mod transport;

use awc::http::Method;
use base64::Engine;
use serde_json::Value;

/// An OCPI answer: HTTP status, headers, body.
#[derive(Debug)]
pub struct OcpiReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl OcpiReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Calls voltgate's OCPI listener at `path` with `token` (base64, as 2.2.1
/// sends it) and extra headers.
pub async fn ocpi_call(
    s: &common::TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> OcpiReply {
    let client = awc::Client::default();
    let mut request = client.request(method, format!("http://{}{path}", s.app.ocpi_addr()));
    if let Some(token) = token {
        let encoded = base64::engine::general_purpose::STANDARD.encode(token);
        request = request.insert_header(("Authorization", format!("Token {encoded}")));
    }
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = match body {
        Some(body) => request.send_json(body).await,
        None => request.send().await,
    }
    .expect("request sent");
    let bytes = response.body().await.expect("body read");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    OcpiReply {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body,
    }
}
