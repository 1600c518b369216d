//! The operator's certificate authority for charge stations
//! (`--csms-ca-cert`, `--csms-ca-key`): signs the CSR a station sends in
//! SignCertificate, after checking that it asks for the station's own name.
//!
//! What the certificate says is voltgate's decision, not the CSR's: the
//! subject is the CSR's (its CN must be the station id, its O one of
//! `--tls-allowed-orgs` when that is set), and the rest is fixed: not a
//! CA, digital signature and key agreement, TLS client and server use, no
//! alternative names, valid from an hour ago for a year, a fresh serial.

use chrono::{DateTime, Datelike, Duration, Utc};
use rcgen::{
    CertificateSigningRequestParams, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};

/// How long a signed station certificate is valid.
const VALIDITY_DAYS: i64 = 365;

/// Why a CSR is not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a CSR, or its signature does not verify.
    #[error("the CSR cannot be read or its signature does not verify: {0}")]
    Malformed(String),
    /// Its CN is not the station id.
    #[error("the CSR names {found:?}, not the station {station:?}")]
    WrongName {
        /// The station that sent it.
        station: String,
        /// The CN it asks for.
        found: String,
    },
    /// Its O is not one the operator allows.
    #[error("the CSR's organization {0:?} is not one of --tls-allowed-orgs")]
    WrongOrganization(String),
}

/// The CA and the rules for what it signs.
pub struct StationCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, appended to each signed leaf to make the chain.
    ca_pem: String,
    allowed_organizations: Vec<String>,
}

impl std::fmt::Debug for StationCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationCa")
            .field("allowed_organizations", &self.allowed_organizations)
            .finish_non_exhaustive()
    }
}

impl StationCa {
    /// The CA from its certificate and private key (PEM text).
    pub fn new(
        ca_pem: &str,
        key_pem: &str,
        allowed_organizations: Vec<String>,
    ) -> Result<StationCa, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("the CA key: {e}"))?;
        let issuer = Issuer::from_ca_cert_pem(ca_pem, key)
            .map_err(|e| format!("the CA certificate: {e}"))?;
        Ok(StationCa {
            issuer,
            ca_pem: ca_pem.trim().to_owned() + "\n",
            allowed_organizations,
        })
    }

    /// Reads the CA's two PEM files; the error names the file.
    pub fn load(
        cert_path: &std::path::Path,
        key_path: &std::path::Path,
        allowed_organizations: Vec<String>,
    ) -> Result<StationCa, String> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        StationCa::new(&read(cert_path)?, &read(key_path)?, allowed_organizations)
    }

    /// Signs `csr_pem` for station `station_id`: the PEM chain (leaf, then
    /// the CA certificate) for CertificateSigned.
    pub fn sign(
        &self,
        station_id: &str,
        csr_pem: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Refusal> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        let subject = &csr.params.distinguished_name;
        let common_name = subject
            .get(&DnType::CommonName)
            .map(text)
            .unwrap_or_default();
        if common_name != station_id {
            return Err(Refusal::WrongName {
                station: station_id.to_owned(),
                found: common_name,
            });
        }
        if !self.allowed_organizations.is_empty() {
            let organization = subject
                .get(&DnType::OrganizationName)
                .map(text)
                .unwrap_or_default();
            if !self.allowed_organizations.contains(&organization) {
                return Err(Refusal::WrongOrganization(organization));
            }
        }
        let params = &mut csr.params;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        params.subject_alt_names.clear();
        let (from, until) = (
            now - Duration::hours(1),
            now + Duration::days(VALIDITY_DAYS),
        );
        // Whole days (rcgen's date helper): from the start of the day an
        // hour ago, to the start of the day a year on.
        params.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
        params.not_after =
            rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
        params.serial_number = Some(serial(station_id, csr_pem, now));
        params.use_authority_key_identifier_extension = true;
        let leaf = csr
            .signed_by(&self.issuer)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        Ok(leaf.pem() + &self.ca_pem)
    }
}

fn text(value: &DnValue) -> String {
    match value {
        DnValue::PrintableString(s) => s.as_str().to_owned(),
        DnValue::Utf8String(s) => s.clone(),
        DnValue::Ia5String(s) => s.as_str().to_owned(),
        DnValue::TeletexString(s) => s.as_str().to_owned(),
        // UCS-2 and UTF-32 names: shown as rcgen prints them (never a station id).
        other => format!("{other:?}"),
    }
}

/// 16 bytes from what makes this signing unique, top bit clear (a positive
/// serial, as RFC 5280 wants).
fn serial(station_id: &str, csr_pem: &str, now: DateTime<Utc>) -> SerialNumber {
    let mut hash = Sha256::new();
    hash.update(station_id.as_bytes());
    hash.update(csr_pem.as_bytes());
    hash.update(now.timestamp_nanos_opt().unwrap_or_default().to_be_bytes());
    let mut bytes = hash.finalize()[..16].to_vec();
    bytes[0] &= 0x7f;
    SerialNumber::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName};
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn ca() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Operator CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn csr(common_name: &str, organization: &str, wants_ca: bool) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization);
        if wants_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn a_csr_naming_the_station_is_signed_as_a_leaf_of_the_ca() {
        let (ca_pem, key_pem) = ca();
        let ca = StationCa::new(&ca_pem, &key_pem, vec![]).unwrap();
        let chain = ca.sign("CS1", &csr("CS1", "Acme", true), now()).unwrap();
        let blocks: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(chain.as_bytes())
            .map(|p| p.unwrap())
            .collect();
        assert_eq!(blocks.len(), 2, "leaf, then the CA");
        let (_, leaf) = X509Certificate::from_der(&blocks[0].contents).unwrap();
        let (_, issuer) = X509Certificate::from_der(&blocks[1].contents).unwrap();
        let cn = leaf
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(cn, "CS1");
        assert_eq!(leaf.issuer(), issuer.subject());
        leaf.verify_signature(Some(issuer.public_key()))
            .expect("signed by the CA");
        assert!(
            !leaf.is_ca(),
            "what the CSR asked for does not make it a CA"
        );
        assert!(leaf
            .validity()
            .is_valid_at(x509_parser::time::ASN1Time::from_timestamp(now().timestamp()).unwrap()));
    }

    #[test]
    fn other_names_organizations_and_garbage_are_refused() {
        let (ca_pem, key_pem) = ca();
        let ca = StationCa::new(&ca_pem, &key_pem, vec!["Volt".into()]).unwrap();
        assert!(matches!(
            ca.sign("CS1", &csr("CS2", "Volt", false), now()),
            Err(Refusal::WrongName { .. })
        ));
        assert_eq!(
            ca.sign("CS1", &csr("CS1", "Acme", false), now()),
            Err(Refusal::WrongOrganization("Acme".into()))
        );
        assert!(ca.sign("CS1", &csr("CS1", "Volt", false), now()).is_ok());
        assert!(matches!(
            ca.sign("CS1", "not a CSR", now()),
            Err(Refusal::Malformed(_))
        ));
        assert!(StationCa::new("junk", &key_pem, vec![]).is_err());
    }
}
