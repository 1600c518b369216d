//! OCPI transport and credentials rules that need no partner: tokens are
//! checked (base64 or plain), a PENDING token reaches only versions and
//! credentials, ids are echoed, wrong paths are 404 with an envelope, and
//! the registration state shows in `/api/v0/register`.

use awc::http::Method;
use serde_json::json;

use crate::common::start;
use crate::ocpi_call;

#[actix_web::test]
async fn tokens_versions_and_credentials_follow_the_registration_state() {
    let s = start().await;
    // Unknown token: 401 with status 2000, ids echoed.
    let refused = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/versions",
        Some("nobody"),
        None,
        &[("X-Request-ID", "r-1"), ("X-Correlation-ID", "c-1")],
    )
    .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.body["status_code"], 2000);
    assert_eq!(refused.header("x-request-id"), Some("r-1"));
    assert_eq!(refused.header("x-correlation-id"), Some("c-1"));
    let missing = ocpi_call(&s, Method::GET, "/ocpi/versions", None, None, &[]).await;
    assert_eq!(missing.status, 401);

    // The operator gives a partner TOKEN_A: PENDING.
    let registered = s
        .post("/api/v0/register", &json!({"token": "token-a-0123456789"}))
        .await;
    assert_eq!(registered.status, 201, "{registered:?}");
    assert_eq!(registered.body["status"], "PENDING");
    let versions = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/versions",
        Some("token-a-0123456789"),
        None,
        &[],
    )
    .await;
    assert_eq!(versions.status, 200, "{versions:?}");
    assert_eq!(versions.body["status_code"], 1000);
    assert_eq!(versions.body["data"][0]["version"], "2.2.1");
    let details_url = versions.body["data"][0]["url"].as_str().unwrap().to_owned();
    let details_path = details_url.split_once("//").unwrap().1;
    let details_path = &details_path[details_path.find('/').unwrap()..];
    let details = ocpi_call(
        &s,
        Method::GET,
        details_path,
        Some("token-a-0123456789"),
        None,
        &[],
    )
    .await;
    assert_eq!(details.body["data"]["version"], "2.2.1");
    let modules: Vec<&str> = details.body["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["identifier"].as_str().unwrap())
        .collect();
    assert!(modules.contains(&"credentials"), "{modules:?}");
    // The plain token is accepted too.
    let plain = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/versions",
        None,
        None,
        &[("Authorization", "Token token-a-0123456789")],
    )
    .await;
    assert_eq!(plain.status, 200, "{plain:?}");
    // GET credentials works while pending and carries the caller's token.
    let ours = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/2.2.1/credentials",
        Some("token-a-0123456789"),
        None,
        &[],
    )
    .await;
    assert_eq!(ours.body["data"]["token"], "token-a-0123456789");
    assert_eq!(ours.body["data"]["roles"][0]["role"], "CPO");
    assert!(ours.body["data"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/ocpi/versions"));
    // PUT and DELETE before registration: 405.
    for method in [Method::PUT, Method::DELETE] {
        let body = json!({"token": "x", "url": "http://127.0.0.1:1/versions", "roles": []});
        let early = ocpi_call(
            &s,
            method.clone(),
            "/ocpi/2.2.1/credentials",
            Some("token-a-0123456789"),
            Some(&body),
            &[],
        )
        .await;
        assert_eq!(early.status, 405, "{method}: {early:?}");
        assert_eq!(early.body["status_code"], 2000);
    }
    // An invalid credentials object: 2001 naming the field.
    let invalid = ocpi_call(
        &s,
        Method::POST,
        "/ocpi/2.2.1/credentials",
        Some("token-a-0123456789"),
        Some(&json!({"token": "b", "url": "ftp://nowhere", "roles": []})),
        &[],
    )
    .await;
    assert_eq!(invalid.body["status_code"], 2001, "{invalid:?}");
    assert!(invalid.body["status_message"]
        .as_str()
        .unwrap()
        .contains("url"));
    // A partner whose versions cannot be reached: 3001, still PENDING.
    let unreachable = ocpi_call(
        &s,
        Method::POST,
        "/ocpi/2.2.1/credentials",
        Some("token-a-0123456789"),
        Some(&json!({"token": "b", "url": "http://127.0.0.1:1/versions", "roles": [
            {"role": "EMSP", "party_id": "EMS", "country_code": "NL", "business_details": {"name": "E"}}]})),
        &[],
    )
    .await;
    assert_eq!(unreachable.body["status_code"], 3001, "{unreachable:?}");
    let listed = s.get("/api/v0/register").await;
    assert_eq!(listed.body[0]["status"], "PENDING", "{listed:?}");
    assert!(listed.body[0].get("token").is_none(), "no tokens shown");
    // Wrong version path: 404 with an envelope.
    let wrong = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/2.1.1/credentials",
        Some("token-a-0123456789"),
        None,
        &[],
    )
    .await;
    assert_eq!(wrong.status, 404);
    assert_eq!(wrong.body["status_code"], 2000);
}

#[actix_web::test]
async fn a_handshake_voltgate_cannot_complete_stays_pending_with_the_reason() {
    let s = start().await;
    let registered = s
        .post(
            "/api/v0/register",
            &json!({"token": "token-a-for-nowhere", "url": "http://127.0.0.1:1/ocpi/versions"}),
        )
        .await;
    assert_eq!(registered.status, 201, "{registered:?}");
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        last = s.get("/api/v0/register").await.body;
        if last[0]["failedAttempts"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last[0]["status"], "PENDING", "{last}");
    assert!(
        last[0]["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1:1"),
        "{last}"
    );
    // TOKEN_A is voltgate's to call with: the partner cannot use it here.
    let refused = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/versions",
        Some("token-a-for-nowhere"),
        None,
        &[],
    )
    .await;
    assert_eq!(refused.status, 401);
}
