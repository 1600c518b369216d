//! Operations: raw and typed commands through the real server to real
//! WebSocket stations of both versions, their answers recorded and read
//! back, expiry, and refusals.

use serde_json::{json, Value};
use voltgate::ocpp::schema::{check, Direction};
use voltgate::ocpp::Version;
use voltgate::station::operations::catalog;

use crate::client::{connect, Station};
use crate::common::{start_with, Keyspace, TestServer};
use crate::minimal;
use crate::{registered, spawn_post};

fn subprotocol(version: Version) -> &'static str {
    version.subprotocol()
}

/// A registered station of `version`, connected and booted (so the server
/// knows its version).
async fn booted(s: &TestServer, id: &str, version: Version) -> Station {
    s.register(id).await;
    let mut cs = connect(s.app.ws_addr(), id, subprotocol(version)).await;
    let boot = match version {
        Version::V16 => cs.boot_16().await,
        Version::V201 => cs.boot_201().await,
    };
    assert_eq!(boot["status"], "Accepted");
    cs
}

/// Waits for the CALL of `action`, checks it against the official request
/// schema, answers `response`; returns the payload it carried.
async fn answer(cs: &mut Station, version: Version, action: &str, response: Value) -> Value {
    let (id, payload) = cs.expect_call(action).await;
    assert_eq!(
        check(version, action, Direction::Request, &payload),
        Ok(()),
        "{action} {payload}"
    );
    cs.reply(&id, response).await;
    payload
}

#[actix_web::test]
async fn every_csms_action_of_both_versions_goes_out_raw() {
    let s = crate::common::start().await;
    for version in [Version::V16, Version::V201] {
        let id = format!("RAW{}", version.label());
        let mut cs = booted(&s, &id, version).await;
        for action in catalog::actions(version) {
            let request = minimal::payload(version, action, Direction::Request);
            let response = minimal::payload(version, action, Direction::Response);
            let waited = spawn_post(
                &s,
                &format!("/api/v0/cs/{id}/ocpp/{action}?wait=true"),
                request.clone(),
            );
            let sent = answer(&mut cs, version, action, response.clone()).await;
            assert_eq!(sent, request, "{action} arrives as sent");
            let reply = waited.await.unwrap();
            assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
            let status = reply.body["status"].as_str().unwrap_or_default();
            assert!(
                status == "Accepted" || status == "Rejected",
                "{action} settled as {status}: {}",
                reply.body
            );
            assert_eq!(reply.body["response"], response, "{action}");
            assert_eq!(reply.body["action"], action);
            assert_eq!(reply.body["operation"], "ocpp");
        }
        let listed = s.get(&format!("/api/v0/cs/{id}/commands?limit=100")).await;
        assert_eq!(
            listed.body.as_array().map(Vec::len),
            Some(catalog::actions(version).count()),
            "every command is listed"
        );
    }
}

/// (REST path, body, 1.6 action, 2.0.1 action, what the station answers).
fn typed_cases() -> Vec<(&'static str, Value, &'static str, &'static str, Value)> {
    let accepted = json!({"status": "Accepted"});
    vec![
        (
            "reset",
            json!({"type": "Hard"}),
            "Reset",
            "Reset",
            accepted.clone(),
        ),
        (
            "remote-start",
            json!({"idToken": "TAG1", "evseId": 1}),
            "RemoteStartTransaction",
            "RequestStartTransaction",
            accepted.clone(),
        ),
        (
            "remote-stop",
            json!({"transactionId": "17"}),
            "RemoteStopTransaction",
            "RequestStopTransaction",
            accepted.clone(),
        ),
        (
            "unlock",
            json!({"evseId": 1, "connectorId": 1}),
            "UnlockConnector",
            "UnlockConnector",
            json!({"status": "Unlocked"}),
        ),
        (
            "availability",
            json!({"operative": false, "evseId": 1}),
            "ChangeAvailability",
            "ChangeAvailability",
            json!({"status": "Scheduled"}),
        ),
        (
            "clear-cache",
            Value::Null,
            "ClearCache",
            "ClearCache",
            accepted.clone(),
        ),
        (
            "firmware",
            json!({"location": "https://fw.example/v2.bin", "retrieveDate": "2026-12-02T00:00:00Z"}),
            "UpdateFirmware",
            "UpdateFirmware",
            json!({}),
        ),
        (
            "logs",
            json!({"remoteLocation": "https://logs.example/up"}),
            "GetDiagnostics",
            "GetLog",
            json!({}),
        ),
        (
            "reservations",
            json!({"idToken": "TAG1", "expiryDate": "2026-12-02T00:00:00Z", "evseId": 1}),
            "ReserveNow",
            "ReserveNow",
            accepted.clone(),
        ),
        (
            "charging-profiles/clear",
            json!({"evseId": 1}),
            "ClearChargingProfile",
            "ClearChargingProfile",
            accepted.clone(),
        ),
        (
            "composite-schedule",
            json!({"evseId": 1, "duration": 600}),
            "GetCompositeSchedule",
            "GetCompositeSchedule",
            accepted.clone(),
        ),
        (
            "installed-certificates/read",
            json!({"types": ["CSMSRootCertificate"]}),
            "GetInstalledCertificateIds",
            "GetInstalledCertificateIds",
            accepted.clone(),
        ),
    ]
}

/// A minimal valid answer for the version when the case's answer does not fit it.
fn fitting(version: Version, action: &str, wanted: Value) -> Value {
    if check(version, action, Direction::Response, &wanted).is_ok() {
        wanted
    } else {
        minimal::payload(version, action, Direction::Response)
    }
}

#[actix_web::test]
async fn typed_operations_reach_a_16_and_a_201_station() {
    let s = crate::common::start().await;
    for version in [Version::V16, Version::V201] {
        let id = format!("TYPED{}", version.label());
        let mut cs = booted(&s, &id, version).await;
        for (path, body, v16, v201, response) in typed_cases() {
            let action = if version == Version::V16 { v16 } else { v201 };
            let response = fitting(version, action, response);
            let url = format!("/api/v0/cs/{id}/{path}?wait=true");
            let waited = if body.is_null() {
                let s2 = s.base.clone();
                actix_web::rt::spawn(async move {
                    let mut r = awc::Client::default()
                        .post(format!("{s2}{url}"))
                        .send()
                        .await
                        .expect("sent");
                    let bytes = r.body().await.expect("body");
                    crate::common::Reply {
                        status: r.status().as_u16(),
                        body: serde_json::from_slice(&bytes).expect("JSON"),
                        location: None,
                        next_cursor: None,
                        headers: Vec::new(),
                    }
                })
            } else {
                spawn_post(&s, &url, body.clone())
            };
            answer(&mut cs, version, action, response.clone()).await;
            let reply = waited.await.unwrap();
            assert_eq!(reply.status, 200, "{path} {version:?}: {:?}", reply.body);
            assert_eq!(reply.body["action"], action);
            assert_eq!(reply.body["response"], response);
            assert_ne!(reply.body["status"], "Failed", "{path}: {}", reply.body);
        }
        // Read configuration: GetConfiguration on 1.6; GetVariables (named) and GetBaseReport (all) on 2.0.1.
        let (path, body, action) = match version {
            Version::V16 => (
                "configuration/read",
                json!({"keys": ["HeartbeatInterval"]}),
                "GetConfiguration",
            ),
            Version::V201 => (
                "configuration/read",
                json!({"keys": ["OCPPCommCtrlr/HeartbeatInterval"]}),
                "GetVariables",
            ),
        };
        let waited = spawn_post(&s, &format!("/api/v0/cs/{id}/{path}?wait=true"), body);
        let response = minimal::payload(version, action, Direction::Response);
        let sent = answer(&mut cs, version, action, response).await;
        assert!(sent.to_string().contains("HeartbeatInterval"), "{sent}");
        assert_eq!(waited.await.unwrap().body["status"], "Accepted");
        if version == Version::V201 {
            let waited = spawn_post(
                &s,
                &format!("/api/v0/cs/{id}/configuration/read?wait=true"),
                json!({}),
            );
            let sent = answer(
                &mut cs,
                version,
                "GetBaseReport",
                json!({"status": "Accepted"}),
            )
            .await;
            assert_eq!(sent["reportBase"], "FullInventory");
            assert_eq!(waited.await.unwrap().body["status"], "Accepted");
        }
        // Cancel a reservation, without waiting: 202 with the command id.
        let accepted = s.delete(&format!("/api/v0/cs/{id}/reservations/77")).await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
        let command_id = accepted.body["commandId"].as_str().unwrap().to_owned();
        let sent = answer(
            &mut cs,
            version,
            "CancelReservation",
            json!({"status": "Rejected"}),
        )
        .await;
        assert_eq!(sent, json!({"reservationId": 77}));
        cs.ok("Heartbeat", json!({})).await;
        let command = wait_for(&s, &id, &command_id, "Rejected").await;
        assert_eq!(command["response"], json!({"status": "Rejected"}));
    }
}

/// Polls the command until its status is `expected` (bounded).
async fn wait_for(s: &TestServer, id: &str, command_id: &str, expected: &str) -> Value {
    for _ in 0..250 {
        let reply = s
            .get(&format!("/api/v0/cs/{id}/commands/{command_id}"))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        if reply.body["status"] == expected {
            return reply.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("command {command_id} never became {expected}");
}

#[actix_web::test]
async fn answers_and_errors_are_kept_and_listed_newest_first() {
    let s = crate::common::start().await;
    let mut cs = booted(&s, "CS1", Version::V201).await;
    let mut ids = Vec::new();
    for kind in ["Immediate", "OnIdle"] {
        let accepted = s
            .post("/api/v0/cs/CS1/ocpp/Reset", &json!({"type": kind}))
            .await;
        assert_eq!(accepted.status, 202);
        ids.push(accepted.body["commandId"].as_str().unwrap().to_owned());
    }
    let (first, _) = cs.expect_call("Reset").await;
    cs.send_text(&json!([4, first, "NotSupported", "no resets here", {"why": "test"}]).to_string())
        .await;
    answer(
        &mut cs,
        Version::V201,
        "Reset",
        json!({"status": "Rejected"}),
    )
    .await;
    cs.ok("Heartbeat", json!({})).await;
    let failed = wait_for(&s, "CS1", &ids[0], "Failed").await;
    assert_eq!(failed["error"]["code"], "NotSupported");
    assert_eq!(failed["error"]["description"], "no resets here");
    wait_for(&s, "CS1", &ids[1], "Rejected").await;

    let listed = s.get("/api/v0/cs/CS1/commands").await.body;
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["commandId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[1].as_str(), ids[0].as_str()]);
    let failed_only = s.get("/api/v0/cs/CS1/commands?status=Failed").await.body;
    assert_eq!(failed_only.as_array().map(Vec::len), Some(1));
    let page = s.get("/api/v0/cs/CS1/commands?limit=1").await;
    let cursor = page.next_cursor.expect("a full page has a cursor");
    let rest = s
        .get(&format!("/api/v0/cs/CS1/commands?cursor={cursor}"))
        .await
        .body;
    assert_eq!(rest[0]["commandId"], ids[0]);
    s.get("/api/v0/cs/CS1/commands/0000000000000000000000000000")
        .await
        .assert_error(404, "command");
    s.get("/api/v0/cs/NOPE/commands")
        .await
        .assert_error(404, "charge station");
}

/// A station that answers a command and leaves in the same breath (a
/// Reset accepted, then the reboot): the answer is kept, and the command is
/// not sent again when the station is back.
#[actix_web::test]
async fn an_answer_sent_as_the_station_leaves_is_kept() {
    let s = crate::common::start().await;
    let mut cs = booted(&s, "CS1", Version::V16).await;
    let accepted = s
        .post("/api/v0/cs/CS1/ocpp/Reset", &json!({"type": "Soft"}))
        .await;
    assert_eq!(accepted.status, 202);
    let command = accepted.body["commandId"].as_str().unwrap().to_owned();
    let (id, _) = cs.expect_call("Reset").await;
    cs.reply_and_close(&id, json!({"status": "Accepted"})).await;
    wait_disconnected(&s, "CS1").await;
    wait_for(&s, "CS1", &command, "Accepted").await;

    let mut back = connect(s.app.ws_addr(), "CS1", subprotocol(Version::V16)).await;
    assert_eq!(back.boot_16().await["status"], "Accepted");
    back.ok("Heartbeat", json!({})).await;
    assert!(
        back.unexpected_calls().is_empty(),
        "nothing sent again: {:?}",
        back.unexpected_calls()
    );
}

/// A caller waiting for a command hears the station's answer even when the
/// station closes its connection in the same write (a Reset's reboot), on a
/// typed operation and on a MaEVe queueing endpoint alike.
#[actix_web::test]
async fn a_waiting_caller_hears_an_answer_sent_as_the_station_leaves() {
    let s = crate::common::start().await;
    let mut cs = booted(&s, "CS1", Version::V16).await;
    let reset = json!({"type": "Soft"});
    let reply = answered_as_it_leaves(&s, &mut cs, "/api/v0/cs/CS1/reset", reset, "Reset").await;
    assert_eq!(reply.body["status"], "Accepted", "{reply:?}");
    assert!(reply.body.get("wait").is_none(), "{reply:?}");
    wait_disconnected(&s, "CS1").await;

    let mut cs = booted(&s, "CS1", Version::V16).await;
    let trigger = json!({"trigger": "StatusNotification"});
    let path = "/api/v0/cs/CS1/trigger";
    let reply = answered_as_it_leaves(&s, &mut cs, path, trigger, "TriggerMessage").await;
    assert_eq!(reply.body["delivered"], true, "{reply:?}");
    assert_eq!(reply.body["results"][0]["status"], "Accepted", "{reply:?}");
}

/// Posts `body` to `path` with `?wait=true` while `cs` answers the CALL of
/// `action` Accepted and closes in the same write; the caller's reply,
/// which must be a 200.
async fn answered_as_it_leaves(
    s: &TestServer,
    cs: &mut Station,
    path: &str,
    body: Value,
    action: &str,
) -> crate::common::Reply {
    let waiting = spawn_post(s, &format!("{path}?wait=true"), body);
    let (id, _) = cs.expect_call(action).await;
    cs.reply_and_close(&id, json!({"status": "Accepted"})).await;
    let reply = waiting.await.expect("request task");
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
}

#[actix_web::test]
async fn bad_operations_are_refused_and_nothing_is_sent() {
    let s = registered("NEVER").await;
    s.post("/api/v0/cs/NOPE/reset", &json!({"type": "Hard"}))
        .await
        .assert_error(404, "charge station");
    s.post("/api/v0/cs/NEVER/reset", &json!({"type": "Hard"}))
        .await
        .assert_error(409, "never connected");
    let mut cs = booted(&s, "CS16", Version::V16).await;
    s.post("/api/v0/cs/CS16/ocpp/RequestStartTransaction", &json!({}))
        .await
        .assert_error(400, "accepted: CancelReservation, CertificateSigned");
    s.post("/api/v0/cs/CS16/ocpp/Reset", &json!({"type": "Later"}))
        .await
        .assert_error(400, "/type");
    s.post("/api/v0/cs/CS16/reset", &json!({}))
        .await
        .assert_error(400, "type");
    s.post("/api/v0/cs/CS16/reset", &json!({"type": "OnIdle"}))
        .await
        .assert_error(400, "OCPP 1.6 has no");
    s.post(
        "/api/v0/cs/CS16/remote-stop",
        &json!({"transactionId": "abc"}),
    )
    .await
    .assert_error(400, "integer");
    s.post("/api/v0/cs/CS16/reset?ttl=0", &json!({"type": "Hard"}))
        .await
        .assert_error(400, "ttl");
    // Nothing was sent for any of them: a round trip later, no CALL arrived.
    assert!(cs.ok("Heartbeat", json!({})).await["currentTime"].is_string());
    assert!(
        cs.unexpected_calls().is_empty(),
        "{:?}",
        cs.unexpected_calls()
    );
    assert!(s
        .get("/api/v0/cs/CS16/commands")
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());

    drop(cs);
    wait_disconnected(&s, "CS16").await;
    s.post("/api/v0/cs/CS16/reset", &json!({"type": "Hard"}))
        .await
        .assert_error(409, "not connected");
    // A configuration-like command waits for the station instead.
    let queued = s
        .post(
            "/api/v0/cs/CS16/ocpp/ChangeConfiguration",
            &json!({"key": "K", "value": "V"}),
        )
        .await;
    assert_eq!(queued.status, 202);
}

async fn wait_disconnected(s: &TestServer, id: &str) {
    for _ in 0..250 {
        if s.get(&format!("/api/v0/cs/{id}")).await.body["connected"] == false {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{id} stays connected");
}

#[actix_web::test]
async fn an_expired_command_is_never_sent() {
    let s = crate::common::start().await;
    let cs = booted(&s, "CS1", Version::V201).await;
    drop(cs);
    wait_disconnected(&s, "CS1").await;
    let queued = s
        .post("/api/v0/cs/CS1/reset?ttl=1", &json!({"type": "Immediate"}))
        .await;
    assert_eq!(
        queued.status, 202,
        "an explicit ttl queues it: {:?}",
        queued.body
    );
    let alive = s
        .post("/api/v0/cs/CS1/reset?ttl=600", &json!({"type": "OnIdle"}))
        .await;
    let command_id = queued.body["commandId"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        s.get(&format!("/api/v0/cs/CS1/commands/{command_id}"))
            .await
            .body["status"],
        "Expired"
    );
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    cs.boot_201().await;
    // Only the unexpired one arrives.
    let payload = answer(
        &mut cs,
        Version::V201,
        "Reset",
        json!({"status": "Accepted"}),
    )
    .await;
    assert_eq!(payload["type"], "OnIdle");
    wait_for(
        &s,
        "CS1",
        alive.body["commandId"].as_str().unwrap(),
        "Accepted",
    )
    .await;
    wait_for(&s, "CS1", &command_id, "Expired").await;
}

#[actix_web::test]
async fn a_station_that_never_answers_fails_the_command() {
    let s = start_with(|c| c.call_timeout_secs = 1).await;
    let mut cs = booted(&s, "CS1", Version::V16).await;
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS1/unlock?wait=true",
        json!({"connectorId": 1}),
    );
    let (_, payload) = cs.expect_call("UnlockConnector").await;
    assert_eq!(payload, json!({"connectorId": 1}));
    let reply = waited.await.unwrap();
    assert_eq!(reply.body["status"], "Failed", "{:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], "Timeout");
}

#[actix_web::test]
async fn queued_configuration_commands_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keyspace = Keyspace::for_dir(dir.path());
    let s = TestServer::on(dir, keyspace).await;
    drop(booted(&s, "CS1", Version::V201).await);
    wait_disconnected(&s, "CS1").await;
    let body = json!({"setVariableData": [{"attributeValue": "60", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]});
    let queued = s.post("/api/v0/cs/CS1/ocpp/SetVariables", &body).await;
    assert_eq!(queued.status, 202);
    let TestServer {
        app, dir, keyspace, ..
    } = s;
    app.stop().await;

    let s = TestServer::on(dir, keyspace).await;
    let mut cs = connect(s.app.ws_addr(), "CS1", "ocpp2.0.1").await;
    cs.boot_201().await;
    let sent = answer(&mut cs, Version::V201, "SetVariables", json!({"setVariableResult": [
        {"attributeStatus": "Accepted", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})).await;
    assert_eq!(sent, body);
    wait_for(
        &s,
        "CS1",
        queued.body["commandId"].as_str().unwrap(),
        "Accepted",
    )
    .await;
}

#[actix_web::test]
async fn firmware_and_log_progress_reach_the_command_that_asked() {
    let s = crate::common::start().await;
    // 2.0.1: by requestId.
    let mut cs = booted(&s, "CS201", Version::V201).await;
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS201/firmware?wait=true",
        json!({"location": "https://fw.example/v2.bin", "retrieveDate": "2026-12-02T00:00:00Z"}),
    );
    let sent = answer(
        &mut cs,
        Version::V201,
        "UpdateFirmware",
        json!({"status": "Accepted"}),
    )
    .await;
    let command_id = waited.await.unwrap().body["commandId"]
        .as_str()
        .unwrap()
        .to_owned();
    let request_id = sent["requestId"].clone();
    for status in ["Downloading", "Downloaded", "Installed"] {
        cs.ok(
            "FirmwareStatusNotification",
            json!({"status": status, "requestId": request_id}),
        )
        .await;
    }
    let command = s
        .get(&format!("/api/v0/cs/CS201/commands/{command_id}"))
        .await
        .body;
    let progress: Vec<&str> = command["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(progress, ["Downloading", "Downloaded", "Installed"]);

    // 1.6: the newest diagnostics upload the station accepted.
    let mut cs = booted(&s, "CS16", Version::V16).await;
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS16/logs?wait=true",
        json!({"remoteLocation": "https://logs.example/up"}),
    );
    answer(
        &mut cs,
        Version::V16,
        "GetDiagnostics",
        json!({"fileName": "diag.zip"}),
    )
    .await;
    let command_id = waited.await.unwrap().body["commandId"]
        .as_str()
        .unwrap()
        .to_owned();
    cs.ok(
        "DiagnosticsStatusNotification",
        json!({"status": "Uploading"}),
    )
    .await;
    cs.ok(
        "DiagnosticsStatusNotification",
        json!({"status": "Uploaded"}),
    )
    .await;
    let command = s
        .get(&format!("/api/v0/cs/CS16/commands/{command_id}"))
        .await
        .body;
    assert_eq!(command["progress"][1]["status"], "Uploaded", "{command}");
}

#[actix_web::test]
async fn a_remote_start_is_linked_to_the_transaction_it_caused() {
    let s = crate::common::start().await;
    let mut cs = booted(&s, "CS201", Version::V201).await;
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS201/remote-start?wait=true",
        json!({"idToken": "APP1", "evseId": 1}),
    );
    let sent = answer(
        &mut cs,
        Version::V201,
        "RequestStartTransaction",
        json!({"status": "Accepted"}),
    )
    .await;
    let command_id = waited.await.unwrap().body["commandId"]
        .as_str()
        .unwrap()
        .to_owned();
    cs.ok("TransactionEvent", json!({
        "eventType": "Started", "timestamp": "2026-12-01T10:00:00Z", "triggerReason": "RemoteStart", "seqNo": 0,
        "transactionInfo": {"transactionId": "TX-REMOTE", "remoteStartId": sent["remoteStartId"]},
        "evse": {"id": 1, "connectorId": 1}, "idToken": sent["idToken"]})).await;
    let command = s
        .get(&format!("/api/v0/cs/CS201/commands/{command_id}"))
        .await
        .body;
    assert_eq!(command["transactionId"], "TX-REMOTE", "{command}");

    let mut cs = booted(&s, "CS16", Version::V16).await;
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS16/remote-start?wait=true",
        json!({"idToken": "APP1", "connectorId": 2}),
    );
    answer(
        &mut cs,
        Version::V16,
        "RemoteStartTransaction",
        json!({"status": "Accepted"}),
    )
    .await;
    let command_id = waited.await.unwrap().body["commandId"]
        .as_str()
        .unwrap()
        .to_owned();
    // The station reconnects before it starts: that it accepted a remote
    // start is remembered with its runtime record.
    drop(cs);
    let mut cs = connect(s.app.ws_addr(), "CS16", subprotocol(Version::V16)).await;
    assert_eq!(cs.boot_16().await["status"], "Accepted");
    // A start on another connector is not the remote start's.
    let other = cs.ok("StartTransaction", json!({"connectorId": 1, "idTag": "APP1", "meterStart": 0, "timestamp": "2026-12-01T10:00:00Z"})).await;
    let started = cs.ok("StartTransaction", json!({"connectorId": 2, "idTag": "APP1", "meterStart": 0, "timestamp": "2026-12-01T10:00:01Z"})).await;
    assert_ne!(other["transactionId"], started["transactionId"]);
    let command = s
        .get(&format!("/api/v0/cs/CS16/commands/{command_id}"))
        .await
        .body;
    assert_eq!(
        command["transactionId"],
        started["transactionId"].to_string(),
        "{command}"
    );
}

/// The list's (token, status) entries, sorted.
fn list_entries(payload: &Value) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = payload["localAuthorizationList"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["idToken"]["idToken"].as_str().unwrap().to_owned(),
                e["idTokenInfo"]["status"].clone(),
            )
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[actix_web::test]
async fn local_lists_come_from_the_token_store_with_versions_and_differentials() {
    let s = crate::common::start().await;
    let token = |uid: &str, valid: bool| {
        let mut body = crate::common::token_body(uid);
        body["valid"] = json!(valid);
        body
    };
    for (uid, valid) in [("A", true), ("B", true), ("C", false)] {
        assert_eq!(
            s.post("/api/v0/token", &token(uid, valid)).await.status,
            201
        );
    }
    let mut cs = booted(&s, "CS1", Version::V201).await;
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS1/local-list?wait=true",
        json!({"update": "Full"}),
    );
    let sent = answer(
        &mut cs,
        Version::V201,
        "SendLocalList",
        json!({"status": "Accepted"}),
    )
    .await;
    assert_eq!(
        (sent["versionNumber"].as_i64(), sent["updateType"].as_str()),
        (Some(1), Some("Full"))
    );
    assert_eq!(
        list_entries(&sent),
        [
            ("A".into(), json!("Accepted")),
            ("B".into(), json!("Accepted")),
            ("C".into(), json!("Blocked"))
        ]
    );
    assert_eq!(
        sent["localAuthorizationList"][0]["idToken"]["type"],
        "ISO14443"
    );
    assert_eq!(waited.await.unwrap().body["status"], "Accepted");

    // The store changes: the differential is what changed since version 1.
    assert_eq!(s.delete("/api/v0/token/B").await.status, 204);
    assert_eq!(s.post("/api/v0/token", &token("C", true)).await.status, 201);
    assert_eq!(s.post("/api/v0/token", &token("D", true)).await.status, 201);
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS1/local-list?wait=true",
        json!({"update": "Differential"}),
    );
    let sent = answer(
        &mut cs,
        Version::V201,
        "SendLocalList",
        json!({"status": "Accepted"}),
    )
    .await;
    assert_eq!(sent["versionNumber"], 2);
    assert_eq!(
        list_entries(&sent),
        [
            ("B".into(), Value::Null),
            ("C".into(), json!("Accepted")),
            ("D".into(), json!("Accepted"))
        ]
    );
    waited.await.unwrap();

    // Entries given by the caller go as they are, numbered on.
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS1/local-list?wait=true",
        json!({"update": "Differential", "tokens": [{"idToken": "X", "status": "Blocked"}]}),
    );
    let sent = answer(
        &mut cs,
        Version::V201,
        "SendLocalList",
        json!({"status": "Failed"}),
    )
    .await;
    assert_eq!(sent["versionNumber"], 3);
    assert_eq!(waited.await.unwrap().body["status"], "Rejected");

    let mut v16 = booted(&s, "CS16", Version::V16).await;
    s.post(
        "/api/v0/cs/CS16/local-list",
        &json!({"update": "Full", "tokens": [{"idToken": "X".repeat(21), "status": "Accepted"}]}),
    )
    .await
    .assert_error(400, "/localAuthorizationList/0/idTag");
    s.post(
        "/api/v0/cs/CS16/local-list",
        &json!({"update": "Full", "tokens": [{"idToken": "X"}]}),
    )
    .await
    .assert_error(400, "status");
    assert!(v16.ok("Heartbeat", json!({})).await["currentTime"].is_string());
    assert!(
        v16.unexpected_calls().is_empty(),
        "nothing was sent: {:?}",
        v16.unexpected_calls()
    );
}

#[actix_web::test]
async fn an_installed_certificate_is_deleted_by_the_serial_number_it_was_read_with() {
    let s = crate::common::start().await;
    let mut cs = booted(&s, "CS1", Version::V201).await;
    s.delete("/api/v0/cs/CS1/installed-certificates/01AB")
        .await
        .assert_error(404, "read them first");
    let data = json!({"hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "01AB"});
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS1/installed-certificates/read?wait=true",
        json!({}),
    );
    answer(&mut cs, Version::V201, "GetInstalledCertificateIds", json!({"status": "Accepted",
        "certificateHashDataChain": [{"certificateType": "CSMSRootCertificate", "certificateHashData": data}]})).await;
    waited.await.unwrap();
    let base = s.base.clone();
    let deleting = actix_web::rt::spawn(async move {
        let mut response = awc::Client::default()
            .delete(format!(
                "{base}/api/v0/cs/CS1/installed-certificates/01AB?wait=true"
            ))
            .send()
            .await
            .expect("sent");
        let bytes = response.body().await.expect("body");
        serde_json::from_slice::<Value>(&bytes).expect("JSON")
    });
    let sent = answer(
        &mut cs,
        Version::V201,
        "DeleteCertificate",
        json!({"status": "Accepted"}),
    )
    .await;
    assert_eq!(sent, json!({"certificateHashData": data}));
    let outcome = deleting.await.unwrap();
    assert_eq!(
        (outcome["status"].as_str(), outcome["operation"].as_str()),
        (Some("Accepted"), Some("delete-certificate"))
    );
}

#[actix_web::test]
async fn a_command_the_store_cannot_keep_is_refused_and_never_sent() {
    let s = crate::common::start().await;
    let mut cs = booted(&s, "CS1", Version::V201).await;
    // A store that fails while the command is accepted.
    s.app.store().close().await;
    let reply = s
        .post("/api/v0/cs/CS1/ocpp/Reset", &json!({"type": "Immediate"}))
        .await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    // Nothing reached the station: a round trip later, no CALL arrived.
    cs.call("Heartbeat", json!({})).await;
    assert!(
        cs.unexpected_calls().is_empty(),
        "{:?}",
        cs.unexpected_calls()
    );
}
