//! Registration in both directions with the independent eMSP, token
//! rotation and unregistering, as both sides see them.

use std::time::Duration;

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::{start, TestServer};
use crate::ocpi_call;
use crate::peer::Peer;

fn versions_url(s: &TestServer) -> String {
    format!("http://{}/ocpi/versions", s.app.ocpi_addr())
}

/// Waits (bounded) until the only registration is REGISTERED.
async fn until_registered(s: &TestServer) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = s.get("/api/v0/register").await.body;
        if last[0]["status"] == "REGISTERED" {
            return last[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never registered: {last}");
}

#[actix_web::test]
async fn the_emsp_registers_with_the_token_the_operator_gave_it() {
    let s = start().await;
    let peer = Peer::start();
    let registered = s
        .post("/api/v0/register", &json!({"token": "token-a-for-emsp"}))
        .await;
    assert_eq!(registered.status, 201);

    let outcome = peer
        .control(
            "register",
            json!({"versions_url": versions_url(&s), "token": "token-a-for-emsp"}),
        )
        .await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    let token_c = outcome["cpo_token"].as_str().unwrap().to_owned();
    assert_ne!(
        token_c, "token-a-for-emsp",
        "a fresh token replaces TOKEN_A"
    );

    let registration = until_registered(&s).await;
    assert_eq!(registration["roles"][0]["role"], "EMSP", "{registration}");
    assert_eq!(registration["roles"][0]["partyId"], "EMS");
    assert!(
        registration["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["identifier"] == "credentials"),
        "voltgate learned the eMSP's endpoints: {registration}"
    );
    // TOKEN_A is forgotten; TOKEN_C reaches everything.
    let old = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/versions",
        Some("token-a-for-emsp"),
        None,
        &[],
    )
    .await;
    assert_eq!(old.status, 401);
    let new = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/2.2.1/credentials",
        Some(&token_c),
        None,
        &[],
    )
    .await;
    assert_eq!(new.body["data"]["token"], token_c.as_str());
    // A second POST is refused: already registered.
    let again = ocpi_call(
        &s,
        Method::POST,
        "/ocpi/2.2.1/credentials",
        Some(&token_c),
        Some(&new.body["data"]),
        &[],
    )
    .await;
    assert_eq!(again.status, 405, "{again:?}");

    // Rotation: the eMSP PUTs new credentials and gets a new token.
    let rotated = peer.control("credentials-put", json!({})).await;
    assert_eq!(rotated["status"], 200, "{rotated}");
    let token_rotated = rotated["body"]["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(token_rotated, token_c);
    let stale = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/2.2.1/credentials",
        Some(&token_c),
        None,
        &[],
    )
    .await;
    assert_eq!(stale.status, 401, "the rotated-out token no longer works");

    // Unregistering removes the registration.
    let deleted = peer.control("credentials-delete", json!({})).await;
    assert_eq!(deleted["status"], 200, "{deleted}");
    assert_eq!(s.get("/api/v0/register").await.body, json!([]));
    let gone = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/versions",
        Some(&token_rotated),
        None,
        &[],
    )
    .await;
    assert_eq!(gone.status, 401);
}

#[actix_web::test]
async fn voltgate_registers_with_the_emsp_it_was_pointed_at() {
    let s = start().await;
    let peer = Peer::start();
    let told = peer
        .control("token-a", json!({"token": "emsp-token-a"}))
        .await;
    assert_eq!(told["ok"], true, "{told}");
    let peer_versions = peer.state().await["versions_url"]
        .as_str()
        .expect("the peer's versions URL")
        .to_owned();
    let registered = s
        .post(
            "/api/v0/register",
            &json!({"token": "emsp-token-a", "url": peer_versions}),
        )
        .await;
    assert_eq!(registered.status, 201, "{registered:?}");
    let registration = until_registered(&s).await;
    assert_eq!(registration["lastError"], Value::Null, "{registration}");
    assert_eq!(registration["roles"][0]["partyId"], "EMS");

    // The eMSP holds voltgate's credentials and reaches voltgate with them.
    let state = peer.state().await;
    let token_b = state["cpo_token"]
        .as_str()
        .expect("the eMSP kept TOKEN_B")
        .to_owned();
    let reached = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/2.2.1/credentials",
        Some(&token_b),
        None,
        &[],
    )
    .await;
    assert_eq!(reached.status, 200, "{reached:?}");
    assert_eq!(reached.body["data"]["roles"][0]["party_id"], "TWK");
    // What voltgate sent, as the eMSP recorded it: its credentials POST.
    let received = peer.received(0).await;
    let posted = received["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("/credentials")
        })
        .cloned()
        .unwrap_or_else(|| panic!("no credentials POST reached the eMSP: {received}"));
    assert_eq!(posted["body"]["token"], token_b.as_str(), "{posted}");
    assert_eq!(posted["body"]["roles"][0]["role"], "CPO");
}

#[actix_web::test]
async fn a_handshake_with_an_emsp_that_is_down_is_retried_until_it_is_back() {
    let s = start().await;
    let peer = Peer::start();
    peer.control("token-a", json!({"token": "emsp-token-a2"}))
        .await;
    let peer_versions = peer.state().await["versions_url"]
        .as_str()
        .unwrap()
        .to_owned();
    peer.control("down", json!({"status": 503})).await;
    s.post(
        "/api/v0/register",
        &json!({"token": "emsp-token-a2", "url": peer_versions}),
    )
    .await;
    let mut failed = Value::Null;
    for _ in 0..100 {
        failed = s.get("/api/v0/register").await.body[0].clone();
        if failed["failedAttempts"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed["status"], "PENDING", "{failed}");
    assert!(
        failed["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "{failed}"
    );
    peer.control("up", json!({})).await;
    let registration = until_registered(&s).await;
    assert_eq!(registration["lastError"], Value::Null);
}
