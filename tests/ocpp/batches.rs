//! Fleet fan-out: one `POST /api/v0/commands` to many real WebSocket
//! stations of both versions, its aggregate view, and its refusals.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use voltgate::ocpp::schema::{check, Direction};
use voltgate::ocpp::Version;

use crate::client::{connect, Station};
use crate::common::{start_with, TestServer};

/// Connects and boots `count` stations (alternating 1.6 and 2.0.1).
async fn fleet(s: &TestServer, prefix: &str, count: usize) -> Vec<(Version, Station)> {
    let mut stations = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("{prefix}{i:04}");
        s.register(&id).await;
        let version = if i % 2 == 0 {
            Version::V16
        } else {
            Version::V201
        };
        let mut cs = connect(s.app.ws_addr(), &id, version.subprotocol()).await;
        let boot = match version {
            Version::V16 => cs.boot_16().await,
            Version::V201 => cs.boot_201().await,
        };
        assert_eq!(boot["status"], "Accepted");
        stations.push((version, cs));
    }
    stations
}

/// Each station answers the one CALL it gets with `{"status": "Accepted"}`
/// after checking it against the official schema; counts the CALLs.
fn answer_once(
    stations: Vec<(Version, Station)>,
    action: &'static str,
) -> (Arc<AtomicUsize>, Vec<tokio::task::JoinHandle<Station>>) {
    let received = Arc::new(AtomicUsize::new(0));
    let tasks = stations
        .into_iter()
        .map(|(version, mut cs)| {
            let received = received.clone();
            actix_web::rt::spawn(async move {
                let (id, payload) = cs.expect_call(action).await;
                assert_eq!(check(version, action, Direction::Request, &payload), Ok(()), "{payload}");
                let wanted = match version {
                    Version::V16 => json!({"requestedMessage": "StatusNotification", "connectorId": 1}),
                    Version::V201 => json!({"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}}),
                };
                assert_eq!(payload, wanted, "the version's payload");
                received.fetch_add(1, Ordering::Relaxed);
                cs.reply(&id, json!({"status": "Accepted"})).await;
                cs
            })
        })
        .collect();
    (received, tasks)
}

fn trigger_body() -> Value {
    json!({"select": {"connected": true}, "operation": "ocpp", "action": "TriggerMessage",
        "payload": {"1.6": {"requestedMessage": "StatusNotification", "connectorId": 1},
                    "2.0.1": {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}}}})
}

#[actix_web::test]
async fn a_batch_reaches_a_thousand_stations_and_counts_their_answers() {
    let s = start_with(|c| {
        c.limits.connections_per_ip_per_sec = 0;
        c.limits.ocpp_messages_per_sec = 0;
    })
    .await;
    let stations = fleet(&s, "F", 1000).await;
    let (received, tasks) = answer_once(stations, "TriggerMessage");
    let reply = s.post("/api/v0/commands?wait=true", &trigger_body()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        received.load(Ordering::Relaxed),
        1000,
        "every station got its CALL"
    );
    assert_eq!(reply.body["commands"], 1000);
    assert_eq!(reply.body["counts"], json!({"Accepted": 1000}));
    assert_eq!(reply.body["complete"], true);
    assert_eq!(reply.body["action"], "TriggerMessage");
    for task in tasks {
        task.await.expect("station task");
    }

    let batch_id = reply.body["batchId"].as_str().unwrap().to_owned();
    let view = s
        .get(&format!("/api/v0/commands/{batch_id}?limit=100"))
        .await;
    assert_eq!(view.body["counts"], json!({"Accepted": 1000}));
    let page = view.body["commands"].as_array().unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page[0]["stationId"], "F0000");
    let next = view.next_cursor.expect("a full page has a cursor");
    let view = s
        .get(&format!(
            "/api/v0/commands/{batch_id}?limit=100&cursor={next}"
        ))
        .await;
    assert_eq!(view.body["commands"][0]["stationId"], "F0100");
    // Each station's command is an ordinary one, listed with the station.
    let own = s.get("/api/v0/cs/F0001/commands").await.body;
    assert_eq!(own[0]["batchId"], batch_id.as_str());
    assert_eq!(own[0]["status"], "Accepted");
    assert_eq!(own[0]["version"], "2.0.1");
}

#[actix_web::test]
async fn a_batch_counts_the_stations_it_could_not_reach() {
    let s = start_with(|c| c.max_batch_stations = 3).await;
    let mut stations = fleet(&s, "B", 2).await;
    s.register("OFFLINE").await;
    let body = json!({"stations": ["B0000", "B0001", "OFFLINE", "GHOST"], "operation": "reset", "payload": {"type": "OnIdle"}});
    s.post("/api/v0/commands", &body)
        .await
        .assert_error(400, "at most 3 per batch");
    let body = json!({"stations": ["B0000", "B0001", "OFFLINE"], "operation": "reset", "payload": {"type": "OnIdle"}});
    let reply = s.post("/api/v0/commands", &body).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    // OnIdle has no 1.6 form: only the 2.0.1 station gets a command.
    assert_eq!(reply.body["stations"], 1);
    assert_eq!(
        reply.body["skipped"],
        json!({"NotConnected": 1, "Untranslatable": 1})
    );
    let (_, mut v201) = stations.pop().unwrap();
    let (id, payload) = v201.expect_call("Reset").await;
    assert_eq!(payload, json!({"type": "OnIdle"}));
    v201.reply(&id, json!({"status": "Scheduled"})).await;
    let batch_id = reply.body["batchId"].as_str().unwrap();
    let mut view = Value::Null;
    for _ in 0..250 {
        view = s.get(&format!("/api/v0/commands/{batch_id}")).await.body;
        if view["complete"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(view["counts"], json!({"Accepted": 1}), "{view}");
    assert!(view["untranslatable"]
        .as_str()
        .unwrap()
        .contains("OCPP 1.6 has no"));

    s.post(
        "/api/v0/commands",
        &json!({"stations": ["GHOST"], "operation": "reset", "payload": {"type": "Hard"}}),
    )
    .await
    .assert_error(400, "UnknownStation 1");
    s.post(
        "/api/v0/commands",
        &json!({"select": {"idPrefix": "ZZ"}, "operation": "clear-cache"}),
    )
    .await
    .assert_error(400, "no station matched");
    s.post(
        "/api/v0/commands",
        &json!({"stations": ["B0000"], "select": {}, "operation": "clear-cache"}),
    )
    .await
    .assert_error(400, "either stations");
    s.post(
        "/api/v0/commands",
        &json!({"stations": ["B0000"], "operation": "explode"}),
    )
    .await
    .assert_error(400, "operations: ocpp, reset");
    s.post(
        "/api/v0/commands",
        &json!({"stations": ["B0000"], "operation": "ocpp"}),
    )
    .await
    .assert_error(400, "action");
    s.post("/api/v0/commands", &json!({"stations": ["B0000"], "operation": "ocpp", "action": "Reset", "payload": {"type": "Later"}}))
        .await
        .assert_error(400, "/type");
    s.get("/api/v0/commands/0000000000000000000000000000")
        .await
        .assert_error(404, "batch");
    // A selector by what stations reported: the 1.6 one by version and vendor.
    let reply = s
        .post("/api/v0/commands", &json!({"select": {"version": "1.6", "vendor": "Acme", "idPrefix": "B"}, "operation": "clear-cache"}))
        .await;
    assert_eq!(reply.body["stations"], 1, "{:?}", reply.body);
    let (_, mut v16) = stations.pop().unwrap();
    let (id, _) = v16.expect_call("ClearCache").await;
    v16.reply(&id, json!({"status": "Accepted"})).await;
}
