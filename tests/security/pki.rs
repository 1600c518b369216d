//! A throw-away PKI for the TLS tests, made with rcgen in each test: a CA,
//! a server certificate for localhost / 127.0.0.1, client certificates with
//! a chosen CN, O and serial, and a CRL revoking one serial.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore};
use tempfile::TempDir;

/// The serial the CRL revokes.
pub const REVOKED_SERIAL: u64 = 666;

/// A client certificate and its key.
pub struct ClientIdentity {
    der: CertificateDer<'static>,
    key: Vec<u8>,
}

/// The files of one test PKI and its CA.
pub struct TestPki {
    dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
}

impl TestPki {
    /// A CA, a server certificate and a CRL, written to a temporary directory.
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name
            .push(DnType::CommonName, "voltgate test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).expect("write CA");
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        server
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server
            .distinguished_name
            .push(DnType::CommonName, "voltgate test server");
        let server_cert = server.signed_by(&server_key, &issuer).expect("server cert");
        std::fs::write(dir.path().join("server.pem"), server_cert.pem()).expect("write cert");
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).expect("key");

        let crl = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(REVOKED_SERIAL),
                revocation_time: date_time_ymd(2024, 1, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .expect("CRL");
        std::fs::write(dir.path().join("crl.pem"), crl.pem().expect("CRL PEM")).expect("CRL");

        TestPki {
            dir,
            issuer,
            ca_der: ca_cert.der().clone(),
        }
    }

    /// Path of a file of the PKI (`ca.pem`, `server.pem`, `server.key`, `crl.pem`).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A client certificate naming `cn` and `org`, with `serial`.
    pub fn client(&self, cn: &str, org: &str, serial: u64) -> ClientIdentity {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).expect("client cert");
        ClientIdentity {
            der: cert.der().clone(),
            key: key.serialize_der(),
        }
    }

    /// A rustls client trusting this CA, presenting `identity` if given.
    pub fn client_config(&self, identity: Option<&ClientIdentity>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("CA root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(identity) => builder
                .with_client_auth_cert(
                    vec![identity.der.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone())),
                )
                .expect("client auth"),
        };
        Arc::new(config)
    }
}
