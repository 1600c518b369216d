//! The OCPP-J session of one station as a pure state machine: text in,
//! effects out, time passed in. No socket, no store, no clock.
//!
//! It owns what OCPP-J makes stateful:
//! * station CALLs: parsed, checked against the schema, handed out one at a
//!   time ([`Effect::Handle`]) with a bounded queue behind the one being
//!   handled, and answered in [`Session::handle_reply`];
//! * CSMS CALLs: one in flight, a bounded queue behind it, a deadline on the
//!   one in flight; its CALLRESULT/CALLERROR/timeout comes out as
//!   [`Effect::Answered`] with the caller's tag.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ocpp::error::ErrorCode;
use crate::ocpp::frame::{self, Claimed, Frame, MessageKind, UNKNOWN_MESSAGE_ID};
use crate::ocpp::schema::{self, Direction};
use crate::ocpp::{actions, Version};

/// Limits of a session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a CSMS CALL may wait for its answer.
    pub call_timeout: Duration,
    /// CSMS CALLs that may wait behind the one in flight.
    pub max_queued_calls: usize,
    /// Station CALLs that may wait behind the one being handled.
    pub max_queued_requests: usize,
    /// Longest OCPP message accepted; longer ones get a CALLERROR.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(30),
            max_queued_calls: 64,
            max_queued_requests: 8,
            max_message_bytes: 64 * 1024,
        }
    }
}

/// A CALL the CSMS wants to send, with the caller's tag for its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundCall<T> {
    /// The action.
    pub action: &'static str,
    /// The payload.
    pub payload: Value,
    /// Whatever the caller needs to route the answer.
    pub tag: T,
}

/// How a CSMS CALL ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// A CALLRESULT whose payload fits the response schema.
    Result(Value),
    /// A CALLERROR.
    Error {
        /// The code as sent.
        code: String,
        /// The description as sent.
        description: String,
    },
    /// A CALLRESULT whose payload breaks the response schema.
    Invalid(String),
    /// No answer before the deadline.
    Timeout,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<T> {
    /// Send this text frame.
    Send {
        /// The frame.
        text: String,
        /// Its kind (metrics).
        kind: MessageKind,
        /// The action it belongs to, from a closed set (metrics).
        action: &'static str,
    },
    /// A message came in (metrics): its kind and the action it belongs to,
    /// from a closed set ([`NO_ACTION`] when it belongs to none).
    Received {
        /// Its kind.
        kind: MessageKind,
        /// The action label.
        action: &'static str,
    },
    /// Handle this (valid) station CALL, then call [`Session::handle_reply`].
    Handle {
        /// Its message id.
        id: String,
        /// Its action.
        action: String,
        /// Its payload, already checked against the schema.
        payload: Value,
    },
    /// A CSMS CALL has ended.
    Answered {
        /// The caller's tag.
        tag: T,
        /// The action that was called.
        action: &'static str,
        /// How it ended.
        outcome: CallOutcome,
        /// From sending the CALL to its answer; `None` on timeout.
        round_trip: Option<Duration>,
    },
    /// A CALLERROR was sent for a station CALL (for metrics and logs).
    Refused {
        /// The code sent.
        code: ErrorCode,
    },
    /// A message was dropped as OCPP-J says (an answer to nothing, a broken answer).
    Ignored {
        /// Why.
        reason: &'static str,
    },
}

/// The action label of a message that belongs to no known action (an
/// unreadable frame, an answer to nothing).
pub const NO_ACTION: &str = "none";

/// The CSMS CALL waiting for its answer.
#[derive(Debug)]
struct InFlight<T> {
    id: String,
    action: &'static str,
    tag: T,
    sent_at: Instant,
    deadline: Instant,
}

/// A station CALL waiting for the one before it.
#[derive(Debug)]
struct Request {
    id: String,
    action: String,
    payload: Value,
}

/// The station CALL being handled.
#[derive(Debug)]
struct Handling {
    id: String,
    label: &'static str,
}

/// The session state of one connection.
#[derive(Debug)]
pub struct Session<T> {
    version: Version,
    limits: Limits,
    next_id: u64,
    in_flight: Option<InFlight<T>>,
    calls: VecDeque<OutboundCall<T>>,
    handling: Option<Handling>,
    requests: VecDeque<Request>,
    booted: bool,
    /// While the boot is `Pending`: the actions the CSMS triggered on this
    /// connection, the only CALLs (besides BootNotification) admitted.
    pending_boot: Option<HashSet<String>>,
}

impl<T> Session<T> {
    /// A fresh session for a connection speaking `version`.
    pub fn new(version: Version, limits: Limits) -> Self {
        Session {
            version,
            limits,
            next_id: 1,
            in_flight: None,
            calls: VecDeque::new(),
            handling: None,
            requests: VecDeque::new(),
            booted: false,
            pending_boot: None,
        }
    }

    /// Marks the station as booted: it was answered a BootNotification on
    /// this connection, or was accepted before and reconnected (stations do
    /// not boot again after a mere network drop). Until then, only
    /// BootNotification is admitted.
    pub fn set_booted(&mut self) {
        self.booted = true;
        self.pending_boot = None;
    }

    /// Marks the station's boot as answered `Pending`: until it is
    /// accepted it may send BootNotification and what the CSMS triggers,
    /// nothing else (2.0.1 B02.FR.09; 1.6 likewise before Accepted).
    pub fn set_boot_pending(&mut self) {
        self.booted = true;
        self.pending_boot = Some(HashSet::new());
    }

    /// The protocol version of the connection.
    pub fn version(&self) -> Version {
        self.version
    }

    /// CSMS CALLs waiting behind the one in flight.
    pub fn queued_calls(&self) -> usize {
        self.calls.len()
    }

    /// True when no CSMS CALL is in flight or queued.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none() && self.calls.is_empty()
    }

    /// Takes one text message from the station.
    pub fn handle_text(&mut self, now: Instant, text: &str, out: &mut Vec<Effect<T>>) {
        if text.len() > self.limits.max_message_bytes {
            let reason = format!(
                "message of {} bytes exceeds {} bytes",
                text.len(),
                self.limits.max_message_bytes
            );
            received(out, MessageKind::Invalid, NO_ACTION);
            let id = frame::sniff_id(text);
            let id = id.as_deref().unwrap_or(UNKNOWN_MESSAGE_ID);
            self.refuse(id, NO_ACTION, ErrorCode::Format, &reason, out);
            return;
        }
        match frame::parse(text) {
            Ok(Frame::Call {
                id,
                action,
                payload,
            }) => self.on_call(id, action, payload, out),
            Ok(Frame::CallResult { id, payload }) => self.on_answer(now, &id, Ok(payload), out),
            Ok(Frame::CallError {
                id,
                code,
                description,
            }) => self.on_answer(now, &id, Err((code, description)), out),
            Err(e) if e.claimed == Claimed::Answer => {
                received(out, MessageKind::Invalid, NO_ACTION);
                out.push(Effect::Ignored {
                    reason: "malformed answer",
                });
            }
            Err(e) => {
                received(out, MessageKind::Invalid, NO_ACTION);
                let id = e.id.as_deref().unwrap_or(UNKNOWN_MESSAGE_ID);
                self.refuse(id, NO_ACTION, e.code, &e.reason, out);
            }
        }
    }

    fn on_call(&mut self, id: String, action: String, payload: Value, out: &mut Vec<Effect<T>>) {
        let label = actions::label(self.version, &action);
        received(out, MessageKind::Call, label);
        if let Err(code) = actions::admit(self.version, &action) {
            let why = match code {
                ErrorCode::NotSupported => format!("{action} is not supported by this CSMS"),
                _ => format!("{action} is not an OCPP {} action", self.version.label()),
            };
            return self.refuse(&id, label, code, &why, out);
        }
        if let Err(v) = schema::check(self.version, &action, Direction::Request, &payload) {
            return self.refuse(&id, label, v.code, &v.message, out);
        }
        if !self.booted && action != "BootNotification" {
            let why = "send BootNotification first";
            return self.refuse(&id, label, ErrorCode::Security, why, out);
        }
        if let Some(triggered) = &self.pending_boot {
            if action != "BootNotification" && !triggered.contains(&action) {
                let why = "the station's boot is Pending: only BootNotification and triggered messages are admitted";
                return self.refuse(&id, label, ErrorCode::Security, why, out);
            }
        }
        if self.handling.is_none() {
            self.handling = Some(Handling {
                id: id.clone(),
                label,
            });
            out.push(Effect::Handle {
                id,
                action,
                payload,
            });
        } else if self.requests.len() < self.limits.max_queued_requests {
            self.requests.push_back(Request {
                id,
                action,
                payload,
            });
        } else {
            let why = "too many requests waiting for an answer";
            self.refuse(&id, label, ErrorCode::RpcFramework, why, out);
        }
    }

    /// Answers the station CALL `id` once its handler is done, and hands out
    /// the next waiting one.
    pub fn handle_reply(
        &mut self,
        id: &str,
        result: Result<Value, (ErrorCode, String)>,
        out: &mut Vec<Effect<T>>,
    ) {
        let label = match &self.handling {
            Some(handling) if handling.id == id => handling.label,
            _ => NO_ACTION,
        };
        match result {
            Ok(payload) => out.push(Effect::Send {
                text: frame::call_result(id, &payload),
                kind: MessageKind::CallResult,
                action: label,
            }),
            Err((code, why)) => self.refuse(id, label, code, &why, out),
        }
        if self.handling.as_ref().is_some_and(|h| h.id == id) {
            self.handling = None;
            if let Some(next) = self.requests.pop_front() {
                self.handling = Some(Handling {
                    id: next.id.clone(),
                    label: actions::label(self.version, &next.action),
                });
                out.push(Effect::Handle {
                    id: next.id,
                    action: next.action,
                    payload: next.payload,
                });
            }
        }
    }

    fn refuse(
        &self,
        id: &str,
        action: &'static str,
        code: ErrorCode,
        why: &str,
        out: &mut Vec<Effect<T>>,
    ) {
        out.push(Effect::Send {
            text: frame::call_error(id, code.name(self.version), why),
            kind: MessageKind::CallError,
            action,
        });
        out.push(Effect::Refused { code });
    }

    fn on_answer(
        &mut self,
        now: Instant,
        id: &str,
        answer: Result<Value, (String, String)>,
        out: &mut Vec<Effect<T>>,
    ) {
        let kind = match answer {
            Ok(_) => MessageKind::CallResult,
            Err(_) => MessageKind::CallError,
        };
        let matches = self.in_flight.as_ref().is_some_and(|call| call.id == id);
        if !matches {
            received(out, kind, NO_ACTION);
            out.push(Effect::Ignored {
                reason: "answer to no pending call",
            });
            return;
        }
        let Some(call) = self.in_flight.take() else {
            return;
        };
        received(out, kind, call.action);
        let outcome = match answer {
            Ok(payload) => {
                match schema::check(self.version, call.action, Direction::Response, &payload) {
                    Ok(()) => CallOutcome::Result(payload),
                    Err(v) => CallOutcome::Invalid(v.message),
                }
            }
            Err((code, description)) => CallOutcome::Error { code, description },
        };
        out.push(Effect::Answered {
            tag: call.tag,
            action: call.action,
            outcome,
            round_trip: Some(now.saturating_duration_since(call.sent_at)),
        });
        self.send_next(now, out);
    }

    /// Queues a CSMS CALL; it goes out at once when nothing is in flight.
    /// Gives the call back when the queue is full.
    pub fn queue_call(
        &mut self,
        now: Instant,
        call: OutboundCall<T>,
        out: &mut Vec<Effect<T>>,
    ) -> Result<(), OutboundCall<T>> {
        if self.calls.len() >= self.limits.max_queued_calls {
            return Err(call);
        }
        self.calls.push_back(call);
        if self.in_flight.is_none() {
            self.send_next(now, out);
        }
        Ok(())
    }

    fn send_next(&mut self, now: Instant, out: &mut Vec<Effect<T>>) {
        let Some(call) = self.calls.pop_front() else {
            return;
        };
        if let (Some(triggered), Some(action)) = (
            &mut self.pending_boot,
            triggered_action(call.action, &call.payload),
        ) {
            triggered.insert(action);
        }
        let id = self.next_id.to_string();
        self.next_id += 1;
        out.push(Effect::Send {
            text: frame::call(&id, call.action, &call.payload),
            kind: MessageKind::Call,
            action: call.action,
        });
        self.in_flight = Some(InFlight {
            id,
            action: call.action,
            tag: call.tag,
            sent_at: now,
            deadline: now + self.limits.call_timeout,
        });
    }

    /// When [`Session::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|call| call.deadline)
    }

    /// Expires the CSMS CALL in flight when its deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Effect<T>>) {
        if self
            .in_flight
            .as_ref()
            .is_some_and(|call| call.deadline <= now)
        {
            if let Some(call) = self.in_flight.take() {
                out.push(Effect::Answered {
                    tag: call.tag,
                    action: call.action,
                    outcome: CallOutcome::Timeout,
                    round_trip: None,
                });
            }
            self.send_next(now, out);
        }
    }

    /// The tag of the CSMS CALL waiting for its answer, if any.
    pub fn in_flight_tag(&self) -> Option<&T> {
        self.in_flight.as_ref().map(|call| &call.tag)
    }

    /// Ends the session: every CSMS CALL in flight or queued is answered
    /// with `Timeout`-like failure by the caller; this hands their tags back.
    pub fn drain(&mut self) -> Vec<T> {
        let mut tags: Vec<T> = self.in_flight.take().map(|c| c.tag).into_iter().collect();
        tags.extend(self.calls.drain(..).map(|c| c.tag));
        tags
    }
}

/// The station CALL a CSMS trigger asks for: `requestedMessage` of
/// TriggerMessage and ExtendedTriggerMessage (the certificate signing
/// triggers ask for SignCertificate), DataTransfer for the PnC trigger.
fn triggered_action(action: &str, payload: &Value) -> Option<String> {
    match action {
        "TriggerMessage" | "ExtendedTriggerMessage" => {
            let requested = payload["requestedMessage"].as_str()?;
            Some(if requested.starts_with("Sign") {
                "SignCertificate".to_owned()
            } else {
                requested.to_owned()
            })
        }
        "DataTransfer" if payload["messageId"] == "TriggerMessage" => {
            Some("DataTransfer".to_owned())
        }
        _ => None,
    }
}

fn received<T>(out: &mut Vec<Effect<T>>, kind: MessageKind, action: &'static str) {
    out.push(Effect::Received { kind, action });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type S = Session<u32>;

    fn t0() -> Instant {
        Instant::now()
    }

    fn session(version: Version) -> S {
        let mut s = Session::new(version, Limits::default());
        s.set_booted();
        s
    }

    #[test]
    fn only_boot_notification_before_the_station_booted() {
        let (mut s, mut fx) = (S::new(Version::V201, Limits::default()), Vec::new());
        s.handle_text(t0(), r#"[2,"m1","Heartbeat",{}]"#, &mut fx);
        assert_eq!(
            sent(&fx)[0],
            json!([4, "m1", "SecurityError", "send BootNotification first", {}])
        );
        fx.clear();
        let boot = r#"[2,"m2","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]"#;
        s.handle_text(t0(), boot, &mut fx);
        assert!(matches!(&fx[1], Effect::Handle { action, .. } if action == "BootNotification"));
    }

    #[test]
    fn a_pending_station_may_send_only_what_was_triggered() {
        let (mut s, mut fx) = (S::new(Version::V201, Limits::default()), Vec::new());
        s.set_boot_pending();
        let status = r#"[2,"m1","StatusNotification",{"timestamp":"2026-12-01T00:00:00Z","connectorStatus":"Available","evseId":1,"connectorId":1}]"#;
        s.handle_text(t0(), status, &mut fx);
        assert_eq!(sent(&fx)[0][2], "SecurityError");
        fx.clear();
        let trigger = OutboundCall {
            action: "TriggerMessage",
            payload: json!({"requestedMessage": "StatusNotification"}),
            tag: 1,
        };
        s.queue_call(t0(), trigger, &mut fx).unwrap();
        fx.clear();
        s.handle_text(t0(), &status.replace("m1", "m2"), &mut fx);
        assert!(matches!(&fx[1], Effect::Handle { action, .. } if action == "StatusNotification"));
        let heartbeat = r#"[2,"m3","Heartbeat",{}]"#;
        fx.clear();
        s.handle_reply("m2", Ok(json!({})), &mut fx);
        s.handle_text(t0(), heartbeat, &mut fx);
        assert_eq!(sent(&fx).last().unwrap()[2], "SecurityError");
        s.set_booted();
        fx.clear();
        s.handle_text(t0(), &heartbeat.replace("m3", "m4"), &mut fx);
        assert!(matches!(&fx[1], Effect::Handle { action, .. } if action == "Heartbeat"));
    }

    fn sent(fx: &[Effect<u32>]) -> Vec<Value> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Send { text, .. } => {
                    Some(serde_json::from_str(text).expect("valid JSON sent"))
                }
                _ => None,
            })
            .collect()
    }

    fn reset(tag: u32) -> OutboundCall<u32> {
        OutboundCall {
            action: "Reset",
            payload: json!({"type": "Immediate"}),
            tag,
        }
    }

    #[test]
    fn a_valid_call_is_handed_out_and_answered() {
        let (mut s, mut fx) = (session(Version::V201), Vec::new());
        s.handle_text(t0(), r#"[2,"m1","Heartbeat",{}]"#, &mut fx);
        assert_eq!(
            fx,
            vec![
                Effect::Received {
                    kind: MessageKind::Call,
                    action: "Heartbeat"
                },
                Effect::Handle {
                    id: "m1".into(),
                    action: "Heartbeat".into(),
                    payload: json!({})
                }
            ]
        );
        fx.clear();
        s.handle_reply(
            "m1",
            Ok(json!({"currentTime": "2026-11-21T00:00:00Z"})),
            &mut fx,
        );
        assert_eq!(
            fx,
            vec![Effect::Send {
                text: r#"[3,"m1",{"currentTime":"2026-11-21T00:00:00Z"}]"#.into(),
                kind: MessageKind::CallResult,
                action: "Heartbeat"
            }]
        );
    }

    #[test]
    fn traffic_labels_stay_in_a_closed_set() {
        let (mut s, mut fx) = (session(Version::V16), Vec::new());
        s.handle_text(t0(), r#"[2,"x","MadeUpAction42",{}]"#, &mut fx);
        s.handle_text(t0(), "not json", &mut fx);
        let labels: Vec<(MessageKind, &str)> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Received { kind, action } | Effect::Send { kind, action, .. } => {
                    Some((*kind, *action))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            labels,
            vec![
                (MessageKind::Call, actions::OTHER),
                (MessageKind::CallError, actions::OTHER),
                (MessageKind::Invalid, NO_ACTION),
                (MessageKind::CallError, NO_ACTION),
            ]
        );
    }

    #[test]
    fn bad_frames_get_version_specific_callerrors() {
        for (version, format) in [
            (Version::V16, "FormationViolation"),
            (Version::V201, "FormatViolation"),
        ] {
            let mut s = session(version);
            let cases = [
                ("not json", json!([4, "-1", format])),
                (r#"{"a":1}"#, json!([4, "-1", format])),
                (r#"[2,"m2","Heartbeat"]"#, json!([4, "m2", format])),
                (
                    r#"[2,"m3","Teleport",{}]"#,
                    json!([4, "m3", "NotImplemented"]),
                ),
                (
                    r#"[2,"m4","BootNotification",{}]"#,
                    json!([
                        4,
                        "m4",
                        if version == Version::V16 {
                            "OccurenceConstraintViolation"
                        } else {
                            "OccurrenceConstraintViolation"
                        }
                    ]),
                ),
                (
                    r#"[2,"m5","Heartbeat",{"extra":1}]"#,
                    json!([4, "m5", format]),
                ),
            ];
            for (text, expected) in cases {
                let mut fx = Vec::new();
                s.handle_text(t0(), text, &mut fx);
                let reply = &sent(&fx)[0];
                assert_eq!(reply[0], expected[0], "{text}");
                assert_eq!(reply[1], expected[1], "{text}");
                assert_eq!(reply[2], expected[2], "{version:?} {text}");
                assert!(reply[3].as_str().is_some_and(|d| !d.is_empty()));
                assert_eq!(reply[4], json!({}));
            }
        }
    }

    #[test]
    fn unknown_message_type_and_unsupported_actions() {
        let (mut s, mut fx) = (session(Version::V201), Vec::new());
        s.handle_text(t0(), r#"[7,"m1",{}]"#, &mut fx);
        s.handle_text(t0(), r#"[2,"m2","ReservationStatusUpdate",{"reservationId":1,"reservationUpdateStatus":"Expired"}]"#, &mut fx);
        let codes: Vec<_> = sent(&fx).iter().map(|v| v[2].clone()).collect();
        assert_eq!(
            codes,
            [json!("MessageTypeNotSupported"), json!("NotSupported")]
        );
    }

    #[test]
    fn type_violations_are_named() {
        let (mut s, mut fx) = (session(Version::V16), Vec::new());
        s.handle_text(t0(), r#"[2,"m1","Authorize",{"idTag":5}]"#, &mut fx);
        assert_eq!(sent(&fx)[0][2], "TypeConstraintViolation");
        fx.clear();
        s.handle_text(
            t0(),
            r#"[2,"m2","Authorize",{"idTag":"ABCDEFGHIJKLMNOPQRSTUVWXYZ"}]"#,
            &mut fx,
        );
        assert_eq!(
            sent(&fx)[0][2],
            "PropertyConstraintViolation",
            "idTag is at most 20 characters"
        );
    }

    #[test]
    fn oversized_messages_are_refused_with_their_id() {
        let limits = Limits {
            max_message_bytes: 100,
            ..Limits::default()
        };
        let (mut s, mut fx) = (S::new(Version::V201, limits), Vec::new());
        s.set_booted();
        let text = format!(
            r#"[2,"big","DataTransfer",{{"vendorId":"v","data":"{}"}}]"#,
            "x".repeat(200)
        );
        s.handle_text(t0(), &text, &mut fx);
        let reply = &sent(&fx)[0];
        assert_eq!(
            (reply[1].as_str(), reply[2].as_str()),
            (Some("big"), Some("FormatViolation"))
        );
    }

    #[test]
    fn station_calls_are_handled_one_at_a_time() {
        let (mut s, mut fx) = (session(Version::V201), Vec::new());
        s.handle_text(t0(), r#"[2,"a","Heartbeat",{}]"#, &mut fx);
        s.handle_text(t0(), r#"[2,"b","Heartbeat",{}]"#, &mut fx);
        assert_eq!(
            fx.iter()
                .filter(|e| matches!(e, Effect::Handle { .. }))
                .count(),
            1
        );
        fx.clear();
        s.handle_reply("a", Ok(json!({"currentTime": "x"})), &mut fx);
        assert!(
            matches!(&fx[1], Effect::Handle { id, .. } if id == "b"),
            "{fx:?}"
        );
    }

    #[test]
    fn too_many_waiting_station_calls_are_refused() {
        let limits = Limits {
            max_queued_requests: 1,
            ..Limits::default()
        };
        let (mut s, mut fx) = (S::new(Version::V201, limits), Vec::new());
        s.set_booted();
        for id in ["a", "b", "c"] {
            s.handle_text(t0(), &format!(r#"[2,"{id}","Heartbeat",{{}}]"#), &mut fx);
        }
        let refused = sent(&fx);
        assert_eq!(
            refused,
            vec![json!([
                4,
                "c",
                "RpcFrameworkError",
                "too many requests waiting for an answer",
                {}
            ])]
        );
    }

    #[test]
    fn second_command_waits_for_first_reply() {
        let (mut s, mut fx) = (session(Version::V201), Vec::new());
        s.queue_call(t0(), reset(1), &mut fx).unwrap();
        s.queue_call(t0(), reset(2), &mut fx).unwrap();
        let calls = sent(&fx);
        assert_eq!(
            calls.len(),
            1,
            "the second stays queued until the first is answered"
        );
        assert_eq!(calls[0], json!([2, "1", "Reset", {"type": "Immediate"}]));
        fx.clear();
        let sent_at = t0();
        s.handle_text(
            sent_at + Duration::from_millis(7),
            r#"[3,"1",{"status":"Accepted"}]"#,
            &mut fx,
        );
        assert_eq!(
            fx[0],
            Effect::Received {
                kind: MessageKind::CallResult,
                action: "Reset"
            }
        );
        let Effect::Answered {
            tag: 1,
            action: "Reset",
            outcome,
            round_trip,
        } = &fx[1]
        else {
            panic!("{fx:?}");
        };
        assert_eq!(outcome, &CallOutcome::Result(json!({"status": "Accepted"})));
        assert!(round_trip.expect("answered") >= Duration::from_millis(7));
        assert_eq!(
            sent(&fx),
            vec![json!([2, "2", "Reset", {"type": "Immediate"}])]
        );
    }

    #[test]
    fn answers_are_correlated_and_checked() {
        let (mut s, mut fx) = (session(Version::V201), Vec::new());
        s.queue_call(t0(), reset(1), &mut fx).unwrap();
        fx.clear();
        s.handle_text(t0(), r#"[3,"999",{"status":"Accepted"}]"#, &mut fx);
        assert_eq!(
            fx,
            vec![
                Effect::Received {
                    kind: MessageKind::CallResult,
                    action: NO_ACTION
                },
                Effect::Ignored {
                    reason: "answer to no pending call"
                }
            ]
        );
        fx.clear();
        s.handle_text(t0(), r#"[3,"1",{"status":"Maybe"}]"#, &mut fx);
        assert!(
            matches!(
                &fx[1],
                Effect::Answered {
                    tag: 1,
                    outcome: CallOutcome::Invalid(_),
                    ..
                }
            ),
            "{fx:?}"
        );
        s.queue_call(t0(), reset(2), &mut fx).unwrap();
        fx.clear();
        s.handle_text(t0(), r#"[4,"2","NotSupported","no",{}]"#, &mut fx);
        assert_eq!(fx.len(), 2, "{fx:?}");
        assert_eq!(
            fx[0],
            Effect::Received {
                kind: MessageKind::CallError,
                action: "Reset"
            }
        );
        assert!(matches!(
            &fx[1],
            Effect::Answered {
                tag: 2,
                action: "Reset",
                outcome: CallOutcome::Error { code, description },
                round_trip: Some(_),
            } if code == "NotSupported" && description == "no"
        ));
        assert!(s.is_idle());
    }

    #[test]
    fn a_call_without_answer_times_out_and_the_next_goes() {
        let start = t0();
        let (mut s, mut fx) = (session(Version::V16), Vec::new());
        s.queue_call(
            start,
            OutboundCall {
                action: "TriggerMessage",
                payload: json!({"requestedMessage": "Heartbeat"}),
                tag: 1,
            },
            &mut fx,
        )
        .unwrap();
        s.queue_call(
            start,
            OutboundCall {
                action: "TriggerMessage",
                payload: json!({"requestedMessage": "Heartbeat"}),
                tag: 2,
            },
            &mut fx,
        )
        .unwrap();
        let deadline = s.poll_timeout().expect("deadline");
        assert_eq!(deadline, start + Limits::default().call_timeout);
        fx.clear();
        s.handle_timeout(deadline - Duration::from_millis(1), &mut fx);
        assert!(fx.is_empty(), "not yet");
        s.handle_timeout(deadline, &mut fx);
        assert_eq!(
            fx[0],
            Effect::Answered {
                tag: 1,
                action: "TriggerMessage",
                outcome: CallOutcome::Timeout,
                round_trip: None,
            }
        );
        assert_eq!(sent(&fx)[0][1], "2");
        // A late answer to the expired call is ignored.
        fx.clear();
        s.handle_text(deadline, r#"[3,"1",{"status":"Accepted"}]"#, &mut fx);
        assert_eq!(
            fx.last(),
            Some(&Effect::Ignored {
                reason: "answer to no pending call"
            })
        );
    }

    #[test]
    fn the_call_queue_is_bounded() {
        let limits = Limits {
            max_queued_calls: 2,
            ..Limits::default()
        };
        let (mut s, mut fx) = (S::new(Version::V201, limits), Vec::new());
        for tag in 0..3 {
            s.queue_call(t0(), reset(tag), &mut fx).unwrap();
        }
        assert_eq!(s.queue_call(t0(), reset(9), &mut fx), Err(reset(9)));
        assert_eq!(s.drain(), vec![0, 1, 2]);
    }

    #[test]
    fn malformed_answers_are_ignored() {
        let (mut s, mut fx) = (session(Version::V201), Vec::new());
        s.handle_text(t0(), r#"[3,"1"]"#, &mut fx);
        assert_eq!(
            fx,
            vec![
                Effect::Received {
                    kind: MessageKind::Invalid,
                    action: NO_ACTION
                },
                Effect::Ignored {
                    reason: "malformed answer"
                }
            ]
        );
    }
}
