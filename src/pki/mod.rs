//! X.509 certificates in PEM form: checking what operators upload and naming
//! a certificate by the hash MaEVe uses (base64url, unpadded, of the SHA-256
//! of the DER); the station CA that signs CSRs lives in [`ca`].

pub mod ca;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use x509_parser::pem::Pem;

/// Most PEM blocks accepted in one upload (a leaf and its chain).
const MAX_CERTIFICATES_PER_PEM: usize = 10;

/// Why a PEM text is not an acceptable certificate.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// No `-----BEGIN ...-----` block at all.
    #[error("no PEM block found")]
    NoBlock,
    /// A block is broken (bad header, bad base64, no END line).
    #[error("PEM block {index} is malformed: {reason}")]
    Malformed {
        /// Block number, from 0.
        index: usize,
        /// What is broken.
        reason: String,
    },
    /// A block is something other than a certificate (a key, a CSR, ...).
    #[error("PEM block {index} is a {label}, expected a CERTIFICATE")]
    NotACertificate {
        /// Block number, from 0.
        index: usize,
        /// The block's label.
        label: String,
    },
    /// A certificate block does not hold a valid X.509 certificate.
    #[error("PEM block {index} is not a valid X.509 certificate: {reason}")]
    InvalidCertificate {
        /// Block number, from 0.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// More blocks than a chain plausibly has.
    #[error("more than {MAX_CERTIFICATES_PER_PEM} certificates in one PEM")]
    TooMany,
}

/// Checks that `pem` holds one or more valid X.509 certificates and returns
/// the DER of the first (the leaf, by convention).
pub fn leaf_certificate_der(pem: &str) -> Result<Vec<u8>, PemError> {
    let mut leaf = None;
    for (index, block) in Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
        if index >= MAX_CERTIFICATES_PER_PEM {
            return Err(PemError::TooMany);
        }
        let block = block.map_err(|e| PemError::Malformed {
            index,
            reason: e.to_string(),
        })?;
        if block.label != "CERTIFICATE" {
            return Err(PemError::NotACertificate {
                index,
                label: block.label,
            });
        }
        block
            .parse_x509()
            .map_err(|e| PemError::InvalidCertificate {
                index,
                reason: e.to_string(),
            })?;
        if leaf.is_none() {
            leaf = Some(block.contents);
        }
    }
    leaf.ok_or(PemError::NoBlock)
}

/// The MaEVe certificate hash: base64url without padding of SHA-256(DER).
pub fn certificate_hash(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// Who a client certificate names, and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// The subject's common name (CN), when it has one.
    pub common_name: Option<String>,
    /// The subject's organisations (O).
    pub organizations: Vec<String>,
    /// [`certificate_hash`] of the DER.
    pub hash: String,
}

/// The identity in a DER certificate.
pub fn certificate_identity(der: &[u8]) -> Result<CertificateIdentity, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not X.509: {e}"))?;
    let subject = cert.subject();
    let text =
        |attr: &x509_parser::x509::AttributeTypeAndValue| attr.as_str().ok().map(str::to_owned);
    let common_name = subject.iter_common_name().next().and_then(text);
    let organizations = subject.iter_organization().filter_map(text).collect();
    Ok(CertificateIdentity {
        common_name,
        organizations,
        hash: certificate_hash(der),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed certificate made once with openssl for the tests.
    const CERT: &str = include_str!("../../tests/fixtures/cert.pem");

    #[test]
    fn accepts_a_certificate_and_hashes_its_der() {
        let der = leaf_certificate_der(CERT).expect("valid certificate");
        // Computed independently: openssl x509 -outform der | openssl dgst -sha256
        // -binary | base64 | tr '+/' '-_' | tr -d '='
        assert_eq!(
            certificate_hash(&der),
            "bf_PaRFymCPoqBSLR-xRyIyNe-zkOSDarYkzifespNU"
        );
    }

    #[test]
    fn reads_the_subject_of_a_certificate() {
        let der = leaf_certificate_der(CERT).expect("valid certificate");
        let identity = certificate_identity(&der).expect("identity");
        assert_eq!(identity.hash, certificate_hash(&der));
        assert_eq!(identity.common_name.as_deref(), Some("CS001"));
        assert_eq!(identity.organizations, ["voltgate test"]);
        assert!(certificate_identity(b"junk").is_err());
    }

    #[test]
    fn refuses_text_without_a_block() {
        assert_eq!(leaf_certificate_der("hello"), Err(PemError::NoBlock));
    }

    #[test]
    fn refuses_a_key() {
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            leaf_certificate_der(key),
            Err(PemError::NotACertificate { .. })
        ));
    }

    #[test]
    fn refuses_garbage_inside_a_certificate_block() {
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            leaf_certificate_der(bad),
            Err(PemError::InvalidCertificate { .. })
        ));
    }

    #[test]
    fn refuses_a_block_without_end() {
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(matches!(
            leaf_certificate_der(bad),
            Err(PemError::Malformed { .. })
        ));
    }
}
