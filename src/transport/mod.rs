//! How a station's connection reached voltgate and what it proved below
//! OCPP: TLS terminated here (rustls, `tls`) or by a trusted load balancer
//! (`proxy`), and the client certificate, if any. The OCPP endpoint asks
//! [`presented`] once per handshake; `auth` decides on the answer. The
//! handshake's HTTP head itself is read in `http_head`.

pub mod http_head;
pub mod proxy;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;

use actix_http::header::HeaderMap;
use clap::{ArgAction, Args};
use ipnet::IpNet;

use crate::auth::{ClientCertificate, Transport};
use crate::store::{Store, StoreError};

/// The flags of the TLS listener and of proxy mode.
#[derive(Debug, Clone, Default, Args)]
pub struct TransportSettings {
    /// Address of the OCPP-J TLS listener (stations connect to
    /// wss://HOST:PORT/ws/{csId}); needs --tls-cert and --tls-key.
    #[arg(long, env = "VOLTGATE_WSS_LISTEN", requires_all = ["tls_cert", "tls_key"])]
    pub wss_listen: Option<SocketAddr>,

    /// Server certificate chain (PEM, leaf first) of the TLS listener.
    #[arg(long, env = "VOLTGATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "VOLTGATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// CA bundle (PEM) that station client certificates must chain to.
    /// Without it no client certificate is asked for, and stations of
    /// security profile 2 cannot connect.
    #[arg(long, env = "VOLTGATE_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// Certificate revocation lists (PEM) of --tls-client-ca: a revoked
    /// client certificate fails the TLS handshake.
    #[arg(long, env = "VOLTGATE_TLS_CLIENT_CRL", requires = "tls_client_ca")]
    pub tls_client_crl: Option<PathBuf>,

    /// Organisations (O) a station's client certificate may name, comma
    /// separated; none given: any organisation.
    #[arg(long, env = "VOLTGATE_TLS_ALLOWED_ORGS", value_delimiter = ',')]
    pub tls_allowed_orgs: Vec<String>,

    /// Whether a client certificate's common name (CN) must be the station id.
    #[arg(
        long,
        env = "VOLTGATE_TLS_REQUIRE_CN_MATCH",
        default_value_t = true,
        action = ArgAction::Set
    )]
    pub tls_require_cn_match: bool,

    /// Load balancers (CIDR list, e.g. 10.0.0.0/8,192.0.2.7/32) trusted to
    /// terminate TLS: only requests from them may assert TLS
    /// (X-Forwarded-Proto: https) or a client certificate (X-Client-Cert-Hash).
    #[arg(long, env = "VOLTGATE_TRUST_PROXY", value_delimiter = ',')]
    pub trust_proxy: Vec<IpNet>,
}

impl TransportSettings {
    /// Settings with no TLS listener and no trusted proxy.
    pub fn plain() -> Self {
        TransportSettings {
            tls_require_cn_match: true,
            ..TransportSettings::default()
        }
    }
}

/// What a handshake proved below OCPP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// TLS or not.
    pub transport: Transport,
    /// The client certificate, as far as it could be established.
    pub certificate: ClientCertificate,
}

/// What a handshake proves: from the TLS session of voltgate's own TLS
/// listener, from the headers of a trusted proxy (`peer`), or nothing
/// (plain `ws://`).
pub async fn presented(
    tls: Option<&tls::TlsSession>,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    store: &dyn Store,
) -> Result<Presented, StoreError> {
    if let Some(session) = tls {
        return Ok(session.presented());
    }
    proxy::presented(peer, headers, trusted, store).await
}
