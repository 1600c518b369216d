//! Location pushes to the eMSP: a change arrives as a PUT its library
//! accepts, a station's StatusNotification as a PATCH of the EVSE, and an
//! eMSP that is down gets every push once it is back, in order, even
//! across a restart of voltgate.

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::connect;
use crate::common::{location_body, Keyspace, TestServer};
use crate::locations::registered;
use crate::peer::Peer;

/// The location requests the eMSP answered (accepted or not), in order.
async fn location_requests(peer: &Peer) -> Vec<Value> {
    let received = peer.received(0).await;
    received["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["module"] == "locations" && r["method"] != "GET")
        .cloned()
        .collect()
}

/// Waits (bounded) until the eMSP accepted `n` location pushes.
async fn until_accepted(peer: &Peer, n: usize) -> Vec<Value> {
    let mut accepted = Vec::new();
    for _ in 0..300 {
        accepted = location_requests(peer)
            .await
            .into_iter()
            .filter(|r| r["refused"] == false && r["status"] == 200)
            .collect();
        if accepted.len() >= n {
            return accepted;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the eMSP accepted {} of {n} pushes: {:#?}",
        accepted.len(),
        location_requests(peer).await
    );
}

fn located(id: &str) -> Value {
    let mut body = location_body();
    body["id"] = json!(id);
    body
}

#[actix_web::test]
async fn changes_reach_the_emsp_as_puts_and_status_patches() {
    let dir = tempfile::tempdir().unwrap();
    let keyspace = Keyspace::for_dir(dir.path());
    let s = TestServer::on(dir, keyspace).await;
    let peer = Peer::start();
    registered(&s, &peer, "token-a-push").await;
    s.register("CS201").await;
    let mut body = located("L1");
    body["evses"][0]["station_id"] = json!("CS201");
    body["evses"][0]["ocpp_evse_id"] = json!(1);
    let created = s.post("/api/v1/locations", &body).await;
    assert_eq!(created.body["status_code"], 1000, "{created:?}");

    let put = until_accepted(&peer, 1).await.remove(0);
    assert_eq!(put["method"], "PUT");
    assert!(
        put["path"]
            .as_str()
            .unwrap()
            .ends_with("/locations/GB/TWK/L1"),
        "{put}"
    );
    assert_eq!(put["validation_errors"], Value::Null, "{put}");
    assert!(put["body"]["evses"][0].get("station_id").is_none());

    // The station reports: the EVSE's status goes as a PATCH.
    let mut cs = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs.boot_201().await;
    cs.ok(
        "StatusNotification",
        json!({"timestamp": "2026-12-01T10:00:00Z",
        "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}),
    )
    .await;
    let patch = until_accepted(&peer, 2).await.remove(1);
    assert_eq!(patch["method"], "PATCH", "{patch}");
    assert!(
        patch["path"]
            .as_str()
            .unwrap()
            .ends_with("/locations/GB/TWK/L1/E1"),
        "{patch}"
    );
    assert_eq!(patch["body"]["status"], "CHARGING");
    assert!(patch["body"]["last_updated"].is_string());

    // A delete reaches it as the location with every EVSE REMOVED.
    let deleted = s.delete("/api/v1/locations/L1").await;
    assert_eq!(deleted.body["status_code"], 1000, "{deleted:?}");
    let gone = until_accepted(&peer, 3).await.remove(2);
    assert_eq!(gone["method"], "PUT");
    assert_eq!(gone["body"]["evses"][0]["status"], "REMOVED", "{gone}");
}

#[actix_web::test]
async fn a_status_change_of_a_location_the_emsp_lacks_sends_the_whole_location() {
    let dir = tempfile::tempdir().unwrap();
    let keyspace = Keyspace::for_dir(dir.path());
    let s = TestServer::on(dir, keyspace).await;
    s.register("CS201").await;
    let mut body = located("L1");
    body["evses"][0]["station_id"] = json!("CS201");
    body["evses"][0]["ocpp_evse_id"] = json!(1);
    let created = s.post("/api/v1/locations", &body).await;
    assert_eq!(created.body["status_code"], 1000, "{created:?}");
    // The eMSP registers after the location was made: it never got it.
    let peer = Peer::start();
    registered(&s, &peer, "token-a-late").await;
    let mut cs = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs.boot_201().await;
    cs.ok(
        "StatusNotification",
        json!({"timestamp": "2026-12-01T10:00:00Z",
        "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}),
    )
    .await;
    let put = until_accepted(&peer, 1).await.remove(0);
    assert_eq!(put["method"], "PUT", "{put}");
    assert!(
        put["path"]
            .as_str()
            .unwrap()
            .ends_with("/locations/GB/TWK/L1"),
        "{put}"
    );
    assert_eq!(put["body"]["evses"][0]["status"], "CHARGING", "{put}");
    let refused_patch = location_requests(&peer)
        .await
        .into_iter()
        .find(|r| r["method"] == "PATCH")
        .expect("the EVSE PATCH went first");
    assert_ne!(refused_patch["status"], 200, "{refused_patch}");
}

#[actix_web::test]
async fn an_emsp_that_is_down_gets_every_push_in_order_once_back_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keyspace = Keyspace::for_dir(dir.path());
    let s = TestServer::on(dir, keyspace).await;
    let peer = Peer::start();
    registered(&s, &peer, "token-a-down").await;
    peer.control("down", json!({"status": 503})).await;
    for (id, name) in [("L1", "first"), ("L2", "second"), ("L1", "third")] {
        let mut body = located(id);
        body["name"] = json!(name);
        let put = s
            .send(
                awc::http::Method::PUT,
                &format!("/api/v1/locations/{id}"),
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(put.body["status_code"], 1000, "{put:?}");
    }
    // Refused at least once while down.
    for _ in 0..100 {
        if location_requests(&peer)
            .await
            .iter()
            .any(|r| r["refused"] == true)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(location_requests(&peer)
        .await
        .iter()
        .any(|r| r["refused"] == true));

    let delivered_before = delivered(&s).await;
    // voltgate restarts with the pushes queued; the eMSP comes back.
    let TestServer {
        app, dir, keyspace, ..
    } = s;
    app.stop().await;
    let s = TestServer::on(dir, keyspace).await;
    peer.control("up", json!({})).await;
    let accepted = until_accepted(&peer, 3).await;
    let names: Vec<&str> = accepted
        .iter()
        .map(|r| r["body"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["first", "second", "third"], "in order, none twice");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        until_accepted(&peer, 3).await.len(),
        3,
        "nothing sent again"
    );
    assert!(
        delivered(&s).await >= delivered_before + 3.0,
        "the deliveries are counted"
    );
}

/// `voltgate_ocpi_pushes_total` delivered to the eMSP (party NL-EMS) so far.
async fn delivered(s: &TestServer) -> f64 {
    let mut response = awc::Client::default()
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("scrape");
    let text = String::from_utf8(response.body().await.expect("body").to_vec()).expect("text");
    text.lines()
        .filter(|line| {
            line.starts_with("voltgate_ocpi_pushes_total{")
                && line.contains("party=\"NL-EMS\"")
                && line.contains("outcome=\"delivered\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn changes_that_overflow_a_full_queue_are_resent_once_the_emsp_is_back() {
    let s = crate::common::start_with(|config| config.ocpi.push_queue_max = 1).await;
    let peer = Peer::start();
    registered(&s, &peer, "token-a-overflow").await;
    peer.control("down", json!({"status": 503})).await;
    for id in ["L1", "L2", "L3"] {
        let created = s.post("/api/v1/locations", &located(id)).await;
        assert_eq!(created.body["status_code"], 1000, "{created:?}");
    }
    peer.control("up", json!({})).await;
    let accepted = until_accepted(&peer, 3).await;
    let mut ids: Vec<&str> = accepted
        .iter()
        .map(|r| r["body"]["id"].as_str().unwrap_or_default())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids,
        ["L1", "L2", "L3"],
        "queued, then resent: {accepted:#?}"
    );
}
