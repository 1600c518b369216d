//! The WebSocket side of one station connection, without I/O: which frames
//! the station pays from its message budget, fragments put back together,
//! what it was sent and has not been seen to read, and when it has been
//! silent too long. The actor feeds it every frame in and out and does what
//! it answers: handle a message, answer a ping, probe, or close.

use std::time::{Duration, Instant};

use actix_http::ws::{CloseCode, CloseReason, Message, ProtocolError};
use actix_web::web::Bytes;
use bytestring::ByteString;

use super::fragments::Reassembly;
use super::gate::{Limit, MessageBudget};
use super::outbound::{OutboundLedger, Verdict};

/// Why voltgate closes a connection: the close frame and the reason the
/// closed-connections metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    /// The close code sent.
    pub code: CloseCode,
    /// The metric's `reason` label.
    pub reason: &'static str,
    /// The close frame's description.
    pub why: &'static str,
}

impl Closing {
    const fn new(code: CloseCode, reason: &'static str, why: &'static str) -> Self {
        Closing { code, reason, why }
    }

    /// A newer connection of the same station replaced this one.
    pub const REPLACED: Closing = Closing::new(
        CloseCode::Policy,
        "replaced",
        "replaced by a newer connection",
    );
    /// The node shuts down.
    pub const SHUTDOWN: Closing = Closing::new(
        CloseCode::Restart,
        "shutdown",
        "CSMS node shutting down; reconnect",
    );
    const IDLE: Closing = Closing::new(CloseCode::Away, "timeout", "no traffic");
    const RATE: Closing = Closing::new(
        CloseCode::Policy,
        "rate_limited",
        "OCPP message rate exceeded",
    );
    const NOT_READING: Closing = Closing::new(
        CloseCode::Policy,
        "not_reading",
        "station does not read what it is sent",
    );
    const BINARY: Closing =
        Closing::new(CloseCode::Unsupported, "protocol_error", "OCPP-J is text");
    const OVERFLOW: Closing = Closing::new(CloseCode::Size, "protocol_error", "frame too large");
    const PROTOCOL: Closing = Closing::new(
        CloseCode::Protocol,
        "protocol_error",
        "websocket protocol error",
    );
}

/// What the actor does with a frame that arrived.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Handle this OCPP message.
    Message(ByteString),
    /// Answer a ping with this payload (then account for it with `sent`).
    Pong(Bytes),
    /// The station closes: echo its close and stop.
    StationCloses(Option<CloseReason>),
    /// Close the connection.
    Close(Closing),
    /// Nothing to do.
    Nothing,
}

/// The wire state of one connection.
pub struct Wire {
    fragments: Reassembly,
    outbound: OutboundLedger,
    /// The station's budget, shared by its connections (None: no limit).
    budget: Option<MessageBudget>,
    last_activity: Instant,
    idle_timeout: Duration,
}

impl Wire {
    /// A connection taking messages of at most `max_message` bytes, allowing
    /// `max_unread` bytes sent and not read (0: no bound), closed after
    /// `idle_timeout` without a frame.
    pub fn new(max_message: usize, max_unread: u64, idle_timeout: Duration, now: Instant) -> Self {
        Wire {
            fragments: Reassembly::new(max_message),
            outbound: OutboundLedger::new(max_unread),
            budget: None,
            last_activity: now,
            idle_timeout,
        }
    }

    /// Spends `budget` on each frame the station sends.
    pub fn with_budget(mut self, budget: Option<MessageBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// A frame arrived (or the protocol broke).
    pub fn received(&mut self, frame: Result<Message, ProtocolError>, now: Instant) -> Step {
        self.last_activity = now;
        // Every frame a station can make voltgate work for (messages,
        // fragments, pings, pongs) is paid from its budget. Pongs too: an
        // unsolicited one is allowed and costs a decode, and a flood of them
        // would otherwise grow the read buffer for free. The pongs a station
        // owes voltgate's pings are a few a minute.
        let costs = matches!(
            frame,
            Ok(Message::Text(_)
                | Message::Binary(_)
                | Message::Continuation(_)
                | Message::Ping(_)
                | Message::Pong(_))
        );
        if costs && !self.budget.as_ref().is_none_or(|b| b.take(now)) {
            // A flooding station goes; the others keep their share of the
            // worker. Its budget outlives the connection, so reconnecting
            // does not refill it.
            Limit::MessageRate.count();
            return Step::Close(Closing::RATE);
        }
        match frame {
            Ok(Message::Text(text)) => Step::Message(text),
            Ok(Message::Continuation(item)) => match self.fragments.push(item) {
                Ok(Some(text)) => Step::Message(text.into()),
                Ok(None) => Step::Nothing,
                Err(broken) => Step::Close(Closing::new(
                    broken.close_code(),
                    "protocol_error",
                    broken.description(),
                )),
            },
            Ok(Message::Binary(_)) => Step::Close(Closing::BINARY),
            Ok(Message::Ping(payload)) => Step::Pong(payload),
            Ok(Message::Pong(payload)) => {
                self.outbound.pong(&payload);
                Step::Nothing
            }
            Ok(Message::Nop) => Step::Nothing,
            Ok(Message::Close(reason)) => Step::StationCloses(reason),
            Err(ProtocolError::Overflow) => Step::Close(Closing::OVERFLOW),
            Err(e) => {
                tracing::debug!(error = %e, "websocket protocol error");
                Step::Close(Closing::PROTOCOL)
            }
        }
    }

    /// `bytes` were sent: a ping payload to probe with past half the unread
    /// bound, a close past the whole of it.
    pub fn sent(&mut self, bytes: usize) -> Result<Option<[u8; 8]>, Closing> {
        match self.outbound.sent(bytes) {
            Verdict::Fine => Ok(None),
            Verdict::Probe => Ok(Some(self.outbound.ping())),
            Verdict::NotReading => {
                Limit::Unread.count();
                Err(Closing::NOT_READING)
            }
        }
    }

    /// The ping interval passed: the ping to send, or a close when the
    /// station has been silent longer than the idle timeout.
    pub fn tick(&mut self, now: Instant) -> Result<[u8; 8], Closing> {
        if now.duration_since(self.last_activity) > self.idle_timeout {
            return Err(Closing::IDLE);
        }
        Ok(self.outbound.ping())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::ws::Item;

    fn wire(now: Instant) -> Wire {
        Wire::new(16, 100, Duration::from_secs(10), now)
    }

    #[test]
    fn a_pong_flood_is_paid_from_the_budget() {
        let now = Instant::now();
        let limits = super::super::gate::LimitSettings {
            ocpp_messages_per_sec: 1,
            ..super::super::gate::LimitSettings::with_max_stations(10)
        };
        let gate = super::super::gate::Gate::new(
            Vec::new(),
            crate::auth::CertificatePolicy::default(),
            &limits,
            10,
        );
        let mut w = wire(now).with_budget(gate.message_budget("CS1"));
        let pong = || Ok(Message::Pong(Bytes::from_static(b"unsolicited")));
        for _ in 0..5 {
            assert_eq!(
                w.received(pong(), now),
                Step::Nothing,
                "a burst of 5 s' worth"
            );
        }
        assert_eq!(w.received(pong(), now), Step::Close(Closing::RATE));
    }

    #[test]
    fn frames_become_messages_pongs_or_closes() {
        let now = Instant::now();
        let mut w = wire(now);
        assert_eq!(
            w.received(Ok(Message::Text("[2]".into())), now),
            Step::Message("[2]".into())
        );
        let first = Message::Continuation(Item::FirstText(Bytes::from_static(b"[2,")));
        assert_eq!(w.received(Ok(first), now), Step::Nothing);
        let last = Message::Continuation(Item::Last(Bytes::from_static(b"1]")));
        assert_eq!(w.received(Ok(last), now), Step::Message("[2,1]".into()));
        let ping = Bytes::from_static(b"p");
        assert_eq!(
            w.received(Ok(Message::Ping(ping.clone())), now),
            Step::Pong(ping)
        );
        assert_eq!(
            w.received(Ok(Message::Binary(Bytes::new())), now),
            Step::Close(Closing::BINARY)
        );
        assert_eq!(
            w.received(Err(ProtocolError::Overflow), now),
            Step::Close(Closing::OVERFLOW)
        );
        let huge = Message::Continuation(Item::FirstText(Bytes::from(vec![b'x'; 17])));
        let Step::Close(closing) = w.received(Ok(huge), now) else {
            panic!("a message over the limit closes the connection");
        };
        assert_eq!(closing.code, CloseCode::Size);
        assert_eq!(
            w.received(Ok(Message::Close(None)), now),
            Step::StationCloses(None)
        );
    }

    #[test]
    fn a_station_that_does_not_read_is_probed_then_closed() {
        let now = Instant::now();
        let mut w = wire(now);
        assert_eq!(w.sent(40), Ok(None));
        let probe = w.sent(20).unwrap().expect("past half the bound: probe");
        assert_eq!(w.sent(20), Ok(None), "one probe at a time");
        // The pong shows the first 60 bytes read.
        let pong = Message::Pong(Bytes::copy_from_slice(&probe));
        assert_eq!(w.received(Ok(pong), now), Step::Nothing);
        assert!(w.sent(70).unwrap().is_some(), "90 unread: probe again");
        assert_eq!(w.sent(30), Err(Closing::NOT_READING));
    }

    #[test]
    fn silence_past_the_idle_timeout_closes() {
        let start = Instant::now();
        let mut w = wire(start);
        assert!(w.tick(start + Duration::from_secs(9)).is_ok());
        w.received(Ok(Message::Nop), start + Duration::from_secs(9));
        assert!(w.tick(start + Duration::from_secs(18)).is_ok());
        assert_eq!(w.tick(start + Duration::from_secs(20)), Err(Closing::IDLE));
    }
}
