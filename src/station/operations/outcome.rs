//! The station's answer to a command's CALL as the command's status.
//!
//! A CALLRESULT is `Accepted` when its `status` is a positive word
//! (Accepted, Scheduled, Unlocked, AcceptedCanceled) or when it carries no
//! status (GetConfiguration, GetVariables: the data is the answer), and
//! `Rejected` otherwise; the payload is kept either way. A CALLERROR, a
//! broken answer or no answer is `Failed` with the reason.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::station::session::CallOutcome;
use crate::store::{CommandError, CommandRecord, CommandStatus};

const POSITIVE: &[&str] = &["Accepted", "Scheduled", "Unlocked", "AcceptedCanceled"];

/// Settles `command` with the station's answer.
pub fn settle(
    command: &mut CommandRecord,
    answer: CallOutcome,
    now: DateTime<Utc>,
    timeout_secs: u64,
) {
    let (status, response, error) = match answer {
        CallOutcome::Result(payload) => (status_of(&payload), Some(payload), None),
        CallOutcome::Error { code, description } => {
            (CommandStatus::Failed, None, Some(error(&code, description)))
        }
        CallOutcome::Invalid(why) => (
            CommandStatus::Failed,
            None,
            Some(error(
                "InvalidAnswer",
                format!("the answer breaks the official schema: {why}"),
            )),
        ),
        CallOutcome::Timeout => (
            CommandStatus::Failed,
            None,
            Some(error(
                "Timeout",
                format!("no answer within {timeout_secs} s"),
            )),
        ),
    };
    command.settle(status, response, error, now);
}

/// A failure of voltgate's own (code and description).
pub fn error(code: &str, description: String) -> CommandError {
    CommandError {
        code: code.to_owned(),
        description,
        details: None,
    }
}

fn status_of(payload: &Value) -> CommandStatus {
    match payload.get("status").and_then(Value::as_str) {
        None => CommandStatus::Accepted,
        Some(word) if POSITIVE.contains(&word) => CommandStatus::Accepted,
        Some(_) => CommandStatus::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn command() -> CommandRecord {
        CommandRecord::example_reset(DateTime::from_timestamp(1_790_000_000, 0).unwrap())
    }

    fn settled(answer: CallOutcome) -> CommandRecord {
        let mut c = command();
        settle(&mut c, answer, Utc::now(), 30);
        c
    }

    #[test]
    fn answers_become_statuses() {
        assert_eq!(
            settled(CallOutcome::Result(json!({"status": "Scheduled"}))).status,
            CommandStatus::Accepted
        );
        let rejected = settled(CallOutcome::Result(json!({"status": "UnlockFailed"})));
        assert_eq!(rejected.status, CommandStatus::Rejected);
        assert_eq!(rejected.response, Some(json!({"status": "UnlockFailed"})));
        assert_eq!(
            settled(CallOutcome::Result(json!({"configurationKey": []}))).status,
            CommandStatus::Accepted
        );
        let error = settled(CallOutcome::Error {
            code: "NotSupported".into(),
            description: "no".into(),
        });
        assert_eq!(error.status, CommandStatus::Failed);
        assert_eq!(error.error.unwrap().code, "NotSupported");
        let timeout = settled(CallOutcome::Timeout);
        assert_eq!(timeout.error.unwrap().description, "no answer within 30 s");
    }
}
