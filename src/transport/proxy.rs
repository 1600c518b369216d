//! Proxy mode: behind a TLS-terminating load balancer, the balancer's
//! headers say whether the station used TLS and which client certificate it
//! presented (MaEVe's headers). Only peers inside --trust-proxy may say so;
//! the same headers from anyone else are ignored and counted.

use actix_web::HttpRequest;
use ipnet::IpNet;

use super::Presented;
use crate::auth::{ClientCertificate, Transport};
use crate::metrics::UNTRUSTED_PROXY_HEADERS;
use crate::pki::{certificate_identity, leaf_certificate_der};
use crate::store::{Store, StoreError};

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

/// What a request on the plain listener proves.
pub async fn presented(
    req: &HttpRequest,
    trusted: &[IpNet],
    store: &dyn Store,
) -> Result<Presented, StoreError> {
    let plain = Presented {
        transport: Transport::Plain,
        certificate: ClientCertificate::Absent,
    };
    let peer = req.peer_addr().map(|addr| addr.ip());
    let from_trusted = peer.is_some_and(|ip| trusted.iter().any(|net| net.contains(&ip)));
    if !from_trusted {
        if PROXY_HEADERS.iter().any(|h| req.headers().contains_key(*h)) {
            metrics::counter!(UNTRUSTED_PROXY_HEADERS).increment(1);
            tracing::warn!(peer = ?peer, "proxy headers from an untrusted peer ignored");
        }
        return Ok(plain);
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let is = |name: &str, value: &str| header(name).is_some_and(|v| v.eq_ignore_ascii_case(value));
    let transport = if is(FORWARDED_PROTO, "https") {
        Transport::Tls
    } else {
        Transport::Plain
    };
    let certificate = if is(CLIENT_CERT_PRESENT, "false") {
        ClientCertificate::Absent
    } else if is(CLIENT_CERT_CHAIN_VERIFIED, "false") {
        ClientCertificate::Unverified
    } else {
        match header(CLIENT_CERT_HASH).filter(|h| !h.is_empty()) {
            None if is(CLIENT_CERT_PRESENT, "true") => ClientCertificate::Unverified,
            None => ClientCertificate::Absent,
            Some(hash) => uploaded(hash, store).await?,
        }
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
