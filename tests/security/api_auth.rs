//! REST API tokens: Bearer on /api/v0 and /metrics, never on /health; an
//! open API on a public address is refused at start.

use awc::http::Method;

use crate::common::{self, config_in, TestServer};

const TOKEN: &str = "operator-token-0123456789";

async fn send(s: &TestServer, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = awc::Client::default().request(Method::GET, format!("{}{path}", s.base));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send().await.expect("request");
    let body = response.body().await.expect("body");
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (response.status().as_u16(), json)
}

#[actix_web::test]
async fn the_api_needs_a_bearer_token_but_health_does_not() {
    let s = common::start_with(|c| c.api_auth.tokens = vec![TOKEN.into()]).await;
    for token in [None, Some("wrong-token-wrong-token"), Some("")] {
        let (status, body) = send(&s, "/api/v0/token", token).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(body["status"], "Unauthorized");
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    }
    assert_eq!(send(&s, "/api/v0/token", Some(TOKEN)).await.0, 200);
    // Percent-encoded spellings reach the same routes and the same guard.
    for spelled in ["/api/%76%30/token", "/%61pi/v0/token", "/%6Detrics"] {
        let (status, _) = send(&s, spelled, None).await;
        assert!(
            status == 401 || status == 404,
            "{spelled} answered {status}"
        );
    }
    assert_eq!(send(&s, "/health", None).await.0, 200);
    assert_eq!(send(&s, "/metrics", None).await.0, 401);
    assert_eq!(send(&s, "/metrics", Some(TOKEN)).await.0, 200);

    let open_metrics = common::start_with(|c| {
        c.api_auth.tokens = vec![TOKEN.into()];
        c.api_auth.metrics_without_token = true;
    })
    .await;
    assert_eq!(send(&open_metrics, "/metrics", None).await.0, 200);
    assert_eq!(send(&open_metrics, "/api/v0/token", None).await.0, 401);
}

#[actix_web::test]
async fn an_open_api_on_a_public_address_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // On ScyllaDB the server that does start makes a keyspace: drop it after.
    let _keyspace = common::Keyspace::for_dir(dir.path());
    let mut config = config_in(dir.path());
    config.api_listen = "0.0.0.0:0".parse().unwrap();
    let refused = voltgate::start(config.clone())
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("--api-insecure"), "{refused}");

    config.api_auth.insecure = true;
    let app = voltgate::start(config.clone())
        .await
        .expect("starts when told");
    app.stop().await;

    config.api_auth.insecure = false;
    config.api_auth.tokens = vec!["short".into()];
    let refused = voltgate::start(config).await.err().expect("refused");
    assert!(refused.to_string().contains("shorter than 16"), "{refused}");
}
