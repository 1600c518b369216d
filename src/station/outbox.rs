//! The delivery policy for stored commands: whether one may go to the
//! station now, must wait, or is settled without being sent. Pure: the
//! actor asks, then does what the answer says.
//!
//! * Nothing is sent before the station's BootNotification.
//! * A station answered `Pending` gets configuration-like commands only;
//!   immediate ones wait for an accepted boot.
//! * A pending command past its expiry is `Expired` and never sent.
//! * A command written for another OCPP version than the connection's
//!   (the station came back speaking another one) fails instead of being
//!   sent in a shape the station cannot read.

use chrono::{DateTime, Utc};

use super::handlers::BootVerdict;
use super::operations::{catalog, outcome};
use crate::ocpp::Version;
use std::collections::HashSet;

use super::commands::Planned;
use crate::store::{
    CommandRecord, CommandStatus, Delivery, DeliveryClass, DeliveryStatus, WorkItemRef,
};

/// What to do with a command now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send it as this action (its static name).
    Send(&'static str),
    /// Keep it pending: the boot state does not allow it yet.
    Hold,
    /// It is settled without being sent: store this record.
    Settle(Box<CommandRecord>),
    /// It was already settled: nothing to do.
    Done,
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
    if command.version != version {
        let mut failed = command.clone();
        let why = format!(
            "written for OCPP {}, the station now speaks OCPP {}",
            command.version.label(),
            version.label()
        );
        failed.settle(
            CommandStatus::Failed,
            None,
            Some(outcome::error("VersionChanged", why)),
            now,
        );
        return Decision::Settle(Box::new(failed));
    }
    let allowed = match command.class {
        DeliveryClass::Configuration => boot.is_some(),
        DeliveryClass::Immediate => boot == Some(BootVerdict::Accepted),
    };
    if !allowed {
        return Decision::Hold;
    }
    match catalog::find(version, &command.action) {
        Some((action, _)) => Decision::Send(action),
        None => {
            let mut failed = command.clone();
            let why = format!(
                "{} is not an OCPP {} action a CSMS sends",
                command.action,
                version.label()
            );
            failed.settle(
                CommandStatus::Failed,
                None,
                Some(outcome::error("NotSupported", why)),
                now,
            );
            Decision::Settle(Box::new(failed))
        }
    }
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

/// What the answers to one delivery request add up to (queued work).
type Report = Vec<(WorkItemRef, Delivery)>;

/// The records still pending and not already queued on this connection,
/// each with the item it is.
pub fn sendable<R>(
    records: Vec<R>,
    queued: &HashSet<WorkItemRef>,
    identify: impl Fn(&R) -> (WorkItemRef, &Delivery),
) -> Vec<(WorkItemRef, R)> {
    records
        .into_iter()
        .filter_map(|record| {
            let (item, delivery) = identify(&record);
            let open = delivery.status == DeliveryStatus::Pending && !queued.contains(&item);
            open.then_some((item, record))
        })
        .collect()
}

/// Plans a CALL per record when `allowed`, else holds the record back
/// (reported with its current delivery).
pub fn plan_or_hold<R>(
    records: Vec<(WorkItemRef, R)>,
    allowed: bool,
    planned: &mut Vec<Planned>,
    held: &mut Report,
    plan: impl Fn(&R) -> Planned,
    delivery: impl Fn(R) -> Delivery,
) {
    for (item, record) in records {
        if allowed {
            planned.push(plan(&record));
        } else {
            held.push((item, delivery(record)));
        }
    }
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
            Decision::Send("SetVariables")
        );
        assert_eq!(
            decide(&reset, v, Some(BootVerdict::Accepted), at(1)),
            Decision::Send("Reset")
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
}
