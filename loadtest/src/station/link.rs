//! Opening one station's WebSocket: the TCP socket (bound to one of several
//! loopback source addresses so tens of thousands of connections do not run
//! out of ephemeral ports on one address), then the OCPP-J handshake with
//! the version's subprotocol and HTTP Basic auth.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use super::Version;
use crate::stats::ErrorKind;

/// A station's open connection.
pub type Ws = WebSocketStream<TcpStream>;

/// Read buffer per connection. tungstenite allocates it eagerly and its
/// default (128 KiB) would cost 2.4 GiB for 19,000 stations; OCPP frames of a
/// load test are a few hundred bytes.
const READ_BUFFER_BYTES: usize = 4096;
/// Largest frame accepted from the server (voltgate's own default limit).
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Where and how stations connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resolved server address.
    pub addr: SocketAddr,
    /// `ws://host:port/path` without a trailing slash; the station id follows.
    pub url: String,
    /// The password every load-test station uses.
    pub password: String,
    /// Loopback source addresses to spread sockets over (0: let the kernel pick).
    pub source_addrs: u8,
}

impl Target {
    /// Resolves `ws_url` (`ws://host:port/path`). Source addresses are used
    /// only towards a loopback server: a 127.0.0.x source cannot reach
    /// anything else.
    pub async fn resolve(ws_url: &str, password: &str, source_addrs: u8) -> anyhow::Result<Self> {
        let url = ws_url.trim_end_matches('/').to_owned();
        let uri: Uri = url.parse().with_context(|| format!("--ws-url {ws_url}"))?;
        if uri.scheme_str() != Some("ws") {
            bail!("--ws-url {ws_url}: only ws:// is supported (voltgate has no TLS listener yet)");
        }
        let host = uri.host().context("--ws-url has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .min_by_key(|a| !a.is_ipv4()) // IPv4 first: the source addresses are IPv4
            .with_context(|| format!("{host} resolves to nothing"))?;
        let loopback_v4 = matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
        Ok(Target {
            addr,
            url,
            password: password.to_owned(),
            source_addrs: if loopback_v4 { source_addrs } else { 0 },
        })
    }

    /// The source address of station `index`: 127.0.0.1, .2, ... in turn.
    pub fn source_for(&self, index: u32) -> Option<IpAddr> {
        source_addr(index, self.source_addrs)
    }
}

/// `127.0.0.(1 + index mod n)`, or `None` when `n` is 0.
pub fn source_addr(index: u32, n: u8) -> Option<IpAddr> {
    (n > 0).then(|| {
        let last = 1 + (index % u32::from(n)) as u8;
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    })
}

/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub struct ConnectError {
    /// The report's error kind.
    pub kind: ErrorKind,
    /// What happened.
    pub detail: String,
}

/// Connects station `id` (global `index`), offering `version`'s subprotocol.
pub async fn connect(
    target: &Target,
    id: &str,
    index: u32,
    version: Version,
    timeout: Duration,
) -> Result<Ws, ConnectError> {
    match tokio::time::timeout(timeout, open(target, id, index, version)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError {
            kind: ErrorKind::ConnectTimeout,
            detail: format!("no connection within {timeout:?}"),
        }),
    }
}

async fn open(target: &Target, id: &str, index: u32, version: Version) -> Result<Ws, ConnectError> {
    let io = |e: std::io::Error| ConnectError {
        kind: ErrorKind::ConnectFailed,
        detail: e.to_string(),
    };
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io)?;
    if let Some(source) = target.source_for(index) {
        socket.bind(SocketAddr::new(source, 0)).map_err(io)?;
    }
    let stream = socket.connect(target.addr).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;

    let handshake = |detail: String| ConnectError {
        kind: ErrorKind::HandshakeFailed,
        detail,
    };
    let mut request = format!("{}/{id}", target.url)
        .into_client_request()
        .map_err(|e| handshake(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(version.subprotocol()),
    );
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&basic_auth(id, &target.password))
            .map_err(|e| handshake(e.to_string()))?,
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((ws, _response)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(ConnectError {
            kind: ErrorKind::HandshakeRefused,
            detail: format!("HTTP {}", response.status()),
        }),
        Err(e) => Err(handshake(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_cycle_over_the_loopback_addresses() {
        let got: Vec<_> = (0..5)
            .map(|i| source_addr(i, 3).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
                "127.0.0.1",
                "127.0.0.2"
            ]
        );
        assert_eq!(source_addr(9, 0), None);
    }

    #[test]
    fn basic_auth_is_standard_base64_of_user_and_password() {
        assert_eq!(basic_auth("CS1", "secret"), "Basic Q1MxOnNlY3JldA==");
    }

    #[tokio::test]
    async fn only_loopback_targets_get_source_addresses() {
        let local = Target::resolve("ws://127.0.0.1:9310/ws/", "pw", 8)
            .await
            .unwrap();
        assert_eq!(
            (local.url.as_str(), local.source_addrs),
            ("ws://127.0.0.1:9310/ws", 8)
        );
        let remote = Target::resolve("ws://10.1.2.3:9310/ws", "pw", 8)
            .await
            .unwrap();
        assert_eq!(remote.source_addrs, 0);
        assert!(Target::resolve("wss://127.0.0.1/ws", "pw", 8)
            .await
            .is_err());
    }
}
