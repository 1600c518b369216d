//! Station CSRs signed by the operator's CA: SignCertificate on both
//! versions and through the 1.6 Plug & Charge DataTransfer, answered
//! Accepted and followed by a CertificateSigned CALL with the chain.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};
use voltgate::ocpp::schema::{check, Direction};
use voltgate::ocpp::Version;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::client::connect;
use crate::common::{start_with, TestServer};

/// A server whose CA signs CSRs; the CA's directory lives as long as it.
async fn with_ca() -> (TestServer, tempfile::TempDir) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Operator CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let s = start_with(|c| {
        c.csms_ca_cert = Some(cert_path);
        c.csms_ca_key = Some(key_path);
    })
    .await;
    (s, dir)
}

fn csr(common_name: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// The leaf's CN, after checking that the next certificate signed it.
fn leaf_name(chain: &str) -> String {
    let blocks: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(chain.as_bytes())
        .map(|p| p.unwrap())
        .collect();
    let (_, leaf) = X509Certificate::from_der(&blocks[0].contents).unwrap();
    let (_, ca) = X509Certificate::from_der(&blocks[1].contents).unwrap();
    leaf.verify_signature(Some(ca.public_key()))
        .expect("signed by the CA");
    let name = leaf
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    name
}

#[actix_web::test]
async fn csrs_are_signed_and_sent_back_in_certificate_signed() {
    let (s, _ca) = with_ca().await;
    for version in [Version::V201, Version::V16] {
        let id = format!("SIGN{}", version.label());
        s.register(&id).await;
        let mut cs = connect(s.app.ws_addr(), &id, version.subprotocol()).await;
        match version {
            Version::V16 => cs.boot_16().await,
            Version::V201 => cs.boot_201().await,
        };
        let mut request = json!({"csr": csr(&id)});
        if version == Version::V201 {
            request["certificateType"] = json!("ChargingStationCertificate");
        }
        assert_eq!(
            cs.ok("SignCertificate", request).await["status"],
            "Accepted"
        );
        let (call_id, payload) = cs.expect_call("CertificateSigned").await;
        assert_eq!(
            check(version, "CertificateSigned", Direction::Request, &payload),
            Ok(())
        );
        assert_eq!(leaf_name(payload["certificateChain"].as_str().unwrap()), id);
        cs.reply(&call_id, json!({"status": "Accepted"})).await;
        cs.ok("Heartbeat", json!({})).await;
        let commands = s.get(&format!("/api/v0/cs/{id}/commands")).await.body;
        assert_eq!(commands[0]["action"], "CertificateSigned");
        assert_eq!(commands[0]["status"], "Accepted", "{commands}");

        // A CSR for another station is refused, and nothing follows.
        assert_eq!(
            cs.ok("SignCertificate", json!({"csr": csr("SOMEONE-ELSE")}))
                .await["status"],
            "Rejected"
        );
        assert!(cs.ok("Heartbeat", json!({})).await["currentTime"].is_string());
        assert!(
            cs.unexpected_calls().is_empty(),
            "{:?}",
            cs.unexpected_calls()
        );
    }
}

#[actix_web::test]
async fn a_plug_and_charge_csr_is_signed_through_data_transfer() {
    let (s, _ca) = with_ca().await;
    s.register("PNC1").await;
    let mut cs = connect(s.app.ws_addr(), "PNC1", "ocpp1.6").await;
    cs.boot_16().await;
    let data = json!({"csr": csr("PNC1"), "certificateType": "V2GCertificate"}).to_string();
    let answer = cs
        .ok("DataTransfer", json!({"vendorId": "org.openchargealliance.iso15118pnc", "messageId": "SignCertificate", "data": data}))
        .await;
    assert_eq!(answer["status"], "Accepted");
    let inner: Value = serde_json::from_str(answer["data"].as_str().unwrap()).unwrap();
    assert_eq!(inner["status"], "Accepted");
    let (call_id, payload) = cs.expect_call("DataTransfer").await;
    assert_eq!(payload["messageId"], "CertificateSigned");
    let signed: Value = serde_json::from_str(payload["data"].as_str().unwrap()).unwrap();
    assert_eq!(signed["certificateType"], "V2GCertificate");
    assert_eq!(
        leaf_name(signed["certificateChain"].as_str().unwrap()),
        "PNC1"
    );
    cs.reply(
        &call_id,
        json!({"status": "Accepted", "data": "{\"status\":\"Accepted\"}"}),
    )
    .await;
}
