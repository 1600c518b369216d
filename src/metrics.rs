//! Metric names (Prometheus, through the `metrics` facade). Labels come from
//! closed sets only: never a station id or a raw path, so cardinality does
//! not grow with the fleet. Recording without an installed recorder is a
//! no-op, so the pure core and the tests pay nothing for it.

/// Answers given with a failure status because an outside service (OCSP
/// responder, certificate authority, contract certificate pool, smart
/// charging) is not configured. Label `service`.
pub const UNCONFIGURED_SERVICE: &str = "voltgate_unconfigured_service_answers_total";
/// Connected stations, by OCPP `version`.
pub const STATIONS_CONNECTED: &str = "voltgate_stations_connected";
/// Station connection attempts refused before the upgrade. Label `reason`.
pub const AUTH_FAILURES: &str = "voltgate_auth_failures_total";
/// Connections closed, by `reason`.
pub const CONNECTIONS_CLOSED: &str = "voltgate_connections_closed_total";
/// CALLERRORs sent to stations, by `code`.
pub const CALL_ERRORS_SENT: &str = "voltgate_ocpp_call_errors_sent_total";
/// Messages dropped as OCPP-J says (answers to nothing, broken answers), by `reason`.
pub const MESSAGES_IGNORED: &str = "voltgate_ocpp_messages_ignored_total";
/// Commands refused because a mailbox or queue on the path was full, by `stage`.
pub const BACKPRESSURE_REJECTIONS: &str = "voltgate_backpressure_rejections_total";

/// Counts one answer given without the outside service it needs.
pub fn unconfigured_service(service: &'static str) {
    metrics::counter!(UNCONFIGURED_SERVICE, "service" => service).increment(1);
}

/// Histogram buckets in seconds, fine enough for sub-millisecond work.
const BUCKETS_SECONDS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process-wide Prometheus recorder, installed on first use (one per
/// process: tests start many apps in one process and share it). `None` when
/// another recorder was installed first.
pub fn prometheus() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = metrics_exporter_prometheus::PrometheusBuilder::new();
            let builder = match builder.set_buckets(BUCKETS_SECONDS) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(%e, "invalid histogram buckets");
                    return None;
                }
            };
            match builder.install_recorder() {
                Ok(handle) => {
                    // Histogram samples are folded into buckets by upkeep; run it
                    // even when nobody scrapes, so they never pile up.
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    });
                    if let Err(e) = spawned {
                        tracing::warn!(%e, "cannot start metrics upkeep; scrapes still run it");
                    }
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(%e, "a metrics recorder is already installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    match prometheus() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}
