//! OCPP integration tests: the real server on 127.0.0.1, real WebSocket
//! stations (tokio-tungstenite), real HTTP calls. Nothing is judged by
//! wall-clock time; every wait is bounded so a bug fails instead of hanging.

mod batches;
mod client;
mod cluster;
#[allow(dead_code)]
#[path = "../api/common.rs"]
mod common;
mod evse_status;
mod metrics;
mod minimal;
mod operations;
mod prometheus;
mod signing;
mod transactions;
mod variables;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use client::{connect, connect_as, refused_status};
use common::{start, start_with, token_body, TestServer};

pub(crate) async fn registered(id: &str) -> TestServer {
    let s = start().await;
    s.register(id).await;
    s
}

/// Runs an HTTP call while the test plays the station; returns its reply.
pub(crate) fn spawn_post(
    s: &TestServer,
    path: &str,
    body: Value,
) -> tokio::task::JoinHandle<common::Reply> {
    let base = s.base.clone();
    let path = path.to_owned();
    actix_web::rt::spawn(async move {
        let client = awc::Client::default();
        let mut response = client
            .post(format!("{base}{path}"))
            .send_json(&body)
            .await
            .expect("sent");
        let bytes = response.body().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON")
        };
        common::Reply {
            status: response.status().as_u16(),
            body,
            location: None,
            next_cursor: None,
            headers: Vec::new(),
        }
    })
}

#[actix_web::test]
async fn handshake_refuses_what_does_not_belong() {
    let s = registered("CS1").await;
    let ws = s.app.ws_addr();
    let refused = |r: Result<client::Station, _>| refused_status(r.err().expect("refused"));
    assert_eq!(
        refused(connect_as(ws, "NOPE", Some(("NOPE", "secret")), "ocpp2.0.1").await),
        401
    );
    assert_eq!(
        refused(connect_as(ws, "CS1", Some(("CS1", "wrong")), "ocpp2.0.1").await),
        401
    );
    assert_eq!(
        refused(connect_as(ws, "CS1", Some(("CS2", "secret")), "ocpp2.0.1").await),
        401
    );
    assert_eq!(refused(connect_as(ws, "CS1", None, "ocpp2.0.1").await), 401);
    // A profile 1 station needs TLS: refused on the plain listener.
    let tls_only =
        json!({"securityProfile": 1, "base64SHA256Password": common::password_hash("secret")});
    assert_eq!(s.post("/api/v0/cs/CS2", &tls_only).await.status, 201);
    assert_eq!(
        refused(connect_as(ws, "CS2", Some(("CS2", "secret")), "ocpp1.6").await),
        401
    );
    // Tolerated usernames.
    let lenient = json!({"securityProfile": 0, "base64SHA256Password": common::password_hash("secret"), "invalidUsernameAllowed": true});
    assert_eq!(s.post("/api/v0/cs/CS3", &lenient).await.status, 201);
    assert!(
        connect_as(ws, "CS3", Some(("whoever", "secret")), "ocpp1.6")
            .await
            .is_ok()
    );
    // Every refusal is counted by reason, on /metrics.
    let metrics = metrics::scrape(&s).await;
    for reason in [
        "unknown_station",
        "wrong_password",
        "wrong_username",
        "no_credentials",
        "tls_required",
    ] {
        let line = format!("voltgate_auth_failures_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "{reason} missing in\n{metrics}");
    }
}

#[actix_web::test]
async fn subprotocol_is_the_first_supported_offer() {
    let s = registered("CS1").await;
    let ws = s.app.ws_addr();
    assert_eq!(
        connect(ws, "CS1", "ocpp1.6, ocpp2.0.1")
            .await
            .protocol
            .as_deref(),
        Some("ocpp1.6")
    );
    assert_eq!(
        connect(ws, "CS1", "ocpp2.1, ocpp2.0.1")
            .await
            .protocol
            .as_deref(),
        Some("ocpp2.0.1")
    );
    // Nothing we speak: the handshake completes without a protocol, then the
    // server closes (a strict client library refuses such an answer, so the
    // handshake is written by hand here).
    let (head, frame) = raw_handshake(ws, "CS1", "ocpp1.5").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
    assert_eq!(frame[0], 0x88, "a close frame follows at once");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1002);
}

/// A WebSocket handshake by hand: returns the response head and the first
/// frame's bytes.
async fn raw_handshake(addr: std::net::SocketAddr, id: &str, protocols: &str) -> (String, Vec<u8>) {
    let (head, mut conn) = raw_handshake_open(addr, id, protocols).await;
    let frame = conn.read_at_least(4).await;
    (head, frame)
}

/// A raw connection after a handshake written by hand.
struct RawConnection {
    tcp: tokio::net::TcpStream,
    pending: Vec<u8>,
}

impl RawConnection {
    /// Reads until at least `n` bytes are buffered (bounded wait); returns them all.
    async fn read_at_least(&mut self, n: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        while self.pending.len() < n {
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.tcp.read(&mut buf))
                    .await
                    .expect("bytes in time")
                    .expect("read");
            assert!(
                read > 0,
                "connection closed with {} bytes buffered",
                self.pending.len()
            );
            self.pending.extend_from_slice(&buf[..read]);
        }
        std::mem::take(&mut self.pending)
    }
}

/// Reads server frames (unmasked, short) until a close frame; returns its code.
async fn read_close_code(conn: &mut RawConnection) -> u16 {
    let mut bytes = Vec::new();
    loop {
        if bytes.len() < 2 {
            bytes.extend(conn.read_at_least(2 - bytes.len()).await);
            continue;
        }
        let len = usize::from(bytes[1] & 0x7f);
        assert!(len < 126, "short control frames only");
        if bytes.len() < 2 + len {
            let more = conn.read_at_least(2 + len - bytes.len()).await;
            bytes.extend(more);
            continue;
        }
        if bytes[0] == 0x88 {
            return u16::from_be_bytes([bytes[2], bytes[3]]);
        }
        bytes.drain(..2 + len); // a ping: deliberately left unanswered
    }
}

async fn raw_handshake_open(
    addr: std::net::SocketAddr,
    id: &str,
    protocols: &str,
) -> (String, RawConnection) {
    use base64::Engine;
    use tokio::io::AsyncWriteExt;
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{id}:secret"));
    let request = format!(
        "GET /ws/{id} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {protocols}\r\nAuthorization: Basic {auth}\r\n\r\n"
    );
    let mut conn = RawConnection {
        tcp,
        pending: Vec::new(),
    };
    conn.tcp.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    loop {
        received.extend(conn.read_at_least(1).await);
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            conn.pending = received[end + 4..].to_vec();
            return (head, conn);
        }
    }
}

#[actix_web::test]
async fn a_v201_station_runs_a_full_session() {
    let s = registered("CS201").await;
    assert_eq!(
        s.post("/api/v0/token", &token_body("RFID1")).await.status,
        201
    );
    let mut cs = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    let boot = cs.boot_201().await;
    assert_eq!(
        (boot["status"].as_str(), boot["interval"].as_u64()),
        (Some("Accepted"), Some(300))
    );
    assert!(cs.ok("Heartbeat", json!({})).await["currentTime"].is_string());
    cs.ok("StatusNotification", json!({"timestamp": "2026-11-21T10:00:00Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1})).await;
    let auth = cs
        .ok(
            "Authorize",
            json!({"idToken": {"idToken": "RFID1", "type": "ISO14443"}}),
        )
        .await;
    assert_eq!(auth["idTokenInfo"]["status"], "Accepted");
    let unknown = cs
        .ok(
            "Authorize",
            json!({"idToken": {"idToken": "STRANGER", "type": "ISO14443"}}),
        )
        .await;
    assert_eq!(unknown["idTokenInfo"]["status"], "Unknown");

    let event = |kind: &str, seq: u64, wh: f64| {
        json!({
            "eventType": kind, "timestamp": "2026-11-21T10:00:00Z", "triggerReason": "MeterValuePeriodic", "seqNo": seq,
            "transactionInfo": {"transactionId": "TX-1"}, "evse": {"id": 1, "connectorId": 1},
            "meterValue": [{"timestamp": "2026-11-21T10:00:00Z", "sampledValue": [{"value": wh}]}]
        })
    };
    let mut started = event("Started", 0, 0.0);
    started["idToken"] = json!({"idToken": "RFID1", "type": "ISO14443"});
    assert_eq!(
        cs.ok("TransactionEvent", started).await["idTokenInfo"]["status"],
        "Accepted"
    );
    cs.ok("TransactionEvent", event("Updated", 1, 500.0)).await;
    cs.ok("TransactionEvent", event("Updated", 1, 500.0)).await; // retry: answered, stored once
    cs.ok("TransactionEvent", event("Ended", 2, 900.0)).await;

    let tx = s
        .app
        .store()
        .transaction("CS201", "TX-1")
        .await
        .unwrap()
        .expect("transaction stored");
    assert_eq!((tx.event_count, tx.meter_value_count), (3, 3));
    assert!(tx.ended_at.is_some());
    let view = s.get("/api/v0/cs/CS201").await.body;
    assert_eq!(view["connected"], true);
    assert_eq!(view["provisioning"], "Provisioned");
    assert_eq!(view["runtime"]["ocppVersion"], "2.0.1");
    assert_eq!(view["runtime"]["boot"]["vendor"], "Acme");
    assert_eq!(view["runtime"]["connectors"]["1/1"]["status"], "Occupied");
}

#[actix_web::test]
async fn a_v16_station_runs_a_full_session() {
    let s = registered("CS16").await;
    assert_eq!(
        s.post("/api/v0/token", &token_body("TAG1")).await.status,
        201
    );
    let mut cs = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    assert_eq!(cs.boot_16().await["status"], "Accepted");
    cs.ok(
        "StatusNotification",
        json!({"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}),
    )
    .await;
    assert_eq!(
        cs.ok("Authorize", json!({"idTag": "TAG1"})).await["idTagInfo"]["status"],
        "Accepted"
    );
    let start = cs.ok("StartTransaction", json!({"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": "2026-11-21T10:00:00Z"})).await;
    let tx = start["transactionId"].as_i64().expect("transaction id");
    let meter = json!([{"timestamp": "2026-11-21T10:15:00Z", "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]);
    cs.ok(
        "MeterValues",
        json!({"connectorId": 1, "transactionId": tx, "meterValue": meter}),
    )
    .await;
    cs.ok("StopTransaction", json!({"transactionId": tx, "idTag": "TAG1", "meterStop": 2000, "timestamp": "2026-11-21T10:30:00Z", "reason": "Local"})).await;
    let stored = s
        .app
        .store()
        .transaction("CS16", &tx.to_string())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.stop_reason.as_deref(), Some("Local"));
    assert_eq!(stored.meter_value_count, 3);
    let view = s.get("/api/v0/cs/CS16").await.body;
    assert_eq!(view["runtime"]["connectors"]["1"]["status"], "Preparing");
}

#[actix_web::test]
async fn commands_reach_a_connected_station_at_once() {
    let s = registered("CS1").await;
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    cs.boot_201().await;

    assert_eq!(
        s.post(
            "/api/v0/cs/CS1/trigger",
            &json!({"trigger": "StatusNotification"})
        )
        .await
        .status,
        200
    );
    let (id, payload) = cs.expect_call("TriggerMessage").await;
    assert_eq!(payload, json!({"requestedMessage": "StatusNotification"}));
    cs.reply(&id, json!({"status": "Accepted"})).await;

    let reconfigure =
        json!({"OCPPCommCtrlr/HeartbeatInterval": "60", "EVSE;1/Power;MaxSet": "7000"});
    assert_eq!(
        s.post("/api/v0/cs/CS1/reconfigure", &reconfigure)
            .await
            .status,
        200
    );
    // One SetVariables per setting, in key order.
    let (id, payload) = cs.expect_call("SetVariables").await;
    assert_eq!(payload["setVariableData"][0]["component"]["name"], "EVSE");
    cs.reply(&id, json!({"setVariableResult": [
        {"attributeStatus": "Rejected", "attributeType": "MaxSet", "component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}},
    ]})).await;
    let (id, payload) = cs.expect_call("SetVariables").await;
    assert_eq!(payload["setVariableData"].as_array().map(Vec::len), Some(1));
    cs.reply(&id, json!({"setVariableResult": [
        {"attributeStatus": "Accepted", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
    ]})).await;

    let profile = common::charging_profile_body(4);
    assert_eq!(
        s.post("/api/v0/cs/CS1/setchargingprofile?evseId=1", &profile)
            .await
            .status,
        200
    );
    let (id, payload) = cs.expect_call("SetChargingProfile").await;
    assert_eq!(
        (
            payload["evseId"].as_u64(),
            payload["chargingProfile"]["id"].as_u64()
        ),
        (Some(1), Some(4))
    );
    cs.reply(&id, json!({"status": "Accepted"})).await;

    // The station answered; a heartbeat round trip orders us after the recording.
    cs.ok("Heartbeat", json!({})).await;
    let items = answered_items(&s, "CS1").await;
    assert_eq!(
        item_status(&items, "trigger", "StatusNotification"),
        "Accepted"
    );
    assert_eq!(item_status(&items, "setchargingprofile", "4"), "Accepted");
    assert_eq!(
        item_status(&items, "reconfigure", "OCPPCommCtrlr/HeartbeatInterval"),
        "Accepted"
    );
    assert_eq!(
        item_status(&items, "reconfigure", "EVSE;1/Power;MaxSet"),
        "Rejected"
    );
}

/// The station's commands once none is pending any more (bounded poll).
async fn answered_items(s: &TestServer, id: &str) -> Vec<Value> {
    for _ in 0..200 {
        let view = s.get(&format!("/api/v0/cs/{id}")).await.body;
        if view["pendingCommands"]
            .as_array()
            .is_some_and(Vec::is_empty)
        {
            let list = s.get(&format!("/api/v0/cs/{id}/commands")).await.body;
            return list.as_array().cloned().unwrap_or_default();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{id} kept pending commands");
}

/// The MaEVe delivery status of the item of `operation` named `name` (the
/// setting key, certificate id, profile id or trigger message).
fn item_status(commands: &[Value], operation: &str, name: &str) -> String {
    let payload_name = |p: &Value| -> String {
        ["key", "certificateId", "trigger"]
            .iter()
            .find_map(|field| p[*field].as_str().map(str::to_owned))
            .or_else(|| p["profileId"].as_i64().map(|n| n.to_string()))
            .unwrap_or_default()
    };
    let command = commands
        .iter()
        .find(|c| c["operation"] == operation && payload_name(&c["payload"]) == name)
        .unwrap_or_else(|| panic!("no {operation} {name} in {commands:?}"));
    command["delivery"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[actix_web::test]
async fn a_station_that_connects_later_is_configured_then_accepted() {
    let s = registered("CS1").await;
    assert_eq!(
        s.post(
            "/api/v0/cs/CS1/reconfigure",
            &json!({"HeartbeatInterval": "60"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.post(
            "/api/v0/cs/CS1/trigger",
            &json!({"trigger": "StatusNotification"})
        )
        .await
        .status,
        200
    );

    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp1.6").await;
    let boot = cs.boot_16().await;
    assert_eq!(
        (boot["status"].as_str(), boot["interval"].as_u64()),
        (Some("Pending"), Some(15)),
        "settings first"
    );
    let (id, payload) = cs.expect_call("ChangeConfiguration").await;
    assert_eq!(payload, json!({"key": "HeartbeatInterval", "value": "60"}));
    cs.reply(&id, json!({"status": "Accepted"})).await;
    // Configured: asked to boot again, and accepted this time.
    let (id, payload) = cs.expect_call("TriggerMessage").await;
    assert_eq!(payload, json!({"requestedMessage": "BootNotification"}));
    cs.reply(&id, json!({"status": "Accepted"})).await;
    assert_eq!(cs.boot_16().await["status"], "Accepted");
    // Now the rest of the queued work follows.
    let (id, payload) = cs.expect_call("TriggerMessage").await;
    assert_eq!(payload, json!({"requestedMessage": "StatusNotification"}));
    cs.reply(&id, json!({"status": "Accepted"})).await;
    cs.ok("Heartbeat", json!({})).await;
    let items = answered_items(&s, "CS1").await;
    assert_eq!(
        item_status(&items, "trigger", "StatusNotification"),
        "Accepted"
    );
    assert_eq!(
        s.get("/api/v0/cs/CS1").await.body["provisioning"],
        "Provisioned"
    );
}

#[actix_web::test]
async fn reboot_required_settings_lead_to_a_reset() {
    let s = registered("CS1").await;
    assert_eq!(
        s.post(
            "/api/v0/cs/CS1/reconfigure",
            &json!({"SecurityProfile": "1"})
        )
        .await
        .status,
        200
    );
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp1.6").await;
    assert_eq!(cs.boot_16().await["status"], "Pending");
    let (id, _) = cs.expect_call("ChangeConfiguration").await;
    cs.reply(&id, json!({"status": "RebootRequired"})).await;
    let (id, payload) = cs.expect_call("Reset").await;
    assert_eq!(payload, json!({"type": "Soft"}));
    cs.reply(&id, json!({"status": "Accepted"})).await;
    assert_eq!(
        cs.boot_16().await["status"],
        "Accepted",
        "RebootRequired counts as applied"
    );
}

#[actix_web::test]
async fn wait_true_returns_the_station_answer() {
    let s = registered("CS1").await;
    // Offline: answered at once, nothing delivered yet.
    let offline = s
        .post(
            "/api/v0/cs/CS1/trigger?wait=true",
            &json!({"trigger": "BootNotification"}),
        )
        .await;
    assert_eq!(offline.status, 202);
    assert_eq!(offline.body["delivered"], false);
    assert_eq!(offline.body["results"][0]["status"], "Pending");

    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    cs.boot_201().await;
    // The offline trigger is delivered after the boot.
    let (id, _) = cs.expect_call("TriggerMessage").await;
    cs.reply(&id, json!({"status": "Accepted"})).await;

    let waiting = spawn_post(
        &s,
        "/api/v0/cs/CS1/trigger?wait=true",
        json!({"trigger": "StatusNotification"}),
    );
    let (id, _) = cs.expect_call("TriggerMessage").await;
    cs.reply(&id, json!({"status": "Rejected"})).await;
    let reply = waiting.await.expect("request task");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["delivered"], true);
    // A trigger is named by its command.
    let result = &reply.body["results"][0];
    let command_id = result["commandId"].as_str().expect("command id");
    assert_eq!(
        reply.body["results"],
        json!([{"item": "trigger", "id": command_id, "commandId": command_id, "status": "Rejected", "updatedAt": result["updatedAt"], "detail": "Rejected"}])
    );
    let command = s
        .get(&format!("/api/v0/cs/CS1/commands/{command_id}"))
        .await
        .body;
    assert_eq!(
        (
            command["status"].as_str(),
            command["action"].as_str(),
            command["version"].as_str()
        ),
        (Some("Rejected"), Some("TriggerMessage"), Some("2.0.1"))
    );
}

#[actix_web::test]
async fn a_second_connection_replaces_the_first() {
    let s = registered("CS1").await;
    let mut first = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    first.boot_201().await;
    let mut second = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    assert_eq!(
        first.closed().await,
        Some(1008),
        "the old socket is closed (policy)"
    );
    second.boot_201().await;
    assert!(second.ok("Heartbeat", json!({})).await["currentTime"].is_string());
    // Commands go to the new connection.
    assert_eq!(
        s.post(
            "/api/v0/cs/CS1/trigger",
            &json!({"trigger": "StatusNotification"})
        )
        .await
        .status,
        200
    );
    second.expect_call("TriggerMessage").await;
}

#[actix_web::test]
async fn bad_frames_are_answered_and_the_session_goes_on() {
    let s = start_with(|c| c.ocpp_max_message_bytes = 1024).await;
    s.register("CS1").await;
    for (protocol, format) in [
        ("ocpp2.0.1", "FormatViolation"),
        ("ocpp1.6", "FormationViolation"),
    ] {
        let mut cs = connect(s.app.ws_addr(), "CS1", protocol).await;
        if protocol == "ocpp1.6" {
            cs.boot_16().await;
        } else {
            cs.boot_201().await;
        }
        let big = format!(r#"[2,"big","Heartbeat",{{"pad":"{}"}}]"#, "x".repeat(2000));
        let occurrence = if protocol == "ocpp1.6" {
            "OccurenceConstraintViolation"
        } else {
            "OccurrenceConstraintViolation"
        };
        let unknown_type = if protocol == "ocpp1.6" {
            "FormationViolation"
        } else {
            "MessageTypeNotSupported"
        };
        let cases: [(&str, Value); 7] = [
            ("this is not json", json!([4, "-1", format])),
            (r#"{"not":"an array"}"#, json!([4, "-1", format])),
            (r#"[2,"m1","Heartbeat"]"#, json!([4, "m1", format])),
            (r#"[9,"m2",{}]"#, json!([4, "m2", unknown_type])),
            (
                r#"[2,"m3","FlyToTheMoon",{}]"#,
                json!([4, "m3", "NotImplemented"]),
            ),
            (
                r#"[2,"m4","BootNotification",{}]"#,
                json!([4, "m4", occurrence]),
            ),
            (&big, json!([4, "big", format])),
        ];
        for (text, expected) in cases {
            cs.send_text(text).await;
            let answer = cs.recv().await;
            assert_eq!(
                &answer.as_array().unwrap()[..3],
                expected.as_array().unwrap().as_slice(),
                "{protocol} {}",
                &text[..text.len().min(40)]
            );
            assert!(
                cs.ok("Heartbeat", json!({})).await["currentTime"].is_string(),
                "session goes on after {text:.40}"
            );
        }
        // An answer to nothing is dropped silently (OCPP-J); the session goes on.
        cs.send_text(r#"[3,"nobody-asked",{}]"#).await;
        assert!(cs.ok("Heartbeat", json!({})).await["currentTime"].is_string());
    }
}

#[actix_web::test]
async fn binary_and_oversized_frames_close_the_connection() {
    let s = start_with(|c| c.ws_max_frame_bytes = 4096).await;
    s.register("CS1").await;
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    cs.send(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(cs.closed().await, Some(1003));
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    cs.send_text(&"x".repeat(8192)).await;
    assert_eq!(cs.closed().await, Some(1009));
}

#[actix_web::test]
async fn fleet_list_filters_by_connection() {
    let s = start().await;
    for id in ["A", "B", "C"] {
        s.register(id).await;
    }
    let mut b = connect(s.app.ws_addr(), "B", "ocpp2.0.1").await;
    b.boot_201().await;
    let ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(s.get("/api/v0/cs").await.body), ["A", "B", "C"]);
    assert_eq!(ids(s.get("/api/v0/cs?connected=true").await.body), ["B"]);
    assert_eq!(
        ids(s.get("/api/v0/cs?connected=false").await.body),
        ["A", "C"]
    );
    assert_eq!(
        ids(s
            .get("/api/v0/cs?connected=false&offset=1&limit=1")
            .await
            .body),
        ["C"]
    );
    assert_eq!(
        s.get("/api/v0/cs?connected=true").await.body[0]["connected"],
        true
    );
}

#[actix_web::test]
async fn nothing_but_boot_notification_before_the_first_boot() {
    let s = registered("CS1").await;
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    let refused = cs.call("Heartbeat", json!({})).await;
    assert_eq!(
        (refused[0].as_u64(), refused[2].as_str()),
        (Some(4), Some("SecurityError"))
    );
    assert_eq!(cs.boot_201().await["status"], "Accepted");
    assert!(cs.ok("Heartbeat", json!({})).await["currentTime"].is_string());
}

#[actix_web::test]
async fn an_accepted_station_reconnects_without_booting_and_gets_its_work() {
    let s = registered("CS1").await;
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp1.6").await;
    assert_eq!(cs.boot_16().await["status"], "Accepted");
    drop(cs);
    // Queued while the station is away (network drop, no reboot).
    assert_eq!(
        s.post(
            "/api/v0/cs/CS1/trigger",
            &json!({"trigger": "StatusNotification"})
        )
        .await
        .status,
        200
    );
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp1.6").await;
    assert!(
        cs.ok("Heartbeat", json!({})).await["currentTime"].is_string(),
        "no BootNotification needed"
    );
    let (id, payload) = cs.expect_call("TriggerMessage").await;
    assert_eq!(payload, json!({"requestedMessage": "StatusNotification"}));
    cs.reply(&id, json!({"status": "Accepted"})).await;
}

#[actix_web::test]
async fn a_silent_connection_is_closed() {
    let s = start_with(|c| c.idle_timeout_secs = Some(1)).await;
    s.register("CS1").await;
    // Written by hand so that nothing answers the server's pings.
    let (head, mut bytes) = raw_handshake_open(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let code = read_close_code(&mut bytes).await;
    assert_eq!(code, 1001, "closed as going away after no traffic");
}

#[actix_web::test]
async fn certificates_and_profiles_reach_both_versions() {
    let s = registered("CS201").await;
    s.register("CS16").await;
    let (pem, hash) = common::test_certificate();
    let certs = json!({"certificates": [{"type": "V2G", "certificate": pem}]});

    // Connected 2.0.1 station: InstallCertificate at once.
    let mut cs = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs.boot_201().await;
    assert_eq!(
        s.post("/api/v0/cs/CS201/certificates", &certs).await.status,
        200
    );
    let (id, payload) = cs.expect_call("InstallCertificate").await;
    assert_eq!(
        (
            payload["certificateType"].as_str(),
            payload["certificate"].as_str()
        ),
        (Some("V2GRootCertificate"), Some(pem.as_str()))
    );
    cs.reply(&id, json!({"status": "Accepted"})).await;

    // A 1.6 station that connects later: the V2G root goes through the PnC
    // DataTransfer while it is Pending; the profile follows once accepted.
    assert_eq!(
        s.post("/api/v0/cs/CS16/certificates", &certs).await.status,
        200
    );
    assert_eq!(
        s.post(
            "/api/v0/cs/CS16/setchargingprofile?evseId=1",
            &common::charging_profile_body(7)
        )
        .await
        .status,
        200
    );
    let mut old = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    assert_eq!(
        old.boot_16().await["status"],
        "Pending",
        "a certificate is configuration"
    );
    let (id, payload) = old.expect_call("DataTransfer").await;
    assert_eq!(
        (payload["vendorId"].as_str(), payload["messageId"].as_str()),
        (
            Some("org.openchargealliance.iso15118pnc"),
            Some("InstallCertificate")
        )
    );
    let inner: Value = serde_json::from_str(payload["data"].as_str().unwrap()).unwrap();
    assert_eq!(inner["certificateType"], "V2GRootCertificate");
    old.reply(
        &id,
        json!({"status": "Accepted", "data": "{\"status\":\"Accepted\"}"}),
    )
    .await;
    let (id, _) = old.expect_call("TriggerMessage").await;
    old.reply(&id, json!({"status": "Accepted"})).await;
    assert_eq!(old.boot_16().await["status"], "Accepted");
    let (id, payload) = old.expect_call("SetChargingProfile").await;
    assert_eq!(payload["connectorId"], 1);
    assert_eq!(payload["csChargingProfiles"]["chargingProfileId"], 7);
    assert_eq!(
        payload["csChargingProfiles"]["chargingSchedule"]["chargingRateUnit"],
        "W"
    );
    old.reply(&id, json!({"status": "Accepted"})).await;
    old.ok("Heartbeat", json!({})).await;

    let items = answered_items(&s, "CS16").await;
    assert_eq!(item_status(&items, "setchargingprofile", "7"), "Accepted");
    assert_eq!(item_status(&items, "certificates", &hash), "Accepted");
    let items = answered_items(&s, "CS201").await;
    assert_eq!(item_status(&items, "certificates", &hash), "Accepted");
}

#[actix_web::test]
async fn an_accepted_station_gets_its_work_at_once_after_reconnecting() {
    let s = registered("CS1").await;
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    assert_eq!(cs.boot_201().await["status"], "Accepted");
    drop(cs);
    assert_eq!(
        s.post(
            "/api/v0/cs/CS1/reconfigure",
            &json!({"OCPPCommCtrlr/HeartbeatInterval": "60"})
        )
        .await
        .status,
        200
    );
    // Back after a network drop, and silent: the work does not wait for it to speak.
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    let (id, payload) = cs.expect_call("SetVariables").await;
    assert_eq!(payload["setVariableData"][0]["attributeValue"], "60");
    cs.reply(
        &id,
        json!({"setVariableResult": [{"attributeStatus": "Accepted",
        "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}),
    )
    .await;
    // A command sent while it is connected and silent goes at once too.
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS1/reset?wait=true",
        json!({"type": "OnIdle"}),
    );
    let (id, _) = cs.expect_call("Reset").await;
    cs.reply(&id, json!({"status": "Accepted"})).await;
    assert_eq!(waited.await.unwrap().body["status"], "Accepted");
}

#[actix_web::test]
async fn a_pending_station_may_send_only_what_it_was_asked_for() {
    let s = registered("CS1").await;
    let queued = s
        .post(
            "/api/v0/cs/CS1/reconfigure",
            &json!({"HeartbeatInterval": "60"}),
        )
        .await;
    assert_eq!(queued.status, 200);
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp1.6").await;
    assert_eq!(cs.boot_16().await["status"], "Pending");
    let refused = cs
        .call(
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
        )
        .await;
    assert_eq!(
        (refused[0].as_u64(), refused[2].as_str()),
        (Some(4), Some("SecurityError")),
        "{refused}"
    );
    let (id, _) = cs.expect_call("ChangeConfiguration").await;
    cs.reply(&id, json!({"status": "Accepted"})).await;
    let (id, _) = cs.expect_call("TriggerMessage").await;
    cs.reply(&id, json!({"status": "Accepted"})).await;
    assert_eq!(cs.boot_16().await["status"], "Accepted");
    assert_eq!(
        cs.ok(
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
        )
        .await,
        json!({})
    );
}

#[actix_web::test]
async fn a_trigger_can_name_the_evse_and_connector() {
    let s = start().await;
    for (id, protocol, wanted) in [
        (
            "CS201",
            "ocpp2.0.1",
            json!({"requestedMessage": "StatusNotification", "evse": {"id": 2, "connectorId": 1}}),
        ),
        (
            "CS16",
            "ocpp1.6",
            json!({"requestedMessage": "StatusNotification", "connectorId": 1}),
        ),
    ] {
        s.register(id).await;
        let mut cs = connect(s.app.ws_addr(), id, protocol).await;
        if protocol == "ocpp1.6" {
            cs.boot_16().await;
        } else {
            cs.boot_201().await;
        }
        let body = json!({"trigger": "StatusNotification", "evseId": 2, "connectorId": 1});
        let waited = spawn_post(&s, &format!("/api/v0/cs/{id}/trigger?wait=true"), body);
        let (call_id, payload) = cs.expect_call("TriggerMessage").await;
        assert_eq!(payload, wanted, "{protocol}");
        cs.reply(&call_id, json!({"status": "Accepted"})).await;
        let reply = waited.await.unwrap();
        assert_eq!(
            reply.body["results"][0]["status"], "Accepted",
            "{:?}",
            reply.body
        );
    }
}
