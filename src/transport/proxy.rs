//! Proxy mode: behind a TLS-terminating load balancer, the balancer's
//! headers say whether the station used TLS and which client certificate it
//! presented (MaEVe's headers). Only peers inside --trust-proxy may say so;
//! the same headers from anyone else, or sent twice, are ignored and
//! counted. A certificate counts only with `X-Client-Cert-Chain-Verified:
//! true`. The balancer must remove these headers from what stations send.

use std::net::{IpAddr, SocketAddr};

use actix_http::header::HeaderMap;
use ipnet::IpNet;

use super::{http_head, Presented};
use crate::auth::{ClientCertificate, Transport};
use crate::metrics::UNTRUSTED_PROXY_HEADERS;
use crate::pki::{certificate_identity, leaf_certificate_der};
use crate::store::{Store, StoreError};

/// The client addresses a request passed through, the balancer's last.
pub const FORWARDED_FOR: &str = "x-forwarded-for";
/// `https` when the station reached the balancer over TLS.
pub const FORWARDED_PROTO: &str = "x-forwarded-proto";
/// The client certificate's hash, as uploaded with `POST /certificate`.
pub const CLIENT_CERT_HASH: &str = "x-client-cert-hash";
/// `true`/`false`: whether the station presented a client certificate.
pub const CLIENT_CERT_PRESENT: &str = "x-client-cert-present";
/// `true`/`false`: whether the balancer verified the certificate's chain.
pub const CLIENT_CERT_CHAIN_VERIFIED: &str = "x-client-cert-chain-verified";

const PROXY_HEADERS: [&str; 4] = [
    FORWARDED_PROTO,
    CLIENT_CERT_HASH,
    CLIENT_CERT_PRESENT,
    CLIENT_CERT_CHAIN_VERIFIED,
];

/// The address a connection comes from, for the per-address limits: the
/// peer, or behind a trusted proxy the last address of X-Forwarded-For (the
/// one the balancer appended; anything before it the client may have sent).
pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let forwarded = http_head::tokens(headers, FORWARDED_FOR)
        .last()
        .and_then(|last| last.parse().ok());
    Some(forwarded.unwrap_or(peer))
}

/// What a request on the plain listener proves.
pub async fn presented(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    store: &dyn Store,
) -> Result<Presented, StoreError> {
    let plain = Presented {
        transport: Transport::Plain,
        certificate: ClientCertificate::Absent,
    };
    let peer = peer.map(|addr| addr.ip());
    let from_trusted = peer.is_some_and(|ip| trusted.iter().any(|net| net.contains(&ip)));
    if !from_trusted {
        if PROXY_HEADERS.iter().any(|h| headers.contains_key(*h)) {
            metrics::counter!(UNTRUSTED_PROXY_HEADERS).increment(1);
            tracing::warn!(peer = ?peer, "proxy headers from an untrusted peer ignored");
        }
        return Ok(plain);
    }
    // A header sent twice means someone besides the balancer wrote one (a
    // balancer that appends instead of replacing): believe neither.
    if PROXY_HEADERS
        .iter()
        .any(|h| headers.get_all(*h).count() > 1)
    {
        metrics::counter!(UNTRUSTED_PROXY_HEADERS).increment(1);
        tracing::warn!(peer = ?peer, "repeated proxy headers ignored");
        return Ok(plain);
    }
    let header = |name: &str| http_head::text(headers, name);
    let is = |name: &str, value: &str| header(name).is_some_and(|v| v.eq_ignore_ascii_case(value));
    let transport = if is(FORWARDED_PROTO, "https") {
        Transport::Tls
    } else {
        Transport::Plain
    };
    let hash = header(CLIENT_CERT_HASH).filter(|h| !h.is_empty());
    let certificate = match hash {
        _ if is(CLIENT_CERT_PRESENT, "false") => ClientCertificate::Absent,
        None if is(CLIENT_CERT_PRESENT, "true") => ClientCertificate::Unverified,
        None => ClientCertificate::Absent,
        // Fail closed: only a chain the balancer says it verified counts.
        Some(_) if !is(CLIENT_CERT_CHAIN_VERIFIED, "true") => ClientCertificate::Unverified,
        Some(hash) => uploaded(hash, store).await?,
    };
    Ok(Presented {
        transport,
        certificate,
    })
}

/// The certificate uploaded under `hash`, or `Unknown`.
async fn uploaded(hash: &str, store: &dyn Store) -> Result<ClientCertificate, StoreError> {
    let Some(stored) = store.certificate(hash).await? else {
        return Ok(ClientCertificate::Unknown);
    };
    let identity = leaf_certificate_der(&stored.pem)
        .map_err(|e| e.to_string())
        .and_then(|der| certificate_identity(&der));
    Ok(match identity {
        Ok(identity) => ClientCertificate::Verified(identity),
        Err(_) => ClientCertificate::Unverified,
    })
}
