//! Commands from the eMSP: START_SESSION and UNLOCK_CONNECTOR reach the
//! station through the operations pipeline, the CommandResponse comes at
//! once and the CommandResult at the eMSP's `response_url` once the station
//! answered; what voltgate cannot do is answered as such.

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::connect;
use crate::common::{location_body, start, TestServer};
use crate::locations::registered;
use crate::peer::Peer;

/// The CommandResult the eMSP received at `response_url` (bounded wait).
async fn result_at(peer: &Peer, response_url: &str) -> Value {
    let path = response_url.split_once("//").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    for _ in 0..200 {
        let received = peer.received(0).await;
        let found = received["items"]
            .as_array()
            .unwrap()
            .iter()
            // Recorded with its status once the eMSP has answered it.
            .find(|r| r["method"] == "POST" && r["path"] == path && !r["status"].is_null())
            .cloned();
        if let Some(found) = found {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no CommandResult at {response_url}");
}

/// Registers `station` and makes location `id` whose EVSE E1 is linked to it
/// (with `link`'s fields: `ocpp_evse_id` or `ocpp_connector_id`).
pub async fn linked_location(s: &TestServer, id: &str, station: &str, link: Value) {
    s.register(station).await;
    let mut body = location_body();
    body["id"] = json!(id);
    body["evses"][0]["station_id"] = json!(station);
    for (key, value) in link.as_object().unwrap() {
        body["evses"][0][key] = value.clone();
    }
    let created = s.post("/api/v1/locations", &body).await;
    assert_eq!(created.body["status_code"], 1000, "{created:?}");
}

#[actix_web::test]
async fn start_session_and_unlock_reach_the_station_and_their_results_the_emsp() {
    let s = start().await;
    let peer = Peer::start();
    registered(&s, &peer, "token-a-commands").await;
    linked_location(&s, "L201", "CS201", json!({"ocpp_evse_id": 1})).await;
    linked_location(&s, "L16", "CS16", json!({"ocpp_connector_id": 2})).await;
    let mut cs201 = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs201.boot_201().await;
    let mut cs16 = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    cs16.boot_16().await;

    let sent = peer
        .control(
            "command",
            json!({"command": "START_SESSION", "body": {"token": "DRIVER1",
                "location_id": "L201", "evse_uid": "E1"}}),
        )
        .await;
    assert_eq!(sent["status"], 200, "{sent}");
    assert_eq!(sent["body"]["data"]["result"], "ACCEPTED", "{sent}");
    assert_eq!(
        sent["response_errors"],
        Value::Null,
        "the eMSP's library accepts it: {sent}"
    );
    let (id, payload) = cs201.expect_call("RequestStartTransaction").await;
    assert_eq!(payload["idToken"]["idToken"], "DRIVER1", "{payload}");
    assert_eq!(payload["evseId"], 1);
    cs201.reply(&id, json!({"status": "Accepted"})).await;
    let result = result_at(&peer, sent["response_url"].as_str().unwrap()).await;
    assert_eq!(result["body"]["result"], "ACCEPTED", "{result}");
    assert_eq!(result["status"], 200, "the eMSP took it: {result}");

    let sent = peer
        .control(
            "command",
            json!({"command": "UNLOCK_CONNECTOR", "body": {"location_id": "L16",
                "evse_uid": "E1", "connector_id": "1"}}),
        )
        .await;
    assert_eq!(sent["body"]["data"]["result"], "ACCEPTED", "{sent}");
    let (id, payload) = cs16.expect_call("UnlockConnector").await;
    assert_eq!(
        payload,
        json!({"connectorId": 2}),
        "the 1.6 connector the EVSE is"
    );
    cs16.reply(&id, json!({"status": "UnlockFailed"})).await;
    let result = result_at(&peer, sent["response_url"].as_str().unwrap()).await;
    assert_eq!(result["body"]["result"], "FAILED", "{result}");

    // An offline charger: REJECTED at once, nothing queued for later.
    drop(cs16);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = peer
        .control(
            "command",
            json!({"command": "UNLOCK_CONNECTOR", "body": {"location_id": "L16",
                "evse_uid": "E1", "connector_id": "1"}}),
        )
        .await;
    assert_eq!(sent["body"]["data"]["result"], "REJECTED", "{sent}");

    // Unknown location: 2003.
    let sent = peer
        .control(
            "command",
            json!({"command": "START_SESSION", "body": {"token": "DRIVER1", "location_id": "NOWHERE"}}),
        )
        .await;
    assert_eq!(sent["body"]["status_code"], 2003, "{sent}");
}

#[actix_web::test]
async fn reservations_reach_the_station_with_one_ocpp_id_and_are_cancelled_by_theirs() {
    let s = start().await;
    let peer = Peer::start();
    registered(&s, &peer, "token-a-reservations").await;
    linked_location(&s, "L201", "CS201", json!({"ocpp_evse_id": 1})).await;
    linked_location(&s, "L16", "CS16", json!({"ocpp_connector_id": 2})).await;
    let pushed = peer.control("tokens", json!({"uid": "RES1"})).await;
    assert_eq!(pushed["body"]["status_code"], 1000, "{pushed}");
    let mut cs201 = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs201.boot_201().await;
    let mut cs16 = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    cs16.boot_16().await;
    let expiry = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let reserve = |location: &str, id: &str| {
        json!({"command": "RESERVE_NOW", "body": {"token": "RES1", "expiry_date": expiry,
            "reservation_id": id, "location_id": location, "evse_uid": "E1"}})
    };

    let sent = peer.control("command", reserve("L201", "R-1")).await;
    assert_eq!(sent["body"]["data"]["result"], "ACCEPTED", "{sent}");
    assert!(sent["body_errors"].is_null(), "{sent}");
    let (id, payload) = cs201.expect_call("ReserveNow").await;
    assert_eq!(payload["evseId"], 1);
    assert_eq!(payload["idToken"]["idToken"], "RES1");
    let ocpp_id = payload["id"].as_i64().unwrap();
    cs201.reply(&id, json!({"status": "Accepted"})).await;
    let result = result_at(&peer, sent["response_url"].as_str().unwrap()).await;
    assert_eq!(result["body"]["result"], "ACCEPTED", "{result}");

    // The same reservation again: the station replaces it (same OCPP id).
    let sent = peer.control("command", reserve("L201", "R-1")).await;
    let (id, payload) = cs201.expect_call("ReserveNow").await;
    assert_eq!(payload["id"].as_i64(), Some(ocpp_id), "{payload}");
    cs201.reply(&id, json!({"status": "Occupied"})).await;
    let result = result_at(&peer, sent["response_url"].as_str().unwrap()).await;
    assert_eq!(result["body"]["result"], "EVSE_OCCUPIED", "{result}");

    let cancel =
        |id: &str| json!({"command": "CANCEL_RESERVATION", "body": {"reservation_id": id}});
    let sent = peer.control("command", cancel("R-1")).await;
    assert_eq!(sent["body"]["data"]["result"], "ACCEPTED", "{sent}");
    let (id, payload) = cs201.expect_call("CancelReservation").await;
    assert_eq!(payload, json!({"reservationId": ocpp_id}));
    cs201.reply(&id, json!({"status": "Accepted"})).await;
    let result = result_at(&peer, sent["response_url"].as_str().unwrap()).await;
    assert_eq!(result["body"]["result"], "ACCEPTED", "{result}");

    // 1.6: the connector the EVSE is linked to.
    let sent = peer.control("command", reserve("L16", "R-2")).await;
    assert_eq!(sent["body"]["data"]["result"], "ACCEPTED", "{sent}");
    let (id, payload) = cs16.expect_call("ReserveNow").await;
    assert_eq!(payload["connectorId"], 2);
    assert_eq!(payload["idTag"], "RES1");
    let ocpp_id = payload["reservationId"].as_i64().unwrap();
    cs16.reply(&id, json!({"status": "Accepted"})).await;
    let sent = peer.control("command", cancel("R-2")).await;
    let (id, payload) = cs16.expect_call("CancelReservation").await;
    assert_eq!(payload, json!({"reservationId": ocpp_id}));
    cs16.reply(&id, json!({"status": "Rejected"})).await;
    let result = result_at(&peer, sent["response_url"].as_str().unwrap()).await;
    assert_eq!(result["body"]["result"], "REJECTED", "{result}");

    // A reservation that is not there, and one that has already expired.
    let sent = peer.control("command", cancel("NOPE")).await;
    assert_eq!(sent["body"]["data"]["result"], "REJECTED", "{sent}");
    let mut late = reserve("L201", "R-3");
    late["body"]["expiry_date"] = json!("2020-01-01T00:00:00Z");
    let sent = peer.control("command", late).await;
    assert_eq!(sent["body"]["data"]["result"], "REJECTED", "{sent}");
    assert!(cs201.unexpected_calls().is_empty());
}
