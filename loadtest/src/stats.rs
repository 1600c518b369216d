//! What one process measures while its stations run: lock-free counters,
//! errors by kind, and sharded latency recorders rolled once a second into
//! a per-second timeline; and [`PartResult`], the serializable snapshot a
//! process hands to the report (the parent merges one per worker).
//!
//! Stations record from many tasks at once, so latencies go to one of a few
//! mutex-guarded shards (picked by station) instead of one global lock; a
//! per-station histogram would cost ~190 KB each, far too much for 15,000
//! stations in one process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::histogram::{micros, new_histogram, HistogramData};
use crate::station::messages::ACTIONS;

/// Latency shards per recorder; a few per core keeps contention negligible.
const SHARDS: usize = 8;

/// What went wrong, as a closed set (the report's `errors` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// BootNotification answered `Rejected`.
    BootRejected,
    /// A CALLERROR answered one of our CALLs.
    CallError,
    /// The server closed (or lost) a connection we did not close.
    ClosedByServer,
    /// `?wait=true` answered 202: the station's answer did not come in time.
    CommandNotAnswered,
    /// A command accepted by the API never reached its station as a CALL.
    CommandNotDelivered,
    /// TCP connect failed (refused, unreachable, no ports left, ...).
    ConnectFailed,
    /// TCP connect plus WebSocket handshake took too long.
    ConnectTimeout,
    /// The WebSocket handshake failed without an HTTP refusal.
    HandshakeFailed,
    /// The handshake was refused with an HTTP status (e.g. 401).
    HandshakeRefused,
    /// A REST call answered with an unexpected status.
    HttpError,
    /// A REST call failed at the transport (connect, timeout, reset).
    HttpFailed,
    /// The server sent a frame that is not OCPP-J.
    Malformed,
    /// One of our CALLs got no answer within the call timeout.
    Timeout,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::BootRejected,
        ErrorKind::CallError,
        ErrorKind::ClosedByServer,
        ErrorKind::CommandNotAnswered,
        ErrorKind::CommandNotDelivered,
        ErrorKind::ConnectFailed,
        ErrorKind::ConnectTimeout,
        ErrorKind::HandshakeFailed,
        ErrorKind::HandshakeRefused,
        ErrorKind::HttpError,
        ErrorKind::HttpFailed,
        ErrorKind::Malformed,
        ErrorKind::Timeout,
    ];

    /// The report key.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BootRejected => "boot_rejected",
            ErrorKind::CallError => "call_error",
            ErrorKind::ClosedByServer => "closed_by_server",
            ErrorKind::CommandNotAnswered => "command_not_answered",
            ErrorKind::CommandNotDelivered => "command_not_delivered",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::HandshakeFailed => "handshake_failed",
            ErrorKind::HandshakeRefused => "handshake_refused",
            ErrorKind::HttpError => "http_error",
            ErrorKind::HttpFailed => "http_failed",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Timeout => "timeout",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|&k| k == self)
            .expect("every kind is in ALL")
    }
}

/// A counter; relaxed ordering is enough, every figure is read after the
/// tasks that wrote it are done or as a progress approximation.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Subtracts one (gauges).
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    /// Raises the value to `n` if it is lower.
    pub fn raise_to(&self, n: u64) {
        self.0.fetch_max(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One latency, recorded from many tasks, rolled into per-second intervals.
pub struct LatencyRecorder {
    shards: Vec<Mutex<Histogram<u64>>>,
    rolled: Mutex<Rolled>,
}

struct Rolled {
    interval: Histogram<u64>,
    total: Histogram<u64>,
    timeline: Vec<HistogramData>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder {
            shards: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            rolled: Mutex::new(Rolled {
                interval: new_histogram(),
                total: new_histogram(),
                timeline: Vec::new(),
            }),
        }
    }
}

impl LatencyRecorder {
    /// Records `latency`; `shard` spreads writers (the station's index).
    pub fn record(&self, shard: usize, latency: Duration) {
        lock(&self.shards[shard % SHARDS]).saturating_record(micros(latency));
    }

    /// Closes the current one-second interval: its values join the total and
    /// become the next timeline point (an empty point when nothing came).
    pub fn roll(&self) {
        let mut rolled = lock(&self.rolled);
        let Rolled {
            interval,
            total,
            timeline,
        } = &mut *rolled;
        for shard in &self.shards {
            let mut shard = lock(shard);
            interval
                .add(&*shard)
                .expect("histograms of one shape always add");
            shard.reset();
        }
        total.add(&*interval).expect("same shape");
        timeline.push(HistogramData::of(interval));
        interval.reset();
    }

    /// Everything rolled so far.
    pub fn data(&self) -> LatencyData {
        let rolled = lock(&self.rolled);
        LatencyData {
            total: HistogramData::of(&rolled.total),
            timeline: rolled.timeline.clone(),
        }
    }
}

/// The round trips of one action over the whole measuring phase (no
/// timeline). A shard's histogram is made on its first value, so the
/// actions a scenario never sends cost no memory.
#[derive(Default)]
struct ActionLatency {
    shards: [Mutex<Option<Histogram<u64>>>; SHARDS],
}

impl ActionLatency {
    fn record(&self, shard: usize, latency: Duration) {
        lock(&self.shards[shard % SHARDS])
            .get_or_insert_with(new_histogram)
            .saturating_record(micros(latency));
    }

    /// Every shard's values in one, or None when there were none.
    fn data(&self) -> Option<HistogramData> {
        let mut total: Option<Histogram<u64>> = None;
        for shard in &self.shards {
            if let Some(histogram) = &*lock(shard) {
                total
                    .get_or_insert_with(new_histogram)
                    .add(histogram)
                    .expect("histograms of one shape always add");
            }
        }
        total.map(|h| HistogramData::of(&h))
    }
}

/// A poisoned lock only means another task panicked mid-record; the counts
/// are still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything one process counts.
#[derive(Default)]
pub struct Stats {
    /// Open WebSocket connections (gauge).
    pub connected: Counter,
    /// Connections whose station is booted now (gauge).
    pub booted: Counter,
    /// Stations booted at least once.
    pub ever_booted: Counter,
    /// Stations booted again after the storm drop.
    pub rebooted: Counter,
    /// Handshakes that succeeded (reconnects included).
    pub established: Counter,
    /// Connection attempts that failed (any connect or handshake error).
    pub connect_failures: Counter,
    /// WebSocket text frames sent.
    pub sent: Counter,
    /// WebSocket text frames received.
    pub received: Counter,
    /// Answers to our CALLs while measuring.
    pub round_trips: Counter,
    /// Their round trip times by action, in the order of [`ACTIONS`]: which
    /// message a run's tail comes from.
    rtt_by_action: [ActionLatency; ACTIONS.len()],
    /// Slowest storm re-boot, µs after the drop.
    pub last_reboot_micros: Counter,
    /// REST commands sent.
    pub commands_sent: Counter,
    /// REST commands answered 200.
    pub commands_http_ok: Counter,
    /// Command CALLs that reached their station.
    pub commands_delivered: Counter,
    /// `?wait=true` commands answered 200 with `delivered: true`.
    pub commands_answered: Counter,
    /// Whether the command sender (if any) is done, drain included.
    pub commands_done: AtomicBool,
    /// Whether the measuring phase runs (latencies are recorded only then).
    pub measuring: AtomicBool,
    errors: [Counter; ErrorKind::ALL.len()],
    /// The first detail seen per error kind, to tell the user what happened.
    examples: Mutex<BTreeMap<&'static str, String>>,
    /// Station CALL round trips.
    pub rtt: LatencyRecorder,
    /// REST command request start → the CALL at the station.
    pub command_to_call: LatencyRecorder,
    /// REST command request start → HTTP answer (`--wait`).
    pub command_to_answer: LatencyRecorder,
    /// Storm: drop → booted again, per station.
    pub reboot: LatencyRecorder,
}

impl Stats {
    /// Counts one error of `kind`.
    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind.index()].inc();
    }

    /// Records an answer to our CALL of `action` while measuring, `rtt`
    /// after it was sent; `shard` spreads writers (the station's index).
    pub fn round_trip(&self, shard: usize, action: &str, rtt: Duration) {
        self.round_trips.inc();
        self.rtt.record(shard, rtt);
        if let Some(i) = ACTIONS.iter().position(|&a| a == action) {
            self.rtt_by_action[i].record(shard, rtt);
        }
    }

    /// Round trip times of the actions that had any.
    pub fn rtt_by_action(&self) -> BTreeMap<String, HistogramData> {
        ACTIONS
            .iter()
            .zip(&self.rtt_by_action)
            .filter_map(|(a, latency)| Some(((*a).to_owned(), latency.data()?)))
            .collect()
    }

    /// Keeps `detail` as the example of `kind` unless one is kept already;
    /// `detail` is only built then.
    pub fn note(&self, kind: ErrorKind, detail: impl FnOnce() -> String) {
        lock(&self.examples)
            .entry(kind.as_str())
            .or_insert_with(detail);
    }

    /// One example detail per error kind seen.
    pub fn examples(&self) -> BTreeMap<String, String> {
        lock(&self.examples)
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// Whether latencies are being recorded.
    pub fn is_measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Non-zero error counts by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        ErrorKind::ALL
            .iter()
            .map(|&kind| (kind.as_str().to_owned(), self.errors[kind.index()].get()))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// Rolls every recorder into the next one-second point.
    pub fn roll(&self) {
        for recorder in self.recorders() {
            recorder.roll();
        }
    }

    fn recorders(&self) -> [&LatencyRecorder; 4] {
        [
            &self.rtt,
            &self.command_to_call,
            &self.command_to_answer,
            &self.reboot,
        ]
    }

    /// The live figures a progress display needs.
    pub fn progress(&self) -> Progress {
        Progress {
            connected: self.connected.get(),
            booted: self.booted.get(),
            rebooted: self.rebooted.get(),
            established: self.established.get(),
            connect_failures: self.connect_failures.get(),
            sent: self.sent.get(),
            received: self.received.get(),
            commands_done: self.commands_done.load(Ordering::Relaxed),
        }
    }
}

/// Live figures of one process (summed over processes by the parent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Open connections.
    pub connected: u64,
    /// Booted stations.
    pub booted: u64,
    /// Stations booted again after the storm drop.
    pub rebooted: u64,
    /// Handshakes that succeeded.
    pub established: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Frames sent.
    pub sent: u64,
    /// Frames received.
    pub received: u64,
    /// The command sender is done (always true when there is none).
    pub commands_done: bool,
}

impl Progress {
    /// Adds `other` (another process); `commands_done` only when both are.
    pub fn merge(&mut self, other: &Progress) {
        self.connected += other.connected;
        self.booted += other.booted;
        self.rebooted += other.rebooted;
        self.established += other.established;
        self.connect_failures += other.connect_failures;
        self.sent += other.sent;
        self.received += other.received;
        self.commands_done &= other.commands_done;
    }
}

/// One latency as shipped between processes: the total and the timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyData {
    /// Everything recorded while measuring.
    pub total: HistogramData,
    /// One histogram per second of the measuring phase.
    pub timeline: Vec<HistogramData>,
}

impl LatencyData {
    /// Adds `other`: totals merge; timeline points merge second by second.
    pub fn merge(&mut self, other: &LatencyData) {
        self.total.merge(&other.total);
        if self.timeline.len() < other.timeline.len() {
            self.timeline
                .resize(other.timeline.len(), HistogramData::default());
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            mine.merge(theirs);
        }
    }
}

/// Counts of the REST command driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCounts {
    /// Requests sent.
    pub sent: u64,
    /// Answered 200.
    pub http_ok: u64,
    /// Whose CALL reached the station.
    pub delivered: u64,
    /// With `--wait`: answered 200 with `delivered: true`.
    pub answered: u64,
}

/// What one process measured, shipped to the parent as one JSON line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartResult {
    /// Stations this process ran.
    pub stations: u64,
    /// Handshakes that succeeded (reconnects included).
    pub established: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Stations booted at least once.
    pub ever_booted: u64,
    /// Stations booted when the measuring phase began.
    pub booted_at_measure: u64,
    /// Connections open when the measuring phase ended.
    pub connected_at_end: u64,
    /// Stations booted again after the storm drop.
    pub rebooted: u64,
    /// Slowest storm re-boot of this process, µs after the drop.
    pub last_reboot_micros: u64,
    /// Frames sent over the whole run.
    pub sent_total: u64,
    /// Frames received over the whole run.
    pub received_total: u64,
    /// Frames sent while measuring.
    pub sent_measured: u64,
    /// Frames received while measuring.
    pub received_measured: u64,
    /// Answers to our CALLs while measuring.
    pub round_trips: u64,
    /// Their round trip times by action.
    pub rtt_by_action: BTreeMap<String, HistogramData>,
    /// REST command counts.
    pub commands: CommandCounts,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// One example detail per error kind.
    pub error_examples: BTreeMap<String, String>,
    /// Station CALL round trips.
    pub rtt: LatencyData,
    /// REST command → CALL at the station.
    pub command_to_call: LatencyData,
    /// REST command → HTTP answer.
    pub command_to_answer: LatencyData,
    /// Storm drop → booted again.
    pub reboot: LatencyData,
}

impl PartResult {
    /// Adds another process's result: counts add, histograms merge, the
    /// slowest re-boot is the slower of the two.
    pub fn merge(&mut self, other: &PartResult) {
        self.stations += other.stations;
        self.established += other.established;
        self.connect_failures += other.connect_failures;
        self.ever_booted += other.ever_booted;
        self.booted_at_measure += other.booted_at_measure;
        self.connected_at_end += other.connected_at_end;
        self.rebooted += other.rebooted;
        self.last_reboot_micros = self.last_reboot_micros.max(other.last_reboot_micros);
        self.sent_total += other.sent_total;
        self.received_total += other.received_total;
        self.sent_measured += other.sent_measured;
        self.received_measured += other.received_measured;
        self.round_trips += other.round_trips;
        self.commands.sent += other.commands.sent;
        self.commands.http_ok += other.commands.http_ok;
        self.commands.delivered += other.commands.delivered;
        self.commands.answered += other.commands.answered;
        merge_errors(&mut self.errors, &other.errors);
        for (action, data) in &other.rtt_by_action {
            self.rtt_by_action
                .entry(action.clone())
                .or_default()
                .merge(data);
        }
        for (kind, detail) in &other.error_examples {
            self.error_examples
                .entry(kind.clone())
                .or_insert_with(|| detail.clone());
        }
        self.rtt.merge(&other.rtt);
        self.command_to_call.merge(&other.command_to_call);
        self.command_to_answer.merge(&other.command_to_answer);
        self.reboot.merge(&other.reboot);
    }
}

/// Adds counts by key (errors by kind).
pub fn merge_errors(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (kind, n) in from {
        *into.entry(kind.clone()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_rolls_seconds_into_a_timeline_and_a_total() {
        let recorder = LatencyRecorder::default();
        for station in 0..20 {
            recorder.record(station, Duration::from_millis(2));
        }
        recorder.roll();
        recorder.roll(); // a quiet second
        recorder.record(3, Duration::from_millis(40));
        recorder.roll();
        let data = recorder.data();
        let counts: Vec<u64> = data.timeline.iter().map(HistogramData::count).collect();
        assert_eq!(counts, [20, 0, 1]);
        let total = data.total.to_histogram();
        assert_eq!(total.len(), 21);
        assert!(total.equivalent(total.max(), 40_000));
    }

    #[test]
    fn errors_list_only_what_happened() {
        let stats = Stats::default();
        stats.error(ErrorKind::Timeout);
        stats.error(ErrorKind::Timeout);
        stats.error(ErrorKind::HandshakeRefused);
        let errors = stats.errors();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors["timeout"], 2);
        assert_eq!(errors["handshake_refused"], 1);
    }

    #[test]
    fn round_trips_are_timed_by_action() {
        let stats = Stats::default();
        stats.round_trip(0, "Heartbeat", Duration::from_millis(2));
        stats.round_trip(5, "Heartbeat", Duration::from_millis(4));
        stats.round_trip(1, "StartTransaction", Duration::from_millis(90));
        assert_eq!(stats.round_trips.get(), 3);
        stats.rtt.roll();
        assert_eq!(stats.rtt.data().total.count(), 3);
        let by_action = stats.rtt_by_action();
        assert_eq!(by_action.len(), 2, "actions never answered are left out");
        let heartbeat = by_action["Heartbeat"].to_histogram();
        assert_eq!(heartbeat.len(), 2, "both shards' values are in");
        assert!(heartbeat.equivalent(heartbeat.max(), 4_000));
        let start = by_action["StartTransaction"].to_histogram();
        assert_eq!(start.len(), 1);
        assert!(start.equivalent(start.max(), 90_000));
    }

    #[test]
    fn every_error_kind_has_its_own_key() {
        let keys: std::collections::BTreeSet<_> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), ErrorKind::ALL.len());
    }

    fn part(
        stations: u64,
        rtts_ms: &[u64],
        timeline_len: usize,
        errors: &[(&str, u64)],
    ) -> PartResult {
        let recorder = LatencyRecorder::default();
        for second in 0..timeline_len {
            if second == 0 {
                for &ms in rtts_ms {
                    recorder.record(0, Duration::from_millis(ms));
                }
            }
            recorder.roll();
        }
        PartResult {
            stations,
            rebooted: stations,
            last_reboot_micros: stations * 1000,
            round_trips: rtts_ms.len() as u64,
            errors: errors.iter().map(|&(k, n)| (k.to_owned(), n)).collect(),
            rtt: recorder.data(),
            ..PartResult::default()
        }
    }

    #[test]
    fn merging_worker_results_adds_counts_and_histograms() {
        let mut merged = part(3, &[1, 2, 3], 2, &[("timeout", 1)]);
        merged.merge(&part(5, &[10, 20], 3, &[("timeout", 2), ("call_error", 4)]));
        assert_eq!(merged.stations, 8);
        assert_eq!(merged.round_trips, 5);
        assert_eq!(merged.last_reboot_micros, 5000, "the slower worker decides");
        assert_eq!(merged.errors["timeout"], 3);
        assert_eq!(merged.errors["call_error"], 4);
        assert_eq!(merged.rtt.total.count(), 5);
        let per_second: Vec<u64> = merged
            .rtt
            .timeline
            .iter()
            .map(HistogramData::count)
            .collect();
        assert_eq!(per_second, [5, 0, 0], "timelines merge second by second");
        let json = serde_json::to_string(&merged).unwrap();
        assert_eq!(serde_json::from_str::<PartResult>(&json).unwrap(), merged);
    }

    #[test]
    fn progress_is_done_only_when_every_process_is() {
        let mut sum = Progress {
            commands_done: true,
            booted: 2,
            ..Progress::default()
        };
        sum.merge(&Progress {
            commands_done: false,
            booted: 3,
            ..Progress::default()
        });
        assert_eq!((sum.booted, sum.commands_done), (5, false));
    }
}
