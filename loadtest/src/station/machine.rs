//! The simulated station's protocol as a pure state machine: frames and time
//! in, frames and events out. No socket, no clock: the caller passes `now`
//! and carries out the [`Output`]s, so every flow is unit-tested here.
//!
//! What it keeps: the boot state (Accepted, or waiting to retry after
//! Pending/Rejected), the one CALL in flight (OCPP-J allows one at a time
//! per direction), a queue of CALLs waiting behind it (triggered messages),
//! the heartbeat timer, and the charge cycle (status, authorize, start, meter
//! values, stop). CSMS CALLs are answered at once, whatever is in flight.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::messages::{self, CsmsCall, Request, TransactionEventType};
use super::Version;

/// Heartbeat interval used when the CSMS answers 0.
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(300);
/// Wait before booting again after a boot CALL failed (CALLERROR, timeout).
const BOOT_RETRY: Duration = Duration::from_secs(10);
/// Energy added per meter value, Wh.
const WH_PER_METER_VALUE: u64 = 250;

/// What a station does once the measuring phase starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Charge cycles: status, authorize, start, meter values, stop, again.
    Charge,
    /// A closed loop of heartbeats: the next goes out when the last is answered.
    HeartbeatLoop,
    /// Only heartbeats at the interval the CSMS gave.
    Idle,
}

/// Settings shared by every station of a run (one `Arc` per station).
#[derive(Debug, Clone)]
pub struct Profile {
    /// What to do once active.
    pub mode: Mode,
    /// How long the CSMS has to answer one of our CALLs.
    pub call_timeout: Duration,
    /// Time between meter values (and before the stop) in a charge cycle.
    pub meter_interval: Duration,
    /// Meter values per transaction.
    pub meter_values: u32,
    /// The token presented in Authorize and transactions.
    pub id_token: String,
}

/// The time, twice: monotonic for timers, UTC for payload timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For timers and round trips.
    pub at: Instant,
    /// For OCPP timestamps.
    pub utc: DateTime<Utc>,
}

impl Now {
    /// The current time.
    pub fn current() -> Self {
        Now {
            at: Instant::now(),
            utc: Utc::now(),
        }
    }
}

/// What the caller must do or may count.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Our CALL was answered with a CALLRESULT after `rtt`.
    Answered {
        /// The action.
        action: &'static str,
        /// Send to answer.
        rtt: Duration,
    },
    /// BootNotification answered Accepted.
    Booted,
    /// BootNotification answered Pending: the CSMS configures us first.
    BootPending,
    /// BootNotification answered Rejected.
    BootRejected,
    /// Our CALL got a CALLERROR.
    CallError {
        /// The action.
        action: &'static str,
    },
    /// The CSMS sent a CALL (already answered in a `Send` before this).
    CsmsCall(CsmsCall),
    /// The CSMS sent something that is not an OCPP-J frame.
    Malformed,
    /// Send this text frame.
    Send(String),
    /// Our CALL got no answer within the call timeout.
    TimedOut {
        /// The action.
        action: &'static str,
    },
}

/// Why a CALL was sent, so its answer moves the right state on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A step of the charge cycle.
    Charge,
    /// Boot, heartbeat, or a triggered message.
    Other,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: u32,
    request: Request,
    origin: Origin,
    sent_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Boot {
    Accepted,
    /// Not booted; `retry_at` is when to try again after Pending/Rejected/failure.
    Unbooted {
        retry_at: Option<Instant>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChargeStep {
    Status,
    Authorize,
    Start,
    Meter { sent: u32 },
    Stop,
}

#[derive(Debug, Clone, Copy)]
struct Charge {
    step: ChargeStep,
    /// When the step is due; `None` means at once.
    due: Option<Instant>,
    /// 1.6: the id the CSMS gave at StartTransaction.
    transaction_16: i64,
    /// 2.0.1: the id we chose (seed in the high half, a counter in the low).
    transaction_201: u128,
    seq_no: u32,
    meter_wh: u64,
}

/// One station's protocol state.
#[derive(Debug)]
pub struct Machine {
    profile: Arc<Profile>,
    version: Version,
    boot: Boot,
    /// A BootNotification is to be sent as soon as nothing is in flight.
    boot_wanted: bool,
    /// The measuring phase runs: the mode's loop is on.
    active: bool,
    in_flight: Option<InFlight>,
    /// CALLs waiting for the one in flight (triggered messages).
    queue: VecDeque<Request>,
    next_id: u32,
    heartbeat_interval: Duration,
    heartbeat_at: Option<Instant>,
    charge: Charge,
}

impl Machine {
    /// A station speaking `version`; `seed` makes its 2.0.1 transaction ids
    /// unique (pick it at random so reruns do not repeat ids).
    pub fn new(version: Version, profile: Arc<Profile>, seed: u64) -> Self {
        Machine {
            profile,
            version,
            boot: Boot::Unbooted { retry_at: None },
            boot_wanted: false,
            active: false,
            in_flight: None,
            queue: VecDeque::new(),
            next_id: 1,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            heartbeat_at: None,
            charge: Charge {
                step: ChargeStep::Status,
                due: None,
                transaction_16: 0,
                transaction_201: u128::from(seed) << 64,
                seq_no: 0,
                meter_wh: 0,
            },
        }
    }

    /// The version it speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether the last boot was accepted.
    pub fn is_booted(&self) -> bool {
        self.boot == Boot::Accepted
    }

    /// A new connection is open: everything of the old one is forgotten and
    /// the station boots (a reconnecting station boots again, as after a
    /// power cut).
    pub fn handle_open(&mut self, now: Now, out: &mut Vec<Output>) {
        self.boot = Boot::Unbooted { retry_at: None };
        self.boot_wanted = true;
        self.in_flight = None;
        self.queue.clear();
        self.heartbeat_at = None;
        self.charge.step = ChargeStep::Status;
        self.charge.due = None;
        self.pump(now, out);
    }

    /// The measuring phase begins: the mode's loop starts (once booted).
    pub fn handle_activate(&mut self, now: Now, out: &mut Vec<Output>) {
        self.active = true;
        self.pump(now, out);
    }

    /// A text frame from the CSMS.
    pub fn handle_text(&mut self, now: Now, text: &str, out: &mut Vec<Output>) {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(frame)) => self.handle_frame(now, &frame, out),
            _ => out.push(Output::Malformed),
        }
        self.pump(now, out);
    }

    /// Timers: the call timeout, the boot retry, heartbeats, charge steps.
    pub fn handle_timeout(&mut self, now: Now, out: &mut Vec<Output>) {
        if let Some(call) = self.in_flight {
            if now.at >= call.sent_at + self.profile.call_timeout {
                self.in_flight = None;
                out.push(Output::TimedOut {
                    action: call.request.action(),
                });
                self.recover(now.at, call);
            }
        }
        if let Boot::Unbooted { retry_at: Some(at) } = self.boot {
            if now.at >= at {
                self.boot = Boot::Unbooted { retry_at: None };
                self.boot_wanted = true;
            }
        }
        self.pump(now, out);
    }

    /// When [`Machine::handle_timeout`] has something to do next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(call) = self.in_flight {
            return Some(call.sent_at + self.profile.call_timeout);
        }
        let mut next: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        match self.boot {
            Boot::Unbooted { retry_at } => consider(retry_at),
            Boot::Accepted => {
                consider(self.heartbeat_at);
                if self.active && self.profile.mode == Mode::Charge {
                    consider(self.charge.due);
                }
            }
        }
        next
    }

    fn handle_frame(&mut self, now: Now, frame: &[Value], out: &mut Vec<Output>) {
        let id = frame.get(1).and_then(Value::as_str);
        match (frame.first().and_then(Value::as_u64), id) {
            (Some(2), Some(id)) => {
                let Some(action) = frame.get(2).and_then(Value::as_str) else {
                    out.push(Output::Malformed);
                    return;
                };
                let payload = frame.get(3).unwrap_or(&Value::Null);
                self.handle_call(id, action, payload, out);
            }
            (Some(3), Some(id)) => {
                if let Some(call) = self.take_in_flight(id) {
                    let payload = frame.get(2).unwrap_or(&Value::Null);
                    self.handle_result(now, call, payload, out);
                }
                // An answer to nothing is dropped, as OCPP-J says.
            }
            (Some(4), Some(id)) => {
                if let Some(call) = self.take_in_flight(id) {
                    out.push(Output::CallError {
                        action: call.request.action(),
                    });
                    self.recover(now.at, call);
                }
            }
            _ => out.push(Output::Malformed),
        }
    }

    fn take_in_flight(&mut self, id: &str) -> Option<InFlight> {
        let matches = self
            .in_flight
            .is_some_and(|call| id.parse::<u32>() == Ok(call.id));
        if matches {
            self.in_flight.take()
        } else {
            None
        }
    }

    fn handle_call(&mut self, id: &str, action: &str, payload: &Value, out: &mut Vec<Output>) {
        let answer = messages::answer(self.version, id, action, payload);
        out.push(Output::Send(answer.frame));
        out.push(Output::CsmsCall(answer.call));
        if answer.call == CsmsCall::Reset {
            // A reset reboots: nothing else goes out until the new boot is accepted.
            self.boot = Boot::Unbooted { retry_at: None };
        }
        match answer.follow_up {
            Some(Request::BootNotification) => self.boot_wanted = true,
            Some(request) => self.queue.push_back(request),
            None => {}
        }
    }

    fn handle_result(&mut self, now: Now, call: InFlight, payload: &Value, out: &mut Vec<Output>) {
        out.push(Output::Answered {
            action: call.request.action(),
            rtt: now.at.saturating_duration_since(call.sent_at),
        });
        match call.request {
            Request::BootNotification => {
                let interval = payload
                    .get("interval")
                    .and_then(Value::as_u64)
                    .map(Duration::from_secs);
                match payload.get("status").and_then(Value::as_str) {
                    Some("Accepted") => {
                        self.boot = Boot::Accepted;
                        self.heartbeat_interval = interval
                            .filter(|i| !i.is_zero())
                            .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL);
                        self.heartbeat_at = Some(now.at + self.heartbeat_interval);
                        out.push(Output::Booted);
                    }
                    status => {
                        // Pending or Rejected: boot again after the interval
                        // unless the CSMS triggers it sooner.
                        let wait = interval.filter(|i| !i.is_zero()).unwrap_or(BOOT_RETRY);
                        self.boot = Boot::Unbooted {
                            retry_at: Some(now.at + wait),
                        };
                        out.push(if status == Some("Pending") {
                            Output::BootPending
                        } else {
                            Output::BootRejected
                        });
                    }
                }
            }
            Request::Heartbeat => self.heartbeat_at = Some(now.at + self.heartbeat_interval),
            _ if call.origin == Origin::Charge => {
                self.advance_charge(now.at, call.request, payload)
            }
            _ => {}
        }
    }

    /// A failed CALL (CALLERROR or timeout): boot later, or restart the
    /// charge cycle after a pause; a heartbeat simply waits its interval.
    fn recover(&mut self, now: Instant, call: InFlight) {
        match (call.request, call.origin) {
            (Request::BootNotification, _) => {
                self.boot = Boot::Unbooted {
                    retry_at: Some(now + BOOT_RETRY),
                };
            }
            (_, Origin::Charge) => {
                self.charge.step = ChargeStep::Status;
                self.charge.due = Some(now + self.profile.meter_interval);
            }
            (Request::Heartbeat, _) => self.heartbeat_at = Some(now + self.heartbeat_interval),
            _ => {}
        }
    }

    fn advance_charge(&mut self, now: Instant, request: Request, payload: &Value) {
        let interval = self.profile.meter_interval;
        let charge = &mut self.charge;
        let (step, due) = match charge.step {
            ChargeStep::Status => (ChargeStep::Authorize, None),
            ChargeStep::Authorize => (ChargeStep::Start, None),
            ChargeStep::Start => {
                if let Request::StartTransaction { .. } = request {
                    charge.transaction_16 = payload
                        .get("transactionId")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                }
                (ChargeStep::Meter { sent: 0 }, Some(now + interval))
            }
            ChargeStep::Meter { sent } if sent + 1 >= self.profile.meter_values => {
                (ChargeStep::Stop, Some(now + interval))
            }
            ChargeStep::Meter { sent } => {
                (ChargeStep::Meter { sent: sent + 1 }, Some(now + interval))
            }
            ChargeStep::Stop => {
                // Next cycle, next transaction.
                charge.transaction_201 += 1;
                charge.seq_no = 0;
                (ChargeStep::Status, None)
            }
        };
        charge.step = step;
        charge.due = due;
    }

    /// The charge step's CALL, when it is due.
    fn charge_request(&mut self, now: Instant) -> Option<Request> {
        if self.charge.due.is_some_and(|due| now < due) {
            return None;
        }
        let version = self.version;
        let charge = &mut self.charge;
        let event = |charge: &mut Charge, event| {
            let request = Request::TransactionEvent {
                event,
                transaction: charge.transaction_201,
                seq_no: charge.seq_no,
                meter_wh: charge.meter_wh,
            };
            charge.seq_no += 1;
            request
        };
        Some(match (charge.step, version) {
            (ChargeStep::Status, _) => Request::StatusNotification,
            (ChargeStep::Authorize, _) => Request::Authorize,
            (ChargeStep::Start, Version::V16) => Request::StartTransaction {
                meter_wh: charge.meter_wh,
            },
            (ChargeStep::Start, Version::V201) => event(charge, TransactionEventType::Started),
            (ChargeStep::Meter { .. }, _) | (ChargeStep::Stop, _) => {
                charge.meter_wh += WH_PER_METER_VALUE;
                match (charge.step, version) {
                    (ChargeStep::Stop, Version::V16) => Request::StopTransaction {
                        transaction_id: charge.transaction_16,
                        meter_wh: charge.meter_wh,
                    },
                    (ChargeStep::Stop, Version::V201) => event(charge, TransactionEventType::Ended),
                    (_, Version::V16) => Request::MeterValues {
                        transaction_id: charge.transaction_16,
                        meter_wh: charge.meter_wh,
                    },
                    (_, Version::V201) => event(charge, TransactionEventType::Updated),
                }
            }
        })
    }

    /// Sends the next CALL if none is in flight.
    fn pump(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.in_flight.is_some() {
            return;
        }
        let next = if self.boot_wanted {
            self.boot_wanted = false;
            Some((Request::BootNotification, Origin::Other))
        } else if self.boot != Boot::Accepted {
            None
        } else if let Some(request) = self.queue.pop_front() {
            Some((request, Origin::Other))
        } else if self.active && self.profile.mode == Mode::HeartbeatLoop {
            Some((Request::Heartbeat, Origin::Other))
        } else if let Some(request) = (self.active && self.profile.mode == Mode::Charge)
            .then(|| self.charge_request(now.at))
            .flatten()
        {
            Some((request, Origin::Charge))
        } else if self.heartbeat_at.is_some_and(|at| now.at >= at) {
            Some((Request::Heartbeat, Origin::Other))
        } else {
            None
        };
        if let Some((request, origin)) = next {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            out.push(Output::Send(messages::call_frame(
                id,
                self.version,
                request,
                now.utc,
                &self.profile.id_token,
            )));
            self.in_flight = Some(InFlight {
                id,
                request,
                origin,
                sent_at: now.at,
            });
        }
    }
}

#[cfg(test)]
mod tests;
