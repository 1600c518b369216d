//! What every endpoint answers to bad input: malformed and oversized bodies,
//! unknown routes and methods, a closed store, more connections than the
//! bound; and the documents served.

use awc::http::Method;
use serde_json::json;
use std::time::Duration;

use crate::common::{start, start_with, token_body};

#[actix_web::test]
async fn malformed_json_is_400_everywhere() {
    let s = start().await;
    s.register("CS001").await;
    let paths = [
        "/api/v0/cs/CS002",
        "/api/v0/cs/CS001/reconfigure",
        "/api/v0/cs/CS001/certificates",
        "/api/v0/cs/CS001/trigger",
        "/api/v0/cs/CS001/setchargingprofile",
        "/api/v0/token",
        "/api/v0/certificate",
        "/api/v0/register",
        "/api/v0/location/L1",
    ];
    for path in paths {
        for body in ["{", "", "{\"a\":1}}", "nul", "\u{feff}{}"] {
            let reply = s.post_raw(path, body).await;
            assert_eq!(reply.status, 400, "{path} {body:?}: {reply:?}");
            assert_eq!(reply.body["status"], "Bad Request");
            assert!(
                reply.body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{path}"
            );
        }
    }
}

#[actix_web::test]
async fn oversized_bodies_are_413() {
    let s = start_with(|c| c.api_max_body_bytes = 1024).await;
    let mut body = token_body("T1");
    body["issuer"] = json!("x".repeat(2000));
    let reply = s.post("/api/v0/token", &body).await;
    reply.assert_error(413, "1024 bytes");
    assert_eq!(reply.body["status"], "Payload Too Large");

    // Without a Content-Length (chunked), the limit still holds while reading.
    let chunks = futures_util::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(actix_web::web::Bytes::from(vec![b' '; 256]))),
    );
    let mut response = awc::Client::default()
        .post(format!("{}/api/v0/token", s.base))
        .send_stream(chunks)
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value = serde_json::from_slice(&response.body().await.unwrap()).unwrap();
    assert_eq!(body["status"], "Payload Too Large");
    assert_eq!(s.get("/api/v0/token").await.body, json!([]));
}

#[actix_web::test]
async fn unknown_routes_and_methods() {
    let s = start().await;
    s.get("/api/v0/nothing")
        .await
        .assert_error(404, "no route for GET /api/v0/nothing");
    s.get("/").await.assert_error(404, "no route");
    s.send(Method::PUT, "/api/v0/token", Vec::new())
        .await
        .assert_error(405, "PUT");
    s.delete("/api/v0/cs/CS001/auth")
        .await
        .assert_error(405, "DELETE");
    s.send(Method::PATCH, "/api/v0/location/L1", Vec::new())
        .await
        .assert_error(405, "PATCH");
}

#[actix_web::test]
async fn closed_store_is_503_not_a_hang() {
    let s = start().await;
    s.app.store().close().await;
    s.post("/api/v0/token", &token_body("T1"))
        .await
        .assert_error(503, "retry");
    s.get("/api/v0/token/T1").await.assert_error(503, "retry");
}

#[actix_web::test]
async fn health_and_openapi() {
    let s = start().await;
    let health = s.get("/health").await;
    assert_eq!(health.status, 200);
    let doc = s.get("/api/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.")));
    let paths = doc.body["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v0/cs/{csId}", "post"),
        ("/api/v0/cs/{csId}", "get"),
        ("/api/v0/cs/{csId}/auth", "get"),
        ("/api/v0/cs/{csId}/reconfigure", "post"),
        ("/api/v0/cs/{csId}/certificates", "post"),
        ("/api/v0/cs/{csId}/trigger", "post"),
        ("/api/v0/cs/{csId}/setchargingprofile", "post"),
        ("/api/v0/token", "post"),
        ("/api/v0/token", "get"),
        ("/api/v0/token/{tokenUid}", "get"),
        ("/api/v0/token/{tokenUid}", "delete"),
        ("/api/v0/certificate", "post"),
        ("/api/v0/certificate/{certificateHash}", "get"),
        ("/api/v0/certificate/{certificateHash}", "delete"),
        ("/api/v0/register", "post"),
        ("/api/v0/location", "get"),
        ("/api/v0/location/{locationId}", "post"),
        ("/api/v0/location/{locationId}", "get"),
        ("/api/v1/locations", "post"),
        ("/api/v1/locations", "get"),
        ("/api/v1/locations/{id}", "get"),
        ("/api/v1/locations/{id}", "put"),
        ("/api/v1/locations/{id}", "patch"),
        ("/api/v1/locations/{id}", "delete"),
        ("/api/v1/locations/{id}/evses/{uid}", "patch"),
        ("/api/v1/locations/{id}/evses/{uid}/connectors/{cid}", "put"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let schemas = doc.body["components"]["schemas"]
        .as_object()
        .expect("schemas");
    // The station view's outbox and MaEVe's per-item answers are described.
    // (Flattened fields make a schema an allOf: look for the name in it.)
    for (schema, field) in [
        ("StationView", "\"pendingCommands\""),
        ("ItemResult", "\"commandId\""),
        ("CommandRecord", "\"delivery\""),
        ("Location", "\"time_zone\""),
        ("Evse", "\"station_id\""),
    ] {
        let text = schemas
            .get(schema)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(text.contains(field), "{schema} lacks {field}: {text}");
    }
    let token_type = &schemas["TokenType"]["enum"];
    assert_eq!(
        token_type,
        &json!(["AD_HOC_USER", "APP_USER", "OTHER", "RFID"])
    );
}

/// Sends a GET of /health on `stream` and reads its answer's status line,
/// or None when nothing comes within `wait`.
fn health_on(stream: &mut std::net::TcpStream, wait: Duration) -> Option<String> {
    use std::io::Write;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: voltgate\r\n\r\n")
        .expect("request sent");
    read_status_line(stream, wait)
}

fn read_status_line(stream: &mut std::net::TcpStream, wait: Duration) -> Option<String> {
    use std::io::Read;
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut answer = [0u8; 512];
    match stream.read(&mut answer) {
        Ok(n) if n > 0 => {
            let text = String::from_utf8_lossy(&answer[..n]).into_owned();
            Some(text.lines().next().unwrap_or_default().to_owned())
        }
        _ => None,
    }
}

#[actix_web::test]
async fn rest_connections_beyond_the_bound_wait_for_a_free_one() {
    let s = start_with(|c| c.api_max_connections = 2).await;
    let addr = s.app.api_addr();
    // Blocking sockets: run off the test's runtime, which serves the app.
    let outcome = tokio::task::spawn_blocking(move || {
        let connect = || std::net::TcpStream::connect(addr).expect("connected");
        let (mut first, mut second) = (connect(), connect());
        let short = Duration::from_secs(5);
        assert_eq!(
            health_on(&mut first, short).as_deref(),
            Some("HTTP/1.1 200 OK")
        );
        assert_eq!(
            health_on(&mut second, short).as_deref(),
            Some("HTTP/1.1 200 OK")
        );
        // Both places are held (keep-alive): the third waits in the queue.
        let mut third = connect();
        let waited = health_on(&mut third, Duration::from_millis(800));
        drop(first);
        let after_a_close = read_status_line(&mut third, short);
        (waited, after_a_close)
    })
    .await
    .unwrap();
    assert_eq!(
        outcome.0, None,
        "a third connection was served beyond the bound of 2"
    );
    assert_eq!(outcome.1.as_deref(), Some("HTTP/1.1 200 OK"));
}
