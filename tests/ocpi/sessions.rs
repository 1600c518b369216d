//! Sessions and CDRs, sender side: a charge with an eMSP's token becomes a
//! Session pushed to that eMSP (PUT at the start, PATCHes after), and a CDR
//! once it ends; the eMSP's library validates each, and pulls them back.
//! How the session was authorized (whitelist, real time, START_SESSION)
//! and STOP_SESSION's way to the station are covered on 1.6 and 2.0.1.

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{connect, Station};
use crate::commands::linked_location;
use crate::common::{start_with, token_body, TestServer};
use crate::locations::registered;
use crate::peer::Peer;

async fn server() -> TestServer {
    start_with(|config| {
        config.ocpi.session_update_secs = 0;
        config.ocpi.realtime_auth_timeout_ms = 2_000;
    })
    .await
}

/// The session and CDR requests the eMSP answered so far, waiting until
/// `done` holds for them (bounded).
async fn billing_received(peer: &Peer, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = peer.received(0).await["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| matches!(r["module"].as_str(), Some("sessions" | "cdrs")))
            .filter(|r| !r["status"].is_null() && r["refused"] != true)
            .cloned()
            .collect();
        if done(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the eMSP did not get what was expected; it got {seen:#?}");
}

fn accepted_by_the_library(request: &Value) {
    assert!(
        matches!(request["status"].as_u64(), Some(200 | 201)),
        "the eMSP refused it: {request}"
    );
    assert!(
        request["validation_errors"].is_null(),
        "the eMSP's schema refused it: {request}"
    );
}

fn energy(wh: u32, at: &str) -> Value {
    json!([{"timestamp": at, "sampledValue": [{"value": wh.to_string(),
        "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}])
}

async fn start_16(cs: &mut Station, tag: &str, meter: u32) -> i64 {
    let started = cs
        .ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": tag, "meterStart": meter,
                "timestamp": "2026-12-02T10:00:00Z"}),
        )
        .await;
    assert_eq!(started["idTagInfo"]["status"], "Accepted", "{started}");
    started["transactionId"].as_i64().unwrap()
}

#[actix_web::test]
async fn a_charge_with_an_emsp_token_is_pushed_as_a_session_and_a_cdr_and_can_be_pulled() {
    let s = server().await;
    let peer = Peer::start();
    registered(&s, &peer, "token-a-sessions").await;
    linked_location(&s, "L1", "CS16", json!({"ocpp_connector_id": 1})).await;
    let pushed = peer
        .control("tokens", json!({"uid": "WL1", "whitelist": "ALWAYS"}))
        .await;
    assert_eq!(pushed["body"]["status_code"], 1000, "{pushed}");
    let mut cs = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    cs.boot_16().await;

    // A local token's charge is no session.
    let made = s.post("/api/v0/token", &token_body("LOCAL1")).await;
    assert_eq!(made.status, 201, "{made:?}");
    let local = start_16(&mut cs, "LOCAL1", 0).await;
    cs.ok(
        "StopTransaction",
        json!({"transactionId": local, "meterStop": 10,
        "timestamp": "2026-12-02T09:59:00Z"}),
    )
    .await;

    // The whitelisted token: PUT at the start.
    let tx = start_16(&mut cs, "WL1", 1_000).await;
    let got = billing_received(&peer, |r| !r.is_empty()).await;
    assert_eq!(got.len(), 1, "only the eMSP's session: {got:#?}");
    let put = &got[0];
    accepted_by_the_library(put);
    assert_eq!(put["method"], "PUT");
    // A functional module's call carries OCPI's routing headers.
    let headers = &put["headers"];
    assert_eq!(
        (
            &headers["ocpi-from-country-code"],
            &headers["ocpi-from-party-id"],
            &headers["ocpi-to-country-code"],
            &headers["ocpi-to-party-id"]
        ),
        (&json!("GB"), &json!("TWK"), &json!("NL"), &json!("EMS")),
        "{put}"
    );
    let session = &put["body"];
    let id = session["id"].as_str().unwrap().to_owned();
    assert!(
        put["path"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/sessions/GB/TWK/{id}")),
        "{put}"
    );
    assert_eq!(session["status"], "ACTIVE");
    assert_eq!(session["auth_method"], "WHITELIST");
    assert_eq!(session["cdr_token"]["uid"], "WL1");
    assert_eq!(session["cdr_token"]["party_id"], "EMS");
    assert_eq!(session["location_id"], "L1");
    assert_eq!(session["start_date_time"], "2026-12-02T10:00:00.000Z");
    assert_eq!(session["kwh"], 0.0);

    // Progress: a PATCH with the energy so far.
    cs.ok(
        "MeterValues",
        json!({"connectorId": 1, "transactionId": tx,
        "meterValue": energy(3_500, "2026-12-02T10:15:00Z")}),
    )
    .await;
    let got = billing_received(&peer, |r| r.len() >= 2).await;
    accepted_by_the_library(&got[1]);
    assert_eq!(got[1]["method"], "PATCH");
    assert_eq!(got[1]["body"]["kwh"], 2.5, "{}", got[1]);

    // The end: a PATCH, then the CDR.
    cs.ok(
        "StopTransaction",
        json!({"transactionId": tx, "meterStop": 6_000,
        "timestamp": "2026-12-02T10:30:00Z", "reason": "EVDisconnected"}),
    )
    .await;
    let got = billing_received(&peer, |r| r.len() >= 4).await;
    let (end, cdr) = (&got[2], &got[3]);
    accepted_by_the_library(end);
    assert_eq!(end["body"]["status"], "COMPLETED");
    assert_eq!(end["body"]["end_date_time"], "2026-12-02T10:30:00.000Z");
    accepted_by_the_library(cdr);
    assert_eq!(
        (cdr["method"].as_str(), cdr["module"].as_str()),
        (Some("POST"), Some("cdrs"))
    );
    let body = &cdr["body"];
    assert_eq!(body["total_energy"], 5.0, "{body}");
    assert_eq!(body["total_time"], 0.5);
    assert_eq!(body["session_id"], id.as_str());
    assert_eq!(body["cdr_location"]["evse_id"], "GB*TWK*E1");
    assert_eq!(
        body["charging_periods"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    for request in &got {
        let text = request["body"].to_string();
        assert!(
            !text.contains("CS16"),
            "a private id reached the eMSP: {text}"
        );
    }
    let stored = peer.control_get("objects/sessions").await;
    assert_eq!(stored["items"][0]["status"], "COMPLETED", "{stored}");

    // A token voltgate does not keep, allowed in real time.
    let rule = peer
        .control(
            "authorize",
            json!({"uid": "RT1", "allowed": "ALLOWED", "authorization_reference": "REF-RT1"}),
        )
        .await;
    assert!(rule.is_object(), "{rule}");
    let tx = start_16(&mut cs, "RT1", 0).await;
    let got = billing_received(&peer, |r| r.len() >= 5).await;
    accepted_by_the_library(&got[4]);
    assert_eq!(got[4]["body"]["auth_method"], "AUTH_REQUEST", "{}", got[4]);
    assert_eq!(got[4]["body"]["authorization_reference"], "REF-RT1");
    assert_eq!(got[4]["body"]["cdr_token"]["uid"], "RT1");
    cs.ok(
        "StopTransaction",
        json!({"transactionId": tx, "meterStop": 1_234,
        "timestamp": "2026-12-02T11:00:00Z"}),
    )
    .await;
    billing_received(&peer, |r| r.len() >= 7).await;

    // The eMSP pulls both sessions and both CDRs back, valid.
    for module in ["sessions", "cdrs"] {
        let pulled = peer.control("get", json!({"module": module})).await;
        assert_eq!(pulled["status"], 200, "{pulled}");
        assert_eq!(pulled["valid"], true, "{pulled}");
        let items = pulled["body"]["data"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{pulled}");
        assert_eq!(pulled["headers"]["x-total-count"], "2", "{pulled}");
    }
    let page = peer
        .control(
            "get",
            json!({"module": "sessions", "path_suffix": "?limit=1"}),
        )
        .await;
    assert_eq!(page["body"]["data"].as_array().unwrap().len(), 1, "{page}");
    assert!(
        page["headers"]["link"]
            .as_str()
            .unwrap_or_default()
            .contains("rel=\"next\""),
        "{page}"
    );
}

#[actix_web::test]
async fn start_session_and_stop_session_carry_a_201_charge_from_command_to_cdr() {
    let s = server().await;
    let peer = Peer::start();
    registered(&s, &peer, "token-a-commanded").await;
    linked_location(&s, "L2", "CS201", json!({"ocpp_evse_id": 1})).await;
    let pushed = peer
        .control(
            "tokens",
            json!({"uid": "APP1", "type": "APP_USER", "whitelist": "ALLOWED"}),
        )
        .await;
    assert_eq!(pushed["body"]["status_code"], 1000, "{pushed}");
    let mut cs = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs.boot_201().await;

    let sent = peer
        .control(
            "command",
            json!({"command": "START_SESSION", "body": {"token": "APP1", "location_id": "L2",
                "evse_uid": "E1", "authorization_reference": "REF-CMD"}}),
        )
        .await;
    assert_eq!(sent["body"]["data"]["result"], "ACCEPTED", "{sent}");
    let (call, start) = cs.expect_call("RequestStartTransaction").await;
    cs.reply(&call, json!({"status": "Accepted", "transactionId": "TX9"}))
        .await;
    let event = |kind: &str, seq: u64, wh: u32, at: &str| {
        json!({"eventType": kind, "timestamp": at, "triggerReason": "RemoteStart", "seqNo": seq,
            "transactionInfo": {"transactionId": "TX9", "remoteStartId": start["remoteStartId"]},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [{"timestamp": at, "sampledValue": [{"value": wh}]}]})
    };
    let mut started = event("Started", 0, 100, "2026-12-02T12:00:00Z");
    started["idToken"] = json!({"idToken": "APP1", "type": "Central"});
    cs.ok("TransactionEvent", started).await;
    let got = billing_received(&peer, |r| !r.is_empty()).await;
    accepted_by_the_library(&got[0]);
    let session = &got[0]["body"];
    assert_eq!(session["auth_method"], "COMMAND", "{session}");
    assert_eq!(session["authorization_reference"], "REF-CMD");
    assert_eq!(session["cdr_token"]["type"], "APP_USER");
    let id = session["id"].as_str().unwrap().to_owned();

    // STOP_SESSION of a session that is not there, then of this one.
    let unknown = peer
        .control(
            "command",
            json!({"command": "STOP_SESSION", "body": {"session_id": "NOPE"}}),
        )
        .await;
    assert_eq!(
        unknown["body"]["data"]["result"], "UNKNOWN_SESSION",
        "{unknown}"
    );
    let stop = peer
        .control(
            "command",
            json!({"command": "STOP_SESSION", "body": {"session_id": id}}),
        )
        .await;
    assert_eq!(stop["body"]["data"]["result"], "ACCEPTED", "{stop}");
    assert!(
        stop["body_errors"].is_null() && stop["response_errors"].is_null(),
        "{stop}"
    );
    let (call, payload) = cs.expect_call("RequestStopTransaction").await;
    assert_eq!(payload, json!({"transactionId": "TX9"}));
    cs.reply(&call, json!({"status": "Accepted"})).await;
    let mut ended = event("Ended", 1, 4_300, "2026-12-02T12:45:00Z");
    ended["triggerReason"] = json!("RemoteStop");
    ended["transactionInfo"]["stoppedReason"] = json!("Remote");
    cs.ok("TransactionEvent", ended).await;
    let got = billing_received(&peer, |r| r.iter().any(|x| x["module"] == "cdrs")).await;
    let cdr = got.iter().find(|r| r["module"] == "cdrs").unwrap();
    accepted_by_the_library(cdr);
    assert_eq!(cdr["body"]["total_energy"], 4.2, "{cdr}");
    assert_eq!(cdr["body"]["auth_method"], "COMMAND");
    assert_eq!(cdr["body"]["total_time"], 0.75);
    // An ended session cannot be stopped again.
    let again = peer
        .control(
            "command",
            json!({"command": "STOP_SESSION", "body": {"session_id": id}}),
        )
        .await;
    assert_eq!(again["body"]["data"]["result"], "REJECTED", "{again}");
}

#[actix_web::test]
async fn an_emsp_that_is_down_during_a_charge_gets_its_session_and_cdr_in_order_once_back() {
    let s = server().await;
    let peer = Peer::start();
    registered(&s, &peer, "token-a-billing-down").await;
    linked_location(&s, "L3", "CS3", json!({"ocpp_connector_id": 1})).await;
    let pushed = peer
        .control("tokens", json!({"uid": "WL3", "whitelist": "ALWAYS"}))
        .await;
    assert_eq!(pushed["body"]["status_code"], 1000, "{pushed}");
    let mut cs = connect(s.app.ws_addr(), "CS3", "ocpp1.6").await;
    cs.boot_16().await;
    peer.control("down", json!({"status": 503})).await;
    let tx = start_16(&mut cs, "WL3", 0).await;
    cs.ok(
        "StopTransaction",
        json!({"transactionId": tx, "meterStop": 7_000,
        "timestamp": "2026-12-02T11:00:00Z"}),
    )
    .await;
    // Refused while down: nothing lost, nothing skipped.
    for _ in 0..100 {
        let refused = peer.received(0).await["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["refused"] == true && r["module"] == "sessions");
        if refused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    peer.control("up", json!({})).await;
    let got = billing_received(&peer, |r| r.len() >= 3).await;
    let order: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r["method"].as_str().unwrap(), r["module"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [("PUT", "sessions"), ("PATCH", "sessions"), ("POST", "cdrs")],
        "{got:#?}"
    );
    for request in &got {
        accepted_by_the_library(request);
    }
    assert_eq!(got[2]["body"]["total_energy"], 7.0);
}
