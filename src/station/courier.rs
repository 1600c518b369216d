//! The command side of one station connection, without I/O: the boot state
//! commands are gated on, what the connection has taken ([`InFlight`]),
//! the CALL each command goes out as, its record once answered, and the
//! reset or boot trigger that follows the work. The decisions are
//! [`outbox`]'s; this keeps the state they are made on, so the actor only
//! queues the CALLs, stores the records and tells the waiters.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::handlers::BootVerdict;
use super::in_flight::{InFlight, Waiter};
use super::operations::work_item::WorkItem;
use super::outbox::{self, Answered, Decision, FollowUp, RebootState};
use super::session::{CallOutcome, OutboundCall};
use crate::ocpp::Version;
use crate::store::CommandRecord;

/// What a CSMS CALL was for, so its answer can be recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Purpose {
    /// A stored command, by id.
    Command(String),
    /// A CALL the connection sends of its own (reset, boot trigger).
    FollowUp(FollowUp),
}

/// The session's tag for a CSMS CALL.
#[derive(Debug)]
pub struct Tag {
    purpose: Purpose,
    /// The payload of a MaEVe setting, kept to learn the value the station took.
    sent: Option<Value>,
}

/// What to do with a command taken.
#[derive(Debug)]
pub enum Take {
    /// Queue this CALL; if the session cannot, call [`Courier::not_queued`].
    Send(OutboundCall<Tag>),
    /// Store this settled record, then hand it to [`Courier::stored`].
    Store(Box<CommandRecord>),
    /// Nothing: it waits for the boot state to allow it, or is known here.
    Nothing,
}

/// What the station's answer to a CALL was for.
// Moved once per answer; boxing the command's record would cost an
// allocation per command for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Answer {
    /// A command: its settled record to store, what the answer taught,
    /// and who waits to hear the record once it is stored.
    Command(Answered, Vec<Waiter>),
    /// A follow-up the connection sent of its own.
    FollowUp(FollowUp, CallOutcome),
    /// A command no longer known here (settled meanwhile).
    Unknown,
}

/// The command state of one connection.
#[derive(Debug)]
pub struct Courier {
    version: Version,
    boot: Option<BootVerdict>,
    commands: InFlight,
    reboot: RebootState,
    /// Commands held back since the last boot (not booted, or Pending):
    /// the boot's handler may have read the outbox before they were
    /// stored, so they join that read at the boot.
    held: Vec<CommandRecord>,
    /// More were held than [`MAX_HELD`]: the next boot reads the store.
    held_overflow: bool,
}

/// Commands kept in memory between boots; beyond it, the store is read.
const MAX_HELD: usize = 64;

impl Courier {
    /// A connection speaking `version`, not booted yet.
    pub fn new(version: Version) -> Self {
        Courier {
            version,
            boot: None,
            commands: InFlight::default(),
            reboot: RebootState::default(),
            held: Vec::new(),
            held_overflow: false,
        }
    }

    /// The station booted (or came back accepted) with `verdict`.
    pub fn booted(&mut self, verdict: BootVerdict) {
        self.boot = Some(verdict);
        self.reboot.asked = false;
    }

    /// [`Courier::booted`], with the outbox as the boot's handler `read`
    /// it: the commands to take now, that read and every command held
    /// since (each once, in that order). None when the store is to be
    /// read instead: there was no read, or too many were held to keep.
    pub fn booted_with(
        &mut self,
        verdict: BootVerdict,
        read: Option<Vec<CommandRecord>>,
    ) -> Option<Vec<CommandRecord>> {
        self.booted(verdict);
        let held = std::mem::take(&mut self.held);
        let overflow = std::mem::take(&mut self.held_overflow);
        let mut commands = read.filter(|_| !overflow)?;
        for command in held {
            if !commands.iter().any(|c| c.id == command.id) {
                commands.push(command);
            }
        }
        Some(commands)
    }

    fn hold(&mut self, command: CommandRecord) {
        if self.held.iter().any(|c| c.id == command.id) {
            return;
        }
        if self.held.len() < MAX_HELD {
            self.held.push(command);
        } else {
            self.held_overflow = true;
        }
    }

    /// Takes a stored command (and who waits for it): the CALL to send
    /// when the boot state allows it, the record to store when it may never
    /// be sent, or nothing.
    pub fn take(
        &mut self,
        command: CommandRecord,
        waiter: Option<Waiter>,
        now: DateTime<Utc>,
    ) -> Take {
        if let Some(waiter) = waiter {
            self.commands.wait_for(&command.id, waiter);
        }
        if self.commands.knows(&command.id) {
            return Take::Nothing;
        }
        match outbox::decide(&command, self.version, self.boot, now) {
            Decision::Done => {
                self.commands.tell(command);
                Take::Nothing
            }
            Decision::Hold => {
                self.hold(command);
                Take::Nothing
            }
            Decision::Settle(record) => {
                self.commands.settled(&record.id);
                Take::Store(record)
            }
            Decision::Send { action, payload } => {
                // A MaEVe setting's payload teaches the value the station took.
                let setting = matches!(action, "SetVariables" | "ChangeConfiguration");
                let sent = (setting && WorkItem::carried_by(&command)).then(|| payload.clone());
                let purpose = Purpose::Command(command.id.clone());
                self.commands.queued(command);
                Take::Send(OutboundCall {
                    action,
                    payload,
                    tag: Tag { purpose, sent },
                })
            }
        }
    }

    /// The session could not queue the CALL for command `id`: it stays
    /// pending in the store (sent at the next boot while unexpired).
    pub fn not_queued(&mut self, id: &str) {
        self.commands.not_queued(id);
    }

    /// The station answered the CALL tagged `tag`.
    pub fn answered(
        &mut self,
        tag: Tag,
        action: &'static str,
        outcome: CallOutcome,
        now: DateTime<Utc>,
        timeout_secs: u64,
    ) -> Answer {
        let id = match tag.purpose {
            Purpose::FollowUp(why) => return Answer::FollowUp(why, outcome),
            Purpose::Command(id) => id,
        };
        let Some(command) = self.commands.answered(&id) else {
            return Answer::Unknown;
        };
        let sent = tag.sent.as_ref();
        let done = outbox::answered(
            command,
            self.version,
            action,
            sent,
            outcome,
            now,
            timeout_secs,
        );
        self.reboot.reset_needed |= done.reset_needed;
        self.commands.settled(&id);
        Answer::Command(done, self.commands.take_waiters(&id))
    }

    /// A settled record was stored: its waiters hear it.
    pub fn stored(&mut self, record: CommandRecord) {
        self.commands.tell(record);
    }

    /// The reset or boot trigger to send once the work is done, if any;
    /// `session_idle`: the session has nothing queued or in flight.
    pub fn follow_up(&mut self, session_idle: bool) -> Option<OutboundCall<Tag>> {
        if !session_idle || !self.commands.is_empty() {
            return None;
        }
        let (why, action, payload) = outbox::after_work(&mut self.reboot, self.boot, self.version)?;
        Some(OutboundCall {
            action,
            payload,
            tag: Tag {
                purpose: Purpose::FollowUp(why),
                sent: None,
            },
        })
    }

    /// The connection closed with `in_flight` unanswered: the record to
    /// store for it (an immediate command fails, so it never fires late;
    /// the rest stay pending for the next boot). Every waiter is let go.
    pub fn connection_closed(
        &mut self,
        in_flight: Option<&Tag>,
        now: DateTime<Utc>,
    ) -> Option<CommandRecord> {
        let interrupted = match in_flight.map(|tag| &tag.purpose) {
            Some(Purpose::Command(id)) => self
                .commands
                .get(id)
                .and_then(|command| outbox::connection_closed(command, now)),
            _ => None,
        };
        if let Some(failed) = &interrupted {
            self.commands.tell(failed.clone());
        }
        self.commands.forget_waiters();
        interrupted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::station::in_flight;
    use crate::store::CommandStatus;
    use serde_json::json;
    use tokio::sync::oneshot;

    fn reset() -> CommandRecord {
        CommandRecord::example_reset(Utc::now())
    }

    fn accepted() -> CallOutcome {
        CallOutcome::Result(json!({"status": "Accepted"}))
    }

    #[test]
    fn a_command_waits_for_the_boot_then_goes_once_and_is_settled() {
        let mut courier = Courier::new(Version::V201);
        let command = reset();
        let id = command.id.clone();
        let (tx, mut rx) = oneshot::channel();
        let held = courier.take(command.clone(), Some(tx), Utc::now());
        assert!(matches!(held, Take::Nothing), "not booted: held");
        courier.booted(BootVerdict::Accepted);
        let Take::Send(call) = courier.take(command.clone(), None, Utc::now()) else {
            panic!("accepted: sent");
        };
        assert_eq!(call.action, "Reset");
        assert!(matches!(
            courier.take(command, None, Utc::now()),
            Take::Nothing
        ));
        assert!(courier.follow_up(true).is_none(), "a command is in flight");
        let Answer::Command(done, waiters) =
            courier.answered(call.tag, "Reset", accepted(), Utc::now(), 30)
        else {
            panic!("a command's answer");
        };
        assert_eq!(done.record.status, CommandStatus::Accepted);
        assert_eq!(waiters.len(), 1, "the waiter goes with the answer");
        in_flight::tell(waiters, done.record.clone());
        courier.stored(done.record);
        assert_eq!(rx.try_recv().unwrap().id, id);
        assert!(
            courier.follow_up(true).is_none(),
            "accepted, nothing to follow"
        );
    }

    fn reset_numbered(n: usize) -> CommandRecord {
        let mut command = reset();
        command.id = format!("{}-{n}", command.id);
        command
    }

    fn ids(commands: &[CommandRecord]) -> Vec<&str> {
        commands.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn a_command_held_before_the_boot_joins_the_boot_handlers_earlier_read() {
        // The handler read the outbox (finding `stored`); `late` was stored
        // and routed here after that read, before the boot was applied.
        let mut courier = Courier::new(Version::V201);
        let (stored, late) = (reset_numbered(1), reset_numbered(2));
        assert!(matches!(
            courier.take(late.clone(), None, Utc::now()),
            Take::Nothing
        ));
        assert!(matches!(
            courier.take(stored.clone(), None, Utc::now()),
            Take::Nothing
        ));
        let pending = courier
            .booted_with(BootVerdict::Accepted, Some(vec![stored.clone()]))
            .expect("taken from the read");
        assert_eq!(ids(&pending), [stored.id.as_str(), late.id.as_str()]);
        // Held once: the next boot reads afresh.
        let next = courier.booted_with(BootVerdict::Accepted, Some(Vec::new()));
        assert_eq!(next, Some(Vec::new()));
    }

    #[test]
    fn a_command_held_by_a_pending_boot_joins_the_next_boot() {
        let mut courier = Courier::new(Version::V201);
        assert_eq!(
            courier.booted_with(BootVerdict::Pending, Some(Vec::new())),
            Some(Vec::new())
        );
        let waiting = reset();
        assert!(matches!(
            courier.take(waiting.clone(), None, Utc::now()),
            Take::Nothing
        ));
        let pending = courier.booted_with(BootVerdict::Accepted, Some(Vec::new()));
        assert_eq!(pending.as_deref().map(ids), Some(vec![waiting.id.as_str()]));
    }

    #[test]
    fn too_many_held_commands_or_no_read_send_the_boot_to_the_store() {
        let mut courier = Courier::new(Version::V201);
        for n in 0..=MAX_HELD {
            courier.take(reset_numbered(n), None, Utc::now());
        }
        assert_eq!(
            courier.booted_with(BootVerdict::Accepted, Some(Vec::new())),
            None
        );
        let mut courier = Courier::new(Version::V201);
        courier.take(reset(), None, Utc::now());
        assert_eq!(courier.booted_with(BootVerdict::Accepted, None), None);
    }

    #[test]
    fn a_pending_station_is_asked_to_boot_again_once_idle() {
        let mut courier = Courier::new(Version::V16);
        courier.booted(BootVerdict::Pending);
        assert!(courier.follow_up(false).is_none(), "session busy");
        let call = courier.follow_up(true).expect("boot trigger");
        assert_eq!(call.action, "TriggerMessage");
        assert!(courier.follow_up(true).is_none(), "asked once per boot");
        let answer = courier.answered(call.tag, "TriggerMessage", accepted(), Utc::now(), 30);
        assert!(matches!(answer, Answer::FollowUp(FollowUp::Reboot, _)));
    }

    #[test]
    fn an_immediate_command_in_flight_fails_when_the_connection_closes() {
        let mut courier = Courier::new(Version::V201);
        courier.booted(BootVerdict::Accepted);
        let (tx, mut rx) = oneshot::channel();
        let Take::Send(call) = courier.take(reset(), Some(tx), Utc::now()) else {
            panic!("sent");
        };
        let failed = courier
            .connection_closed(Some(&call.tag), Utc::now())
            .expect("an immediate command fails");
        assert_eq!(failed.status, CommandStatus::Failed);
        assert_eq!(rx.try_recv().unwrap().status, CommandStatus::Failed);
    }

    #[test]
    fn a_command_the_session_cannot_queue_stays_pending_and_can_be_taken_again() {
        let mut courier = Courier::new(Version::V201);
        courier.booted(BootVerdict::Accepted);
        let command = reset();
        let (tx, mut rx) = oneshot::channel();
        assert!(matches!(
            courier.take(command.clone(), Some(tx), Utc::now()),
            Take::Send(_)
        ));
        courier.not_queued(&command.id);
        assert!(matches!(
            rx.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert!(matches!(
            courier.take(command, None, Utc::now()),
            Take::Send(_)
        ));
    }
}
