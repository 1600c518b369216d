//! `/api/v0/token`: create, list with paging, look up, revoke.

use serde_json::json;

use crate::common::{start, token_body};

#[actix_web::test]
async fn token_lifecycle() {
    let s = start().await;
    let mut body = token_body("DEADBEEF");
    body["lastUpdated"] = json!("2000-01-01T00:00:00Z");
    let created = s.post("/api/v0/token", &body).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.location.as_deref(), Some("/api/v0/token/DEADBEEF"));

    let token = s.get("/api/v0/token/DEADBEEF").await;
    assert_eq!(token.status, 200);
    assert_eq!(
        token.body["contractId"], "GBTWK012345678V",
        "normalized with check digit"
    );
    assert_eq!(token.body["type"], "RFID");
    assert_ne!(
        token.body["lastUpdated"], "2000-01-01T00:00:00Z",
        "set by the server"
    );
    assert!(token.body["lastUpdated"]
        .as_str()
        .is_some_and(|t| t.starts_with("20")));
    assert!(
        token.body.get("groupId").is_none(),
        "absent optional fields are omitted"
    );

    let mut revoked = token_body("DEADBEEF");
    revoked["valid"] = json!(false);
    assert_eq!(s.post("/api/v0/token", &revoked).await.status, 201);
    assert_eq!(s.get("/api/v0/token/DEADBEEF").await.body["valid"], false);

    assert_eq!(s.delete("/api/v0/token/DEADBEEF").await.status, 204);
    s.get("/api/v0/token/DEADBEEF")
        .await
        .assert_error(404, "token \"DEADBEEF\" not found");
    s.delete("/api/v0/token/DEADBEEF")
        .await
        .assert_error(404, "not found");
}

#[actix_web::test]
async fn token_input_is_checked() {
    let s = start().await;
    let with = |field: &str, value: serde_json::Value| {
        let mut body = token_body("T1");
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = token_body("T1");
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (with("type", json!("CASH")), "type"),
        (with("cacheMode", json!("SOMETIMES")), "cacheMode"),
        (with("valid", json!("true")), "valid"),
        (with("countryCode", json!("GBR")), "countryCode"),
        (with("partyId", json!("TW")), "partyId"),
        (with("contractId", json!("not-an-emaid")), "contractId"),
        (with("contractId", json!("GBTWK012345678A")), "check digit"),
        (with("uid", json!("")), "uid"),
        (with("uid", json!("U".repeat(37))), "uid"),
        (with("lastUpdated", json!("yesterday")), "lastUpdated"),
        (without("uid"), "missing field `uid`"),
        (without("issuer"), "missing field `issuer`"),
        (without("valid"), "missing field `valid`"),
    ];
    for (body, needle) in cases {
        s.post("/api/v0/token", &body)
            .await
            .assert_error(400, needle);
    }
    assert_eq!(
        s.get("/api/v0/token").await.body,
        json!([]),
        "nothing stored"
    );
}

#[actix_web::test]
async fn token_list_pages_in_uid_order() {
    let s = start().await;
    for i in (0..25).rev() {
        assert_eq!(
            s.post("/api/v0/token", &token_body(&format!("T{i:02}")))
                .await
                .status,
            201
        );
    }
    let uids = |reply: crate::common::Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{reply:?}");
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["uid"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = uids(s.get("/api/v0/token").await);
    assert_eq!(first.len(), 20, "default limit");
    assert_eq!(first[0], "T00");
    assert_eq!(first[19], "T19");
    assert_eq!(
        uids(s.get("/api/v0/token?offset=5&limit=3").await),
        ["T05", "T06", "T07"]
    );
    assert_eq!(uids(s.get("/api/v0/token?offset=20").await).len(), 5);

    // The seek cursor: a full page names where the next one starts.
    let mut walked = Vec::new();
    let mut path = "/api/v0/token?limit=10".to_owned();
    loop {
        let reply = s.get(&path).await;
        let cursor = reply.next_cursor.clone();
        walked.extend(uids(reply));
        match cursor {
            Some(cursor) => path = format!("/api/v0/token?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    let all: Vec<String> = (0..25).map(|i| format!("T{i:02}")).collect();
    assert_eq!(walked, all, "cursor pages walk every token once, in order");
    s.get("/api/v0/token?cursor=%2A%2A")
        .await
        .assert_error(400, "cursor");
    assert!(uids(s.get("/api/v0/token?offset=25").await).is_empty());
    assert!(uids(s.get("/api/v0/token?offset=10000").await).is_empty());
    s.get("/api/v0/token?offset=1000000")
        .await
        .assert_error(400, "cursor");
    assert!(uids(s.get("/api/v0/token?limit=0").await).is_empty());
    assert_eq!(
        uids(s.get("/api/v0/token?limit=1000").await).len(),
        25,
        "capped at 100, 25 exist"
    );
    s.get("/api/v0/token?offset=-1")
        .await
        .assert_error(400, "query");
    s.get("/api/v0/token?limit=lots")
        .await
        .assert_error(400, "query");
}

#[actix_web::test]
async fn list_limit_is_capped_at_100() {
    let s = start().await;
    for i in 0..105 {
        assert_eq!(
            s.post("/api/v0/token", &token_body(&format!("T{i:03}")))
                .await
                .status,
            201
        );
    }
    let reply = s.get("/api/v0/token?limit=500").await;
    assert_eq!(reply.body.as_array().map(Vec::len), Some(100));
}
