//! The delivery policy for stored commands: whether one may go to the
//! station now, must wait, or is settled without being sent, and what
//! follows once the queue is empty. Pure: the actor asks, then does what the
//! answer says.
//!
//! * Nothing is sent before the station's BootNotification.
//! * A station answered `Pending` gets configuration-like commands only
//!   (not MaEVe's triggers and charging profiles); the rest waits for an
//!   accepted boot.
//! * A pending command past its expiry is `Expired` and never sent.
//! * A command written for another OCPP version than the connection's
//!   (the station came back speaking another one) fails instead of being
//!   sent in a shape the station cannot read. MaEVe's version-neutral
//!   commands are written for the connection's version here.
//! * Once nothing is queued or in flight: a reset when a setting was
//!   answered `RebootRequired`, else a `Pending` station is asked to boot
//!   again (its configuration is applied).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::handlers::BootVerdict;
use super::operations::work_item::{self, WorkItem};
use super::operations::{catalog, outcome};
use super::reported;
use super::session::CallOutcome;
use crate::ocpp::Version;
use crate::store::{CommandRecord, CommandStatus, DeliveryClass, DeliveryStatus, ReportedVariable};

/// What to do with a command now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send it as this CALL.
    Send {
        /// The action (its static name).
        action: &'static str,
        /// The payload.
        payload: Value,
    },
    /// Keep it pending: the boot state does not allow it yet.
    Hold,
    /// It is settled without being sent: store this record.
    Settle(Box<CommandRecord>),
    /// It was already settled: nothing to do.
    Done,
}

fn failed(command: &CommandRecord, code: &str, why: String, now: DateTime<Utc>) -> Decision {
    let mut failed = command.clone();
    failed.settle(
        CommandStatus::Failed,
        None,
        Some(outcome::error(code, why)),
        now,
    );
    Decision::Settle(Box::new(failed))
}

/// Decides about `command` for a connection of `version` whose boot ended
/// in `boot` (None: not booted yet).
pub fn decide(
    command: &CommandRecord,
    version: Version,
    boot: Option<BootVerdict>,
    now: DateTime<Utc>,
) -> Decision {
    if command.status.is_final() {
        return Decision::Done;
    }
    if command.is_expired(now) {
        let mut expired = command.clone();
        expired.settle(CommandStatus::Expired, None, None, now);
        return Decision::Settle(Box::new(expired));
    }
    let item = WorkItem::of(command);
    let needs_accepted = match &item {
        Some(item) => item.needs_accepted_boot(),
        None => command.class == DeliveryClass::Immediate,
    };
    let allowed = match boot {
        None => false,
        Some(BootVerdict::Pending) => !needs_accepted,
        Some(BootVerdict::Accepted) => true,
    };
    if let Some(item) = item {
        // Written for this connection's version, whatever it spoke before.
        return match (allowed, item.plan(version)) {
            (false, _) => Decision::Hold,
            (true, Ok((action, payload))) => Decision::Send { action, payload },
            (true, Err(why)) => {
                let mut refused = command.clone();
                work_item::refuse(&mut refused, version, why, now);
                Decision::Settle(Box::new(refused))
            }
        };
    }
    if command.version != Some(version) {
        let written = command.version.map_or("no", Version::label);
        let why = format!(
            "written for OCPP {written}, the station now speaks OCPP {}",
            version.label()
        );
        return failed(command, "VersionChanged", why, now);
    }
    if !allowed {
        return Decision::Hold;
    }
    match catalog::find(version, &command.action) {
        Some((action, _)) => Decision::Send {
            action,
            payload: command.payload.clone(),
        },
        None => {
            let why = format!(
                "{} is not an OCPP {} action a CSMS sends",
                command.action,
                version.label()
            );
            failed(command, "NotSupported", why, now)
        }
    }
}

/// Whether the station has configuration waiting (MaEVe settings or
/// certificates not applied yet): it is answered `Pending` at boot.
pub fn holds_boot(outbox: &[CommandRecord]) -> bool {
    outbox.iter().any(|command| {
        command.status == CommandStatus::Pending
            && WorkItem::carried_by(command)
            && WorkItem::of(command).is_some_and(|item| item.configures())
    })
}

/// The record of a command whose CALL was in flight when the connection
/// closed: an immediate one fails (it must not fire on a later
/// connection); a configuration-like one stays pending for the next boot.
pub fn connection_closed(command: &CommandRecord, now: DateTime<Utc>) -> Option<CommandRecord> {
    if command.class != DeliveryClass::Immediate || command.status.is_final() {
        return None;
    }
    let mut failed = command.clone();
    failed.settle(
        CommandStatus::Failed,
        None,
        Some(outcome::error(
            "ConnectionClosed",
            "the connection closed before the station answered".into(),
        )),
        now,
    );
    Some(failed)
}

/// A command settled by the station's answer, and what the answer teaches.
#[derive(Debug)]
pub struct Answered {
    /// The settled record, to store.
    pub record: CommandRecord,
    /// What the answer says about the station's configuration.
    pub learnt: Vec<ReportedVariable>,
    /// A setting was answered `RebootRequired`: reset once the queue is empty.
    pub reset_needed: bool,
}

/// Settles `command`, sent as `action` to a station of `version`, with the
/// station's answer. `sent` is the payload a MaEVe setting was sent with
/// (its command's own payload is the version-neutral item): it names the
/// variable a SetVariables result is for, and the value the station took.
pub fn answered(
    mut command: CommandRecord,
    version: Version,
    action: &'static str,
    sent: Option<&Value>,
    answer: CallOutcome,
    now: DateTime<Utc>,
    timeout_secs: u64,
) -> Answered {
    if !WorkItem::carried_by(&command) {
        outcome::settle(&mut command, answer, now, timeout_secs);
        let learnt = reported::from_command(&command, now);
        return Answered {
            record: command,
            learnt,
            reset_needed: false,
        };
    }
    // A MaEVe setting the station took is its configuration now.
    let learnt = match (&answer, sent) {
        (CallOutcome::Result(response), Some(sent)) => {
            reported::from_set(action, sent, response, now)
        }
        _ => Vec::new(),
    };
    let sent = sent.unwrap_or(&Value::Null);
    let delivery = work_item::settle(
        &mut command,
        version,
        action,
        sent,
        answer,
        now,
        timeout_secs,
    );
    // Only a setting is answered RebootRequired.
    let reset_needed = delivery.status == DeliveryStatus::RebootRequired;
    Answered {
        record: command,
        learnt,
        reset_needed,
    }
}

/// What the connection has done toward a reboot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebootState {
    /// A setting was answered `RebootRequired` and no reset was sent since.
    pub reset_needed: bool,
    /// A reset or a boot trigger was sent since the last boot.
    pub asked: bool,
}

/// Why the connection sends a CALL of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// The reset that applies settings answered `RebootRequired`.
    Reset,
    /// The trigger that makes a configured `Pending` station boot again.
    Reboot,
}

/// Once nothing is queued or in flight: the CALL that follows, if any
/// (`state` is updated as if it was sent).
pub fn after_work(
    state: &mut RebootState,
    boot: Option<BootVerdict>,
    version: Version,
) -> Option<(FollowUp, &'static str, Value)> {
    if state.reset_needed {
        // The reset reboots the station: no separate boot trigger after it.
        state.reset_needed = false;
        state.asked = true;
        let (action, payload) = work_item::reset(version);
        return Some((FollowUp::Reset, action, payload));
    }
    if boot == Some(BootVerdict::Pending) && !state.asked {
        state.asked = true;
        let (action, payload) = work_item::reboot_trigger();
        return Some((FollowUp::Reboot, action, payload));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
    }

    fn command(action: &str, class: DeliveryClass) -> CommandRecord {
        let mut command = CommandRecord::pending(
            "CS1",
            "ocpp",
            action,
            Version::V201,
            json!({}),
            class,
            at(0),
        );
        command.expires_at = Some(at(60));
        command
    }

    #[test]
    fn boot_state_gates_each_class() {
        let reset = command("Reset", DeliveryClass::Immediate);
        let set = command("SetVariables", DeliveryClass::Configuration);
        let v = Version::V201;
        assert_eq!(decide(&reset, v, None, at(1)), Decision::Hold);
        assert_eq!(decide(&set, v, None, at(1)), Decision::Hold);
        assert_eq!(
            decide(&reset, v, Some(BootVerdict::Pending), at(1)),
            Decision::Hold
        );
        assert_eq!(
            decide(&set, v, Some(BootVerdict::Pending), at(1)),
            Decision::Send {
                action: "SetVariables",
                payload: json!({})
            }
        );
        assert_eq!(
            decide(&reset, v, Some(BootVerdict::Accepted), at(1)),
            Decision::Send {
                action: "Reset",
                payload: json!({})
            }
        );
    }

    #[test]
    fn expired_and_foreign_commands_are_settled_unsent() {
        let reset = command("Reset", DeliveryClass::Immediate);
        let Decision::Settle(expired) =
            decide(&reset, Version::V201, Some(BootVerdict::Accepted), at(60))
        else {
            panic!("not settled")
        };
        assert_eq!(expired.status, CommandStatus::Expired);
        let Decision::Settle(failed) =
            decide(&reset, Version::V16, Some(BootVerdict::Accepted), at(1))
        else {
            panic!("not settled")
        };
        assert_eq!(failed.error.unwrap().code, "VersionChanged");
        assert_eq!(
            decide(&expired, Version::V201, None, at(61)),
            Decision::Done
        );
    }

    #[test]
    fn a_closed_connection_fails_only_immediate_commands() {
        let reset = command("Reset", DeliveryClass::Immediate);
        let set = command("SetVariables", DeliveryClass::Configuration);
        assert_eq!(
            connection_closed(&reset, at(2))
                .unwrap()
                .error
                .unwrap()
                .code,
            "ConnectionClosed"
        );
        assert_eq!(connection_closed(&set, at(2)), None);
    }

    fn item(item: WorkItem) -> CommandRecord {
        item.command("CS1", at(0))
    }

    #[test]
    fn work_items_are_written_for_the_connection_and_gated_by_kind() {
        let setting = item(WorkItem::Setting {
            key: "HeartbeatInterval".into(),
            value: "60".into(),
        });
        let trigger = item(WorkItem::Trigger {
            trigger: crate::store::TriggerMessage::StatusNotification,
            evse_id: None,
            connector_id: None,
        });
        let pending = Some(BootVerdict::Pending);
        let accepted = Some(BootVerdict::Accepted);
        assert_eq!(decide(&setting, Version::V16, None, at(1)), Decision::Hold);
        assert_eq!(
            decide(&setting, Version::V16, pending, at(1)),
            Decision::Send {
                action: "ChangeConfiguration",
                payload: json!({"key": "HeartbeatInterval", "value": "60"})
            }
        );
        assert_eq!(
            decide(&trigger, Version::V201, pending, at(1)),
            Decision::Hold
        );
        assert!(matches!(
            decide(&trigger, Version::V201, accepted, at(1)),
            Decision::Send {
                action: "TriggerMessage",
                ..
            }
        ));
        // No expiry, whatever the wait; written for the version it meets.
        let variable = item(WorkItem::Setting {
            key: "OCPPCommCtrlr/HeartbeatInterval".into(),
            value: "60".into(),
        });
        assert!(matches!(
            decide(&variable, Version::V201, accepted, at(1_000_000)),
            Decision::Send {
                action: "SetVariables",
                ..
            }
        ));
        // A 2.0.1 name cannot go to a 1.6 station: settled, never sent.
        let Decision::Settle(refused) = decide(&variable, Version::V16, accepted, at(1)) else {
            panic!("not settled")
        };
        assert_eq!(refused.error.unwrap().code, "NotSupported");
        assert!(holds_boot(&[setting.clone(), trigger.clone()]));
        assert!(!holds_boot(&[trigger]));
    }

    #[test]
    fn a_reset_follows_reboot_required_settings_and_a_pending_station_is_asked_to_boot() {
        let mut state = RebootState {
            reset_needed: true,
            asked: false,
        };
        let pending = Some(BootVerdict::Pending);
        let (why, action, _) = after_work(&mut state, pending, Version::V16).unwrap();
        assert_eq!((why, action), (FollowUp::Reset, "Reset"));
        assert_eq!(after_work(&mut state, pending, Version::V16), None);

        let mut state = RebootState::default();
        let (why, action, _) = after_work(&mut state, pending, Version::V201).unwrap();
        assert_eq!((why, action), (FollowUp::Reboot, "TriggerMessage"));
        assert_eq!(after_work(&mut state, pending, Version::V201), None);
        let mut state = RebootState::default();
        assert_eq!(
            after_work(&mut state, Some(BootVerdict::Accepted), Version::V201),
            None
        );
    }

    #[test]
    fn answers_settle_commands_and_say_when_a_reset_is_due() {
        let setting = item(WorkItem::Setting {
            key: "HeartbeatInterval".into(),
            value: "60".into(),
        });
        let sent = json!({"key": "HeartbeatInterval", "value": "60"});
        let answer = CallOutcome::Result(json!({"status": "RebootRequired"}));
        let done = answered(
            setting,
            Version::V16,
            "ChangeConfiguration",
            Some(&sent),
            answer,
            at(1),
            30,
        );
        assert!(done.reset_needed);
        assert_eq!(done.record.status, CommandStatus::Accepted);
        assert_eq!(done.record.action, "ChangeConfiguration");
        assert_eq!(done.learnt.len(), 1, "the station took the value");

        let reset = command("Reset", DeliveryClass::Immediate);
        let answer = CallOutcome::Result(json!({"status": "Rejected"}));
        let done = answered(reset, Version::V201, "Reset", None, answer, at(1), 30);
        assert!(!done.reset_needed);
        assert_eq!(done.record.status, CommandStatus::Rejected);
    }
}
