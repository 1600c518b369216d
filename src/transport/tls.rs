//! voltgate's own TLS listener: the rustls server configuration (ring
//! provider; client certificates optional at the TLS layer, verified against
//! the configured CA and CRLs when presented) and what each TLS connection
//! proved, captured when it is accepted.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::{Presented, TransportSettings};
use crate::auth::{ClientCertificate, Transport};
use crate::pki::certificate_identity;

/// What one TLS connection proved, kept with the connection.
#[derive(Debug, Clone)]
pub struct TlsSession {
    /// The client certificate's DER, when the station sent one (rustls has
    /// verified its chain against the CA by then).
    client_certificate: Option<Vec<u8>>,
}

impl TlsSession {
    /// The transport facts for authentication.
    pub fn presented(&self) -> Presented {
        let certificate = match &self.client_certificate {
            None => ClientCertificate::Absent,
            Some(der) => match certificate_identity(der) {
                Ok(identity) => ClientCertificate::Verified(identity),
                Err(_) => ClientCertificate::Unverified,
            },
        };
        Presented {
            transport: Transport::Tls,
            certificate,
        }
    }

    /// What the accepted TLS connection `session` proved.
    pub fn of(session: &ServerConnection) -> Self {
        let client_certificate = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.as_ref().to_vec());
        TlsSession { client_certificate }
    }
}

/// Why the TLS listener cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// The rustls configuration of the TLS listener from the flags.
pub fn server_config(settings: &TransportSettings) -> Result<ServerConfig, TlsError> {
    let (Some(cert_path), Some(key_path)) = (&settings.tls_cert, &settings.tls_key) else {
        return Err(TlsError(
            "--wss-listen needs --tls-cert and --tls-key".into(),
        ));
    };
    let chain = certificates(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        TlsError(format!(
            "cannot read a private key from {}: {e}",
            key_path.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match &settings.tls_client_ca {
        None => builder.with_no_client_auth(),
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(ca_path)? {
                roots
                    .add(ca)
                    .map_err(|e| TlsError(format!("{}: {e}", ca_path.display())))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    // One port serves every profile: the certificate is optional
                    // here and required by profile 2 at the OCPP layer.
                    .allow_unauthenticated();
            if let Some(crl_path) = &settings.tls_client_crl {
                let crls = CertificateRevocationListDer::pem_file_iter(crl_path)
                    .and_then(|crls| crls.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        TlsError(format!("cannot read CRLs from {}: {e}", crl_path.display()))
                    })?;
                verifier = verifier.with_crls(crls);
            }
            let verifier = verifier
                .build()
                .map_err(|e| TlsError(format!("client CA {}: {e}", ca_path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError(format!("{} and its key: {e}", cert_path.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            TlsError(format!(
                "cannot read certificates from {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError(format!("no certificate in {}", path.display())));
    }
    Ok(certs)
}
