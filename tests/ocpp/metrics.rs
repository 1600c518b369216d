//! `/metrics` after real traffic: each family the README documents is
//! recorded with closed-set labels, and no station id leaks into a label.

use serde_json::json;

use crate::client::connect;
use crate::common::TestServer;
use crate::{registered, spawn_post};

/// The Prometheus text of the server's `/metrics`.
pub async fn scrape(s: &TestServer) -> String {
    let mut response = awc::Client::default()
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    String::from_utf8(response.body().await.expect("body").to_vec()).expect("text")
}

/// The value of the sample `name` whose labels include every pair of
/// `labels` (label order in the exposition is not part of the contract).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_part, value) = match rest.strip_prefix('{') {
            Some(inner) => inner.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let all = labels.iter().all(|(k, v)| {
            label_part
                .split(',')
                .any(|pair| pair == format!("{k}=\"{v}\""))
        });
        all.then(|| value.trim().parse().ok()).flatten()
    })
}

fn positive(text: &str, name: &str, labels: &[(&str, &str)]) {
    let value = sample(text, name, labels);
    assert!(
        value.is_some_and(|v| v > 0.0),
        "{name} {labels:?} = {value:?} in\n{text}"
    );
}

/// The recorder is process-wide and other tests of this binary move it
/// too: a counter must have grown between `before` and `after` (absent
/// before counts as 0), which fails when this test's traffic is not
/// recorded at all.
fn grew(before: &str, after: &str, name: &str, labels: &[(&str, &str)]) {
    let was = sample(before, name, labels).unwrap_or(0.0);
    let now = sample(after, name, labels);
    assert!(
        now.is_some_and(|v| v > was),
        "{name} {labels:?} = {now:?}, was {was}, in\n{after}"
    );
}

#[actix_web::test]
async fn the_message_path_is_measured_with_closed_set_labels() {
    let id = "METRICS-STATION-7";
    // What the process-wide recorder held before this test's traffic.
    let before = voltgate::metrics::prometheus()
        .map(|handle| handle.render())
        .unwrap_or_default();
    let s = registered(id).await;
    let mut cs = connect(s.app.ws_addr(), id, "ocpp2.0.1").await;
    cs.boot_201().await;
    cs.ok("Heartbeat", json!({})).await;
    // An action no version defines: refused, counted under "other".
    let refused = cs.call("MadeUpAction", json!({})).await;
    assert_eq!(refused[2], "NotImplemented");
    // A waited REST command, answered by the station.
    let waiting = spawn_post(
        &s,
        &format!("/api/v0/cs/{id}/trigger?wait=true"),
        json!({"trigger": "StatusNotification"}),
    );
    let (call_id, _) = cs.expect_call("TriggerMessage").await;
    cs.reply(&call_id, json!({"status": "Accepted"})).await;
    assert_eq!(waiting.await.expect("request").status, 200);
    // A CALLERROR from the station, in 1.6's spelling on a 2.0.1 link.
    let later = spawn_post(
        &s,
        &format!("/api/v0/cs/{id}/trigger?wait=true"),
        json!({"trigger": "StatusNotification"}),
    );
    let (call_id, _) = cs.expect_call("TriggerMessage").await;
    cs.send_text(&format!(
        r#"[4,"{call_id}","OccurenceConstraintViolation","",{{}}]"#
    ))
    .await;
    assert_eq!(later.await.expect("request").status, 200);

    let text = scrape(&s).await;
    let v201 = ("version", "2.0.1");
    grew(&before, &text, "voltgate_connections_opened_total", &[v201]);
    positive(&text, "voltgate_stations_connected", &[v201]);
    let received = "voltgate_ocpp_messages_received_total";
    grew(
        &before,
        &text,
        received,
        &[v201, ("action", "Heartbeat"), ("type", "CALL")],
    );
    grew(
        &before,
        &text,
        received,
        &[v201, ("action", "other"), ("type", "CALL")],
    );
    grew(
        &before,
        &text,
        received,
        &[v201, ("action", "TriggerMessage"), ("type", "CALLRESULT")],
    );
    grew(
        &before,
        &text,
        received,
        &[v201, ("action", "TriggerMessage"), ("type", "CALLERROR")],
    );
    let sent = "voltgate_ocpp_messages_sent_total";
    grew(
        &before,
        &text,
        sent,
        &[v201, ("action", "Heartbeat"), ("type", "CALLRESULT")],
    );
    grew(
        &before,
        &text,
        sent,
        &[v201, ("action", "other"), ("type", "CALLERROR")],
    );
    grew(
        &before,
        &text,
        sent,
        &[v201, ("action", "TriggerMessage"), ("type", "CALL")],
    );
    let errors = "voltgate_ocpp_call_errors_total";
    grew(
        &before,
        &text,
        errors,
        &[("code", "NotImplemented"), ("direction", "sent")],
    );
    grew(
        &before,
        &text,
        errors,
        &[
            ("code", "OccurrenceConstraintViolation"),
            ("direction", "received"),
        ],
    );
    grew(
        &before,
        &text,
        "voltgate_ocpp_handler_duration_seconds_count",
        &[v201, ("action", "Heartbeat")],
    );
    grew(
        &before,
        &text,
        "voltgate_ocpp_handler_duration_seconds_bucket",
        &[v201, ("action", "Heartbeat"), ("le", "+Inf")],
    );
    grew(
        &before,
        &text,
        "voltgate_ocpp_call_round_trip_seconds_count",
        &[v201, ("action", "TriggerMessage")],
    );
    grew(
        &before,
        &text,
        "voltgate_commands_total",
        &[("action", "trigger"), ("result", "answered")],
    );
    grew(
        &before,
        &text,
        "voltgate_command_round_trip_seconds_count",
        &[("action", "trigger")],
    );
    let route = ("route", "/api/v0/cs/{csId}/trigger");
    grew(
        &before,
        &text,
        "voltgate_http_requests_total",
        &[route, ("method", "POST"), ("status", "200")],
    );
    grew(
        &before,
        &text,
        "voltgate_http_request_duration_seconds_count",
        &[route],
    );
    grew(
        &before,
        &text,
        "voltgate_http_requests_total",
        &[("route", "/api/v0/cs/{csId}"), ("status", "201")],
    );
    let backend = ("backend", s.app.store().backend());
    grew(
        &before,
        &text,
        "voltgate_store_operation_duration_seconds_count",
        &[backend, ("operation", "register_station")],
    );
    grew(
        &before,
        &text,
        "voltgate_store_operation_duration_seconds_count",
        &[backend, ("operation", "outbox")],
    );
    assert!(
        !text.contains(id),
        "a station id leaked into a label:\n{text}"
    );
}

#[test]
fn samples_are_found_whatever_the_label_order() {
    let text = "# TYPE x counter\nx{b=\"2\",a=\"1\"} 3\nx{a=\"9\"} 0\ny 4\n";
    assert_eq!(sample(text, "x", &[("a", "1"), ("b", "2")]), Some(3.0));
    assert_eq!(sample(text, "x", &[("a", "9")]), Some(0.0));
    assert_eq!(sample(text, "x", &[("a", "2")]), None);
    assert_eq!(sample(text, "y", &[]), Some(4.0));
}
