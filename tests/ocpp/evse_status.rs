//! Live EVSE status: a linked station's StatusNotifications set its EVSE's
//! OCPI status in the location (bumping `last_updated`), and a station gone
//! past its heartbeat interval and the margin leaves it UNKNOWN.

use serde_json::{json, Value};

use crate::client::connect;
use crate::common::{location_body, start_with, Keyspace, TestServer};

async fn evse_status(s: &TestServer, uid: &str) -> (String, String, String) {
    let location = s.get("/api/v1/locations/L1").await.body["data"].clone();
    let evse = location["evses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uid"] == uid)
        .cloned()
        .unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        text(&evse["status"]),
        text(&evse["last_updated"]),
        text(&location["last_updated"]),
    )
}

/// Waits (bounded) until EVSE `uid` shows `status`; its and the location's last_updated.
async fn until_status(s: &TestServer, uid: &str, status: &str) -> (String, String) {
    for _ in 0..100 {
        let (now, evse_time, location_time) = evse_status(s, uid).await;
        if now == status {
            return (evse_time, location_time);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "EVSE {uid} never showed {status}: {:?}",
        evse_status(s, uid).await
    );
}

#[actix_web::test]
async fn linked_evses_follow_their_stations() {
    let s = start_with(|config| {
        config.heartbeat_interval_secs = 1;
        config.evse_unknown_margin_secs = 0;
    })
    .await;
    s.register("CS201").await;
    s.register("CS16").await;
    let mut body = location_body();
    body["id"] = json!("L1");
    let mut second = body["evses"][0].clone();
    body["evses"][0]["station_id"] = json!("CS201");
    body["evses"][0]["ocpp_evse_id"] = json!(1);
    second["uid"] = json!("E2");
    second["station_id"] = json!("CS16");
    second["ocpp_connector_id"] = json!(2);
    body["evses"].as_array_mut().unwrap().push(second);
    let created = s.post("/api/v1/locations", &body).await;
    assert_eq!(created.body["status_code"], 1000, "{created:?}");
    let (_, created_at, _) = evse_status(&s, "E1").await;

    let mut cs201 = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs201.boot_201().await;
    cs201
        .ok(
            "StatusNotification",
            json!({"timestamp": "2026-12-01T10:00:00Z",
            "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}),
        )
        .await;
    let (evse_time, location_time) = until_status(&s, "E1", "CHARGING").await;
    assert!(evse_time > created_at, "{evse_time} after {created_at}");
    assert_eq!(
        evse_time, location_time,
        "the location's last_updated moves too"
    );
    assert_eq!(
        evse_status(&s, "E2").await.0,
        "UNKNOWN",
        "another station's EVSE"
    );

    let mut cs16 = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    cs16.boot_16().await;
    cs16.ok(
        "StatusNotification",
        json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
    )
    .await;
    cs16.ok(
        "StatusNotification",
        json!({"connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted"}),
    )
    .await;
    until_status(&s, "E2", "OUTOFORDER").await;
    // Links are checked against what the stations reported.
    let mut wrong = s.get("/api/v1/locations/L1").await.body["data"].clone();
    wrong["evses"][0]["ocpp_evse_id"] = json!(5);
    let refused = s
        .send(
            awc::http::Method::PUT,
            "/api/v1/locations/L1",
            serde_json::to_vec(&wrong).unwrap(),
        )
        .await;
    assert_eq!(refused.body["status_code"], 2001, "{refused:?}");
    assert!(refused.body["status_message"]
        .as_str()
        .unwrap()
        .contains("evses[0].ocpp_evse_id"));
    let mut wrong = s.get("/api/v1/locations/L1").await.body["data"].clone();
    wrong["evses"][1]["ocpp_connector_id"] = json!(9);
    let refused = s
        .send(
            awc::http::Method::PUT,
            "/api/v1/locations/L1",
            serde_json::to_vec(&wrong).unwrap(),
        )
        .await;
    assert_eq!(refused.body["status_code"], 2001, "{refused:?}");
    assert!(refused.body["status_message"]
        .as_str()
        .unwrap()
        .contains("evses[1].ocpp_connector_id"));
    cs201
        .ok(
            "StatusNotification",
            json!({"timestamp": "2026-12-01T10:01:00Z",
            "connectorStatus": "Available", "evseId": 1, "connectorId": 1}),
        )
        .await;
    until_status(&s, "E1", "AVAILABLE").await;

    // Gone past the heartbeat interval (1 s) and the margin (0): UNKNOWN.
    drop(cs201);
    until_status(&s, "E1", "UNKNOWN").await;
    assert_eq!(
        evse_status(&s, "E2").await.0,
        "OUTOFORDER",
        "CS16 is still there"
    );
}

#[actix_web::test]
async fn a_station_that_does_not_come_back_after_a_restart_goes_unknown() {
    let quick = |config: &mut voltgate::config::Config| {
        config.heartbeat_interval_secs = 1;
        config.evse_unknown_margin_secs = 0;
    };
    let dir = tempfile::tempdir().unwrap();
    let keyspace = Keyspace::for_dir(dir.path());
    let s = TestServer::on_with(dir, keyspace, |config| {
        // Long enough that the stop, not a timer, ends this run's watch.
        config.heartbeat_interval_secs = 3600;
    })
    .await;
    s.register("CS201").await;
    let mut body = location_body();
    body["id"] = json!("L1");
    body["evses"][0]["station_id"] = json!("CS201");
    body["evses"][0]["ocpp_evse_id"] = json!(1);
    let created = s.post("/api/v1/locations", &body).await;
    assert_eq!(created.body["status_code"], 1000, "{created:?}");
    let mut cs201 = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs201.boot_201().await;
    cs201
        .ok(
            "StatusNotification",
            json!({"timestamp": "2026-12-01T10:00:00Z",
            "connectorStatus": "Available", "evseId": 1, "connectorId": 1}),
        )
        .await;
    until_status(&s, "E1", "AVAILABLE").await;
    let TestServer {
        app, dir, keyspace, ..
    } = s;
    app.stop().await;
    drop(cs201);

    let s = TestServer::on_with(dir, keyspace, quick).await;
    assert_eq!(
        evse_status(&s, "E1").await.0,
        "AVAILABLE",
        "the last report stands until the station has had time to come back"
    );
    until_status(&s, "E1", "UNKNOWN").await;
}
