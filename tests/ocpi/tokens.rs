//! Tokens from the eMSP: pushed into voltgate's token store (operators see
//! them with their party), used by stations' Authorize under the whitelist
//! rules, and authorized in real time at the eMSP when the rules say so,
//! with the local rules deciding when the eMSP does not answer in time.

use awc::http::Method;
use serde_json::{json, Value};

use crate::client::connect;
use crate::common::{location_body, start_with, TestServer};
use crate::locations::registered;
use crate::ocpi_call;
use crate::peer::Peer;

/// The authorize requests the eMSP got for `uid`.
async fn asked(peer: &Peer, uid: &str) -> Vec<Value> {
    peer.received(0).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with(&format!("/tokens/{uid}/authorize"))
        })
        .cloned()
        .collect()
}

async fn pushed(peer: &Peer, token: Value) {
    let pushed = peer.control("tokens", token).await;
    assert_eq!(pushed["status"], 200, "{pushed}");
    assert_eq!(pushed["body"]["status_code"], 1000, "{pushed}");
}

async fn server() -> TestServer {
    start_with(|config| config.ocpi.realtime_auth_timeout_ms = 1_000).await
}

#[actix_web::test]
async fn pushed_tokens_authorize_stations_under_the_whitelist_rules() {
    let s = server().await;
    let peer = Peer::start();
    let token_c = registered(&s, &peer, "token-a-tokens").await;
    s.register("CS16").await;
    let mut body = location_body();
    body["id"] = json!("L1");
    body["evses"][0]["station_id"] = json!("CS16");
    assert_eq!(
        s.post("/api/v1/locations", &body).await.body["status_code"],
        1000
    );

    pushed(&peer, json!({"uid": "ALWAYS1", "whitelist": "ALWAYS"})).await;
    let seen = s.get("/api/v0/token/ALWAYS1").await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(
        (
            seen.body["countryCode"].as_str(),
            seen.body["partyId"].as_str()
        ),
        (Some("NL"), Some("EMS"))
    );
    assert_eq!(seen.body["cacheMode"], "ALWAYS");
    let read_back = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/2.2.1/tokens/NL/EMS/ALWAYS1?type=RFID",
        Some(&token_c),
        None,
        &[],
    )
    .await;
    assert_eq!(
        read_back.body["data"]["whitelist"], "ALWAYS",
        "{read_back:?}"
    );

    let mut cs = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    cs.boot_16().await;
    let answer = cs.ok("Authorize", json!({"idTag": "ALWAYS1"})).await;
    assert_eq!(answer["idTagInfo"]["status"], "Accepted", "{answer}");
    assert!(
        asked(&peer, "ALWAYS1").await.is_empty(),
        "ALWAYS is decided locally"
    );

    // NEVER: the eMSP decides, told where.
    pushed(&peer, json!({"uid": "NEVER1", "whitelist": "NEVER"})).await;
    peer.control("authorize", json!({"uid": "NEVER1", "allowed": "BLOCKED"}))
        .await;
    let answer = cs.ok("Authorize", json!({"idTag": "NEVER1"})).await;
    assert_eq!(answer["idTagInfo"]["status"], "Blocked", "{answer}");
    let asks = asked(&peer, "NEVER1").await;
    assert_eq!(asks.len(), 1, "{asks:?}");
    assert_eq!(asks[0]["body"]["location_id"], "L1");
    assert_eq!(asks[0]["body"]["evse_uids"], json!(["E1"]));
    assert_eq!(asks[0]["status"], 200);
    peer.control("authorize", json!({"uid": "NEVER1", "allowed": "ALLOWED"}))
        .await;
    let answer = cs.ok("Authorize", json!({"idTag": "NEVER1"})).await;
    assert_eq!(answer["idTagInfo"]["status"], "Accepted", "{answer}");

    // Unknown here: every eMSP is asked; 2.0.1 shows the finer status.
    peer.control(
        "authorize",
        json!({"uid": "STRANGER", "allowed": "NO_CREDIT"}),
    )
    .await;
    s.register("CS201").await;
    let mut cs201 = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs201.boot_201().await;
    let answer = cs201
        .ok(
            "Authorize",
            json!({"idToken": {"idToken": "STRANGER", "type": "ISO14443"}}),
        )
        .await;
    assert_eq!(answer["idTokenInfo"]["status"], "NoCredit", "{answer}");

    // The eMSP too slow (1.5 s > 1 s): the local rules decide.
    pushed(&peer, json!({"uid": "SLOW1", "whitelist": "ALLOWED"})).await;
    peer.control(
        "authorize",
        json!({"uid": "SLOW1", "allowed": "BLOCKED", "delay_ms": 1500}),
    )
    .await;
    let answer = cs.ok("Authorize", json!({"idTag": "SLOW1"})).await;
    assert_eq!(
        answer["idTagInfo"]["status"], "Accepted",
        "valid locally: {answer}"
    );
    pushed(&peer, json!({"uid": "SLOW2", "whitelist": "NEVER"})).await;
    peer.control(
        "authorize",
        json!({"uid": "SLOW2", "allowed": "ALLOWED", "delay_ms": 1500}),
    )
    .await;
    let answer = cs.ok("Authorize", json!({"idTag": "SLOW2"})).await;
    assert_eq!(
        answer["idTagInfo"]["status"], "Invalid",
        "NEVER needs the eMSP: {answer}"
    );

    // A revoked token is blocked (PUT again with valid false).
    pushed(
        &peer,
        json!({"uid": "ALWAYS1", "whitelist": "ALWAYS", "valid": false}),
    )
    .await;
    let answer = cs.ok("Authorize", json!({"idTag": "ALWAYS1"})).await;
    assert_eq!(answer["idTagInfo"]["status"], "Blocked", "{answer}");
}

#[actix_web::test]
async fn token_pushes_are_checked() {
    let s = server().await;
    let peer = Peer::start();
    let token_c = registered(&s, &peer, "token-a-token-checks").await;
    let token = json!({"country_code": "NL", "party_id": "EMS", "uid": "T1", "type": "RFID",
        "contract_id": "NL-EMS-C12345678", "issuer": "EMS", "valid": true, "whitelist": "ALLOWED",
        "last_updated": "2026-12-01T10:00:00Z"});
    let put = |path: &'static str, body: Value| {
        let (s, token_c) = (&s, token_c.clone());
        async move { ocpi_call(s, Method::PUT, path, Some(&token_c), Some(&body), &[]).await }
    };
    let ok = put("/ocpi/2.2.1/tokens/NL/EMS/T1", token.clone()).await;
    assert_eq!(ok.body["status_code"], 1000, "{ok:?}");
    let mut wrong = token.clone();
    wrong["whitelist"] = json!("SOMETIMES");
    let refused = put("/ocpi/2.2.1/tokens/NL/EMS/T1", wrong).await;
    assert_eq!(refused.body["status_code"], 2001);
    assert!(refused.body["status_message"]
        .as_str()
        .unwrap()
        .contains("whitelist"));
    let mismatch = put("/ocpi/2.2.1/tokens/NL/EMS/T2", token.clone()).await;
    assert_eq!(mismatch.body["status_code"], 2001, "{mismatch:?}");
    let mut foreign = token.clone();
    foreign["party_id"] = json!("XYZ");
    let foreign = put("/ocpi/2.2.1/tokens/NL/XYZ/T1", foreign).await;
    assert_eq!(
        foreign.body["status_code"], 2000,
        "another party's token: {foreign:?}"
    );
    // PATCH: last_updated required; unknown token 2004; a change applies.
    let patch = |path: &'static str, body: Value| {
        let (s, token_c) = (&s, token_c.clone());
        async move { ocpi_call(s, Method::PATCH, path, Some(&token_c), Some(&body), &[]).await }
    };
    let no_stamp = patch("/ocpi/2.2.1/tokens/NL/EMS/T1", json!({"valid": false})).await;
    assert_eq!(no_stamp.body["status_code"], 2001);
    let unknown = patch(
        "/ocpi/2.2.1/tokens/NL/EMS/NOPE",
        json!({"valid": false, "last_updated": "2026-12-01T11:00:00Z"}),
    )
    .await;
    assert_eq!(unknown.body["status_code"], 2004);
    let changed = patch(
        "/ocpi/2.2.1/tokens/NL/EMS/T1",
        json!({"valid": false, "last_updated": "2026-12-01T11:00:00Z"}),
    )
    .await;
    assert_eq!(changed.body["status_code"], 1000, "{changed:?}");
    assert_eq!(s.get("/api/v0/token/T1").await.body["valid"], false);
}
