//! `StationActor`: one per WebSocket connection, the thin shell around the
//! pure [`Session`]. It feeds the session what arrives (text, timer, work to
//! deliver) and carries out the effects: frames out, handlers run as spawned
//! futures (never `ctx.wait`, which would stall pings), answers recorded in
//! the store and passed to waiting HTTP callers.
//!
//! This file is the WebSocket and session side; `delivery` is the command
//! side (outbox at boot, commands taken, answers stored, follow-ups), which
//! follows the boot as [`outbox`] decides: nothing is sent before the
//! station's BootNotification; a station answered `Pending` gets its
//! configuration, then a reset when a setting needs one or a TriggerMessage
//! for a new BootNotification; an accepted station gets everything queued.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use chrono::Utc;
use serde_json::Value;

mod delivery;

use super::directory::{ConnectionId, StationHandle};
pub use super::engine::{Engine, FinalWrites, PendingWrite};
use super::fragments::Reassembly;
use super::gate::{Limit, MessageBudget, StationSlot};
use super::handlers::{self, BootVerdict, Station};
use super::in_flight::InFlight;
pub use super::messages::{GoingAway, Replaced, SendCommand};
pub use super::no_protocol::NoProtocol;
use super::outbound::{OutboundLedger, Verdict};
use super::outbox::{self, FollowUp, RebootState};
use super::session::{Effect, Session};
use super::traffic;
use crate::metrics::CONNECTIONS_CLOSED;
use crate::ocpp::{actions, Version};
use crate::store::StationRuntime;

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
            self.commands.tell(failed.clone());
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
