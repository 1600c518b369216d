//! voltgate's own TLS listener: profile 1 (TLS + Basic auth) and profile 2
//! (client certificate) on one port, and what each refuses.

use crate::common::{self, TestServer};
use crate::pki::{TestPki, REVOKED_SERIAL};
use crate::{boots, connect_plain, connect_tls, counter, register};

async fn tls_server(pki: &TestPki) -> TestServer {
    common::start_with(|c| {
        c.transport.wss_listen = Some("127.0.0.1:0".parse().unwrap());
        c.transport.tls_cert = Some(pki.path("server.pem"));
        c.transport.tls_key = Some(pki.path("server.key"));
        c.transport.tls_client_ca = Some(pki.path("ca.pem"));
        c.transport.tls_client_crl = Some(pki.path("crl.pem"));
        c.transport.tls_allowed_orgs = vec!["Acme Charging".into()];
    })
    .await
}

#[actix_web::test]
async fn profile_1_stations_use_tls_and_their_password() {
    let pki = TestPki::new();
    let s = tls_server(&pki).await;
    register(&s, "CS1", 1).await;
    let wss = s.app.wss_addr().expect("TLS listener");
    let config = pki.client_config(None);

    let mut station = connect_tls(wss, "CS1", Some(("CS1", "secret")), config.clone())
        .await
        .connected();
    boots(&mut station).await;

    let refused = |outcome: crate::Outcome<_>| outcome.refused();
    assert_eq!(
        refused(connect_tls(wss, "CS1", None, config.clone()).await),
        401
    );
    assert_eq!(
        refused(connect_tls(wss, "CS1", Some(("CS1", "wrong")), config.clone()).await),
        401
    );
    assert_eq!(
        refused(connect_tls(wss, "CS1", Some(("CS9", "secret")), config.clone()).await),
        401,
        "wrong username"
    );
    // The plain listener refuses a TLS station, right password or not.
    let plain = connect_plain(s.app.ws_addr(), "CS1", Some(("CS1", "secret")), &[]).await;
    assert_eq!(plain.refused(), 401);
    assert!(counter(&s, "voltgate_auth_failures_total", "tls_required").await >= 1.0);
    assert!(counter(&s, "voltgate_auth_failures_total", "wrong_password").await >= 1.0);
}

#[actix_web::test]
async fn profile_2_stations_prove_themselves_with_a_certificate() {
    let pki = TestPki::new();
    let s = tls_server(&pki).await;
    register(&s, "CS2", 2).await;
    let wss = s.app.wss_addr().expect("TLS listener");

    let good = pki.client("CS2", "Acme Charging", 10);
    let mut station = connect_tls(wss, "CS2", None, pki.client_config(Some(&good)))
        .await
        .connected();
    boots(&mut station).await;

    let cases = [
        (None, "no_client_certificate"),
        (
            Some(pki.client("CS3", "Acme Charging", 11)),
            "certificate_name_mismatch",
        ),
        (
            Some(pki.client("CS2", "Somebody Else", 12)),
            "certificate_organization",
        ),
    ];
    for (identity, reason) in cases {
        let config = pki.client_config(identity.as_ref());
        let before = counter(&s, "voltgate_auth_failures_total", reason).await;
        assert_eq!(
            connect_tls(wss, "CS2", None, config).await.refused(),
            401,
            "{reason}"
        );
        let after = counter(&s, "voltgate_auth_failures_total", reason).await;
        assert_eq!(after, before + 1.0, "{reason} counted");
    }
    // A profile 2 station on the plain listener: TLS is required.
    let plain = connect_plain(s.app.ws_addr(), "CS2", None, &[]).await;
    assert_eq!(plain.refused(), 401);
}

#[actix_web::test]
async fn revoked_and_foreign_certificates_fail_the_tls_handshake() {
    let pki = TestPki::new();
    let s = tls_server(&pki).await;
    register(&s, "CS2", 2).await;
    let wss = s.app.wss_addr().expect("TLS listener");

    let revoked = pki.client("CS2", "Acme Charging", REVOKED_SERIAL);
    let why = connect_tls(wss, "CS2", None, pki.client_config(Some(&revoked)))
        .await
        .failed();
    assert!(!why.is_empty());

    // Signed by a CA voltgate does not trust; the client still trusts the
    // server's CA, so only the client certificate is wrong.
    let other_ca = TestPki::new();
    let stranger = other_ca.client("CS2", "Acme Charging", 10);
    let why = connect_tls(wss, "CS2", None, pki.client_config(Some(&stranger)))
        .await
        .failed();
    assert!(!why.is_empty());
}
