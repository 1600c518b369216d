//! The commands one connection has taken: those in the session's queue or
//! in flight, who waits for each one's outcome, and the ids settled here
//! recently (so a stale outbox read cannot send one again). Pure
//! bookkeeping: the actor asks and records, the store is its business.

use std::collections::{HashMap, VecDeque};

use tokio::sync::oneshot;

use crate::store::CommandRecord;

/// Ids of commands settled on a connection that are remembered.
const REMEMBERED_SETTLED: usize = 256;

/// Who waits for a command's settled record.
pub type Waiter = oneshot::Sender<CommandRecord>;

/// The connection's commands.
#[derive(Debug, Default)]
pub struct InFlight {
    queued: HashMap<String, CommandRecord>,
    waiters: HashMap<String, Vec<Waiter>>,
    settled: VecDeque<String>,
}

impl InFlight {
    /// Notes that `waiter` waits for command `id`.
    pub fn wait_for(&mut self, id: &str, waiter: Waiter) {
        self.waiters.entry(id.to_owned()).or_default().push(waiter);
    }

    /// True when the command is queued, in flight or settled here: taking
    /// it again would send it twice.
    pub fn knows(&self, id: &str) -> bool {
        self.queued.contains_key(id) || self.settled.iter().any(|s| s == id)
    }

    /// The command went into the session's queue.
    pub fn queued(&mut self, command: CommandRecord) {
        self.queued.insert(command.id.clone(), command);
    }

    /// The session could not take the command (it stays pending in the
    /// store): it is forgotten, and its waiters are let go to read it as it
    /// stands.
    pub fn not_queued(&mut self, id: &str) {
        self.queued.remove(id);
        self.waiters.remove(id);
    }

    /// The command whose CALL was answered, no longer in flight.
    pub fn answered(&mut self, id: &str) -> Option<CommandRecord> {
        self.queued.remove(id)
    }

    /// The queued or in-flight command `id`.
    pub fn get(&self, id: &str) -> Option<&CommandRecord> {
        self.queued.get(id)
    }

    /// Nothing queued or in flight.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// The command was settled here (its record is being stored).
    pub fn settled(&mut self, id: &str) {
        self.settled.push_back(id.to_owned());
        if self.settled.len() > REMEMBERED_SETTLED {
            self.settled.pop_front();
        }
    }

    /// Hands the settled record to whoever waits for it.
    pub fn tell(&mut self, record: CommandRecord) {
        tell(self.take_waiters(&record.id), record);
    }

    /// Who waits for command `id`, no longer waiting here: an answered
    /// command's waiters go with its store write, which outlives the
    /// connection when the station leaves right after answering.
    pub fn take_waiters(&mut self, id: &str) -> Vec<Waiter> {
        self.waiters.remove(id).unwrap_or_default()
    }

    /// Lets every waiter go (the connection ends; they read the store).
    pub fn forget_waiters(&mut self) {
        self.waiters.clear();
    }
}

/// Hands the settled `record` to each of `waiters`: the last gets the
/// record itself, the others copies (a waiter gone is no matter: it reads
/// the store).
pub fn tell(mut waiters: Vec<Waiter>, record: CommandRecord) {
    let last = waiters.pop();
    for waiter in waiters {
        let _ = waiter.send(record.clone());
    }
    if let Some(waiter) = last {
        let _ = waiter.send(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CommandStatus;
    use chrono::Utc;

    fn command() -> CommandRecord {
        CommandRecord::example_reset(Utc::now())
    }

    #[test]
    fn a_command_is_taken_once_and_its_waiters_hear_the_outcome() {
        let mut in_flight = InFlight::default();
        let mut c = command();
        let (tx, mut rx) = oneshot::channel();
        in_flight.wait_for(&c.id, tx);
        let (second, mut second_rx) = oneshot::channel();
        in_flight.wait_for(&c.id, second);
        assert!(!in_flight.knows(&c.id));
        in_flight.queued(c.clone());
        assert!(in_flight.knows(&c.id) && !in_flight.is_empty());
        assert_eq!(in_flight.answered(&c.id).as_ref(), Some(&c));
        in_flight.settled(&c.id);
        assert!(in_flight.knows(&c.id), "settled here: not sent again");
        assert!(in_flight.is_empty());
        c.settle(CommandStatus::Accepted, None, None, Utc::now());
        in_flight.tell(c);
        assert_eq!(rx.try_recv().unwrap().status, CommandStatus::Accepted);
        assert_eq!(
            second_rx.try_recv().unwrap().status,
            CommandStatus::Accepted
        );
    }

    #[test]
    fn only_the_newest_settled_ids_are_remembered() {
        let mut in_flight = InFlight::default();
        for n in 0..=REMEMBERED_SETTLED {
            in_flight.settled(&n.to_string());
        }
        assert!(!in_flight.knows("0"));
        assert!(in_flight.knows(&REMEMBERED_SETTLED.to_string()));
    }

    #[test]
    fn waiters_of_a_command_not_queued_are_let_go() {
        let mut in_flight = InFlight::default();
        let c = command();
        let (tx, mut rx) = oneshot::channel();
        in_flight.wait_for(&c.id, tx);
        in_flight.queued(c.clone());
        in_flight.not_queued(&c.id);
        assert!(!in_flight.knows(&c.id), "it may be taken again");
        assert!(rx.try_recv().is_err());
        in_flight.tell(c);
        assert!(matches!(
            rx.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }
}
