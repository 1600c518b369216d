//! The bad-input matrix of transport security and hardening, against the
//! real server on 127.0.0.1 with real clients: TLS (certificates made with
//! rcgen per test), proxy headers, REST API tokens, connection limits,
//! malformed frames, slow handshakes, and graceful shutdown.

#[path = "../ocpp/client.rs"]
#[allow(dead_code)]
mod client;
#[path = "../api/common.rs"]
#[allow(dead_code)]
mod common;
mod pki;

mod api_auth;
mod handshake;
mod limits;
mod proxy;
mod shutdown;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite;

use client::{handshake, Station};
use common::{password_hash, TestServer};

/// How a connection attempt ended.
pub enum Outcome<S> {
    /// Upgraded to a WebSocket.
    Connected(Box<Station<S>>),
    /// Refused with this HTTP status before the upgrade.
    Refused(u16),
    /// Failed below HTTP (TLS handshake, reset).
    Failed(String),
}

impl<S> Outcome<S> {
    /// The station, or a panic saying what happened instead.
    #[track_caller]
    pub fn connected(self) -> Station<S> {
        match self {
            Outcome::Connected(station) => *station,
            Outcome::Refused(status) => panic!("refused with {status}"),
            Outcome::Failed(why) => panic!("failed: {why}"),
        }
    }

    /// The refusal status, or a panic.
    #[track_caller]
    pub fn refused(self) -> u16 {
        match self {
            Outcome::Connected(_) => panic!("connected, expected a refusal"),
            Outcome::Refused(status) => status,
            Outcome::Failed(why) => panic!("failed ({why}), expected an HTTP refusal"),
        }
    }

    /// The failure below HTTP, or a panic.
    #[track_caller]
    pub fn failed(self) -> String {
        match self {
            Outcome::Connected(_) => panic!("connected, expected a TLS failure"),
            Outcome::Refused(status) => panic!("refused with {status}, expected a TLS failure"),
            Outcome::Failed(why) => why,
        }
    }
}

fn outcome<S>(
    result: Result<
        (
            tokio_tungstenite::WebSocketStream<S>,
            tungstenite::handshake::client::Response,
        ),
        tungstenite::Error,
    >,
) -> Outcome<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match result {
        Ok((ws, response)) => Outcome::Connected(Box::new(Station::over(ws, &response))),
        Err(tungstenite::Error::Http(response)) => Outcome::Refused(response.status().as_u16()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Connects over plain TCP as `id`, with extra request headers.
pub async fn connect_plain(
    addr: SocketAddr,
    id: &str,
    credentials: Option<(&str, &str)>,
    headers: &[(&str, &str)],
) -> Outcome<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut request = handshake(&format!("ws://{addr}/ws/{id}"), credentials, "ocpp2.0.1");
    for (name, value) in headers {
        // `append`: a name given twice is sent twice.
        request.headers_mut().append(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    outcome(tokio_tungstenite::connect_async(request).await)
}

/// Connects over TLS (to `localhost`) as `id` with `config`.
pub async fn connect_tls(
    addr: SocketAddr,
    id: &str,
    credentials: Option<(&str, &str)>,
    config: Arc<rustls::ClientConfig>,
) -> Outcome<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = match TlsConnector::from(config).connect(name, tcp).await {
        Ok(tls) => tls,
        Err(e) => return Outcome::Failed(format!("TLS: {e}")),
    };
    let request = handshake(
        &format!("wss://localhost:{}/ws/{id}", addr.port()),
        credentials,
        "ocpp2.0.1",
    );
    outcome(tokio_tungstenite::client_async(request, tls).await)
}

/// Registers station `id` with `profile` (and password `secret` for 0 and 1).
pub async fn register(s: &TestServer, id: &str, profile: u8) {
    let body: Value = if profile == 2 {
        json!({"securityProfile": 2})
    } else {
        json!({"securityProfile": profile, "base64SHA256Password": password_hash("secret")})
    };
    let reply = s.post(&format!("/api/v0/cs/{id}"), &body).await;
    assert_eq!(reply.status, 201, "{reply:?}");
}

/// A BootNotification answered Accepted (or Pending): the session works.
pub async fn boots<S>(station: &mut Station<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let answer = station.boot_201().await;
    assert!(answer["status"].is_string(), "{answer}");
}

/// The value of a counter with these labels in a /metrics scrape (0 when absent).
pub async fn counter(s: &TestServer, name: &str, label: &str) -> f64 {
    let body = awc::Client::default()
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("scrape")
        .body()
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
