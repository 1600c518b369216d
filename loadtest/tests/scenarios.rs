//! Every scenario end to end, through the same entry the CLI uses
//! (`RunArgs` parsed from arguments, then `loadtest::run`), against a real
//! voltgate started in-process on 127.0.0.1 with random ports and a
//! temporary data directory: a handful of stations for a second or two.
//!
//! voltgate runs in its own actix system on its own thread, as `main` runs
//! it; the load test runs on the test's tokio runtime. The assertions are
//! about correctness (everyone connected, booted, delivered, no errors),
//! never about speed.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use loadtest::{Report, RunArgs};
use tempfile::TempDir;
use tokio::sync::oneshot;

const STATIONS: u32 = 5;

/// A voltgate running on a thread of its own.
struct Voltgate {
    ws: SocketAddr,
    api: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: TempDir,
}

impl Voltgate {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = voltgate::Config::for_tests(dir.path());
        // A load generator floods by design: the per-station message rate
        // and per-address connection rate limits are off, as the README's
        // load runs say.
        config.limits.ocpp_messages_per_sec = 0;
        config.limits.connections_per_ip_per_sec = 0;
        let (addrs_tx, addrs_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let app = voltgate::start(config).await.expect("voltgate starts");
                addrs_tx
                    .send((app.ws_addr(), app.api_addr()))
                    .expect("test waits");
                let _ = stopped.await;
                app.stop().await;
            });
        });
        let (ws, api) = addrs_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("voltgate listening");
        Voltgate {
            ws,
            api,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `run` options for `scenario` against this server, plus `extra`.
    fn args(&self, scenario: &str, extra: &[&str]) -> RunArgs {
        let mut all: Vec<String> = [
            "--scenario",
            scenario,
            "--stations",
            &STATIONS.to_string(),
            "--duration",
            "1",
            "--ws-url",
            &format!("ws://{}/ws", self.ws),
            "--api-url",
            &format!("http://{}/api/v0", self.api),
            // voltgate runs inside this process.
            "--server-pid",
            &std::process::id().to_string(),
            "--boot-timeout",
            "20",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.extend(extra.iter().map(|s| s.to_string()));
        RunArgs::parse_from(all).expect("valid arguments")
    }
}

impl Drop for Voltgate {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run(args: RunArgs) -> Report {
    let report = tokio::time::timeout(Duration::from_secs(60), loadtest::run(args))
        .await
        .expect("the run ends")
        .expect("the run succeeds");
    eprintln!("{report}");
    report
}

/// Everyone provisioned, connected once, booted, still there at the end, no errors.
#[track_caller]
fn assert_clean_fleet(report: &Report) {
    let c = &report.connections;
    assert_eq!(c.stations, u64::from(STATIONS));
    assert_eq!(c.booted, c.stations, "every station booted");
    assert_eq!(c.booted_at_measure_start, c.stations);
    assert_eq!(c.failed, 0);
    assert!(report.boot_secs.is_some());
    assert!(
        report.errors.is_empty(),
        "errors: {:?} {:?}",
        report.errors,
        report.error_examples
    );
    if let Some(p) = &report.provision {
        assert_eq!(
            (p.registered, p.failed, p.token_created),
            (STATIONS, 0, true)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_fleet_boots_and_reports_server_memory() {
    let server = Voltgate::start();
    let report = run(server.args("idle", &[])).await;
    assert_clean_fleet(&report);
    assert_eq!(report.connections.established, u64::from(STATIONS));
    assert_eq!(report.connections.connected_at_end, u64::from(STATIONS));
    assert!(
        report.messages.sent_total >= u64::from(STATIONS),
        "at least the boots"
    );
    let rss = report.server.rss_booted_bytes.expect("RSS of this process");
    let per_station = report.server.rss_total_per_station_bytes.unwrap();
    assert!((per_station - rss as f64 / f64::from(STATIONS)).abs() < 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_loop_measures_round_trips_and_draws_a_chart() {
    let server = Voltgate::start();
    let report = run(server.args("heartbeat", &["--v201-share", "0.4"])).await;
    assert_clean_fleet(&report);
    assert!(report.round_trips > 0);
    assert_eq!(
        report.round_trips_by_action["Heartbeat"],
        report.round_trips
    );
    let rtt = report.round_trip_ms.as_ref().expect("round trips recorded");
    assert_eq!(rtt.count, report.round_trips);
    assert!(rtt.p50 <= rtt.p99 && rtt.p99 <= rtt.max);
    assert!(report.round_trips_per_sec > 0.0);
    assert!(report.messages.sent >= report.round_trips);
    assert!(!report.timeline.is_empty());
    let per_second: u64 = report.timeline.iter().map(|t| t.count).sum();
    assert_eq!(
        per_second, report.round_trips,
        "the timeline holds every round trip"
    );

    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("latency.svg");
    loadtest::chart::write_svg(&chart, &report).expect("chart written");
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{}",
        &svg[..svg.len().min(200)]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["scenario"], "heartbeat");
    assert!(json["round_trip_ms"]["p99_9"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charge_cycles_run_whole_transactions_on_both_versions() {
    let server = Voltgate::start();
    let extra = [
        "--meter-interval-secs",
        "0.1",
        "--meter-values",
        "2",
        "--duration",
        "2",
    ];
    let report = run(server.args("charge", &extra)).await;
    assert_clean_fleet(&report);
    let by_action = &report.round_trips_by_action;
    for action in [
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    ] {
        assert!(
            by_action.get(action).copied().unwrap_or(0) > 0,
            "no {action} in {by_action:?}"
        );
    }
    // 2.0.1 stations: Started, two Updated and Ended per transaction at least once.
    assert!(by_action["TransactionEvent"] >= 4, "{by_action:?}");
    // Every action's round trips are timed apart, and add up to the run's.
    let timed = &report.round_trip_ms_by_action;
    for (action, n) in by_action {
        assert_eq!(timed[action].count, *n, "{action}");
    }
    let total = report.round_trip_ms.as_ref().expect("timed").count;
    assert_eq!(timed.values().map(|p| p.count).sum::<u64>(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_with_wait_reach_every_station() {
    let server = Voltgate::start();
    let extra = ["--rate", "20", "--duration", "1", "--wait"];
    let report = run(server.args("commands", &extra)).await;
    assert_clean_fleet(&report);
    let commands = report.commands.as_ref().expect("command figures");
    assert_eq!(commands.sent, 20);
    assert_eq!(commands.http_ok, commands.sent);
    assert_eq!(
        commands.delivered, commands.sent,
        "every CALL reached its station"
    );
    assert_eq!(
        commands.answered,
        Some(commands.sent),
        "every wait answered 200"
    );
    let to_call = commands.request_to_call_ms.as_ref().expect("timed");
    let to_answer = commands.request_to_answer_ms.as_ref().expect("timed");
    assert_eq!((to_call.count, to_answer.count), (20, 20));
    // Triggered StatusNotifications came back as station CALLs.
    assert!(
        report
            .round_trips_by_action
            .get("StatusNotification")
            .copied()
            .unwrap_or(0)
            > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reaches_every_station_in_one_request() {
    let server = Voltgate::start();
    let extra = ["--duration", "0.1", "--wait"];
    let report = run(server.args("batch", &extra)).await;
    assert_clean_fleet(&report);
    let commands = report.commands.as_ref().expect("command figures");
    let stations = u64::from(STATIONS);
    // Batches go out back to back until --duration has passed.
    let batches = commands.sent / stations;
    assert!(
        batches >= 1 && commands.sent % stations == 0,
        "{commands:?}"
    );
    assert_eq!(commands.http_ok, commands.sent, "every station targeted");
    assert_eq!(
        commands.delivered, commands.sent,
        "every CALL reached its station"
    );
    assert_eq!(
        commands.answered,
        Some(commands.sent),
        "every station answered"
    );
    let to_call = commands.request_to_call_ms.as_ref().expect("timed");
    let to_answer = commands.request_to_answer_ms.as_ref().expect("timed");
    assert_eq!((to_call.count, to_answer.count), (commands.sent, batches));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_drops_every_connection_and_the_fleet_boots_again() {
    let server = Voltgate::start();
    let extra = [
        "--duration",
        "20",
        "--backoff-min-ms",
        "50",
        "--backoff-random-ms",
        "300",
    ];
    let report = run(server.args("storm", &extra)).await;
    assert_clean_fleet(&report);
    let storm = report.storm.as_ref().expect("storm figures");
    assert_eq!(
        (storm.dropped, storm.rebooted),
        (u64::from(STATIONS), u64::from(STATIONS))
    );
    let secs = storm.fleet_reboot_secs.expect("all back");
    assert!(
        secs >= 0.05,
        "no one reconnects before the back-off minimum: {secs}"
    );
    assert_eq!(storm.reboot_ms.as_ref().unwrap().count, u64::from(STATIONS));
    assert_eq!(
        report.connections.established,
        2 * u64::from(STATIONS),
        "one reconnect each"
    );
    assert!(report.measured_secs < 20.0, "ended when everyone was back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_against_the_in_process_reference_server() {
    let listener = loadtest::reference::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(loadtest::reference::serve(listener));
    let ws_url = format!("ws://{addr}/ws");
    let args = RunArgs::parse_from([
        "--scenario",
        "heartbeat",
        "--stations",
        "5",
        "--duration",
        "1",
        "--ws-url",
        &ws_url,
        "--skip-provision",
        "--server-pid",
        &std::process::id().to_string(),
    ])
    .unwrap();
    let report = run(args).await;
    server.abort();
    assert_clean_fleet(&report);
    assert!(report.provision.is_none());
    assert!(report.round_trips > 0);
}

/// Workers and the reference server come from the built binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_and_compare_reference_through_the_binary() {
    let server = Voltgate::start();
    let exe = env!("CARGO_BIN_EXE_loadtest");
    let extra = [
        "--per-process",
        "3",
        "--compare-reference",
        "--exe",
        exe,
        "--duration",
        "1",
    ];
    let report = run(server.args("heartbeat", &extra)).await;
    assert_clean_fleet(&report);
    assert_eq!(report.processes, 2, "5 stations, at most 3 per process");
    assert!(report.round_trips > 0);
    let reference = report.reference.as_ref().expect("reference run");
    assert_eq!(reference.target, "reference");
    assert_eq!(reference.processes, 2);
    assert_clean_fleet(reference);
    assert!(reference.round_trips > 0);
    assert!(
        reference.server.rss_booted_bytes.is_some(),
        "the reference child's RSS"
    );
    let ratio = report.throughput_ratio.expect("ratio");
    assert!((ratio - report.round_trips_per_sec / reference.round_trips_per_sec).abs() < 1e-9);
}
