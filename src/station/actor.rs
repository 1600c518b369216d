//! `StationActor`: one per WebSocket connection, the thin shell around the
//! pure [`Session`]. It feeds the session what arrives (text, timer, work to
//! deliver) and carries out the effects: frames out, handlers run as spawned
//! futures (never `ctx.wait`, which would stall pings), answers recorded in
//! the store and passed to waiting HTTP callers.
//!
//! Delivery follows the boot: nothing is sent before the station's
//! BootNotification; a station answered `Pending` gets its settings and
//! certificates, then a reset when a setting needs one or a TriggerMessage
//! for a new BootNotification; an accepted station gets everything queued.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use chrono::Utc;
use serde_json::Value;
use tokio::sync::oneshot;

use super::commands::{self, Planned, Purpose};
use super::directory::{ConnectionId, StationHandle};
pub use super::engine::{Engine, FinalWrites, PendingWrite};
use super::gate::{Limit, MessageBudget, StationSlot};
use super::handlers::{self, BootVerdict, Station};
pub use super::messages::{Deliver, DeliveryReport, GoingAway, Replaced, SendCommand};
pub use super::no_protocol::NoProtocol;
use super::operations::outcome;
use super::outbound::{OutboundLedger, Verdict};
use super::outbox::{self, Decision};
use super::outbox::{plan_or_hold, sendable};
use super::reported;
use super::session::{CallOutcome, Effect, OutboundCall, Session};
use super::traffic;
use crate::metrics::CONNECTIONS_CLOSED;
use crate::ocpp::{actions, Version};
use crate::store::{
    CommandRecord, Delivery, DeliveryStatus, PendingWork, ReportedVariable, StationRuntime, Store,
    WorkItemRef,
};

/// Ids of commands settled on a connection that are remembered, so a
/// stale outbox read cannot send one again.
const REMEMBERED_SETTLED: usize = 256;

/// The session's tag for a CSMS CALL.
#[derive(Debug)]
pub struct Tag {
    purpose: Purpose,
    waiter: Option<u64>,
    /// The request payload, kept for SetVariables to match results to keys.
    sent: Option<Value>,
}

struct Waiter {
    remaining: usize,
    report: DeliveryReport,
    reply: oneshot::Sender<DeliveryReport>,
}

/// The actor of one station connection.
pub struct StationActor {
    engine: Arc<Engine>,
    station: Arc<Station>,
    connection: ConnectionId,
    session: Session<Tag>,
    boot: Option<BootVerdict>,
    /// Items in the session's queue or in flight: not queued twice.
    queued: HashSet<WorkItemRef>,
    waiters: HashMap<u64, Waiter>,
    next_waiter: u64,
    /// Commands queued in the session or in flight, by id.
    commands: HashMap<String, CommandRecord>,
    /// Who waits for which command's outcome.
    command_waiters: HashMap<String, Vec<oneshot::Sender<CommandRecord>>>,
    /// Commands recently settled here, newest last.
    settled: VecDeque<String>,
    reboot_needed: bool,
    reboot_asked: bool,
    timer: Option<(Instant, SpawnHandle)>,
    last_activity: Instant,
    fragments: Option<Vec<u8>>,
    close_reason: &'static str,
    resume_accepted: bool,
    /// The station's message budget, shared by its connections (None: no limit).
    message_budget: Option<MessageBudget>,
    /// Its place under the node's station cap, given back when the actor goes.
    _slot: Option<StationSlot>,
    /// What it was sent and has not been seen to read.
    outbound: OutboundLedger,
}

impl StationActor {
    /// An actor for a connection of station `id` speaking `version`.
    ///
    /// `accepted_before`: the station was provisioned and accepted on an
    /// earlier connection, so it may go on without booting again.
    pub fn new(
        engine: Arc<Engine>,
        id: String,
        version: Version,
        runtime: StationRuntime,
        accepted_before: bool,
    ) -> Self {
        let connection = engine.next_connection.fetch_add(1, Ordering::Relaxed);
        let engine_unread = engine.max_unread_bytes;
        let mut session = Session::new(version, engine.limits);
        if accepted_before {
            session.set_booted();
        }
        StationActor {
            station: Arc::new(Station::new(id, version, runtime)),
            engine,
            connection,
            session,
            boot: None,
            queued: HashSet::new(),
            waiters: HashMap::new(),
            next_waiter: 1,
            commands: HashMap::new(),
            command_waiters: HashMap::new(),
            settled: VecDeque::new(),
            reboot_needed: false,
            reboot_asked: false,
            timer: None,
            last_activity: Instant::now(),
            fragments: None,
            close_reason: "normal",
            resume_accepted: accepted_before,
            message_budget: None,
            _slot: None,
            outbound: OutboundLedger::new(engine_unread),
        }
    }

    /// Spends the station's message budget on each frame it sends.
    pub fn with_budget(mut self, budget: Option<MessageBudget>) -> Self {
        self.message_budget = budget;
        self
    }

    /// Holds `slot` for as long as the connection lives.
    pub fn with_slot(mut self, slot: StationSlot) -> Self {
        self._slot = Some(slot);
        self
    }

    fn version(&self) -> Version {
        self.station.version
    }

    /// Accounts `bytes` sent: probes with a ping past half the unread
    /// bound, disconnects (1008) a station past the whole of it.
    fn sent(&mut self, bytes: usize, ctx: &mut ws::WebsocketContext<Self>) {
        match self.outbound.sent(bytes) {
            Verdict::Fine => {}
            Verdict::Probe => ctx.ping(&self.outbound.ping()),
            Verdict::NotReading => {
                Limit::Unread.count();
                self.close(
                    ctx,
                    ws::CloseCode::Policy,
                    "not_reading",
                    "station does not read what it is sent",
                );
            }
        }
    }

    /// Spends one frame of the station's budget; closes the connection
    /// (1008) and says false when it is spent.
    fn within_budget(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        let Some(budget) = &self.message_budget else {
            return true;
        };
        if budget.take(Instant::now()) {
            return true;
        }
        // A flooding station goes; the others keep their share of the
        // worker. Its budget outlives the connection, so reconnecting does
        // not refill it.
        Limit::MessageRate.count();
        self.close(
            ctx,
            ws::CloseCode::Policy,
            "rate_limited",
            "OCPP message rate exceeded",
        );
        false
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let mut effects = Vec::new();
        self.session.handle_text(Instant::now(), text, &mut effects);
        self.run(effects, ctx);
    }

    fn run(&mut self, effects: Vec<Effect<Tag>>, ctx: &mut ws::WebsocketContext<Self>) {
        for effect in effects {
            traffic::record(self.version(), &effect);
            match effect {
                Effect::Send { text, .. } => {
                    let bytes = text.len();
                    ctx.text(text);
                    self.sent(bytes, ctx);
                }
                Effect::Handle {
                    id,
                    action,
                    payload,
                } => self.spawn_handler(id, action, payload, ctx),
                Effect::Answered {
                    tag,
                    action,
                    outcome,
                    ..
                } => self.on_answered(tag, action, outcome, ctx),
                Effect::Received { .. } | Effect::Refused { .. } | Effect::Ignored { .. } => {}
            }
        }
        self.arm_timer(ctx);
    }

    fn spawn_handler(
        &mut self,
        id: String,
        action: String,
        payload: Value,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let label = actions::label(self.version(), &action);
        let started = Instant::now();
        let future = handlers::handle(
            self.engine.env.clone(),
            self.station.clone(),
            action,
            payload,
            Utc::now(),
        );
        ctx.spawn(future.into_actor(self).map(move |result, act, ctx| {
            crate::metrics::handler_duration(act.version(), label, started.elapsed());
            let boot = result.as_ref().ok().and_then(|handled| handled.boot);
            let (response, command) = match result {
                Ok(handled) => (Ok(handled.response), handled.command),
                Err(e) => (Err(e), None),
            };
            let mut effects = Vec::new();
            act.session.handle_reply(&id, response, &mut effects);
            act.run(effects, ctx);
            if let Some(command) = command {
                // Sent after the answer it follows (CertificateSigned after SignCertificate).
                act.take_command(command, None, ctx);
            }
            if let Some(verdict) = boot {
                match verdict {
                    BootVerdict::Accepted => act.session.set_booted(),
                    BootVerdict::Pending => act.session.set_boot_pending(),
                }
                act.on_boot(verdict, ctx);
            }
        }));
    }

    /// After a BootNotification: deliver what the verdict allows.
    fn on_boot(&mut self, verdict: BootVerdict, ctx: &mut ws::WebsocketContext<Self>) {
        self.boot = Some(verdict);
        self.reboot_asked = false;
        let store = self.engine.env.store.clone();
        let id = self.station.id.clone();
        ctx.spawn(async move {
            let work = store.pending_work(&id).await;
            let commands = store.outbox(&id).await;
            (work, commands)
        }
        .into_actor(self)
        .map(|(work, commands), act, ctx| {
            match work {
                Ok(work) => act.enqueue(work, None, ctx),
                Err(e) => tracing::error!(error = %e, station = %act.station.id, "cannot load pending work at boot"),
            }
            match commands {
                Ok(commands) => {
                    for command in commands {
                        act.take_command(command, None, ctx);
                    }
                }
                Err(e) => tracing::error!(error = %e, station = %act.station.id, "cannot load the command outbox at boot"),
            }
        }));
    }

    /// Takes a stored command: sends it when the boot state allows,
    /// settles it when it may never be sent, or leaves it pending.
    fn take_command(
        &mut self,
        command: CommandRecord,
        waiter: Option<oneshot::Sender<CommandRecord>>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let id = command.id.clone();
        if let Some(waiter) = waiter {
            self.command_waiters
                .entry(id.clone())
                .or_default()
                .push(waiter);
        }
        if self.commands.contains_key(&id) || self.settled.contains(&id) {
            return;
        }
        match outbox::decide(&command, self.version(), self.boot, Utc::now()) {
            Decision::Done => self.answer_command_waiters(&command),
            Decision::Hold => {}
            Decision::Settle(record) => self.store_command(*record, ctx),
            Decision::Send(action) => {
                let call = OutboundCall {
                    action,
                    payload: command.payload.clone(),
                    tag: Tag {
                        purpose: Purpose::Command(id.clone()),
                        waiter: None,
                        sent: None,
                    },
                };
                let mut effects = Vec::new();
                if self
                    .session
                    .queue_call(Instant::now(), call, &mut effects)
                    .is_ok()
                {
                    self.commands.insert(id, command);
                    self.run(effects, ctx);
                } else {
                    // The session's queue is full: the command stays pending
                    // (sent at the next boot while unexpired). Waiters are let
                    // go and read it from the store as it stands.
                    tracing::warn!(station = %self.station.id, command = %id, "CSMS call queue full; command stays pending");
                    self.command_waiters.remove(&id);
                }
            }
        }
    }

    /// Stores a settled command, then tells its waiters.
    fn store_command(&mut self, record: CommandRecord, ctx: &mut ws::WebsocketContext<Self>) {
        self.store_command_with(record, Vec::new(), ctx);
    }

    /// Stores a settled command and what its answer taught about the
    /// station's configuration, then tells its waiters (who may read both).
    fn store_command_with(
        &mut self,
        record: CommandRecord,
        learnt: Vec<ReportedVariable>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        self.settled.push_back(record.id.clone());
        if self.settled.len() > REMEMBERED_SETTLED {
            self.settled.pop_front();
        }
        let store = self.engine.env.store.clone();
        let to_store = record.clone();
        let station = self.station.id.clone();
        ctx.spawn(
            async move {
                keep_variables(&*store, &station, learnt).await;
                store.update_command(to_store).await
            }
            .into_actor(self)
                .map(move |result, act, ctx| {
                    if let Err(e) = result {
                        tracing::error!(error = %e, station = %act.station.id, command = %record.id, "cannot record a command's outcome");
                    }
                    act.answer_command_waiters(&record);
                    act.after_work(ctx);
                }),
        );
    }

    /// Stores what the station's answer taught about its configuration.
    fn store_variables(
        &mut self,
        learnt: Vec<ReportedVariable>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let store = self.engine.env.store.clone();
        let station = self.station.id.clone();
        ctx.spawn(async move { keep_variables(&*store, &station, learnt).await }.into_actor(self));
    }

    fn answer_command_waiters(&mut self, record: &CommandRecord) {
        for waiter in self
            .command_waiters
            .remove(&record.id)
            .into_iter()
            .flatten()
        {
            let _ = waiter.send(record.clone());
        }
    }

    /// Queues the still-pending items of `work` that the boot state allows.
    fn enqueue(
        &mut self,
        work: PendingWork,
        waiter: Option<oneshot::Sender<DeliveryReport>>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let now = Utc::now();
        let version = self.version();
        // Configuration may go to a station answered Pending; the rest waits
        // for an accepted boot. Held items stay pending for the next boot.
        let config_allowed = self.boot.is_some();
        let all_allowed = self.boot == Some(BootVerdict::Accepted);
        let mut planned: Vec<Planned> = Vec::new();
        let mut held: DeliveryReport = Vec::new();
        let queued = &self.queued;

        let settings = sendable(work.settings, queued, |s| {
            (WorkItemRef::Setting(s.key.clone()), &s.delivery)
        });
        if config_allowed {
            let records: Vec<_> = settings.into_iter().map(|(_, s)| s).collect();
            planned.extend(commands::settings(version, &records, now));
        } else {
            held.extend(settings.into_iter().map(|(item, s)| (item, s.delivery)));
        }
        let certificates = sendable(work.certificates, queued, |c| {
            (
                WorkItemRef::Certificate(c.certificate_id.clone()),
                &c.delivery,
            )
        });
        plan_or_hold(
            certificates,
            config_allowed,
            &mut planned,
            &mut held,
            |c| commands::certificate(version, c),
            |c| c.delivery,
        );
        let triggers = sendable(work.triggers, queued, |t| {
            (WorkItemRef::Trigger(t.seq), &t.delivery)
        });
        plan_or_hold(
            triggers,
            all_allowed,
            &mut planned,
            &mut held,
            |t| commands::trigger(version, t),
            |t| t.delivery,
        );
        let profiles = sendable(work.charging_profiles, queued, |p| {
            (WorkItemRef::ChargingProfile(p.profile_id), &p.delivery)
        });
        plan_or_hold(
            profiles,
            all_allowed,
            &mut planned,
            &mut held,
            |p| commands::charging_profile(version, p, now),
            |p| p.delivery,
        );

        let waiter_id = waiter.map(|reply| {
            let id = self.next_waiter;
            self.next_waiter += 1;
            self.waiters.insert(
                id,
                Waiter {
                    remaining: 0,
                    report: held,
                    reply,
                },
            );
            id
        });
        let mut settled: DeliveryReport = Vec::new();
        let mut effects = Vec::new();
        for plan in planned {
            match plan {
                Ok(call) => {
                    let Purpose::Work(items) = &call.tag else {
                        continue;
                    };
                    let items = items.clone();
                    // Kept to match SetVariables results to keys, and to
                    // learn the values the station accepts.
                    let sent = matches!(call.action, "SetVariables" | "ChangeConfiguration")
                        .then(|| call.payload.clone());
                    let tagged = super::session::OutboundCall {
                        action: call.action,
                        payload: call.payload,
                        tag: Tag {
                            purpose: call.tag,
                            waiter: waiter_id,
                            sent,
                        },
                    };
                    match self
                        .session
                        .queue_call(Instant::now(), tagged, &mut effects)
                    {
                        Ok(()) => {
                            if let Some(w) = waiter_id.and_then(|id| self.waiters.get_mut(&id)) {
                                w.remaining += items.len();
                            }
                            self.queued.extend(items);
                        }
                        Err(_) => {
                            metrics::counter!(crate::metrics::BACKPRESSURE_REJECTIONS, "stage" => "session_queue").increment(1);
                            // Left pending in the store: delivered at the next boot.
                            let d = Delivery {
                                status: DeliveryStatus::Pending,
                                updated_at: now,
                                detail: Some("station queue full; retried at next boot".into()),
                            };
                            self.note_for_waiter(
                                waiter_id,
                                items.into_iter().map(|i| (i, d.clone())).collect(),
                            );
                        }
                    }
                }
                Err(result) => settled.push(result),
            }
        }
        self.run(effects, ctx);
        if settled.is_empty() {
            self.finish_waiter_if_done(waiter_id);
        } else {
            self.record(settled, waiter_id, false, ctx);
        }
    }

    fn note_for_waiter(&mut self, waiter: Option<u64>, results: DeliveryReport) {
        if let Some(w) = waiter.and_then(|id| self.waiters.get_mut(&id)) {
            w.report.extend(results);
        }
    }

    fn finish_waiter_if_done(&mut self, waiter: Option<u64>) {
        let Some(id) = waiter else { return };
        if self.waiters.get(&id).is_some_and(|w| w.remaining == 0) {
            if let Some(w) = self.waiters.remove(&id) {
                let _ = w.reply.send(w.report);
            }
        }
    }

    /// Stores delivery results, then tells the waiter and takes the next step.
    /// `answered` says the items were in the session (counted by the waiter).
    fn record(
        &mut self,
        results: DeliveryReport,
        waiter: Option<u64>,
        answered: bool,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let store = self.engine.env.store.clone();
        let id = self.station.id.clone();
        let to_store = results.clone();
        ctx.spawn(
            async move {
                for (item, delivery) in to_store {
                    if let Err(e) = store.set_delivery(&id, item.clone(), delivery).await {
                        tracing::error!(error = %e, station = %id, %item, "cannot record delivery");
                    }
                }
            }
            .into_actor(self)
            .map(move |(), act, ctx| {
                if let Some(w) = waiter.and_then(|id| act.waiters.get_mut(&id)) {
                    if answered {
                        w.remaining = w.remaining.saturating_sub(results.len());
                    }
                    w.report.extend(results);
                }
                act.finish_waiter_if_done(waiter);
                act.after_work(ctx);
            }),
        );
    }

    fn on_answered(
        &mut self,
        tag: Tag,
        action: &'static str,
        outcome: CallOutcome,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        match tag.purpose {
            Purpose::Work(items) => {
                let sent = tag.sent.unwrap_or(Value::Null);
                let timeout = self.engine.limits.call_timeout.as_secs();
                let now = Utc::now();
                if let CallOutcome::Result(answer) = &outcome {
                    // Settings the station took are its configuration now.
                    let learnt = reported::from_set(action, &sent, answer, now);
                    if !learnt.is_empty() {
                        self.store_variables(learnt, ctx);
                    }
                }
                let results = commands::outcome(&items, action, &sent, &outcome, now, timeout);
                for (item, delivery) in &results {
                    self.queued.remove(item);
                    if delivery.status == DeliveryStatus::RebootRequired {
                        self.reboot_needed = true;
                    }
                }
                self.record(results, tag.waiter, true, ctx);
            }
            Purpose::Command(id) => {
                if let Some(mut command) = self.commands.remove(&id) {
                    let timeout = self.engine.limits.call_timeout.as_secs();
                    let now = Utc::now();
                    outcome::settle(&mut command, outcome, now, timeout);
                    crate::metrics::command_answered(command.status);
                    let learnt = reported::from_command(&command, now);
                    self.store_command_with(command, learnt, ctx);
                }
            }
            Purpose::Reset | Purpose::Reboot => {
                tracing::info!(station = %self.station.id, action, ?outcome, "station answered");
                self.after_work(ctx);
            }
        }
    }

    /// Once the queue is empty: reset for settings that need it, or ask a
    /// configured `Pending` station to boot again.
    fn after_work(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if !self.session.is_idle() || !self.queued.is_empty() {
            return;
        }
        let call = if self.reboot_needed {
            // The reset reboots the station: no separate boot trigger after it.
            self.reboot_needed = false;
            self.reboot_asked = true;
            commands::reset(self.version())
        } else if self.boot == Some(BootVerdict::Pending) && !self.reboot_asked {
            self.reboot_asked = true;
            commands::reboot_trigger()
        } else {
            return;
        };
        let mut effects = Vec::new();
        let tagged = super::session::OutboundCall {
            action: call.action,
            payload: call.payload,
            tag: Tag {
                purpose: call.tag,
                waiter: None,
                sent: None,
            },
        };
        if self
            .session
            .queue_call(Instant::now(), tagged, &mut effects)
            .is_ok()
        {
            self.run(effects, ctx);
        }
    }

    fn arm_timer(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let deadline = self.session.poll_timeout();
        if self.timer.as_ref().map(|(at, _)| *at) == deadline {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = deadline {
            let wait = at.saturating_duration_since(Instant::now());
            let handle = ctx.run_later(wait, |act, ctx| {
                act.timer = None;
                let mut effects = Vec::new();
                act.session.handle_timeout(Instant::now(), &mut effects);
                act.run(effects, ctx);
            });
            self.timer = Some((at, handle));
        }
    }

    fn close(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        code: ws::CloseCode,
        reason: &'static str,
        why: &str,
    ) {
        self.close_reason = reason;
        ctx.close(Some(ws::CloseReason {
            code,
            description: Some(why.to_owned()),
        }));
        ctx.stop();
    }

    fn on_fragment(&mut self, item: actix_http::ws::Item, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.engine.max_frame_bytes;
        let (start, chunk, last) = match item {
            actix_http::ws::Item::FirstText(b) => (true, b, false),
            actix_http::ws::Item::FirstBinary(_) => {
                return self.close(
                    ctx,
                    ws::CloseCode::Unsupported,
                    "protocol_error",
                    "OCPP-J is text",
                )
            }
            actix_http::ws::Item::Continue(b) => (false, b, false),
            actix_http::ws::Item::Last(b) => (false, b, true),
        };
        let buffer = if start {
            self.fragments.insert(Vec::new())
        } else {
            match self.fragments.as_mut() {
                Some(buffer) => buffer,
                None => {
                    return self.close(
                        ctx,
                        ws::CloseCode::Protocol,
                        "protocol_error",
                        "continuation without a first frame",
                    )
                }
            }
        };
        if buffer.len() + chunk.len() > limit {
            self.fragments = None;
            return self.close(
                ctx,
                ws::CloseCode::Size,
                "protocol_error",
                "message too large",
            );
        }
        buffer.extend_from_slice(&chunk);
        if last {
            let bytes = self.fragments.take().unwrap_or_default();
            match String::from_utf8(bytes) {
                Ok(text) => self.on_text(&text, ctx),
                Err(_) => self.close(
                    ctx,
                    ws::CloseCode::Invalid,
                    "protocol_error",
                    "text message is not UTF-8",
                ),
            }
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

impl Actor for StationActor {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        let address = ctx.address();
        let handle = StationHandle {
            id: self.station.id.clone(),
            connection: self.connection,
            version: self.version(),
            deliver: address.clone().recipient(),
            command: address.clone().recipient(),
            replaced: address.clone().recipient(),
            going_away: address.recipient(),
        };
        ctx.spawn(self.engine.directory.connect(handle).into_actor(self).map(
            |result, act, ctx| {
                if result.is_err() {
                    act.close(
                        ctx,
                        ws::CloseCode::Again,
                        "overloaded",
                        "registry busy, retry later",
                    );
                }
            },
        ));
        if std::mem::take(&mut self.resume_accepted) {
            // Accepted on an earlier connection and back without rebooting
            // (a network drop): it is operating, so what waits goes at once.
            self.on_boot(BootVerdict::Accepted, ctx);
        }
        metrics::gauge!(crate::metrics::STATIONS_CONNECTED, "version" => self.version().label())
            .increment(1.0);
        metrics::counter!(crate::metrics::CONNECTIONS_OPENED, "version" => self.version().label())
            .increment(1);
        ctx.run_interval(self.engine.ping_interval, |act, ctx| {
            if act.last_activity.elapsed() > act.engine.idle_timeout {
                act.close(ctx, ws::CloseCode::Away, "timeout", "no traffic");
            } else {
                let ping = act.outbound.ping();
                ctx.ping(&ping);
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.engine
            .directory
            .disconnect(&self.station.id, self.connection);
        metrics::gauge!(crate::metrics::STATIONS_CONNECTED, "version" => self.version().label())
            .decrement(1.0);
        metrics::counter!(CONNECTIONS_CLOSED, "reason" => self.close_reason).increment(1);
        // Calls in flight or queued stay pending in the store: delivered at
        // the next boot; but an immediate command whose CALL went out and
        // was not answered fails, so that it never fires late.
        let now = Utc::now();
        let interrupted = match self.session.in_flight_tag() {
            Some(Tag {
                purpose: Purpose::Command(id),
                ..
            }) => self
                .commands
                .get(id)
                .and_then(|command| outbox::connection_closed(command, now)),
            _ => None,
        };
        if let Some(failed) = &interrupted {
            self.answer_command_waiters(failed);
        }
        self.command_waiters.clear();
        self.session.drain();
        for (_, waiter) in self.waiters.drain() {
            let _ = waiter.reply.send(waiter.report);
        }
        // Keep what the station last reported, including when it was last seen.
        let store = self.engine.env.store.clone();
        let id = self.station.id.clone();
        let runtime = self.station.update_runtime(|_| {});
        let pending = self.engine.final_writes.begin();
        let write = async move {
            if let Err(e) = store.set_runtime(&id, runtime).await {
                tracing::warn!(error = %e, station = %id, "cannot store runtime state at disconnect");
            }
            if let Some(failed) = interrupted {
                if let Err(e) = store.update_command(failed).await {
                    tracing::warn!(error = %e, station = %id, "cannot record an interrupted command");
                }
            }
            drop(pending);
        };
        // Not on this worker: it may stop (at shutdown) before the write lands.
        match &self.engine.background {
            Some(runtime) => drop(runtime.spawn(write)),
            None => drop(actix::spawn(write)),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for StationActor {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_activity = Instant::now();
        // Every frame a station can make voltgate work for (messages,
        // fragments, pings) is paid from its budget.
        let costs = matches!(
            msg,
            Ok(ws::Message::Text(_)
                | ws::Message::Binary(_)
                | ws::Message::Continuation(_)
                | ws::Message::Ping(_))
        );
        if costs && !self.within_budget(ctx) {
            return;
        }
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Binary(_)) => self.close(
                ctx,
                ws::CloseCode::Unsupported,
                "protocol_error",
                "OCPP-J is text",
            ),
            Ok(ws::Message::Ping(payload)) => {
                ctx.pong(&payload);
                self.sent(payload.len(), ctx);
            }
            Ok(ws::Message::Pong(payload)) => self.outbound.pong(&payload),
            Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => self.close(
                ctx,
                ws::CloseCode::Size,
                "protocol_error",
                "frame too large",
            ),
            Err(e) => {
                tracing::debug!(station = %self.station.id, error = %e, "websocket protocol error");
                self.close(
                    ctx,
                    ws::CloseCode::Protocol,
                    "protocol_error",
                    "websocket protocol error",
                );
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Deliver> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        self.enqueue(msg.work, msg.waiter, ctx);
    }
}

impl Handler<SendCommand> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: SendCommand, ctx: &mut Self::Context) {
        self.take_command(msg.command, msg.waiter, ctx);
    }
}

impl Handler<Replaced> for StationActor {
    type Result = ();

    fn handle(&mut self, _: Replaced, ctx: &mut Self::Context) {
        self.close(
            ctx,
            ws::CloseCode::Policy,
            "replaced",
            "replaced by a newer connection",
        );
    }
}

impl Handler<GoingAway> for StationActor {
    type Result = ();

    fn handle(&mut self, _: GoingAway, ctx: &mut Self::Context) {
        self.close(
            ctx,
            ws::CloseCode::Restart,
            "shutdown",
            "CSMS node shutting down; reconnect",
        );
    }
}
