//! `/api/v0/certificate` and `/api/v0/register`.

use serde_json::json;

use crate::common::{start, test_certificate};

#[actix_web::test]
async fn certificate_lifecycle() {
    let s = start().await;
    let (pem, hash) = test_certificate();
    let created = s
        .post("/api/v0/certificate", &json!({ "certificate": pem }))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let path = format!("/api/v0/certificate/{hash}");
    assert_eq!(
        created.location.as_deref(),
        Some(path.as_str()),
        "keyed by base64url SHA-256 of the DER"
    );

    let found = s.get(&path).await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body, json!({ "certificate": pem }));

    assert_eq!(s.delete(&path).await.status, 204);
    s.get(&path).await.assert_error(404, "not found");
    s.delete(&path).await.assert_error(404, "not found");
}

#[actix_web::test]
async fn certificate_input_is_checked() {
    let s = start().await;
    let (pem, _) = test_certificate();
    let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
    let broken = pem.replace("MI", "xx");
    let cases = [
        (json!({"certificate": "hello"}), "no PEM block"),
        (json!({"certificate": key}), "PRIVATE KEY"),
        (json!({"certificate": broken}), "certificate"),
        (json!({"certificate": 42}), "certificate"),
        (json!({}), "missing field `certificate`"),
    ];
    for (body, needle) in cases {
        s.post("/api/v0/certificate", &body)
            .await
            .assert_error(400, needle);
    }
}

#[actix_web::test]
async fn ocpi_party_registration() {
    let s = start().await;
    let ok = [
        json!({"token": "abc"}),
        json!({"token": "abc", "url": "https://emsp.example.com/ocpi/versions", "status": "REGISTERED"}),
    ];
    for body in ok {
        let reply = s.post("/api/v0/register", &body).await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let party = s
        .app
        .store()
        .partner(&voltgate::store::partner_id_for("abc"))
        .await
        .expect("store")
        .expect("stored");
    assert_eq!(
        party.status,
        voltgate::store::OcpiRegistrationStatus::Registered
    );
    assert_eq!(
        party.versions_url.as_deref(),
        Some("https://emsp.example.com/ocpi/versions")
    );
    let listed = s.get("/api/v0/register").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{listed:?}");
    assert_eq!(listed.body[0]["status"], "REGISTERED");
    let bad = [
        (json!({"token": "abc", "status": "ACTIVE"}), "status"),
        (json!({"url": "https://x"}), "missing field `token`"),
        (json!({"token": "abc", "url": "ftp://x"}), "url"),
        (json!({"token": ""}), "token"),
    ];
    for (body, needle) in bad {
        s.post("/api/v0/register", &body)
            .await
            .assert_error(400, needle);
    }
}
