//! What a station's answers and reports say about its configuration, as
//! [`ReportedVariable`]s to store: GetConfiguration (1.6) and GetVariables
//! (2.0.1) answers, NotifyReport parts (2.0.1, stored as each part arrives,
//! so a report assembled over seqNo parts ends up whole), and values the
//! station accepted from a ChangeConfiguration or SetVariables. Pure.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::ocpp::setting_key::VariableRef;
use crate::store::{CommandRecord, ReportedVariable};

fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn variable(
    key: String,
    value: Option<String>,
    source: &str,
    now: DateTime<Utc>,
) -> ReportedVariable {
    ReportedVariable {
        key,
        value,
        mutability: None,
        status: None,
        source: source.to_owned(),
        reported_at: now,
    }
}

/// The variables a settled command taught: its answer (reads) or the
/// values the station accepted (sets). Nothing for other commands.
pub fn from_command(command: &CommandRecord, now: DateTime<Utc>) -> Vec<ReportedVariable> {
    let Some(response) = command.response.as_ref() else {
        return Vec::new();
    };
    match command.action.as_str() {
        "GetConfiguration" => from_get_configuration(response, now),
        "GetVariables" => from_get_variables(response, now),
        action => from_set(action, &command.payload, response, now),
    }
}

/// The values a ChangeConfiguration or SetVariables (`sent`) set, as far
/// as the station's answer accepted them (or will apply them after a
/// reboot). Nothing for other actions.
pub fn from_set(
    action: &str,
    sent: &Value,
    response: &Value,
    now: DateTime<Utc>,
) -> Vec<ReportedVariable> {
    match action {
        "ChangeConfiguration" => {
            let status = response["status"].as_str().unwrap_or_default();
            if status != "Accepted" && status != "RebootRequired" {
                return Vec::new();
            }
            let Some(key) = text(&sent["key"]) else {
                return Vec::new();
            };
            let mut set = variable(key, text(&sent["value"]), "ChangeConfiguration", now);
            set.status = (status != "Accepted").then(|| status.to_owned());
            vec![set]
        }
        "SetVariables" => from_set_variables(sent, response, now),
        _ => Vec::new(),
    }
}

/// A 1.6 GetConfiguration answer.
pub fn from_get_configuration(response: &Value, now: DateTime<Utc>) -> Vec<ReportedVariable> {
    let mut out = Vec::new();
    for entry in list(&response["configurationKey"]) {
        let Some(key) = text(&entry["key"]) else {
            continue;
        };
        let mut known = variable(key, text(&entry["value"]), "GetConfiguration", now);
        known.mutability = entry["readonly"]
            .as_bool()
            .map(|ro| if ro { "ReadOnly" } else { "ReadWrite" }.to_owned());
        out.push(known);
    }
    for key in list(&response["unknownKey"]) {
        let Some(key) = text(key) else { continue };
        let mut unknown = variable(key, None, "GetConfiguration", now);
        unknown.status = Some("UnknownKey".into());
        out.push(unknown);
    }
    out
}

/// A 2.0.1 GetVariables answer.
pub fn from_get_variables(response: &Value, now: DateTime<Utc>) -> Vec<ReportedVariable> {
    list(&response["getVariableResult"])
        .iter()
        .filter_map(|result| {
            let name = VariableRef::of_entry(result)?;
            let mut got = variable(
                name.key(),
                text(&result["attributeValue"]),
                "GetVariables",
                now,
            );
            got.status = text(&result["attributeStatus"]).filter(|s| s != "Accepted");
            Some(got)
        })
        .collect()
}

/// One 2.0.1 NotifyReport part: a variable per reported attribute.
pub fn from_notify_report(report: &Value, now: DateTime<Utc>) -> Vec<ReportedVariable> {
    let mut out = Vec::new();
    for data in list(&report["reportData"]) {
        for attribute in list(&data["variableAttribute"]) {
            let Some(name) = VariableRef::from_json(
                &data["component"],
                &data["variable"],
                attribute["type"].as_str(),
            ) else {
                continue;
            };
            let mut reported = variable(name.key(), text(&attribute["value"]), "NotifyReport", now);
            reported.mutability = text(&attribute["mutability"]);
            out.push(reported);
        }
    }
    out
}

/// The values of a 2.0.1 SetVariables that the station accepted (or will
/// apply after a reboot).
fn from_set_variables(sent: &Value, response: &Value, now: DateTime<Utc>) -> Vec<ReportedVariable> {
    let results = list(&response["setVariableResult"]);
    list(&sent["setVariableData"])
        .iter()
        .filter_map(|data| {
            let name = VariableRef::of_entry(data)?;
            let result = results
                .iter()
                .find(|r| VariableRef::of_entry(r).as_ref() == Some(&name))?;
            let status = result["attributeStatus"].as_str()?;
            if status != "Accepted" && status != "RebootRequired" {
                return None;
            }
            let mut set = variable(
                name.key(),
                text(&data["attributeValue"]),
                "SetVariables",
                now,
            );
            set.status = (status != "Accepted").then(|| status.to_owned());
            Some(set)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn configuration_answers_become_variables() {
        let got = from_get_configuration(
            &json!({"configurationKey": [{"key": "HeartbeatInterval", "readonly": false, "value": "300"}], "unknownKey": ["Nope"]}),
            now(),
        );
        assert_eq!(got[0].key, "HeartbeatInterval");
        assert_eq!(got[0].value.as_deref(), Some("300"));
        assert_eq!(got[0].mutability.as_deref(), Some("ReadWrite"));
        assert_eq!(got[1].status.as_deref(), Some("UnknownKey"));

        let got = from_get_variables(
            &json!({"getVariableResult": [
                {"attributeStatus": "Accepted", "attributeValue": "7000", "attributeType": "MaxSet",
                 "component": {"name": "EVSE", "evse": {"id": 2}}, "variable": {"name": "Power"}},
                {"attributeStatus": "UnknownVariable", "component": {"name": "X"}, "variable": {"name": "Y"}}]}),
            now(),
        );
        assert_eq!(got[0].key, "EVSE;2/Power;MaxSet");
        assert_eq!(got[1].status.as_deref(), Some("UnknownVariable"));
        // The key reads back as the variable it names.
        let parsed = crate::ocpp::setting_key::SettingKey::parse(&got[0].key, "").unwrap();
        assert!(
            matches!(parsed, crate::ocpp::setting_key::SettingKey::V201(v) if v.evse == Some(2))
        );
    }

    #[test]
    fn a_report_part_gives_one_variable_per_attribute() {
        let got = from_notify_report(
            &json!({"requestId": 1, "seqNo": 0, "generatedAt": "2026-12-01T00:00:00Z", "reportData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
                 "variableAttribute": [{"value": "300", "mutability": "ReadWrite"}, {"type": "MaxSet", "value": "3600"}]}]}),
            now(),
        );
        let keys: Vec<&str> = got.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "OCPPCommCtrlr/HeartbeatInterval",
                "OCPPCommCtrlr/HeartbeatInterval;MaxSet"
            ]
        );
        assert_eq!(got[0].source, "NotifyReport");
    }
}
