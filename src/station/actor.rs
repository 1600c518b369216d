//! `StationActor`: one per WebSocket connection, the thin shell around the
//! pure [`Session`]. It feeds the session what arrives (text, timer, work to
//! deliver) and carries out the effects: frames out, handlers run as spawned
//! futures (never `ctx.wait`, which would stall pings), answers recorded in
//! the store and passed to waiting HTTP callers.
//!
//! Delivery follows the boot as [`outbox`] decides: nothing is sent before
//! the station's BootNotification; a station answered `Pending` gets its
//! configuration, then a reset when a setting needs one or a TriggerMessage
//! for a new BootNotification; an accepted station gets everything queued.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use chrono::Utc;
use serde_json::Value;

use super::directory::{ConnectionId, StationHandle};
pub use super::engine::{Engine, FinalWrites, PendingWrite};
use super::fragments::Reassembly;
use super::gate::{Limit, MessageBudget, StationSlot};
use super::handlers::{self, BootVerdict, Station};
use super::in_flight::{InFlight, Waiter};
pub use super::messages::{GoingAway, Replaced, SendCommand};
pub use super::no_protocol::NoProtocol;
use super::operations::work_item::WorkItem;
use super::outbound::{OutboundLedger, Verdict};
use super::outbox::{self, Decision, FollowUp, RebootState};
use super::session::{CallOutcome, Effect, OutboundCall, Session};
use super::traffic;
use crate::metrics::CONNECTIONS_CLOSED;
use crate::ocpp::{actions, Version};
use crate::store::{CommandRecord, ReportedVariable, StationRuntime, Store};

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

/// The actor of one station connection.
pub struct StationActor {
    engine: Arc<Engine>,
    station: Arc<Station>,
    connection: ConnectionId,
    session: Session<Tag>,
    boot: Option<BootVerdict>,
    /// Commands taken on this connection and who waits for them.
    commands: InFlight,
    reboot: RebootState,
    timer: Option<(Instant, SpawnHandle)>,
    last_activity: Instant,
    fragments: Reassembly,
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
        let fragments = Reassembly::new(engine.max_frame_bytes);
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
            commands: InFlight::default(),
            reboot: RebootState::default(),
            timer: None,
            last_activity: Instant::now(),
            fragments,
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
    fn take_command(
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
            Decision::Done => self.commands.tell(&command),
            Decision::Hold => {}
            Decision::Settle(record) => self.store_command(*record, Vec::new(), ctx),
            Decision::Send { action, payload } => {
                // A MaEVe setting's payload teaches the value the station took.
                let sent = WorkItem::of(&command).is_some().then(|| payload.clone());
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
    fn store_command(
        &mut self,
        record: CommandRecord,
        learnt: Vec<ReportedVariable>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        self.commands.settled(&record.id);
        let store = self.engine.env.store.clone();
        let to_store = record.clone();
        let station = self.station.id.clone();
        let stored = async move {
            keep_variables(&*store, &station, learnt).await;
            store.update_command(to_store).await
        };
        ctx.spawn(stored.into_actor(self).map(move |result, act, ctx| {
            if let Err(e) = result {
                tracing::error!(error = %e, station = %act.station.id, command = %record.id, "cannot record a command's outcome");
            }
            act.commands.tell(&record);
            act.after_work(ctx);
        }));
    }

    fn on_answered(
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
    fn after_work(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
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
        match self.fragments.push(item) {
            Ok(Some(text)) => self.on_text(&text, ctx),
            Ok(None) => {}
            Err(broken) => self.close(
                ctx,
                broken.close_code(),
                "protocol_error",
                broken.description(),
            ),
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
            self.commands.tell(failed);
        }
        self.commands.forget_waiters();
        self.session.drain();
        let runtime = self.station.update_runtime(|_| {});
        self.engine
            .write_at_close(self.station.id.clone(), runtime, interrupted);
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
