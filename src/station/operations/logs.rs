//! `POST /cs/{id}/logs` `{remoteLocation, from?, to?, logType?, retries?,
//! retryInterval?}` → 1.6 `GetDiagnostics` (or `GetLog` for a security
//! log), 2.0.1 `GetLog`. voltgate assigns the requestId.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{timestamp, Operation, Untranslatable};
use crate::ocpp::Version;

/// Which log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum LogType {
    /// The diagnostics log (default).
    #[default]
    DiagnosticsLog,
    /// The security log.
    SecurityLog,
}

/// The logs body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Logs {
    /// Where the station uploads the log (URI).
    pub remote_location: String,
    /// Oldest entries wanted.
    pub from: Option<DateTime<Utc>>,
    /// Newest entries wanted.
    pub to: Option<DateTime<Utc>>,
    /// Which log (DiagnosticsLog by default).
    #[serde(default)]
    pub log_type: LogType,
    /// Upload attempts.
    pub retries: Option<i64>,
    /// Seconds between attempts.
    pub retry_interval: Option<i64>,
}

impl Operation for Logs {
    const NAME: &'static str = "logs";

    fn translate(
        &self,
        version: Version,
        numbers: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let (action, mut payload) =
            if version == Version::V16 && self.log_type == LogType::DiagnosticsLog {
                let mut payload = json!({ "location": self.remote_location });
                super::put(&mut payload, "startTime", self.from.map(timestamp));
                super::put(&mut payload, "stopTime", self.to.map(timestamp));
                ("GetDiagnostics", payload)
            } else {
                let mut log = json!({ "remoteLocation": self.remote_location });
                super::put(&mut log, "oldestTimestamp", self.from.map(timestamp));
                super::put(&mut log, "latestTimestamp", self.to.map(timestamp));
                let kind = match self.log_type {
                    LogType::DiagnosticsLog => "DiagnosticsLog",
                    LogType::SecurityLog => "SecurityLog",
                };
                (
                    "GetLog",
                    json!({"logType": kind, "requestId": numbers(), "log": log}),
                )
            };
        super::put(&mut payload, "retries", self.retries);
        super::put(&mut payload, "retryInterval", self.retry_interval);
        Ok((action, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn logs_translate_per_version() {
        let [v16, v201] = both::<Logs>(
            json!({"remoteLocation": "ftp://logs.example/", "from": "2026-11-30T00:00:00Z"}),
        );
        let v16 = v16.unwrap();
        assert_eq!(v16.action, "GetDiagnostics");
        assert_eq!(v16.payload["startTime"], "2026-11-30T00:00:00.000Z");
        let v201 = v201.unwrap();
        assert_eq!(v201.action, "GetLog");
        assert_eq!(
            v201.payload["log"]["oldestTimestamp"],
            "2026-11-30T00:00:00.000Z"
        );
        let [v16, _] =
            both::<Logs>(json!({"remoteLocation": "ftp://x/", "logType": "SecurityLog"}));
        assert_eq!(v16.unwrap().action, "GetLog");
    }
}
