//! The actor's command delivery: the outbox loaded at boot, each command
//! taken as the [`Courier`](crate::station::courier::Courier) says (its CALL
//! queued in the session, or its record stored), answers stored with what
//! they taught, waiters told, and the follow-up CALL once the work is done.

use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use chrono::Utc;

use super::{StationActor, Tag};
use crate::station::courier::{Answer, Take};
use crate::station::handlers::{BootVerdict, CommandWrite};
use crate::station::in_flight::{self, Waiter};
use crate::station::session::{CallOutcome, OutboundCall};
use crate::store::{CommandRecord, CommandStatus, ReportedVariable, Store};

impl StationActor {
    /// After a BootNotification: deliver what the verdict allows, from the
    /// outbox as the boot's handler `read` it (with what was held here
    /// since), or from the store when there is no such read.
    pub(super) fn on_boot(
        &mut self,
        verdict: BootVerdict,
        read: Option<Vec<CommandRecord>>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        match verdict {
            BootVerdict::Accepted => self.session.set_booted(),
            BootVerdict::Pending => self.session.set_boot_pending(),
        }
        let pending = self.courier.booted_with(verdict, read);
        if let Some(commands) = pending {
            return self.take_at_boot(commands, ctx);
        }
        let store = self.engine.env.store.clone();
        let id = self.station.id.clone();
        ctx.spawn(async move { store.outbox(&id).await }.into_actor(self).map(
            |commands, act, ctx| match commands {
                Ok(commands) => act.take_at_boot(commands, ctx),
                Err(e) => {
                    tracing::error!(error = %e, station = %act.station.id, "cannot load the command outbox at boot");
                    act.after_work(ctx);
                }
            },
        ));
    }

    fn take_at_boot(&mut self, commands: Vec<CommandRecord>, ctx: &mut ws::WebsocketContext<Self>) {
        for command in commands {
            self.take_command(command, None, ctx);
        }
        // A Pending station whose configuration was applied meanwhile
        // is asked to boot again at once.
        self.after_work(ctx);
    }

    /// Takes a stored command: sends it when the boot state allows,
    /// settles it when it may never be sent, or leaves it pending.
    pub(super) fn take_command(
        &mut self,
        command: CommandRecord,
        waiter: Option<Waiter>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let id = command.id.clone();
        match self.courier.take(command, waiter, Utc::now()) {
            Take::Nothing => {}
            Take::Store(record) => {
                self.store_command(*record, Vec::new(), Noted::default(), Vec::new(), ctx)
            }
            Take::Send(call) => {
                if !self.queue_call(call, ctx) {
                    // The command stays pending: sent at the next boot while unexpired.
                    tracing::warn!(station = %self.station.id, command = %id, "CSMS call queue full; command stays pending");
                    self.courier.not_queued(&id);
                }
            }
        }
    }

    /// Queues a CALL in the session; false when its queue is full.
    fn queue_call(
        &mut self,
        call: OutboundCall<Tag>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) -> bool {
        let mut effects = Vec::new();
        let queued = self
            .session
            .queue_call(Instant::now(), call, &mut effects)
            .is_ok();
        self.run(effects, ctx);
        queued
    }

    /// Stores a settled command, what its answer taught about the
    /// station's configuration and the runtime record it changed, then
    /// tells its waiters (who may read all of it): those known at the
    /// answer from the write itself, so that they hear the outcome even
    /// when the station left meanwhile, and any that came since from the
    /// actor.
    fn store_command(
        &mut self,
        record: CommandRecord,
        learnt: Vec<ReportedVariable>,
        Noted {
            runtime_changed,
            write,
        }: Noted,
        waiters: Vec<Waiter>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let store = self.engine.env.store.clone();
        let station = self.station.clone();
        // The command first: once a reader sees the value a setting taught,
        // it no longer sees the setting pending in the outbox.
        let stored = async move {
            if let Err(e) = store.update_command(&record).await {
                tracing::error!(error = %e, station = %station.id, command = %record.id, "cannot record a command's outcome");
            }
            // A station message about this command may read it now.
            drop(write);
            keep_variables(&*store, &station.id, learnt).await;
            if runtime_changed {
                // Copied now, not at the answer: a handler may have changed
                // the record meanwhile.
                let runtime = station.update_runtime(|_| {});
                if let Err(e) = store.set_runtime(&station.id, runtime).await {
                    // Written again with the next runtime write or at close.
                    tracing::warn!(error = %e, station = %station.id, "cannot store runtime state after a command");
                }
            }
            if !waiters.is_empty() {
                // A copy: the actor keeps the record for any waiter that
                // came after the answer.
                in_flight::tell(waiters, record.clone());
            }
            record
        };
        // Off the actor: a station that answers and closes at once (a
        // Reset's reboot) stops the actor before a future of its own ran.
        let written = self.engine.spawn_write(stored);
        ctx.spawn(
            written
                .into_actor(self)
                .map(|written, act, ctx| match written {
                    Ok(record) => {
                        act.courier.stored(record);
                        act.after_work(ctx);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, station = %act.station.id, "a command's store write did not finish");
                    }
                }),
        );
    }

    pub(super) fn on_answered(
        &mut self,
        tag: Tag,
        action: &'static str,
        outcome: CallOutcome,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let timeout = self.engine.limits.call_timeout.as_secs();
        match self
            .courier
            .answered(tag, action, outcome, Utc::now(), timeout)
        {
            Answer::Command(done, waiters) => {
                crate::metrics::command_answered(done.record.status);
                let noted = self.note_answer(&done.record);
                self.store_command(done.record, done.learnt, noted, waiters, ctx);
            }
            Answer::FollowUp(why, outcome) => {
                tracing::info!(station = %self.station.id, ?why, action, ?outcome, "station answered");
                self.after_work(ctx);
            }
            Answer::Unknown => {}
        }
    }

    /// Marks, before the station's next message is handled, that the
    /// command it answered is being stored (a message about that command,
    /// a start linking its remote start or a firmware status, waits for
    /// that before it reads it) and, for an accepted 1.6 remote start, that
    /// it may wait for its transaction (the 1.6 start handler reads the
    /// station's commands only then).
    fn note_answer(&self, record: &CommandRecord) -> Noted {
        let remote_start =
            record.action == "RemoteStartTransaction" && record.status == CommandStatus::Accepted;
        if remote_start {
            self.station
                .update_runtime(|r| r.remote_start_accepted_at = Some(Utc::now()));
        }
        Noted {
            runtime_changed: remote_start,
            write: Some(self.station.command_write()),
        }
    }

    /// Once nothing is queued or in flight: the reset or boot trigger the
    /// outbox policy asks for.
    fn after_work(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(call) = self.courier.follow_up(self.session.is_idle()) {
            self.queue_call(call, ctx);
        }
    }
}

/// What an answer changed beside its command: whether the runtime record
/// (stored with the command), and the command's write in progress.
#[derive(Default)]
struct Noted {
    runtime_changed: bool,
    write: Option<CommandWrite>,
}

/// Stores what a station's answer taught about its configuration; a
/// failure is logged (the answer itself is recorded apart).
async fn keep_variables(store: &dyn Store, station: &str, learnt: Vec<ReportedVariable>) {
    if learnt.is_empty() {
        return;
    }
    if let Err(e) = store.put_variables(station, learnt).await {
        tracing::warn!(error = %e, %station, "cannot store reported variables");
    }
}
