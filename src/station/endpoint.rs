//! `GET /ws/{csId}` on the OCPP listeners (plain and TLS): the WebSocket
//! handshake checked, admission limits, authentication and subprotocol
//! negotiation before the upgrade, then the actor for the socket. The
//! listener (`listener`) reads the request head and carries out what is
//! decided here.
//!
//! A source address over its limits gets 429 before the store is asked
//! anything; a node at its station cap (or shutting down) 503 once the
//! station has proved who it is. Unknown stations, wrong
//! credentials and certificates that do not fit get 401 before any upgrade;
//! the reason is counted, the password never logged. A handshake that offers
//! no subprotocol voltgate speaks is completed without one and closed at
//! once, as OCPP-J says.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use actix_http::header;

use super::actor::{Engine, StationActor};
use super::gate::{Gate, Limit};
use crate::auth::{self, Refusal};
use crate::metrics::AUTH_FAILURES;
use crate::ocpp::Version;
use crate::store::Provisioning;
use crate::transport::http_head::{self, Answer, RequestHead};
use crate::transport::{self, tls::TlsSession};

/// The WebSocket protocol version voltgate speaks (RFC 6455).
const WEBSOCKET_VERSION: &str = "13";

/// What to do with a handshake.
pub enum Admission {
    /// Answer and close.
    Refused(Answer),
    /// Answer 101 and run a station on the socket.
    Station(Answer, Box<StationActor>),
    /// Answer 101 without a subprotocol; the `NoProtocol` actor closes at once.
    NoProtocol(Answer),
}

/// Where a handshake comes from and over what.
pub struct Origin<'a> {
    /// The TCP peer.
    pub peer: Option<SocketAddr>,
    /// The TLS session of voltgate's own TLS listener.
    pub tls: Option<&'a TlsSession>,
}

/// Decides on the handshake `head`.
pub async fn admit(
    head: &RequestHead,
    origin: Origin<'_>,
    engine: &Arc<Engine>,
    gate: &Gate,
) -> Admission {
    let id = match station_id(&head.target) {
        Ok(id) => id,
        Err(answer) => return Admission::Refused(answer),
    };
    let accept = match websocket_accept(head) {
        Ok(accept) => accept,
        Err(answer) => return Admission::Refused(answer),
    };
    let ip = transport::proxy::client_ip(origin.peer, &head.headers, &gate.trusted_proxies)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let _handshake = match gate.enter(ip, Instant::now()) {
        Ok(handshake) => handshake,
        Err(limit) => return Admission::Refused(limited(limit)),
    };
    let store = &engine.env.store;
    let registration = match store.station(&id).await {
        Ok(Some(registration)) => registration,
        Ok(None) => return Admission::Refused(refuse(&id, Refusal::UnknownStation)),
        Err(e) => {
            tracing::error!(error = %e, station = %id, "store failed during station authentication");
            return Admission::Refused(store_unavailable());
        }
    };
    let presented = transport::presented(
        origin.tls,
        origin.peer,
        &head.headers,
        &gate.trusted_proxies,
        store.as_ref(),
    )
    .await;
    let presented = match presented {
        Ok(presented) => presented,
        Err(e) => {
            tracing::error!(error = %e, station = %id, "store failed during certificate lookup");
            return Admission::Refused(store_unavailable());
        }
    };
    let admitted = auth::admit(
        &id,
        &registration.auth,
        head.header(header::AUTHORIZATION.as_str()),
        presented.transport,
        &presented.certificate,
        &gate.certificate_policy,
    );
    if let Err(refusal) = admitted {
        return Admission::Refused(refuse(&id, refusal));
    }
    let offered = http_head::tokens(&head.headers, header::SEC_WEBSOCKET_PROTOCOL.as_str());
    let Some(version) = Version::negotiate(offered) else {
        return Admission::NoProtocol(Answer::switching(&accept, None));
    };
    if gate.is_closing() {
        return Admission::Refused(
            Answer::text(503, "this node is shutting down; reconnect\n")
                .with_header("retry-after", "5"),
        );
    }
    let slot = match gate.station_slot() {
        Ok(slot) => slot,
        Err(limit) => return Admission::Refused(limited(limit)),
    };
    let budget = gate.message_budget(&id);
    store.station_connected(&id);
    let runtime = store.runtime(&id).await.ok().flatten().unwrap_or_default();
    tracing::info!(station = %id, version = version.label(), "station connected");
    // Stations do not boot again after a network drop: one accepted before
    // goes on without a BootNotification.
    let provisioned = registration.provisioning == Provisioning::Provisioned;
    let accepted_before = provisioned && runtime.last_boot.is_some();
    let actor = StationActor::new(engine.clone(), id, version, runtime, accepted_before)
        .provisioned(provisioned)
        .with_slot(slot)
        .with_budget(budget);
    Admission::Station(
        Answer::switching(&accept, Some(version.subprotocol())),
        Box::new(actor),
    )
}

/// The station id of a request target `/ws/{csId}` (query ignored,
/// percent-decoded), or the answer for any other target.
fn station_id(target: &str) -> Result<String, Answer> {
    let not_found = || Answer::text(404, "OCPP endpoint is /ws/{csId}\n");
    // The absolute form (`ws://host/ws/CS1`) names the same path.
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => target,
    };
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let encoded = path.strip_prefix("/ws/").ok_or_else(not_found)?;
    if encoded.is_empty() || encoded.contains('/') {
        return Err(not_found());
    }
    percent_decode(encoded)
        .ok_or_else(|| Answer::text(400, "the station id is not valid percent-encoded UTF-8\n"))
}

/// `%XX` sequences decoded; None for a broken sequence or bytes that are
/// not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The Sec-WebSocket-Accept value for a valid WebSocket upgrade, or the
/// answer that says what is missing.
fn websocket_accept(head: &RequestHead) -> Result<String, Answer> {
    if head.method != "GET" {
        return Err(
            Answer::text(405, "a WebSocket handshake is a GET\n").with_header("allow", "GET")
        );
    }
    if !head.lists(header::UPGRADE.as_str(), "websocket") {
        return Err(Answer::text(
            426,
            "OCPP-J needs a WebSocket upgrade (Upgrade: websocket)\n",
        )
        .with_header("upgrade", "websocket"));
    }
    if !head.lists(header::CONNECTION.as_str(), "upgrade") {
        return Err(Answer::text(
            400,
            "a WebSocket handshake needs Connection: Upgrade\n",
        ));
    }
    if head.header(header::SEC_WEBSOCKET_VERSION.as_str()) != Some(WEBSOCKET_VERSION) {
        // RFC 6455, 4.4: 426 with the versions this server speaks.
        return Err(
            Answer::text(426, "WebSocket version 13 only (Sec-WebSocket-Version)\n")
                .with_header("sec-websocket-version", WEBSOCKET_VERSION),
        );
    }
    let Some(key) = head.header(header::SEC_WEBSOCKET_KEY.as_str()) else {
        return Err(Answer::text(
            400,
            "a WebSocket handshake needs Sec-WebSocket-Key\n",
        ));
    };
    let accept = actix_http::ws::hash_key(key.as_bytes());
    Ok(String::from_utf8_lossy(&accept).into_owned())
}

fn store_unavailable() -> Answer {
    Answer::text(503, "the store does not answer; reconnect later\n")
        .with_header("retry-after", "5")
}

/// 429 for a source address over its limits, 503 (try again later) at the
/// node's station cap: both before any upgrade.
fn limited(limit: Limit) -> Answer {
    limit.count();
    metrics::counter!(crate::metrics::CONNECTIONS_CLOSED, "reason" => "limit").increment(1);
    match limit {
        Limit::Stations => Answer::text(
            503,
            "this node holds as many stations as it may; try another node or later\n",
        )
        .with_header("retry-after", "30"),
        _ => Answer::text(429, "too many connection attempts from this address\n")
            .with_header("retry-after", "1"),
    }
}

fn refuse(id: &str, refusal: Refusal) -> Answer {
    metrics::counter!(AUTH_FAILURES, "reason" => refusal.label()).increment(1);
    metrics::counter!(crate::metrics::CONNECTIONS_CLOSED, "reason" => "auth_failure").increment(1);
    tracing::info!(station = %id, reason = refusal.label(), "station connection refused");
    Answer::text(401, "").with_header("www-authenticate", "Basic realm=\"voltgate\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::http_head::parse;

    fn head(text: &str) -> RequestHead {
        parse(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn only_one_segment_under_ws_is_a_station() {
        assert_eq!(station_id("/ws/CS1").unwrap(), "CS1");
        assert_eq!(station_id("/ws/CS1?token=x").unwrap(), "CS1");
        assert_eq!(station_id("ws://csms.example:9310/ws/CS1").unwrap(), "CS1");
        assert_eq!(station_id("http://csms.example").unwrap_err().status, 404);
        assert_eq!(station_id("/ws/CS%201%C3%A9").unwrap(), "CS 1é");
        for target in ["/ws/", "/ws", "/", "/ws/a/b", "/api/v0/cs"] {
            assert_eq!(station_id(target).unwrap_err().status, 404, "{target}");
        }
        assert_eq!(station_id("/ws/%zz").unwrap_err().status, 400);
        assert_eq!(station_id("/ws/%ff").unwrap_err().status, 400);
        assert_eq!(station_id("/ws/%4").unwrap_err().status, 400);
    }

    #[test]
    fn the_accept_key_follows_rfc_6455() {
        let valid = "GET /ws/CS1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        // The example of RFC 6455, section 1.3.
        assert_eq!(
            websocket_accept(&head(valid)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let cases = [
            (valid.replace("GET", "POST"), 405),
            (valid.replace("Upgrade: websocket\r\n", ""), 426),
            (
                valid.replace("Connection: Upgrade", "Connection: keep-alive"),
                400,
            ),
            (valid.replace("Version: 13", "Version: 8"), 426),
            (
                valid.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                400,
            ),
        ];
        for (text, status) in cases {
            assert_eq!(
                websocket_accept(&head(&text)).unwrap_err().status,
                status,
                "{text}"
            );
        }
    }
}
