//! The actor's command delivery: the outbox loaded at boot, each command
//! taken as the outbox policy decides, answers settled and stored, waiters
//! told, and the reset or boot trigger once the queue is empty. The
//! decisions are `outbox`'s and the bookkeeping `in_flight`'s; this is
//! where the actor carries them out.

use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use chrono::Utc;

use super::{Purpose, StationActor, Tag};
use crate::station::handlers::BootVerdict;
use crate::station::in_flight::Waiter;
use crate::station::operations::work_item::WorkItem;
use crate::station::outbox::{self, Decision};
use crate::station::session::{CallOutcome, OutboundCall};
use crate::store::{CommandRecord, ReportedVariable, Store};

impl StationActor {
    /// After a BootNotification: deliver what the verdict allows.
    pub(super) fn on_boot(&mut self, verdict: BootVerdict, ctx: &mut ws::WebsocketContext<Self>) {
        self.boot = Some(verdict);
        self.reboot.asked = false;
        let store = self.engine.env.store.clone();
        let id = self.station.id.clone();
        ctx.spawn(async move { store.outbox(&id).await }.into_actor(self).map(
            |commands, act, ctx| {
                match commands {
                    Ok(commands) => {
                        for command in commands {
                            act.take_command(command, None, ctx);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, station = %act.station.id, "cannot load the command outbox at boot"),
                }
                // A Pending station whose configuration was applied meanwhile
                // is asked to boot again at once.
                act.after_work(ctx);
            },
        ));
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
        if let Some(waiter) = waiter {
            self.commands.wait_for(&id, waiter);
        }
        if self.commands.knows(&id) {
            return;
        }
        match outbox::decide(&command, self.version(), self.boot, Utc::now()) {
            Decision::Done => self.commands.tell(command),
            Decision::Hold => {}
            Decision::Settle(record) => self.store_command(*record, Vec::new(), ctx),
            Decision::Send { action, payload } => {
                // A MaEVe setting's payload teaches the value the station took.
                let setting = matches!(action, "SetVariables" | "ChangeConfiguration");
                let sent = (setting && WorkItem::carried_by(&command)).then(|| payload.clone());
                let purpose = Purpose::Command(id.clone());
                let call = OutboundCall {
                    action,
                    payload,
                    tag: Tag { purpose, sent },
                };
                let mut effects = Vec::new();
                if self
                    .session
                    .queue_call(Instant::now(), call, &mut effects)
                    .is_ok()
                {
                    self.commands.queued(command);
                    self.run(effects, ctx);
                } else {
                    // The session's queue is full: the command stays pending
                    // (sent at the next boot while unexpired).
                    tracing::warn!(station = %self.station.id, command = %id, "CSMS call queue full; command stays pending");
                    self.commands.not_queued(&id);
                }
            }
        }
    }

    /// Stores a settled command and what its answer taught about the
    /// station's configuration, then tells its waiters (who may read both).
    pub(super) fn store_command(
        &mut self,
        record: CommandRecord,
        learnt: Vec<ReportedVariable>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        self.commands.settled(&record.id);
        let store = self.engine.env.store.clone();
        let station = self.station.id.clone();
        // Both at once: they share a commit (group commit).
        let stored = async move {
            let learnt = keep_variables(&*store, &station, learnt);
            let (_, updated) = futures_util::join!(learnt, store.update_command(&record));
            (record, updated)
        };
        ctx.spawn(stored.into_actor(self).map(|(record, result), act, ctx| {
            if let Err(e) = result {
                tracing::error!(error = %e, station = %act.station.id, command = %record.id, "cannot record a command's outcome");
            }
            act.commands.tell(record);
            act.after_work(ctx);
        }));
    }

    pub(super) fn on_answered(
        &mut self,
        tag: Tag,
        action: &'static str,
        outcome: CallOutcome,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        match tag.purpose {
            Purpose::Command(id) => {
                let Some(command) = self.commands.answered(&id) else {
                    return;
                };
                let timeout = self.engine.limits.call_timeout.as_secs();
                let (version, sent) = (self.version(), tag.sent.as_ref());
                let done =
                    outbox::answered(command, version, action, sent, outcome, Utc::now(), timeout);
                self.reboot.reset_needed |= done.reset_needed;
                crate::metrics::command_answered(done.record.status);
                self.store_command(done.record, done.learnt, ctx);
            }
            Purpose::FollowUp(_) => {
                tracing::info!(station = %self.station.id, action, ?outcome, "station answered");
                self.after_work(ctx);
            }
        }
    }

    /// Once nothing is queued or in flight: the reset or boot trigger the
    /// outbox policy asks for.
    pub(super) fn after_work(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if !self.session.is_idle() || !self.commands.is_empty() {
            return;
        }
        let version = self.version();
        let Some((why, action, payload)) = outbox::after_work(&mut self.reboot, self.boot, version)
        else {
            return;
        };
        let call = OutboundCall {
            action,
            payload,
            tag: Tag {
                purpose: Purpose::FollowUp(why),
                sent: None,
            },
        };
        let mut effects = Vec::new();
        if self
            .session
            .queue_call(Instant::now(), call, &mut effects)
            .is_ok()
        {
            self.run(effects, ctx);
        }
    }
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
