//! The station state machine driven through simulated time, with every
//! frame it sends checked against the official OCPP schemas.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::*;

fn profile(mode: Mode) -> Arc<Profile> {
    Arc::new(Profile {
        mode,
        call_timeout: Duration::from_secs(30),
        meter_interval: Duration::from_secs(10),
        meter_values: 2,
        id_token: "LOADTEST01".into(),
    })
}

struct Clock(Instant);

impl Clock {
    fn at(&self, secs: u64) -> Now {
        Now {
            at: self.0 + Duration::from_secs(secs),
            utc: Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
                + chrono::Duration::seconds(secs as i64),
        }
    }
    fn at_ms(&self, ms: u64) -> Now {
        let mut now = self.at(0);
        now.at += Duration::from_millis(ms);
        now
    }
}

fn clock() -> Clock {
    Clock(Instant::now())
}

/// The frames among `out`, parsed.
fn frames(out: &[Output]) -> Vec<Value> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(text) => Some(serde_json::from_str(text).expect("frames are JSON")),
            _ => None,
        })
        .collect()
}

/// The one frame in `out`.
fn only_frame(out: &[Output]) -> Value {
    let mut all = frames(out);
    assert_eq!(all.len(), 1, "{out:?}");
    all.remove(0)
}

fn schema_path(version: Version, action: &str, response: bool) -> std::path::PathBuf {
    let (dir, suffix) = match (version, response) {
        (Version::V16, false) => ("v16", ""),
        (Version::V16, true) => ("v16", "Response"),
        (Version::V201, false) => ("v201", "Request"),
        (Version::V201, true) => ("v201", "Response"),
    };
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schema/ocpp")
        .join(dir)
        .join(format!("{action}{suffix}.json"))
}

/// Panics unless `payload` is valid against the official schema.
fn assert_valid(version: Version, action: &str, response: bool, payload: &Value) {
    let path = schema_path(version, action, response);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("official schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(payload)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{action} {payload} invalid: {errors:?}");
}

/// Checks a CALL frame we sent against the request schema; returns (id, action, payload).
fn assert_call(version: Version, frame: &Value) -> (String, String, Value) {
    assert_eq!(frame[0], 2, "{frame}");
    let id = frame[1].as_str().expect("string id").to_owned();
    let action = frame[2].as_str().expect("action").to_owned();
    assert_valid(version, &action, false, &frame[3]);
    (id, action, frame[3].clone())
}

/// Checks a CALLRESULT we sent against the response schema of `action`.
fn assert_result(version: Version, action: &str, id: &str, frame: &Value) -> Value {
    assert_eq!(
        (frame[0].as_u64(), frame[1].as_str()),
        (Some(3), Some(id)),
        "{frame}"
    );
    assert_valid(version, action, true, &frame[2]);
    frame[2].clone()
}

fn boot_answer(id: &str, status: &str, interval: u64) -> String {
    json!([3, id, {"status": status, "currentTime": "2026-11-21T10:00:00.000Z", "interval": interval}]).to_string()
}

/// A station of `version` booted Accepted at t=0 with heartbeat interval 60 s.
fn booted(version: Version, mode: Mode, c: &Clock) -> Machine {
    let mut m = Machine::new(version, profile(mode), 7);
    let mut out = Vec::new();
    m.handle_open(c.at(0), &mut out);
    let (id, action, _) = assert_call(version, &only_frame(&out));
    assert_eq!(action, "BootNotification");
    out.clear();
    m.handle_text(c.at(0), &boot_answer(&id, "Accepted", 60), &mut out);
    assert!(out.contains(&Output::Booted), "{out:?}");
    m
}

#[test]
fn boot_accepted_then_heartbeats_at_the_answered_interval() {
    for version in [Version::V16, Version::V201] {
        let c = clock();
        let mut m = Machine::new(version, profile(Mode::Idle), 1);
        let mut out = Vec::new();
        m.handle_open(c.at(0), &mut out);
        let (id, action, payload) = assert_call(version, &only_frame(&out));
        assert_eq!(action, "BootNotification");
        if version == Version::V201 {
            assert_eq!(payload["reason"], "PowerUp");
        }
        assert_eq!(m.poll_timeout(), Some(c.at(30).at), "the call timeout");

        out.clear();
        m.handle_text(c.at_ms(4), &boot_answer(&id, "Accepted", 60), &mut out);
        assert_eq!(
            out,
            [
                Output::Answered {
                    action: "BootNotification",
                    rtt: Duration::from_millis(4)
                },
                Output::Booted
            ]
        );
        assert!(m.is_booted());
        assert_eq!(m.poll_timeout(), Some(c.at_ms(60_004).at));

        out.clear();
        m.handle_timeout(c.at(61), &mut out);
        let (id, action, payload) = assert_call(version, &only_frame(&out));
        assert_eq!((action.as_str(), payload), ("Heartbeat", json!({})));
        out.clear();
        m.handle_text(
            c.at(61),
            &json!([3, id, {"currentTime": "2026-11-21T10:01:01Z"}]).to_string(),
            &mut out,
        );
        assert_eq!(
            m.poll_timeout(),
            Some(c.at(121).at),
            "next heartbeat one interval later"
        );
    }
}

#[test]
fn pending_v201_boot_answers_set_variables_then_boots_on_trigger() {
    let c = clock();
    let v = Version::V201;
    let mut m = Machine::new(v, profile(Mode::Idle), 1);
    let mut out = Vec::new();
    m.handle_open(c.at(0), &mut out);
    let (id, ..) = assert_call(v, &only_frame(&out));
    out.clear();
    m.handle_text(c.at(0), &boot_answer(&id, "Pending", 15), &mut out);
    assert!(out.contains(&Output::BootPending));
    assert!(!m.is_booted());
    assert_eq!(
        m.poll_timeout(),
        Some(c.at(15).at),
        "boots again after the interval"
    );

    out.clear();
    let set = json!([2, "csms-1", "SetVariables", {"setVariableData": [
        {"attributeValue": "300", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        {"attributeValue": "7000", "attributeType": "MaxSet", "component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
    ]}]);
    m.handle_text(c.at(1), &set.to_string(), &mut out);
    let answer = assert_result(v, "SetVariables", "csms-1", &only_frame(&out));
    assert_eq!(
        answer,
        json!({"setVariableResult": [
            {"attributeStatus": "Accepted", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            {"attributeStatus": "Accepted", "attributeType": "MaxSet", "component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
        ]})
    );
    assert!(out.contains(&Output::CsmsCall(CsmsCall::SetVariables)));

    out.clear();
    let trigger = json!([2, "csms-2", "TriggerMessage", {"requestedMessage": "BootNotification"}]);
    m.handle_text(c.at(2), &trigger.to_string(), &mut out);
    let all = frames(&out);
    assert_eq!(all.len(), 2, "the answer, then the boot: {out:?}");
    assert_eq!(
        assert_result(v, "TriggerMessage", "csms-2", &all[0]),
        json!({"status": "Accepted"})
    );
    let (id, action, _) = assert_call(v, &all[1]);
    assert_eq!(action, "BootNotification");

    out.clear();
    m.handle_text(c.at(2), &boot_answer(&id, "Accepted", 300), &mut out);
    assert!(out.contains(&Output::Booted));
}

#[test]
fn pending_v16_boot_answers_change_configuration_and_reset() {
    let c = clock();
    let v = Version::V16;
    let mut m = Machine::new(v, profile(Mode::Idle), 1);
    let mut out = Vec::new();
    m.handle_open(c.at(0), &mut out);
    let (id, ..) = assert_call(v, &only_frame(&out));
    m.handle_text(c.at(0), &boot_answer(&id, "Pending", 15), &mut out);

    out.clear();
    let change =
        json!([2, "c1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}]);
    m.handle_text(c.at(1), &change.to_string(), &mut out);
    assert_eq!(
        assert_result(v, "ChangeConfiguration", "c1", &only_frame(&out)),
        json!({"status": "Accepted"})
    );

    out.clear();
    m.handle_text(
        c.at(2),
        &json!([2, "c2", "Reset", {"type": "Soft"}]).to_string(),
        &mut out,
    );
    let all = frames(&out);
    assert_eq!(
        assert_result(v, "Reset", "c2", &all[0]),
        json!({"status": "Accepted"})
    );
    let (id, action, _) = assert_call(v, &all[1]);
    assert_eq!(action, "BootNotification", "a reset reboots");
    out.clear();
    m.handle_text(c.at(3), &boot_answer(&id, "Accepted", 300), &mut out);
    assert!(m.is_booted());
}

#[test]
fn a_reset_of_a_booted_v201_station_reboots_it() {
    let c = clock();
    let mut m = booted(Version::V201, Mode::Idle, &c);
    let mut out = Vec::new();
    m.handle_text(
        c.at(5),
        &json!([2, "r", "Reset", {"type": "OnIdle"}]).to_string(),
        &mut out,
    );
    let all = frames(&out);
    assert_eq!(
        assert_result(Version::V201, "Reset", "r", &all[0]),
        json!({"status": "Accepted"})
    );
    assert_eq!(all[1][2], "BootNotification");
    assert!(!m.is_booted());
}

#[test]
fn a_pending_station_boots_again_after_the_interval_without_a_trigger() {
    let c = clock();
    let mut m = Machine::new(Version::V16, profile(Mode::Idle), 1);
    let mut out = Vec::new();
    m.handle_open(c.at(0), &mut out);
    let id = only_frame(&out)[1].as_str().unwrap().to_owned();
    m.handle_text(c.at(0), &boot_answer(&id, "Rejected", 20), &mut out);
    assert!(out.contains(&Output::BootRejected));
    out.clear();
    m.handle_timeout(c.at(19), &mut out);
    assert!(out.is_empty(), "not yet: {out:?}");
    m.handle_timeout(c.at(20), &mut out);
    assert_eq!(only_frame(&out)[2], "BootNotification");
}

#[test]
fn triggered_messages_wait_for_the_boot_and_for_the_call_in_flight() {
    let c = clock();
    let v = Version::V16;
    let mut m = Machine::new(v, profile(Mode::Idle), 1);
    let mut out = Vec::new();
    m.handle_open(c.at(0), &mut out);
    let boot_id = only_frame(&out)[1].as_str().unwrap().to_owned();

    // Still booting: the trigger is accepted, the StatusNotification waits.
    out.clear();
    let trigger = json!([2, "t1", "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}]);
    m.handle_text(c.at(0), &trigger.to_string(), &mut out);
    assert_eq!(
        assert_result(v, "TriggerMessage", "t1", &only_frame(&out)),
        json!({"status": "Accepted"})
    );
    assert!(
        out.contains(&Output::CsmsCall(CsmsCall::TriggerMessage(Some(
            Request::StatusNotification
        ))))
    );

    out.clear();
    m.handle_text(c.at(1), &boot_answer(&boot_id, "Accepted", 300), &mut out);
    let (_, action, payload) = assert_call(v, &only_frame(&out));
    assert_eq!(
        (action.as_str(), &payload["status"]),
        ("StatusNotification", &json!("Available"))
    );
}

#[test]
fn triggers_for_messages_not_simulated_are_answered_not_implemented() {
    let c = clock();
    for (v, action) in [
        (Version::V16, "TriggerMessage"),
        (Version::V16, "ExtendedTriggerMessage"),
        (Version::V201, "TriggerMessage"),
    ] {
        let mut m = booted(v, Mode::Idle, &c);
        let mut out = Vec::new();
        let requested = if action == "ExtendedTriggerMessage" {
            "SignChargePointCertificate"
        } else {
            "FirmwareStatusNotification"
        };
        let frame = json!([2, "x", action, {"requestedMessage": requested}]);
        m.handle_text(c.at(1), &frame.to_string(), &mut out);
        assert_eq!(
            assert_result(v, action, "x", &only_frame(&out)),
            json!({"status": "NotImplemented"})
        );

        out.clear();
        let frame = json!([2, "y", action, {"requestedMessage": "Heartbeat"}]);
        m.handle_text(c.at(1), &frame.to_string(), &mut out);
        let all = frames(&out);
        assert_eq!(
            assert_result(v, action, "y", &all[0]),
            json!({"status": "Accepted"})
        );
        assert_eq!(all[1][2], "Heartbeat", "the triggered message follows");
    }
}

#[test]
fn unknown_csms_calls_get_not_implemented() {
    let c = clock();
    let mut m = booted(Version::V201, Mode::Idle, &c);
    let mut out = Vec::new();
    m.handle_text(
        c.at(1),
        r#"[2,"u1","UnlockConnector",{"evseId":1,"connectorId":1}]"#,
        &mut out,
    );
    let frame = only_frame(&out);
    assert_eq!(
        frame,
        json!([
            4,
            "u1",
            "NotImplemented",
            "UnlockConnector is not simulated by the load test",
            {}
        ])
    );
    assert!(out.contains(&Output::CsmsCall(CsmsCall::Other)));
    // A 2.0.1 action sent to a 1.6 station is just as unknown.
    let mut m = booted(Version::V16, Mode::Idle, &c);
    out.clear();
    m.handle_text(
        c.at(1),
        r#"[2,"u2","SetVariables",{"setVariableData":[]}]"#,
        &mut out,
    );
    assert_eq!(only_frame(&out)[2], "NotImplemented");
}

#[test]
fn heartbeat_loop_sends_the_next_as_soon_as_one_is_answered() {
    let c = clock();
    let mut m = booted(Version::V201, Mode::HeartbeatLoop, &c);
    let mut out = Vec::new();
    m.handle_activate(c.at(1), &mut out);
    let mut id = only_frame(&out)[1].as_str().unwrap().to_owned();
    for round in 0..3u64 {
        out.clear();
        let answer = json!([3, id, {"currentTime": "2026-11-21T10:00:01Z"}]).to_string();
        m.handle_text(c.at_ms(1000 + round * 2 + 2), &answer, &mut out);
        assert_eq!(
            out[0],
            Output::Answered {
                action: "Heartbeat",
                rtt: Duration::from_millis(2)
            }
        );
        let next = only_frame(&out);
        assert_eq!(next[2], "Heartbeat");
        id = next[1].as_str().unwrap().to_owned();
    }
}

#[test]
fn answers_to_nothing_are_dropped_and_garbage_is_reported() {
    let c = clock();
    let mut m = booted(Version::V16, Mode::Idle, &c);
    let mut out = Vec::new();
    m.handle_text(c.at(1), r#"[3,"999",{}]"#, &mut out);
    assert!(out.is_empty(), "{out:?}");
    m.handle_text(c.at(1), "not json", &mut out);
    m.handle_text(c.at(1), r#"{"an":"object"}"#, &mut out);
    assert_eq!(out, [Output::Malformed, Output::Malformed]);
}

#[test]
fn unanswered_calls_time_out_and_the_boot_is_retried() {
    let c = clock();
    let mut m = Machine::new(Version::V16, profile(Mode::Idle), 1);
    let mut out = Vec::new();
    m.handle_open(c.at(0), &mut out);
    out.clear();
    m.handle_timeout(c.at(30), &mut out);
    assert_eq!(
        out,
        [Output::TimedOut {
            action: "BootNotification"
        }]
    );
    assert_eq!(m.poll_timeout(), Some(c.at(40).at));
    out.clear();
    m.handle_timeout(c.at(40), &mut out);
    assert_eq!(only_frame(&out)[2], "BootNotification");
}

/// Runs one CALL of the charge cycle: checks it is `action`, answers `answer`.
fn step(
    m: &mut Machine,
    v: Version,
    now: Now,
    out: &mut Vec<Output>,
    action: &str,
    answer: Value,
) -> Value {
    let (id, got, payload) = assert_call(v, &only_frame(out));
    assert_eq!(got, action);
    out.clear();
    m.handle_text(now, &json!([3, id, answer]).to_string(), out);
    payload
}

#[test]
fn v16_charge_cycle_runs_a_whole_transaction_and_starts_over() {
    let c = clock();
    let v = Version::V16;
    let mut m = booted(v, Mode::Charge, &c);
    let mut out = Vec::new();
    m.handle_activate(c.at(1), &mut out);
    let accepted = json!({"idTagInfo": {"status": "Accepted"}});
    step(
        &mut m,
        v,
        c.at(1),
        &mut out,
        "StatusNotification",
        json!({}),
    );
    let auth = step(&mut m, v, c.at(1), &mut out, "Authorize", accepted.clone());
    assert_eq!(auth, json!({"idTag": "LOADTEST01"}));
    let start = step(
        &mut m,
        v,
        c.at(1),
        &mut out,
        "StartTransaction",
        json!({"transactionId": 42, "idTagInfo": {"status": "Accepted"}}),
    );
    assert_eq!(
        (start["connectorId"].as_u64(), start["idTag"].as_str()),
        (Some(1), Some("LOADTEST01"))
    );
    assert!(
        frames(&out).is_empty(),
        "meter values wait for the interval"
    );
    assert_eq!(m.poll_timeout(), Some(c.at(11).at));

    m.handle_timeout(c.at(11), &mut out);
    let meter = step(&mut m, v, c.at(11), &mut out, "MeterValues", json!({}));
    assert_eq!(meter["transactionId"], 42);
    assert_eq!(
        meter["meterValue"][0]["sampledValue"][0]["measurand"],
        "Energy.Active.Import.Register"
    );
    m.handle_timeout(c.at(21), &mut out);
    step(&mut m, v, c.at(21), &mut out, "MeterValues", json!({}));
    m.handle_timeout(c.at(31), &mut out);
    let stop = step(
        &mut m,
        v,
        c.at(31),
        &mut out,
        "StopTransaction",
        json!({"idTagInfo": {"status": "Accepted"}}),
    );
    assert_eq!(
        (stop["transactionId"].as_i64(), stop["meterStop"].as_u64()),
        (Some(42), Some(750))
    );
    // The next cycle starts at once.
    assert_eq!(only_frame(&out)[2], "StatusNotification");
}

#[test]
fn v201_charge_cycle_numbers_its_transaction_events() {
    let c = clock();
    let v = Version::V201;
    let mut m = booted(v, Mode::Charge, &c);
    let mut out = Vec::new();
    m.handle_activate(c.at(1), &mut out);
    step(
        &mut m,
        v,
        c.at(1),
        &mut out,
        "StatusNotification",
        json!({}),
    );
    let auth = step(
        &mut m,
        v,
        c.at(1),
        &mut out,
        "Authorize",
        json!({"idTokenInfo": {"status": "Accepted"}}),
    );
    assert_eq!(
        auth,
        json!({"idToken": {"idToken": "LOADTEST01", "type": "ISO14443"}})
    );
    let tx_answer = json!({"idTokenInfo": {"status": "Accepted"}});
    let started = step(
        &mut m,
        v,
        c.at(1),
        &mut out,
        "TransactionEvent",
        tx_answer.clone(),
    );
    assert_eq!(
        (started["eventType"].as_str(), started["seqNo"].as_u64()),
        (Some("Started"), Some(0))
    );
    assert_eq!(started["idToken"]["idToken"], "LOADTEST01");
    let tx_id = started["transactionInfo"]["transactionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(tx_id.len(), 36);
    assert!(
        tx_id.starts_with("00000000-0000-0007-"),
        "the seed is in the id: {tx_id}"
    );

    let mut seqs = vec![0];
    for (at, kind) in [(11, "Updated"), (21, "Updated"), (31, "Ended")] {
        m.handle_timeout(c.at(at), &mut out);
        let event = step(&mut m, v, c.at(at), &mut out, "TransactionEvent", json!({}));
        assert_eq!(event["eventType"], kind);
        assert_eq!(event["transactionInfo"]["transactionId"], tx_id.as_str());
        seqs.push(event["seqNo"].as_u64().unwrap());
    }
    assert_eq!(seqs, [0, 1, 2, 3]);
    // Next cycle, next transaction id, sequence from 0 again.
    step(
        &mut m,
        v,
        c.at(31),
        &mut out,
        "StatusNotification",
        json!({}),
    );
    step(
        &mut m,
        v,
        c.at(31),
        &mut out,
        "Authorize",
        json!({"idTokenInfo": {"status": "Accepted"}}),
    );
    let (_, _, next) = assert_call(v, &only_frame(&out));
    assert_eq!(next["seqNo"], 0);
    assert_ne!(next["transactionInfo"]["transactionId"], tx_id.as_str());
}

#[test]
fn a_call_error_in_the_charge_cycle_restarts_it_after_a_pause() {
    let c = clock();
    let v = Version::V16;
    let mut m = booted(v, Mode::Charge, &c);
    let mut out = Vec::new();
    m.handle_activate(c.at(1), &mut out);
    step(
        &mut m,
        v,
        c.at(1),
        &mut out,
        "StatusNotification",
        json!({}),
    );
    let id = only_frame(&out)[1].as_str().unwrap().to_owned();
    out.clear();
    m.handle_text(
        c.at(1),
        &json!([4, id, "InternalError", "", {}]).to_string(),
        &mut out,
    );
    assert_eq!(
        out,
        [Output::CallError {
            action: "Authorize"
        }]
    );
    assert_eq!(m.poll_timeout(), Some(c.at(11).at));
    m.handle_timeout(c.at(11), &mut out);
    assert_eq!(only_frame(&out)[2], "StatusNotification");
}

#[test]
fn a_new_connection_boots_again_and_forgets_the_call_in_flight() {
    let c = clock();
    let mut m = booted(Version::V201, Mode::HeartbeatLoop, &c);
    let mut out = Vec::new();
    m.handle_activate(c.at(1), &mut out);
    out.clear();
    m.handle_open(c.at(2), &mut out);
    assert!(!m.is_booted());
    let (id, action, _) = assert_call(Version::V201, &only_frame(&out));
    assert_eq!(action, "BootNotification");
    out.clear();
    m.handle_text(c.at(2), &boot_answer(&id, "Accepted", 300), &mut out);
    assert!(out.contains(&Output::Booted));
    assert_eq!(
        frames(&out)[0][2],
        "Heartbeat",
        "still active: the loop resumes"
    );
}
