//! The variables view: what stations report about their configuration
//! (GetConfiguration, GetVariables, a NotifyReport in parts, accepted sets)
//! and what voltgate is still setting.

use serde_json::{json, Value};

use crate::client::connect;
use crate::common::TestServer;
use crate::spawn_post;

async fn variables(s: &TestServer, id: &str) -> Vec<Value> {
    let reply = s.get(&format!("/api/v0/cs/{id}/variables?limit=100")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body.as_array().unwrap().clone()
}

fn entry<'a>(all: &'a [Value], key: &str) -> &'a Value {
    all.iter()
        .find(|v| v["key"] == key)
        .unwrap_or_else(|| panic!("{key} not in {all:?}"))
}

/// Polls until `key` reads `value` as reported (the writes follow the answers).
async fn reported(s: &TestServer, id: &str, key: &str, value: &str) -> Vec<Value> {
    for _ in 0..250 {
        let all = variables(s, id).await;
        if all
            .iter()
            .any(|v| v["key"] == key && v["reported"]["value"] == value)
        {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{key} never reported as {value}");
}

#[actix_web::test]
async fn a_16_station_configuration_is_read_back_and_set_values_are_pending_until_accepted() {
    let s = crate::common::start().await;
    s.register("CS16").await;
    let mut cs = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    cs.boot_16().await;
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS16/configuration/read?wait=true",
        json!({}),
    );
    let (id, _) = cs.expect_call("GetConfiguration").await;
    cs.reply(
        &id,
        json!({"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": false, "value": "300"},
        {"key": "NumberOfConnectors", "readonly": true, "value": "2"}], "unknownKey": []}),
    )
    .await;
    assert_eq!(waited.await.unwrap().body["status"], "Accepted");
    let all = variables(&s, "CS16").await;
    assert_eq!(
        entry(&all, "NumberOfConnectors")["reported"]["mutability"],
        "ReadOnly"
    );
    assert_eq!(
        entry(&all, "HeartbeatInterval")["reported"]["source"],
        "GetConfiguration"
    );

    // Set while the station is away: pending until it accepts.
    drop(cs);
    for _ in 0..250 {
        if s.get("/api/v0/cs/CS16").await.body["connected"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.post(
            "/api/v0/cs/CS16/reconfigure",
            &json!({"HeartbeatInterval": "60"})
        )
        .await
        .status,
        200
    );
    let all = variables(&s, "CS16").await;
    let heartbeat = entry(&all, "HeartbeatInterval");
    assert_eq!(heartbeat["reported"]["value"], "300");
    assert_eq!(
        heartbeat["pending"],
        json!({"value": "60", "via": "reconfigure", "since": heartbeat["pending"]["since"]})
    );
    let mut cs = connect(s.app.ws_addr(), "CS16", "ocpp1.6").await;
    let (id, payload) = cs.expect_call("ChangeConfiguration").await;
    assert_eq!(payload, json!({"key": "HeartbeatInterval", "value": "60"}));
    cs.reply(&id, json!({"status": "Accepted"})).await;
    let all = reported(&s, "CS16", "HeartbeatInterval", "60").await;
    let heartbeat = entry(&all, "HeartbeatInterval");
    assert_eq!(heartbeat["reported"]["source"], "ChangeConfiguration");
    assert!(heartbeat.get("pending").is_none(), "{heartbeat}");
}

#[actix_web::test]
async fn a_201_report_in_parts_and_get_variables_are_kept() {
    let s = crate::common::start().await;
    s.register("CS201").await;
    let mut cs = connect(s.app.ws_addr(), "CS201", "ocpp2.0.1").await;
    cs.boot_201().await;
    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS201/configuration/read?wait=true",
        json!({}),
    );
    let (id, sent) = cs.expect_call("GetBaseReport").await;
    cs.reply(&id, json!({"status": "Accepted"})).await;
    assert_eq!(waited.await.unwrap().body["status"], "Accepted");
    let part = |seq: u64, tbc: bool, data: Value| json!({"requestId": sent["requestId"], "generatedAt": "2026-12-01T00:00:00Z", "seqNo": seq, "tbc": tbc, "reportData": [data]});
    cs.ok("NotifyReport", part(0, true, json!({"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
        "variableAttribute": [{"value": "300", "mutability": "ReadWrite"}]}))).await;
    cs.ok(
        "NotifyReport",
        part(
            1,
            false,
            json!({"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"},
        "variableAttribute": [{"type": "MaxSet", "value": "22000"}]}),
        ),
    )
    .await;
    let all = variables(&s, "CS201").await;
    assert_eq!(
        entry(&all, "OCPPCommCtrlr/HeartbeatInterval")["reported"]["value"],
        "300"
    );
    assert_eq!(
        entry(&all, "EVSE;1/Power;MaxSet")["reported"]["source"],
        "NotifyReport"
    );

    let waited = spawn_post(
        &s,
        "/api/v0/cs/CS201/configuration/read?wait=true",
        json!({"keys": ["OCPPCommCtrlr/HeartbeatInterval", "Nope/Nothing"]}),
    );
    let (id, _) = cs.expect_call("GetVariables").await;
    cs.reply(&id, json!({"getVariableResult": [
        {"attributeStatus": "Accepted", "attributeValue": "120", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        {"attributeStatus": "UnknownComponent", "component": {"name": "Nope"}, "variable": {"name": "Nothing"}}]})).await;
    assert_eq!(waited.await.unwrap().body["status"], "Accepted");
    let all = variables(&s, "CS201").await;
    assert_eq!(
        entry(&all, "OCPPCommCtrlr/HeartbeatInterval")["reported"]["value"],
        "120"
    );
    assert_eq!(
        entry(&all, "Nope/Nothing")["reported"]["status"],
        "UnknownComponent"
    );

    // A raw SetVariables command not answered yet is pending under its key.
    let body = json!({"setVariableData": [{"attributeValue": "30", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]});
    let accepted = s.post("/api/v0/cs/CS201/ocpp/SetVariables", &body).await;
    assert_eq!(accepted.status, 202);
    let all = variables(&s, "CS201").await;
    assert_eq!(
        entry(&all, "OCPPCommCtrlr/HeartbeatInterval")["pending"]["via"],
        "SetVariables"
    );
    let (id, _) = cs.expect_call("SetVariables").await;
    cs.reply(
        &id,
        json!({"setVariableResult": [{"attributeStatus": "Accepted",
        "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}),
    )
    .await;
    reported(&s, "CS201", "OCPPCommCtrlr/HeartbeatInterval", "30").await;
    s.get("/api/v0/cs/NOPE/variables")
        .await
        .assert_error(404, "charge station");
}
