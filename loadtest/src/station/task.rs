//! One station's life as one tokio task: wait for its ramp slot, connect
//! (bounded by the handshake semaphore), drive the state machine over the
//! socket, and reconnect with OCPP's randomized back-off when the connection
//! is lost or, in the storm scenario, dropped on purpose. Everything it sees
//! goes to the process's [`Stats`](crate::stats::Stats).
//!
//! One task per station, no split reader/writer: the select loop reads,
//! waits for the machine's next timer and for phase changes, and writes the
//! machine's frames in between. That keeps a station at a few KB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::link::{self, Ws};
use super::machine::{Machine, Now, Output};
use crate::cli::Scenario;
use crate::fleet::{Phase, Shared};
use crate::histogram::micros;
use crate::stats::ErrorKind;

/// Most doublings of the back-off minimum (OCPP's RetryBackOffRepeatTimes).
const MAX_BACKOFF_DOUBLINGS: u32 = 5;
/// How long a closing station waits for its close frame to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// OCPP's reconnect back-off: the minimum, doubled per failed attempt, plus a
/// fresh uniform random part every time.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// RetryBackOffWaitMinimum.
    pub min: Duration,
    /// RetryBackOffRandomRange.
    pub random: Duration,
}

impl Backoff {
    /// The wait before attempt number `failures + 1`; `unit` is a uniform
    /// random number in [0, 1).
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let doubled = self.min * 2u32.pow(failures.min(MAX_BACKOFF_DOUBLINGS));
        doubled + self.random.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// What one station remembers across its connections.
#[derive(Default)]
struct Life {
    ever_booted: bool,
    /// The storm dropped this station's connection.
    dropped: bool,
    /// ... and it has booted again since.
    rebooted: bool,
}

/// How a connection ended.
enum End {
    /// The server closed it, or it broke.
    Lost,
    /// The storm scenario dropped it.
    StormDrop,
    /// The run is over.
    Stopped,
}

/// Runs station `local` of this process until the run stops.
pub async fn run(shared: Arc<Shared>, local: usize, mut phase: watch::Receiver<Phase>) {
    let info = &shared.stations[local];
    let stats = &shared.stats;
    let mut rng = fastrand::Rng::new();
    if let Some(spacing) = shared.ramp_spacing {
        let slot = shared.started + spacing.mul_f64(local as f64);
        if !sleep_unless_stopped(slot, &mut phase).await {
            return;
        }
    }
    let mut machine = Machine::new(info.version, shared.profile.clone(), rng.u64(..));
    let mut life = Life::default();
    let mut failures = 0u32;
    // Which node to try: the station's own in turn, the next one after a
    // lost or refused connection (a balancer without stickiness).
    let mut hop = info.index as usize;
    loop {
        let target = &shared.targets[hop % shared.targets.len()];
        let opened = {
            let Ok(_permit) = shared.handshakes.acquire().await else {
                return;
            };
            if *phase.borrow() == Phase::Stop {
                return;
            }
            link::connect(
                target,
                &info.id,
                info.index,
                info.version,
                shared.connect_timeout,
            )
            .await
        };
        let wait = match opened {
            Err(e) => {
                stats.error(e.kind);
                stats.note(e.kind, || format!("{}: {}", info.id, e.detail));
                stats.connect_failures.inc();
                failures += 1;
                hop += 1;
                shared.backoff.delay(failures - 1, rng.f64())
            }
            Ok(ws) => {
                failures = 0;
                stats.established.inc();
                stats.connected.inc();
                let end = drive(&shared, local, &mut machine, &mut life, ws, &mut phase).await;
                stats.connected.dec();
                match end {
                    End::Stopped => return,
                    End::StormDrop => shared.backoff.delay(0, rng.f64()),
                    End::Lost => {
                        stats.error(ErrorKind::ClosedByServer);
                        failures += 1;
                        hop += 1;
                        shared.backoff.delay(failures - 1, rng.f64())
                    }
                }
            }
        };
        if !sleep_unless_stopped(Instant::now() + wait, &mut phase).await {
            return;
        }
    }
}

/// Sleeps until `at`; false when the run stopped first.
async fn sleep_unless_stopped(at: Instant, phase: &mut watch::Receiver<Phase>) -> bool {
    let sleep = tokio::time::sleep_until(at.into());
    tokio::pin!(sleep);
    loop {
        if *phase.borrow_and_update() == Phase::Stop {
            return false;
        }
        tokio::select! {
            () = &mut sleep => return true,
            changed = phase.changed() => if changed.is_err() { return false },
        }
    }
}

/// Runs one connection: boot, then the scenario, until it ends.
async fn drive(
    shared: &Shared,
    local: usize,
    machine: &mut Machine,
    life: &mut Life,
    mut ws: Ws,
    phase: &mut watch::Receiver<Phase>,
) -> End {
    let storm = shared.scenario == Scenario::Storm;
    let mut out = Vec::with_capacity(4);
    let mut booted_here = false;
    machine.handle_open(Now::current(), &mut out);
    // A connection opened after the storm began is not dropped: the storm
    // drops the connections that were open at that moment, once.
    let mut end = match *phase.borrow_and_update() {
        Phase::Stop => Some(End::Stopped),
        Phase::Measure => {
            machine.handle_activate(Now::current(), &mut out);
            None
        }
        Phase::Setup => None,
    };
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    // The deadline the timer is set to; re-arming costs a timer-wheel update,
    // so it is done only when the machine's next deadline changes.
    let mut armed: Option<Instant> = None;
    while end.is_none() {
        if carry_out(shared, local, life, &mut booted_here, &mut ws, &mut out)
            .await
            .is_err()
        {
            end = Some(End::Lost);
            break;
        }
        let deadline = machine.poll_timeout();
        if let Some(at) = deadline.filter(|&at| armed != Some(at)) {
            timer.as_mut().reset(at.into());
            armed = Some(at);
        }
        tokio::select! {
            changed = phase.changed() => {
                let now = if changed.is_err() { Phase::Stop } else { *phase.borrow_and_update() };
                match now {
                    Phase::Stop => end = Some(End::Stopped),
                    Phase::Measure if storm && !life.dropped => end = Some(End::StormDrop),
                    Phase::Measure => machine.handle_activate(Now::current(), &mut out),
                    Phase::Setup => {}
                }
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    shared.stats.received.inc();
                    machine.handle_text(Now::current(), &text, &mut out);
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => end = Some(End::Lost),
                // Pings are answered by tungstenite itself; OCPP-J has no binary frames.
                Some(Ok(_)) => {}
            },
            () = &mut timer, if deadline.is_some() => {
                armed = None;
                machine.handle_timeout(Now::current(), &mut out);
            }
        }
    }
    if booted_here {
        shared.stats.booted.dec();
    }
    let end = end.unwrap_or(End::Lost);
    match end {
        End::Stopped => {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
        }
        End::StormDrop => {
            // A network drop: no close frame, the socket just goes away.
            life.dropped = true;
            drop(ws);
        }
        End::Lost => {}
    }
    end
}

/// Sends the machine's frames and counts its events.
async fn carry_out(
    shared: &Shared,
    local: usize,
    life: &mut Life,
    booted_here: &mut bool,
    ws: &mut Ws,
    out: &mut Vec<Output>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let stats = &shared.stats;
    let measuring = stats.is_measuring();
    let mut sent = false;
    for output in out.drain(..) {
        match output {
            Output::Send(text) => {
                ws.feed(Message::text(text)).await?;
                stats.sent.inc();
                sent = true;
            }
            Output::Answered { action, rtt } => {
                if measuring {
                    stats.round_trip(local, action, rtt);
                }
            }
            Output::Booted => {
                if !*booted_here {
                    *booted_here = true;
                    stats.booted.inc();
                }
                if !life.ever_booted {
                    life.ever_booted = true;
                    stats.ever_booted.inc();
                }
                if life.dropped && !life.rebooted {
                    life.rebooted = true;
                    stats.rebooted.inc();
                    if let Some(dropped_at) = shared.storm_drop.get() {
                        let took = dropped_at.elapsed();
                        stats.reboot.record(local, took);
                        stats.last_reboot_micros.raise_to(micros(took));
                    }
                }
            }
            Output::BootPending => {}
            Output::BootRejected => stats.error(ErrorKind::BootRejected),
            Output::CallError { action } => {
                stats.error(ErrorKind::CallError);
                stats.note(ErrorKind::CallError, || format!("CALLERROR for {action}"));
            }
            Output::CsmsCall(call) => {
                if measuring && call.is_load_test_command() {
                    if let Some(requested_at) = shared.probes.pop(local) {
                        stats.commands_delivered.inc();
                        stats.command_to_call.record(local, requested_at.elapsed());
                    }
                }
            }
            Output::Malformed => stats.error(ErrorKind::Malformed),
            Output::TimedOut { action } => {
                stats.error(ErrorKind::Timeout);
                stats.note(ErrorKind::Timeout, || format!("no answer to {action}"));
            }
        }
    }
    if sent {
        ws.flush().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_the_minimum_doubled_per_failure_plus_the_random_part() {
        let b = Backoff {
            min: Duration::from_millis(100),
            random: Duration::from_millis(1000),
        };
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(600));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0.25), Duration::from_millis(800 + 250));
        assert_eq!(
            b.delay(50, 0.0),
            Duration::from_millis(3200),
            "doubling stops after five"
        );
    }
}
