//! The transactions views: a station's transactions newest first, and the
//! ongoing ones fleet-wide, with token, connector, energy and last reading.

use serde_json::json;

use crate::client::connect;

#[actix_web::test]
async fn operators_find_the_transactions_to_stop() {
    let s = crate::common::start().await;
    s.register("CS16").await;
    s.register("CS201").await;
    let mut v16 = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    v16.boot_16().await;
    let first = v16
        .ok("StartTransaction", json!({"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": "2026-12-01T09:00:00Z"}))
        .await["transactionId"]
        .clone();
    let second = v16
        .ok("StartTransaction", json!({"connectorId": 2, "idTag": "TAG2", "meterStart": 500, "timestamp": "2026-12-01T10:00:00Z"}))
        .await["transactionId"]
        .clone();
    v16.ok(
        "MeterValues",
        json!({"connectorId": 2, "transactionId": second, "meterValue": [
        {"timestamp": "2026-12-01T10:30:00Z", "sampledValue": [{"value": "2.5", "unit": "kWh"}]}]}),
    )
    .await;
    v16.ok(
        "StopTransaction",
        json!({"transactionId": first, "meterStop": 4000, "timestamp": "2026-12-01T11:00:00Z"}),
    )
    .await;

    let mut v201 = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    v201.boot_201().await;
    let event = |kind: &str, seq: u64, wh: f64, at: &str| {
        json!({
        "eventType": kind, "timestamp": at, "triggerReason": "MeterValuePeriodic", "seqNo": seq,
        "transactionInfo": {"transactionId": "TX-A"}, "evse": {"id": 1, "connectorId": 1},
        "idToken": {"idToken": "RFID9", "type": "ISO14443"},
        "meterValue": [{"timestamp": at, "sampledValue": [{"value": wh}]}]})
    };
    v201.ok(
        "TransactionEvent",
        event("Started", 0, 0.0, "2026-12-01T08:00:00Z"),
    )
    .await;
    v201.ok(
        "TransactionEvent",
        event("Updated", 1, 1500.0, "2026-12-01T08:15:00Z"),
    )
    .await;

    let history = s.get("/api/v0/cs/CS16/transactions").await.body;
    let ids: Vec<String> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transactionId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [second.to_string(), first.to_string()], "newest first");
    assert_eq!(history[0]["active"], true);
    assert_eq!(history[0]["energyWh"], 2500.0, "kWh converted");
    assert_eq!(history[0]["idToken"], "TAG2");
    assert_eq!(history[0]["connectorId"], 2);
    assert_eq!(history[1]["active"], false);
    assert_eq!(history[1]["energyWh"], 4000.0);

    let ongoing = s.get("/api/v0/cs/CS16/transactions?active=true").await.body;
    assert_eq!(ongoing.as_array().map(Vec::len), Some(1));
    assert_eq!(ongoing[0]["transactionId"], second.to_string());

    let fleet = s.get("/api/v0/transactions?active=true&limit=1").await;
    assert_eq!(fleet.body[0]["stationId"], "CS16");
    let cursor = fleet.next_cursor.expect("a full page has a cursor");
    let rest = s
        .get(&format!("/api/v0/transactions?active=true&cursor={cursor}"))
        .await
        .body;
    assert_eq!(rest.as_array().map(Vec::len), Some(1));
    assert_eq!(rest[0]["transactionId"], "TX-A");
    assert_eq!(rest[0]["energyWh"], 1500.0);
    assert_eq!(rest[0]["evseId"], 1);
    assert_eq!(
        rest[0]["lastMeterValue"]["sampledValues"][0]["value"],
        1500.0
    );

    // Ending the 2.0.1 one takes it off the fleet list.
    v201.ok(
        "TransactionEvent",
        event("Ended", 2, 1800.0, "2026-12-01T08:30:00Z"),
    )
    .await;
    let fleet = s.get("/api/v0/transactions?active=true").await.body;
    assert_eq!(fleet.as_array().map(Vec::len), Some(1));
    s.get("/api/v0/transactions")
        .await
        .assert_error(400, "active=true");
    s.get("/api/v0/cs/NOPE/transactions")
        .await
        .assert_error(404, "charge station");
}
