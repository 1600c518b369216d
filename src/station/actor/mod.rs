//! `StationActor`: one per WebSocket connection, the thin shell around the
//! pure [`Session`]. It feeds the session what arrives (text, timer, work to
//! deliver) and carries out the effects: frames out, handlers run as spawned
//! futures (never `ctx.wait`, which would stall pings), answers recorded in
//! the store and passed to waiting HTTP callers.
//!
//! The decisions are made without I/O elsewhere: what frames mean in
//! [`Wire`], the OCPP exchange in [`Session`], the commands in [`Courier`].
//! This file is the WebSocket and session side; `delivery` carries out the
//! courier's answers (CALLs queued, records stored, waiters told).

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use chrono::Utc;
use serde_json::Value;

mod delivery;

use super::courier::{Courier, Tag};
use super::directory::{ConnectionId, StationHandle};
pub use super::engine::{Engine, FinalWrites, PendingWrite};
use super::evse_status::{Seen, Spot};
use super::gate::{MessageBudget, StationSlot};
use super::handlers::{self, BootVerdict, Station};
pub use super::messages::{GoingAway, Replaced, SendCommand};
pub use super::no_protocol::NoProtocol;
use super::session::{Effect, Session};
use super::traffic;
use super::wire::{Closing, Step, Wire};
use crate::ocpp::{actions, Version};
use crate::store::StationRuntime;

/// The actor of one station connection.
pub struct StationActor {
    engine: Arc<Engine>,
    station: Arc<Station>,
    connection: ConnectionId,
    session: Session<Tag>,
    /// The commands' side: boot state, commands taken, follow-ups.
    courier: Courier,
    /// The WebSocket's side: budget, fragments, unread bytes, idleness.
    wire: Wire,
    timer: Option<(Instant, SpawnHandle)>,
    close_reason: &'static str,
    resume_accepted: bool,
    /// Its place under the node's station cap, given back when the actor goes.
    _slot: Option<StationSlot>,
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
        let connection = super::directory::next_connection_id(&engine.next_connection);
        let wire = Wire::new(
            engine.max_frame_bytes,
            engine.max_unread_bytes,
            engine.idle_timeout,
            Instant::now(),
        );
        // A station accepted before is marked booted when the actor starts.
        let session = Session::new(version, engine.limits);
        StationActor {
            station: Arc::new(Station::new(id, version, runtime)),
            engine,
            connection,
            session,
            courier: Courier::new(version),
            wire,
            timer: None,
            close_reason: "normal",
            resume_accepted: accepted_before,
            _slot: None,
        }
    }

    /// Spends the station's message budget on each frame it sends.
    pub fn with_budget(mut self, budget: Option<MessageBudget>) -> Self {
        self.wire = self.wire.with_budget(budget);
        self
    }

    /// Notes that the station's registration was provisioned at connect, so
    /// its boot need not read it again.
    pub fn provisioned(self, provisioned: bool) -> Self {
        if provisioned {
            self.station.mark_provisioned();
        }
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

    /// Accounts `bytes` sent: probes or closes as the wire says.
    fn sent(&mut self, bytes: usize, ctx: &mut ws::WebsocketContext<Self>) {
        match self.wire.sent(bytes) {
            Ok(None) => {}
            Ok(Some(probe)) => ctx.ping(&probe),
            Err(closing) => self.close(ctx, closing),
        }
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
        let now = Utc::now();
        // A heartbeat needs no store: answered in this turn, without a
        // spawned future and the context's next poll for it.
        if let Some(handled) = handlers::answer_at_once(&self.station, &action, now) {
            return self.handled(id, label, started, Ok(handled), ctx);
        }
        let future = handlers::handle(
            self.engine.env.clone(),
            self.station.clone(),
            action,
            payload,
            now,
        );
        ctx.spawn(future.into_actor(self).map(move |result, act, ctx| {
            act.handled(id, label, started, result, ctx);
        }));
    }

    /// Answers the station's CALL `id` with what its handler decided, then
    /// carries out what follows from it.
    fn handled(
        &mut self,
        id: String,
        label: &'static str,
        started: Instant,
        result: Result<handlers::Handled, handlers::Failure>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        crate::metrics::handler_duration(self.version(), label, started.elapsed());
        let (response, command, boot) = match result {
            Ok(handled) => (Ok(handled.response), handled.command, handled.boot),
            Err(e) => (Err(e), None, None),
        };
        let mut effects = Vec::new();
        self.session.handle_reply(&id, response, &mut effects);
        self.run(effects, ctx);
        if let Some(command) = command {
            // Sent after the answer it follows (CertificateSigned after SignCertificate).
            self.take_command(command, None, ctx);
        }
        if let Some(booted) = boot {
            self.on_boot(booted.verdict, Some(booted.outbox), ctx);
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

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, closing: Closing) {
        self.close_reason = closing.reason;
        ctx.close(Some(ws::CloseReason {
            code: closing.code,
            description: Some(closing.why.to_owned()),
        }));
        ctx.stop();
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
        self.engine.directory.connect(handle);
        if std::mem::take(&mut self.resume_accepted) {
            // Accepted on an earlier connection and back without rebooting
            // (a network drop): it is operating, so what waits goes at once.
            self.on_boot(BootVerdict::Accepted, None, ctx);
        }
        crate::metrics::connection_opened(self.version());
        ctx.run_interval(self.engine.ping_interval, |act, ctx| {
            match act.wire.tick(Instant::now()) {
                Ok(ping) => ctx.ping(&ping),
                Err(closing) => act.close(ctx, closing),
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.engine
            .directory
            .disconnect(&self.station.id, self.connection);
        crate::metrics::connection_closed(self.version(), self.close_reason);
        let gone = Spot {
            station: self.station.id.clone(),
            evse: None,
            connector: None,
        };
        (self.engine.env.statuses).report(gone, Seen::Disconnected, Utc::now());
        // Calls in flight or queued stay pending in the store: delivered at
        // the next boot; but an immediate command whose CALL went out and
        // was not answered fails, so that it never fires late.
        let interrupted =
            (self.courier).connection_closed(self.session.in_flight_tag(), Utc::now());
        self.session.drain();
        let runtime = self.station.update_runtime(|_| {});
        self.engine
            .write_at_close(self.station.id.clone(), runtime, interrupted);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for StationActor {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match self.wire.received(msg, Instant::now()) {
            Step::Message(text) => self.on_text(&text, ctx),
            Step::Pong(payload) => {
                ctx.pong(&payload);
                self.sent(payload.len(), ctx);
            }
            Step::StationCloses(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
            Step::Close(closing) => self.close(ctx, closing),
            Step::Nothing => {}
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
        self.close(ctx, Closing::REPLACED);
    }
}

impl Handler<GoingAway> for StationActor {
    type Result = ();

    fn handle(&mut self, _: GoingAway, ctx: &mut Self::Context) {
        self.close(ctx, Closing::SHUTDOWN);
    }
}
