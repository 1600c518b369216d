//! The report of a run: built from the merged [`PartResult`] of every
//! process and what the coordinator saw (measured time, server RSS,
//! provisioning), printed as text and written as JSON. The arithmetic
//! (rates, RSS per station, the per-second timeline, the storm's fleet
//! re-boot time, the reference ratio) lives here and is tested here.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{RunArgs, Scenario};
use crate::histogram::{HistogramData, Percentiles};
use crate::provision::ProvisionReport;
use crate::stats::{merge_errors, LatencyData, PartResult};

/// The server's RSS, sampled by the coordinator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RssSamples {
    /// The server process, when known.
    pub pid: Option<u32>,
    /// Before any station connected.
    pub before: Option<u64>,
    /// When the fleet had booted (the measuring phase began).
    pub booted: Option<u64>,
    /// When the measuring phase ended.
    pub end: Option<u64>,
}

/// What the coordinator hands to [`Report::build`].
pub struct Inputs<'a> {
    /// The run's options.
    pub args: &'a RunArgs,
    /// `--target-name` (voltgate) or `reference`.
    pub target: &'a str,
    /// Processes that ran stations.
    pub processes: usize,
    /// Every process's result, merged.
    pub result: PartResult,
    /// Length of the measuring phase.
    pub measured: Duration,
    /// Seconds from the first connection to the whole fleet booted.
    pub boot_secs: Option<f64>,
    /// Server memory.
    pub rss: RssSamples,
    /// Provisioning, when it ran.
    pub provision: Option<ProvisionReport>,
    /// Remarks (fleet not fully booted, storm not finished, ...).
    pub notes: Vec<String>,
}

/// Connection figures.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// Stations simulated.
    pub stations: u64,
    /// Handshakes that succeeded, reconnects included.
    pub established: u64,
    /// Connection attempts that failed.
    pub failed: u64,
    /// Stations that booted at least once.
    pub booted: u64,
    /// Stations booted when the measuring phase began.
    pub booted_at_measure_start: u64,
    /// Connections open when the measuring phase ended.
    pub connected_at_end: u64,
}

/// Message figures (WebSocket text frames, both directions of OCPP).
#[derive(Debug, Clone, Serialize)]
pub struct Messages {
    /// Sent while measuring.
    pub sent: u64,
    /// Received while measuring.
    pub received: u64,
    /// Sent per second of the measuring phase.
    pub sent_per_sec: f64,
    /// Received per second of the measuring phase.
    pub received_per_sec: f64,
    /// Sent over the whole run (boot included).
    pub sent_total: u64,
    /// Received over the whole run.
    pub received_total: u64,
}

/// Server memory figures.
#[derive(Debug, Clone, Serialize)]
pub struct ServerMemory {
    /// The process measured.
    pub pid: Option<u32>,
    /// RSS before the fleet connected.
    pub rss_before_bytes: Option<u64>,
    /// RSS with the fleet booted.
    pub rss_booted_bytes: Option<u64>,
    /// RSS at the end of the measuring phase.
    pub rss_end_bytes: Option<u64>,
    /// (booted − before) / booted stations: what one more station costs.
    pub rss_per_station_bytes: Option<f64>,
    /// booted RSS / booted stations.
    pub rss_total_per_station_bytes: Option<f64>,
}

/// One second of the charted latency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the measuring phase began (end of the interval).
    pub second: u32,
    /// Values in that second.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
}

/// Storm figures.
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    /// Connections dropped (stations booted when the storm began).
    pub dropped: u64,
    /// Stations booted again.
    pub rebooted: u64,
    /// From the drop until the last station booted again, when all did.
    pub fleet_reboot_secs: Option<f64>,
    /// Per station: drop → booted again.
    pub reboot_ms: Option<Percentiles>,
}

/// REST command figures.
#[derive(Debug, Clone, Serialize)]
pub struct Commands {
    /// Requests sent.
    pub sent: u64,
    /// Requests per second of the measuring phase.
    pub sent_per_sec: f64,
    /// Answered 2xx.
    pub http_ok: u64,
    /// Failed (transport error or unexpected status).
    pub failed: u64,
    /// CALLs that reached their station.
    pub delivered: u64,
    /// With `--wait`: answered 200 with `delivered: true`.
    pub answered: Option<u64>,
    /// Request start → CALL at the station.
    pub request_to_call_ms: Option<Percentiles>,
    /// Request start → HTTP answer (`--wait`).
    pub request_to_answer_ms: Option<Percentiles>,
}

/// The report of one fleet run (and of the reference run inside it).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `--target-name` (voltgate) or `reference`.
    pub target: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Every option of the run.
    pub parameters: RunArgs,
    /// Processes that ran stations.
    pub processes: usize,
    /// Provisioning.
    pub provision: Option<ProvisionReport>,
    /// Connections.
    pub connections: Connections,
    /// From the first connection to the whole fleet booted.
    pub boot_secs: Option<f64>,
    /// Length of the measuring phase.
    pub measured_secs: f64,
    /// Messages.
    pub messages: Messages,
    /// Station CALLs answered while measuring.
    pub round_trips: u64,
    /// ... per second.
    pub round_trips_per_sec: f64,
    /// ... by action.
    pub round_trips_by_action: BTreeMap<String, u64>,
    /// Station CALL round trip times.
    pub round_trip_ms: Option<Percentiles>,
    /// ... by action: which message a run's tail comes from.
    pub round_trip_ms_by_action: BTreeMap<String, Percentiles>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// One example per error kind.
    pub error_examples: BTreeMap<String, String>,
    /// Server memory.
    pub server: ServerMemory,
    /// Which latency the timeline and the chart show.
    pub timeline_of: &'static str,
    /// That latency per second of the measuring phase.
    pub timeline: Vec<TimelinePoint>,
    /// Storm figures.
    pub storm: Option<Storm>,
    /// Command figures.
    pub commands: Option<Commands>,
    /// The same scenario against the reference server (`--compare-reference`).
    pub reference: Option<Box<Report>>,
    /// Round trips per second, this target / the reference.
    pub throughput_ratio: Option<f64>,
    /// Connect + boot rate, this target / the reference: the reference's
    /// seconds to boot the whole fleet over this target's.
    pub boot_rate_ratio: Option<f64>,
    /// Remarks.
    pub notes: Vec<String>,
    /// The charted latency's distribution (for the chart, not the JSON).
    #[serde(skip)]
    pub distribution: HistogramData,
}

/// `count` per second of `secs`; 0 for an empty interval.
pub fn per_sec(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// (incremental, total) RSS per station: what the stations added over the
/// idle server, and the whole RSS divided by them.
pub fn rss_per_station(
    before: Option<u64>,
    booted: Option<u64>,
    stations: u64,
) -> (Option<f64>, Option<f64>) {
    if stations == 0 {
        return (None, None);
    }
    let n = stations as f64;
    let total = booted.map(|b| b as f64 / n);
    let incremental = before
        .zip(booted)
        .map(|(before, booted)| (booted as f64 - before as f64) / n);
    (incremental, total)
}

/// Per-second points of a latency timeline.
pub fn timeline(seconds: &[HistogramData]) -> Vec<TimelinePoint> {
    seconds
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let summary = Percentiles::of(&data.to_histogram());
            TimelinePoint {
                second: i as u32 + 1,
                count: data.count(),
                p50_ms: summary.as_ref().map(|p| p.p50),
                p99_ms: summary.as_ref().map(|p| p.p99),
            }
        })
        .collect()
}

fn summary(data: &LatencyData) -> Option<Percentiles> {
    Percentiles::of(&data.total.to_histogram())
}

impl Report {
    /// The report of a finished fleet run.
    pub fn build(inputs: Inputs<'_>) -> Report {
        let Inputs {
            args,
            target,
            processes,
            result: r,
            measured,
            boot_secs,
            rss,
            provision,
            mut notes,
        } = inputs;
        let secs = measured.as_secs_f64();
        let (rss_per_station_bytes, rss_total_per_station_bytes) =
            rss_per_station(rss.before, rss.booted, r.booted_at_measure);
        let mut errors = r.errors.clone();
        if let Some(p) = &provision {
            merge_errors(&mut errors, &p.errors);
        }
        let storm = (args.scenario == Scenario::Storm).then(|| {
            let dropped = r.booted_at_measure;
            let all_back = dropped > 0 && r.rebooted >= dropped;
            if !all_back {
                notes.push(format!(
                    "storm: {} of {dropped} stations booted again within --duration {}s",
                    r.rebooted, args.duration_secs
                ));
                // A station that is not back is a failure of the run, not a remark.
                let missing = dropped.saturating_sub(r.rebooted);
                if missing > 0 {
                    *errors
                        .entry("storm_not_booted_again".to_owned())
                        .or_default() += missing;
                }
                // Stations refused before the drop (a fleet larger than the
                // server's station cap) retry all along, and take places
                // the dropped ones left: the usual cause of stragglers.
                let newcomers = r.ever_booted.saturating_sub(r.booted_at_measure);
                if newcomers > 0 {
                    notes.push(format!(
                        "storm: {newcomers} stations not booted before the drop booted during it, \
                         taking places under the server's station cap that dropped stations left"
                    ));
                }
            }
            Storm {
                dropped,
                rebooted: r.rebooted,
                fleet_reboot_secs: all_back.then(|| r.last_reboot_micros as f64 / 1e6),
                reboot_ms: summary(&r.reboot),
            }
        });
        let commands = args.scenario.sends_commands().then(|| Commands {
            sent: r.commands.sent,
            sent_per_sec: per_sec(r.commands.sent, secs),
            http_ok: r.commands.http_ok,
            failed: r.commands.sent.saturating_sub(r.commands.http_ok),
            delivered: r.commands.delivered,
            answered: args.wait.then_some(r.commands.answered),
            request_to_call_ms: summary(&r.command_to_call),
            request_to_answer_ms: summary(&r.command_to_answer),
        });
        let (timeline_of, charted) = match args.scenario {
            Scenario::Commands | Scenario::Batch => ("request_to_call", &r.command_to_call),
            Scenario::Storm => ("reboot", &r.reboot),
            Scenario::Charge | Scenario::Heartbeat | Scenario::Idle => ("round_trip", &r.rtt),
        };
        Report {
            target: target.to_owned(),
            scenario: args.scenario,
            parameters: args.clone(),
            processes,
            provision,
            connections: Connections {
                stations: r.stations,
                established: r.established,
                failed: r.connect_failures,
                booted: r.ever_booted,
                booted_at_measure_start: r.booted_at_measure,
                connected_at_end: r.connected_at_end,
            },
            boot_secs,
            measured_secs: secs,
            messages: Messages {
                sent: r.sent_measured,
                received: r.received_measured,
                sent_per_sec: per_sec(r.sent_measured, secs),
                received_per_sec: per_sec(r.received_measured, secs),
                sent_total: r.sent_total,
                received_total: r.received_total,
            },
            round_trips: r.round_trips,
            round_trips_per_sec: per_sec(r.round_trips, secs),
            round_trips_by_action: r
                .rtt_by_action
                .iter()
                .map(|(action, data)| (action.clone(), data.count()))
                .collect(),
            round_trip_ms: summary(&r.rtt),
            round_trip_ms_by_action: r
                .rtt_by_action
                .iter()
                .filter_map(|(action, data)| {
                    Some((action.clone(), Percentiles::of(&data.to_histogram())?))
                })
                .collect(),
            errors,
            error_examples: r.error_examples.clone(),
            server: ServerMemory {
                pid: rss.pid,
                rss_before_bytes: rss.before,
                rss_booted_bytes: rss.booted,
                rss_end_bytes: rss.end,
                rss_per_station_bytes,
                rss_total_per_station_bytes,
            },
            timeline_of,
            timeline: timeline(&charted.timeline),
            storm,
            commands,
            reference: None,
            throughput_ratio: None,
            boot_rate_ratio: None,
            notes,
            distribution: charted.total.clone(),
        }
    }

    /// Adds the reference run and the throughput ratio (this / reference).
    pub fn attach_reference(&mut self, reference: Report) {
        self.throughput_ratio = (reference.round_trips_per_sec > 0.0)
            .then(|| self.round_trips_per_sec / reference.round_trips_per_sec);
        self.boot_rate_ratio = match (self.boot_secs, reference.boot_secs) {
            (Some(ours), Some(theirs)) if ours > 0.0 => Some(theirs / ours),
            _ => None,
        };
        self.reference = Some(Box::new(reference));
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn ms(p: &Option<Percentiles>) -> String {
    match p {
        Some(p) => format!(
            "p50 {:.2} | p90 {:.2} | p99 {:.2} | p99.9 {:.2} | max {:.2} ms (n={})",
            p.p50, p.p90, p.p99, p.p99_9, p.max, p.count
        ),
        None => "none recorded".into(),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.connections;
        writeln!(
            f,
            "== {} scenario against {} ({} stations, {} process{}) ==",
            self.scenario.as_str(),
            self.target,
            c.stations,
            self.processes,
            if self.processes == 1 { "" } else { "es" }
        )?;
        if let Some(p) = &self.provision {
            writeln!(
                f,
                "provisioning: {}/{} registered, token {}, {:.1} s",
                p.registered,
                p.stations,
                if p.token_created {
                    "created"
                } else {
                    "NOT created"
                },
                p.secs
            )?;
        }
        writeln!(
            f,
            "connections:  {} established, {} failed attempts, {} booted ({} at measure start), {} open at end",
            c.established, c.failed, c.booted, c.booted_at_measure_start, c.connected_at_end
        )?;
        match self.boot_secs {
            Some(s) => writeln!(
                f,
                "fleet booted in {s:.2} s; measured {:.2} s",
                self.measured_secs
            )?,
            None => writeln!(
                f,
                "fleet NOT fully booted; measured {:.2} s",
                self.measured_secs
            )?,
        }
        let m = &self.messages;
        writeln!(
            f,
            "messages:     {} sent ({:.0}/s), {} received ({:.0}/s)",
            m.sent, m.sent_per_sec, m.received, m.received_per_sec
        )?;
        writeln!(
            f,
            "round trips:  {} ({:.0}/s); {}",
            self.round_trips,
            self.round_trips_per_sec,
            ms(&self.round_trip_ms)
        )?;
        if self.round_trip_ms_by_action.len() > 1 {
            for (action, p) in &self.round_trip_ms_by_action {
                writeln!(
                    f,
                    "  {action:<19} {:>6}: p50 {:.2} | p99 {:.2} | max {:.2} ms",
                    p.count, p.p50, p.p99, p.max
                )?;
            }
        }
        let s = &self.server;
        match (s.pid, s.rss_booted_bytes) {
            (Some(pid), Some(booted)) => {
                write!(f, "server pid {pid}: RSS {} booted", mib(booted))?;
                if let Some(before) = s.rss_before_bytes {
                    write!(f, " (from {} idle)", mib(before))?;
                }
                if let Some(end) = s.rss_end_bytes {
                    write!(f, ", {} at end", mib(end))?;
                }
                if let (Some(inc), Some(total)) =
                    (s.rss_per_station_bytes, s.rss_total_per_station_bytes)
                {
                    write!(
                        f,
                        "; per station {:.1} KiB added, {:.1} KiB total",
                        inc / 1024.0,
                        total / 1024.0
                    )?;
                }
                writeln!(f)?;
            }
            _ => writeln!(
                f,
                "server RSS: unknown (no --server-pid, and no single `voltgate` process)"
            )?,
        }
        if let Some(storm) = &self.storm {
            match storm.fleet_reboot_secs {
                Some(secs) => write!(
                    f,
                    "storm: {} dropped, all {} booted again in {secs:.2} s",
                    storm.dropped, storm.rebooted
                )?,
                None => write!(
                    f,
                    "storm: {} dropped, only {} booted again",
                    storm.dropped, storm.rebooted
                )?,
            }
            writeln!(f, "; per station {}", ms(&storm.reboot_ms))?;
        }
        if let Some(cmd) = &self.commands {
            writeln!(
                f,
                "commands: {} sent ({:.0}/s), {} accepted, {} failed, {} delivered{}",
                cmd.sent,
                cmd.sent_per_sec,
                cmd.http_ok,
                cmd.failed,
                cmd.delivered,
                cmd.answered
                    .map(|a| format!(", {a} answered"))
                    .unwrap_or_default()
            )?;
            writeln!(f, "  request -> CALL:   {}", ms(&cmd.request_to_call_ms))?;
            if cmd.answered.is_some() {
                writeln!(f, "  request -> answer: {}", ms(&cmd.request_to_answer_ms))?;
            }
        }
        if self.errors.is_empty() {
            writeln!(f, "errors: none")?;
        } else {
            writeln!(f, "errors:")?;
            for (kind, n) in &self.errors {
                match self.error_examples.get(kind) {
                    Some(example) => writeln!(f, "  {kind}: {n} (e.g. {example})")?,
                    None => writeln!(f, "  {kind}: {n}")?,
                }
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        if let Some(reference) = &self.reference {
            writeln!(f)?;
            write!(f, "{reference}")?;
            if let Some(ratio) = self.throughput_ratio {
                writeln!(
                    f,
                    "\nthroughput {} / reference: {:.0} / {:.0} round trips/s = {ratio:.3}",
                    self.target, self.round_trips_per_sec, reference.round_trips_per_sec
                )?;
            }
            if let (Some(ratio), Some(ours), Some(theirs)) =
                (self.boot_rate_ratio, self.boot_secs, reference.boot_secs)
            {
                writeln!(
                    f,
                    "connect + boot rate {} / reference: the fleet in {ours:.2} s / {theirs:.2} s = {ratio:.3}",
                    self.target
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{CommandCounts, LatencyRecorder};

    fn args(scenario: &str) -> RunArgs {
        RunArgs::parse_from(["--scenario", scenario, "--stations", "4", "--duration", "2"]).unwrap()
    }

    fn rtts(seconds: &[&[u64]]) -> LatencyData {
        let recorder = LatencyRecorder::default();
        for second in seconds {
            for &ms in *second {
                recorder.record(0, Duration::from_millis(ms));
            }
            recorder.roll();
        }
        recorder.data()
    }

    fn inputs<'a>(args: &'a RunArgs, result: PartResult) -> Inputs<'a> {
        Inputs {
            args,
            target: "voltgate",
            processes: 1,
            result,
            measured: Duration::from_secs(2),
            boot_secs: Some(0.5),
            rss: RssSamples {
                pid: Some(42),
                before: Some(10 << 20),
                booted: Some(14 << 20),
                end: Some(15 << 20),
            },
            provision: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn rates_are_per_measured_second() {
        assert_eq!(per_sec(500, 2.0), 250.0);
        assert_eq!(per_sec(500, 0.0), 0.0);
    }

    #[test]
    fn rss_per_station_is_the_growth_and_the_share() {
        let (inc, total) = rss_per_station(Some(100 << 20), Some(300 << 20), 1024);
        assert_eq!(inc, Some(200.0 * 1024.0));
        assert_eq!(total, Some(300.0 * 1024.0));
        assert_eq!(rss_per_station(None, Some(1000), 10), (None, Some(100.0)));
        assert_eq!(rss_per_station(Some(1), Some(2), 0), (None, None));
    }

    #[test]
    fn heartbeat_report_has_rates_percentiles_and_a_timeline() {
        let args = args("heartbeat");
        let result = PartResult {
            stations: 4,
            established: 4,
            ever_booted: 4,
            booted_at_measure: 4,
            connected_at_end: 4,
            sent_measured: 1000,
            received_measured: 998,
            round_trips: 6,
            rtt: rtts(&[&[1, 2, 3], &[], &[10, 20, 30]]),
            ..PartResult::default()
        };
        let report = Report::build(inputs(&args, result));
        assert_eq!(report.messages.sent_per_sec, 500.0);
        assert_eq!(report.round_trips_per_sec, 3.0);
        let p = report.round_trip_ms.as_ref().unwrap();
        assert_eq!(p.count, 6);
        assert!((p.max - 30.0).abs() < 0.05, "{p:?}");
        assert_eq!(report.timeline_of, "round_trip");
        let counts: Vec<u64> = report.timeline.iter().map(|t| t.count).collect();
        assert_eq!(counts, [3, 0, 3]);
        assert_eq!(
            report.timeline[1].p50_ms, None,
            "a quiet second has no percentiles"
        );
        assert!((report.timeline[2].p99_ms.unwrap() - 30.0).abs() < 0.05);
        assert_eq!(report.server.rss_per_station_bytes, Some(1024.0 * 1024.0));
        assert!(report.storm.is_none() && report.commands.is_none());
        let text = report.to_string();
        assert!(text.contains("round trips:  6 (3/s)"), "{text}");
        assert!(text.contains("errors: none"), "{text}");
    }

    #[test]
    fn storm_reports_the_fleet_reboot_only_when_everyone_is_back() {
        let args = args("storm");
        let done = PartResult {
            booted_at_measure: 4,
            rebooted: 4,
            last_reboot_micros: 2_500_000,
            reboot: rtts(&[&[500, 2500]]),
            ..PartResult::default()
        };
        let report = Report::build(inputs(&args, done.clone()));
        let storm = report.storm.as_ref().unwrap();
        assert_eq!(storm.fleet_reboot_secs, Some(2.5));
        assert_eq!(report.timeline_of, "reboot");
        assert!(report.notes.is_empty());
        assert!(report.errors.is_empty(), "{:?}", report.errors);

        let partial = PartResult {
            rebooted: 3,
            ..done.clone()
        };
        let report = Report::build(inputs(&args, partial));
        assert_eq!(report.storm.as_ref().unwrap().fleet_reboot_secs, None);
        assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
        assert_eq!(
            report.errors.get("storm_not_booted_again"),
            Some(&1),
            "a station not back is an error: {:?}",
            report.errors
        );

        let displaced = PartResult {
            ever_booted: 5,
            rebooted: 3,
            ..done
        };
        let report = Report::build(inputs(&args, displaced));
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("1 stations not booted before the drop")),
            "a newcomer that took a dropped station's place is named: {:?}",
            report.notes
        );
    }

    #[test]
    fn commands_report_counts_failures_and_answers() {
        let mut args = args("commands");
        args.wait = true;
        let result = PartResult {
            commands: CommandCounts {
                sent: 10,
                http_ok: 9,
                delivered: 9,
                answered: 8,
            },
            command_to_call: rtts(&[&[1; 9]]),
            command_to_answer: rtts(&[&[5; 8]]),
            errors: [("http_failed".to_owned(), 1)].into(),
            ..PartResult::default()
        };
        let report = Report::build(inputs(&args, result));
        let cmd = report.commands.as_ref().unwrap();
        assert_eq!((cmd.failed, cmd.delivered, cmd.answered), (1, 9, Some(8)));
        assert_eq!(cmd.sent_per_sec, 5.0);
        assert_eq!(cmd.request_to_answer_ms.as_ref().unwrap().count, 8);
        assert_eq!(report.errors["http_failed"], 1);
        assert_eq!(report.timeline_of, "request_to_call");
    }

    #[test]
    fn the_reference_ratio_is_target_over_reference() {
        let args = args("heartbeat");
        let run = |round_trips| {
            Report::build(inputs(
                &args,
                PartResult {
                    round_trips,
                    ..PartResult::default()
                },
            ))
        };
        let mut voltgate = run(3000);
        voltgate.attach_reference(run(6000));
        assert_eq!(voltgate.throughput_ratio, Some(0.5));
        let json = serde_json::to_value(&voltgate).unwrap();
        assert_eq!(json["reference"]["round_trips"], 6000);
        assert_eq!(json["throughput_ratio"], 0.5);
        assert_eq!(json["scenario"], "heartbeat");
        assert!(json.get("distribution").is_none());
        let mut idle = run(0);
        idle.attach_reference(run(0));
        assert_eq!(idle.throughput_ratio, None, "no ratio against nothing");
    }

    #[test]
    fn the_boot_rate_ratio_is_the_references_boot_time_over_the_targets() {
        let args = args("idle");
        let booted_in = |secs: Option<f64>| {
            let mut report = Report::build(inputs(&args, PartResult::default()));
            report.boot_secs = secs;
            report
        };
        let mut voltgate = booted_in(Some(4.0));
        voltgate.attach_reference(booted_in(Some(3.0)));
        assert_eq!(voltgate.boot_rate_ratio, Some(0.75));
        assert_eq!(
            serde_json::to_value(&voltgate).unwrap()["boot_rate_ratio"],
            0.75
        );
        assert!(voltgate.to_string().contains("= 0.750"), "{voltgate}");
        let mut unbooted = booted_in(None);
        unbooted.attach_reference(booted_in(Some(3.0)));
        assert_eq!(
            unbooted.boot_rate_ratio, None,
            "no ratio without a booted fleet"
        );
    }
}
