//! The stations one process runs: their tasks, the phase they are in
//! (setup → measure → stop, broadcast over a `watch`), the once-a-second
//! roll of the latency timelines, the REST command driver of the `commands`
//! scenario, and the [`PartResult`] handed over at the end.
//!
//! The same `Fleet` runs inside `run` when one process is enough and inside
//! each `worker` otherwise; the coordinator drives both the same way.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::cli::{RunArgs, Scenario};
use crate::commands::{self, Probes};
use crate::plan::{self, Slice};
use crate::station::link::Target;
use crate::station::machine::{Mode, Profile};
use crate::station::task::{self, Backoff};
use crate::station::Version;
use crate::stats::{CommandCounts, PartResult, Progress, Stats};

/// How long stopping stations get to close before their tasks are aborted.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where the run is; every station task watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Connecting and booting.
    Setup,
    /// The scenario runs and is measured.
    Measure,
    /// Close everything.
    Stop,
}

/// The part of a fleet one process runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartSpec {
    /// The run's options.
    pub args: RunArgs,
    /// Which stations.
    pub slice: Slice,
}

/// A station of this process.
#[derive(Debug)]
pub struct StationInfo {
    /// Its id.
    pub id: String,
    /// Its index in the whole fleet.
    pub index: u32,
    /// The version it speaks.
    pub version: Version,
}

/// What every station task of the process shares.
pub struct Shared {
    /// The scenario.
    pub scenario: Scenario,
    /// The stations, by local index.
    pub stations: Vec<StationInfo>,
    /// Where to connect: one or several nodes (stations spread over them).
    pub targets: Vec<Target>,
    /// Protocol settings.
    pub profile: Arc<Profile>,
    /// Counters and latencies.
    pub stats: Stats,
    /// Bounds the handshakes in progress.
    pub handshakes: Semaphore,
    /// Command request starts, per station (commands scenario only).
    pub probes: Probes,
    /// Connect plus handshake limit.
    pub connect_timeout: Duration,
    /// Reconnect back-off.
    pub backoff: Backoff,
    /// Time between connection starts (`None`: all at once).
    pub ramp_spacing: Option<Duration>,
    /// When the fleet started (ramp slots count from here).
    pub started: Instant,
    /// When the storm dropped every connection.
    pub storm_drop: OnceLock<Instant>,
}

/// The running stations of this process.
pub struct Fleet {
    shared: Arc<Shared>,
    phase: watch::Sender<Phase>,
    tasks: Vec<JoinHandle<()>>,
    measure: Option<Measure>,
}

/// What the measuring phase started and where its counts began.
struct Measure {
    ticker: JoinHandle<()>,
    commands: Option<JoinHandle<()>>,
    booted: u64,
    sent: u64,
    received: u64,
}

impl Fleet {
    /// Starts the tasks of `spec`'s stations; they connect (on the ramp) and boot.
    pub async fn start(spec: &PartSpec) -> anyhow::Result<Fleet> {
        let args = &spec.args;
        let mut targets = Vec::new();
        for url in args.ws_urls() {
            targets.push(Target::resolve(&url, &args.password, args.source_addrs).await?);
        }
        anyhow::ensure!(!targets.is_empty(), "--ws-url names no URL");
        let stations: Vec<StationInfo> = (spec.slice.first..spec.slice.first + spec.slice.count)
            .map(|index| StationInfo {
                id: plan::station_id(&args.id_prefix, index),
                index,
                version: plan::version_of(index, args.v201_share),
            })
            .collect();
        let mode = match args.scenario {
            Scenario::Charge => Mode::Charge,
            Scenario::Heartbeat => Mode::HeartbeatLoop,
            Scenario::Commands | Scenario::Batch | Scenario::Idle | Scenario::Storm => Mode::Idle,
        };
        let profile = Arc::new(Profile {
            mode,
            call_timeout: args.call_timeout(),
            meter_interval: args.meter_interval(),
            meter_values: args.meter_values.max(1),
            id_token: args.token_uid.clone(),
        });
        let ramp = plan::share_of(args.ramp, spec.slice.count, args.stations);
        let stats = Stats::default();
        stats
            .commands_done
            .store(!args.scenario.sends_commands(), Ordering::Relaxed);
        let probes = if args.scenario.sends_commands() {
            Probes::new(stations.len())
        } else {
            Probes::default()
        };
        let shared = Arc::new(Shared {
            scenario: args.scenario,
            stations,
            targets,
            profile,
            stats,
            handshakes: Semaphore::new(args.max_handshakes.max(1) as usize),
            probes,
            connect_timeout: args.connect_timeout(),
            backoff: Backoff {
                min: Duration::from_millis(args.backoff_min_ms),
                random: Duration::from_millis(args.backoff_random_ms),
            },
            ramp_spacing: (ramp > 0.0).then(|| Duration::from_secs_f64(1.0 / ramp)),
            started: Instant::now(),
            storm_drop: OnceLock::new(),
        });
        let (phase, _) = watch::channel(Phase::Setup);
        let tasks = (0..shared.stations.len())
            .map(|local| tokio::spawn(task::run(shared.clone(), local, phase.subscribe())))
            .collect();
        Ok(Fleet {
            shared,
            phase,
            tasks,
            measure: None,
        })
    }

    /// Live figures.
    pub fn progress(&self) -> Progress {
        self.shared.stats.progress()
    }

    /// Starts the measuring phase: latencies count from now, the storm drops
    /// every connection, the loops and the command driver start.
    pub fn measure(&mut self, args: &RunArgs) {
        if self.measure.is_some() {
            return;
        }
        let shared = &self.shared;
        let stats = &shared.stats;
        let now = Instant::now();
        let booted = stats.booted.get();
        let (sent, received) = (stats.sent.get(), stats.received.get());
        stats.measuring.store(true, Ordering::Relaxed);
        if shared.scenario == Scenario::Storm {
            let _ = shared.storm_drop.set(now);
        }
        let ticker = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let second = Duration::from_secs(1);
                let mut interval = tokio::time::interval_at((now + second).into(), second);
                loop {
                    interval.tick().await;
                    shared.stats.roll();
                }
            })
        };
        let batch = (shared.scenario == Scenario::Batch).then(|| {
            let plan = commands::BatchPlan {
                api_url: args.api_urls().into_iter().next().unwrap_or_default(),
                id_prefix: args.id_prefix.clone(),
                duration: args.duration(),
                wait: args.wait,
            };
            tokio::spawn(commands::drive_batch(shared.clone(), plan))
        });
        let commands = (shared.scenario == Scenario::Commands).then(|| {
            let plan = commands::Plan {
                api_urls: args.api_urls(),
                rate_per_sec: plan::share_of(
                    args.rate,
                    shared.stations.len() as u32,
                    args.stations,
                ),
                duration: args.duration(),
                wait: args.wait,
                concurrency: args.command_concurrency,
            };
            tokio::spawn(commands::drive(shared.clone(), plan))
        });
        let commands = commands.or(batch);
        self.phase.send_replace(Phase::Measure);
        self.measure = Some(Measure {
            ticker,
            commands,
            booted,
            sent,
            received,
        });
    }

    /// Ends the run: counts the measuring window, closes every connection,
    /// waits (bounded) for the tasks, and returns what was measured.
    pub async fn finish(mut self) -> PartResult {
        let stats = &self.shared.stats;
        let (sent, received) = (stats.sent.get(), stats.received.get());
        stats.measuring.store(false, Ordering::Relaxed);
        let connected_at_end = stats.connected.get();
        let mut result = PartResult::default();
        if let Some(measure) = self.measure.take() {
            measure.ticker.abort();
            if let Some(commands) = measure.commands {
                commands.abort();
            }
            stats.roll(); // the last, partial second
            result.booted_at_measure = measure.booted;
            result.sent_measured = sent - measure.sent;
            result.received_measured = received - measure.received;
        }
        self.phase.send_replace(Phase::Stop);
        let closing = futures_util::future::join_all(self.tasks.iter_mut());
        if tokio::time::timeout(STOP_GRACE, closing).await.is_err() {
            for task in &self.tasks {
                task.abort();
            }
        }
        PartResult {
            stations: self.shared.stations.len() as u64,
            established: stats.established.get(),
            connect_failures: stats.connect_failures.get(),
            ever_booted: stats.ever_booted.get(),
            connected_at_end,
            rebooted: stats.rebooted.get(),
            last_reboot_micros: stats.last_reboot_micros.get(),
            sent_total: sent,
            received_total: received,
            round_trips: stats.round_trips.get(),
            rtt_by_action: stats.rtt_by_action(),
            commands: CommandCounts {
                sent: stats.commands_sent.get(),
                http_ok: stats.commands_http_ok.get(),
                delivered: stats.commands_delivered.get(),
                answered: stats.commands_answered.get(),
            },
            errors: stats.errors(),
            error_examples: stats.examples(),
            rtt: stats.rtt.data(),
            command_to_call: stats.command_to_call.data(),
            command_to_answer: stats.command_to_answer.data(),
            reboot: stats.reboot.data(),
            ..result
        }
    }
}
