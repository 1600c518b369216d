//! Proxy mode: a trusted load balancer may assert TLS and a client
//! certificate in headers; anyone else's such headers are ignored and counted.

use serde_json::json;

use crate::common::{self, test_certificate, TestServer};
use crate::{boots, connect_plain, counter, register};

async fn behind_proxy(trusted: &str) -> TestServer {
    let net = trusted.parse().unwrap();
    common::start_with(|c| {
        c.transport.trust_proxy = vec![net];
        // The fixture certificate names CS001 / "voltgate test".
        c.transport.tls_allowed_orgs = vec!["voltgate test".into()];
    })
    .await
}

#[actix_web::test]
async fn a_trusted_proxy_may_assert_tls_and_certificates() {
    let s = behind_proxy("127.0.0.1/32").await;
    let ws = s.app.ws_addr();
    register(&s, "CS1", 1).await;
    register(&s, "CS001", 2).await;
    let (pem, hash) = test_certificate();
    let uploaded = s
        .post("/api/v0/certificate", &json!({ "certificate": pem }))
        .await;
    assert_eq!(uploaded.status, 201, "{uploaded:?}");

    let https = [("X-Forwarded-Proto", "https")];
    let mut station = connect_plain(ws, "CS1", Some(("CS1", "secret")), &https)
        .await
        .connected();
    boots(&mut station).await;
    assert_eq!(
        connect_plain(ws, "CS1", Some(("CS1", "secret")), &[])
            .await
            .refused(),
        401,
        "without the proxy's word it is plain ws://"
    );

    let with_cert = [
        ("X-Forwarded-Proto", "https"),
        ("X-Client-Cert-Present", "true"),
        ("X-Client-Cert-Chain-Verified", "true"),
        ("X-Client-Cert-Hash", hash.as_str()),
    ];
    let mut station = connect_plain(ws, "CS001", None, &with_cert)
        .await
        .connected();
    boots(&mut station).await;

    let unknown = [
        ("X-Forwarded-Proto", "https"),
        ("X-Client-Cert-Chain-Verified", "true"),
        ("X-Client-Cert-Hash", "bm90LXVwbG9hZGVk"),
    ];
    assert_eq!(
        connect_plain(ws, "CS001", None, &unknown).await.refused(),
        401
    );
    assert!(counter(&s, "voltgate_auth_failures_total", "unknown_certificate").await >= 1.0);
    let unverified = [
        ("X-Forwarded-Proto", "https"),
        ("X-Client-Cert-Chain-Verified", "false"),
        ("X-Client-Cert-Hash", hash.as_str()),
    ];
    assert_eq!(
        connect_plain(ws, "CS001", None, &unverified)
            .await
            .refused(),
        401
    );
    assert!(counter(&s, "voltgate_auth_failures_total", "unverified_certificate").await >= 1.0);
}

#[actix_web::test]
async fn proxy_headers_from_anyone_else_are_ignored_and_counted() {
    let s = behind_proxy("10.0.0.0/8").await;
    let ws = s.app.ws_addr();
    register(&s, "CS1", 1).await;
    register(&s, "CS001", 2).await;
    let (pem, hash) = test_certificate();
    s.post("/api/v0/certificate", &json!({ "certificate": pem }))
        .await;

    let spoofed = [
        ("X-Forwarded-Proto", "https"),
        ("X-Client-Cert-Present", "true"),
        ("X-Client-Cert-Chain-Verified", "true"),
        ("X-Client-Cert-Hash", hash.as_str()),
    ];
    let before = counter(&s, "voltgate_untrusted_proxy_headers_total", "").await;
    assert_eq!(
        connect_plain(ws, "CS1", Some(("CS1", "secret")), &spoofed)
            .await
            .refused(),
        401
    );
    assert_eq!(
        connect_plain(ws, "CS001", None, &spoofed).await.refused(),
        401
    );
    let after = counter(&s, "voltgate_untrusted_proxy_headers_total", "").await;
    assert_eq!(after, before + 2.0);
    // A profile 0 station is unaffected by the (ignored) headers.
    s.post("/api/v0/cs/CS0", &common::auth_body("secret")).await;
    let mut station = connect_plain(ws, "CS0", Some(("CS0", "secret")), &spoofed)
        .await
        .connected();
    boots(&mut station).await;
}
