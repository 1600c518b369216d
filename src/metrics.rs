//! Metric names (Prometheus, through the `metrics` facade) and the
//! functions that record them. Labels come from closed sets only: never a
//! station id or a raw path, so cardinality does not grow with the fleet.
//! Recording without an installed recorder is a no-op, so the pure core and
//! the tests pay nothing for it.
//!
//! Metrics recorded per OCPP message keep their handles in a small cache:
//! building a labelled key and looking it up in the recorder's registry on
//! every message would cost more than handling a Heartbeat.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use crate::ocpp::frame::MessageKind;
use crate::ocpp::Version;

/// Answers given with a failure status because an outside service (OCSP
/// responder, certificate authority, contract certificate pool, smart
/// charging) is not configured. Label `service`.
pub const UNCONFIGURED_SERVICE: &str = "voltgate_unconfigured_service_answers_total";
/// Connected stations, by OCPP `version`.
pub const STATIONS_CONNECTED: &str = "voltgate_stations_connected";
/// Station connections opened (upgraded to OCPP), by `version`.
pub const CONNECTIONS_OPENED: &str = "voltgate_connections_opened_total";
/// Station connection attempts refused before the upgrade. Label `reason`.
pub const AUTH_FAILURES: &str = "voltgate_auth_failures_total";
/// Proxy headers (X-Forwarded-Proto, X-Client-Cert-*) from a peer outside --trust-proxy, ignored.
pub const UNTRUSTED_PROXY_HEADERS: &str = "voltgate_untrusted_proxy_headers_total";
/// Requests or connections refused by a limit, by `limit`.
pub const LIMIT_REFUSALS: &str = "voltgate_limit_refusals_total";
/// REST requests refused for a missing or wrong API token.
pub const API_AUTH_FAILURES: &str = "voltgate_api_auth_failures_total";
/// Connections closed or refused, by `reason`.
pub const CONNECTIONS_CLOSED: &str = "voltgate_connections_closed_total";
/// OCPP messages received, by `version`, `action`, `type`.
pub const MESSAGES_RECEIVED: &str = "voltgate_ocpp_messages_received_total";
/// OCPP messages sent, by `version`, `action`, `type`.
pub const MESSAGES_SENT: &str = "voltgate_ocpp_messages_sent_total";
/// Time to handle a station CALL (store included), by `version`, `action`.
pub const HANDLER_DURATION: &str = "voltgate_ocpp_handler_duration_seconds";
/// Time from sending a CSMS CALL to its answer, by `version`, `action`.
pub const CALL_ROUND_TRIP: &str = "voltgate_ocpp_call_round_trip_seconds";
/// CSMS CALLs that got no answer in time, by `version`, `action`.
pub const CALL_TIMEOUTS: &str = "voltgate_ocpp_call_timeouts_total";
/// CALLERRORs, by `code` and `direction` (sent, received).
pub const CALL_ERRORS: &str = "voltgate_ocpp_call_errors_total";
/// Messages dropped as OCPP-J says (answers to nothing, broken answers), by `reason`.
pub const MESSAGES_IGNORED: &str = "voltgate_ocpp_messages_ignored_total";
/// Commands refused because a mailbox or queue on the path was full, by `stage`.
pub const BACKPRESSURE_REJECTIONS: &str = "voltgate_backpressure_rejections_total";
/// REST commands to stations, by `action` and `result`.
pub const COMMANDS: &str = "voltgate_commands_total";
/// Station CSRs the CA refused to sign.
pub const CSRS_REFUSED: &str = "voltgate_csrs_refused_total";
/// Commands settled by the station's answer (or its absence), by `status`.
pub const COMMANDS_SETTLED: &str = "voltgate_commands_settled_total";
/// Time from a `?wait=true` REST command to the station's answers, by `action`.
pub const COMMAND_ROUND_TRIP: &str = "voltgate_command_round_trip_seconds";
/// HTTP requests, by `route` (template), `method`, `status`.
pub const HTTP_REQUESTS: &str = "voltgate_http_requests_total";
/// HTTP request duration, by `route` and `method`.
pub const HTTP_DURATION: &str = "voltgate_http_request_duration_seconds";
/// Store operation duration, by `backend` and `operation`.
pub const STORE_DURATION: &str = "voltgate_store_operation_duration_seconds";
/// One CQL request's round trip as the driver gives it (queueing in the
/// driver included), by statement: where a ScyllaDB store operation's time goes.
pub const SCYLLA_STATEMENT_DURATION: &str = "voltgate_scylla_statement_duration_seconds";
/// Store operations that failed, by `backend` and `operation`.
pub const STORE_ERRORS: &str = "voltgate_store_errors_total";

/// OCPI pushes to partners, by `party` (a registered partner: a closed
/// set) and `outcome` (delivered, retried, rejected, coalesced, overflowed).
pub const OCPI_PUSHES: &str = "voltgate_ocpi_pushes_total";
/// Pushes waiting in a partner's queue, by `party`.
pub const OCPI_PUSH_QUEUE_DEPTH: &str = "voltgate_ocpi_push_queue_depth";
/// Time from queueing a push to the partner's acceptance, by `party`.
pub const OCPI_PUSH_DELAY: &str = "voltgate_ocpi_push_delay_seconds";

/// CommandResponses given to OCPI partners, by `result`.
pub const OCPI_COMMANDS: &str = "voltgate_ocpi_commands_total";

/// Commands forwarded to the node holding their station, by `result`
/// (delivered, not_connected, busy, unreachable).
pub const CLUSTER_FORWARDS: &str = "voltgate_cluster_forwards_total";
/// Round trip of one forward to another node.
pub const CLUSTER_FORWARD_SECONDS: &str = "voltgate_cluster_forward_seconds";
/// Presence rows written, by `kind` (connect, disconnect).
pub const CLUSTER_PRESENCE_WRITES: &str = "voltgate_cluster_presence_writes_total";
/// Connections of this node closed because the station connected to another.
pub const CLUSTER_TAKEOVERS: &str = "voltgate_cluster_takeovers_total";
/// Nodes whose lease is current, as this node last read them.
pub const CLUSTER_LIVE_NODES: &str = "voltgate_cluster_live_nodes";
/// Answers of forwarded commands handed to a waiting REST caller, by `how`
/// this node learnt them (pushed by the holding node, or polled from the
/// store when no push came).
pub const CLUSTER_FORWARD_ANSWERS: &str = "voltgate_cluster_forward_answers_total";

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// From the station.
    Received,
    /// To the station.
    Sent,
}

impl Flow {
    fn label(self) -> &'static str {
        match self {
            Flow::Received => "received",
            Flow::Sent => "sent",
        }
    }
}

/// Metric handles registered once per label set.
struct HandleCache<K, H> {
    map: OnceLock<RwLock<HashMap<K, H>>>,
}

impl<K: Eq + Hash, H> HandleCache<K, H> {
    const fn new() -> Self {
        HandleCache {
            map: OnceLock::new(),
        }
    }

    fn with(&self, key: K, register: impl FnOnce() -> H, record: impl FnOnce(&H)) {
        let map = self.map.get_or_init(Default::default);
        if let Ok(handles) = map.read() {
            if let Some(handle) = handles.get(&key) {
                return record(handle);
            }
        }
        let handle = register();
        record(&handle);
        if let Ok(mut handles) = map.write() {
            handles.entry(key).or_insert(handle);
        }
    }
}

/// Counts one OCPP message.
pub fn ocpp_message(flow: Flow, version: Version, kind: MessageKind, action: &'static str) {
    static HANDLES: HandleCache<(Flow, Version, MessageKind, &'static str), Counter> =
        HandleCache::new();
    let name = match flow {
        Flow::Received => MESSAGES_RECEIVED,
        Flow::Sent => MESSAGES_SENT,
    };
    HANDLES.with(
        (flow, version, kind, action),
        || metrics::counter!(name, "version" => version.label(), "action" => action, "type" => kind.label()),
        |counter| counter.increment(1),
    );
}

/// Counts a station connection opened.
pub fn connection_opened(version: Version) {
    static OPENED: HandleCache<Version, Counter> = HandleCache::new();
    connected(version, 1.0);
    OPENED.with(
        version,
        || metrics::counter!(CONNECTIONS_OPENED, "version" => version.label()),
        |counter| counter.increment(1),
    );
}

/// Counts a station connection closed, and why (a closed-set label).
pub fn connection_closed(version: Version, reason: &'static str) {
    static CLOSED: HandleCache<&'static str, Counter> = HandleCache::new();
    connected(version, -1.0);
    CLOSED.with(
        reason,
        || metrics::counter!(CONNECTIONS_CLOSED, "reason" => reason),
        |counter| counter.increment(1),
    );
}

/// Moves the connected-stations gauge. Handles are kept: looking one up by
/// its labels allocates the key, six allocations per connect and close
/// between the two metrics (heaptrack, 2026-12-03).
fn connected(version: Version, change: f64) {
    static CONNECTED: HandleCache<Version, Gauge> = HandleCache::new();
    CONNECTED.with(
        version,
        || metrics::gauge!(STATIONS_CONNECTED, "version" => version.label()),
        |gauge| gauge.increment(change),
    );
}

/// Records how long a station CALL took to handle.
pub fn handler_duration(version: Version, action: &'static str, elapsed: Duration) {
    static HANDLES: HandleCache<(Version, &'static str), Histogram> = HandleCache::new();
    HANDLES.with(
        (version, action),
        || metrics::histogram!(HANDLER_DURATION, "version" => version.label(), "action" => action),
        |histogram| histogram.record(elapsed),
    );
}

/// Records how a CSMS CALL ended: its round trip, or a timeout.
pub fn call_answered(version: Version, action: &'static str, round_trip: Option<Duration>) {
    static HANDLES: HandleCache<(Version, &'static str), Histogram> = HandleCache::new();
    match round_trip {
        Some(elapsed) => HANDLES.with(
            (version, action),
            || metrics::histogram!(CALL_ROUND_TRIP, "version" => version.label(), "action" => action),
            |histogram| histogram.record(elapsed),
        ),
        None => metrics::counter!(CALL_TIMEOUTS, "version" => version.label(), "action" => action)
            .increment(1),
    }
}

/// Counts one CALLERROR; `code` is a closed-set label.
pub fn call_error(flow: Flow, code: &'static str) {
    static HANDLES: HandleCache<(Flow, &'static str), Counter> = HandleCache::new();
    HANDLES.with(
        (flow, code),
        || metrics::counter!(CALL_ERRORS, "code" => code, "direction" => flow.label()),
        |counter| counter.increment(1),
    );
}

/// Counts one REST command and how it went.
pub fn command(action: &'static str, result: &'static str) {
    metrics::counter!(COMMANDS, "action" => action, "result" => result).increment(1);
}

/// Counts a station CSR the CA refused (wrong name or organization, bad signature).
pub fn csr_refused() {
    metrics::counter!(CSRS_REFUSED).increment(1);
}

/// Counts a command settled by the station's answer (Accepted, Rejected, Failed).
pub fn command_answered(status: crate::store::CommandStatus) {
    let status = match status {
        crate::store::CommandStatus::Pending => "Pending",
        crate::store::CommandStatus::Accepted => "Accepted",
        crate::store::CommandStatus::Rejected => "Rejected",
        crate::store::CommandStatus::Failed => "Failed",
        crate::store::CommandStatus::Expired => "Expired",
    };
    metrics::counter!(COMMANDS_SETTLED, "status" => status).increment(1);
}

/// Records the time from a waited REST command to the station's answers.
pub fn command_round_trip(action: &'static str, elapsed: Duration) {
    metrics::histogram!(COMMAND_ROUND_TRIP, "action" => action).record(elapsed);
}

/// Records one store operation.
pub fn store_operation(
    backend: &'static str,
    operation: &'static str,
    elapsed: Duration,
    ok: bool,
) {
    static HANDLES: HandleCache<(&'static str, &'static str), Histogram> = HandleCache::new();
    HANDLES.with(
        (backend, operation),
        || metrics::histogram!(STORE_DURATION, "backend" => backend, "operation" => operation),
        |histogram| histogram.record(elapsed),
    );
    if !ok {
        metrics::counter!(STORE_ERRORS, "backend" => backend, "operation" => operation)
            .increment(1);
    }
}

/// Records one CQL request of the ScyllaDB store.
pub fn scylla_statement(statement: &'static str, elapsed: Duration) {
    static HANDLES: HandleCache<&'static str, Histogram> = HandleCache::new();
    HANDLES.with(
        statement,
        || metrics::histogram!(SCYLLA_STATEMENT_DURATION, "statement" => statement),
        |histogram| histogram.record(elapsed),
    );
}

/// Records one HTTP request. `route` is the matched route template (or
/// "unmatched"), never the raw path.
pub fn http_request(route: String, method: &'static str, status: u16, elapsed: Duration) {
    metrics::histogram!(HTTP_DURATION, "route" => route.clone(), "method" => method)
        .record(elapsed);
    metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status.to_string())
        .increment(1);
}

/// Counts one forward to another node, and its round trip.
pub fn cluster_forward(result: &'static str, took: Duration) {
    metrics::counter!(CLUSTER_FORWARDS, "result" => result).increment(1);
    metrics::histogram!(CLUSTER_FORWARD_SECONDS).record(took);
}

/// Counts one presence write.
pub fn cluster_presence_write(kind: &'static str) {
    metrics::counter!(CLUSTER_PRESENCE_WRITES, "kind" => kind).increment(1);
}

/// Counts one connection closed by a takeover on another node.
pub fn cluster_takeover() {
    metrics::counter!(CLUSTER_TAKEOVERS).increment(1);
}

/// Counts one forwarded command's answer handed to its waiting caller.
pub fn cluster_forward_answer(how: &'static str) {
    metrics::counter!(CLUSTER_FORWARD_ANSWERS, "how" => how).increment(1);
}

/// Sets the number of live nodes.
pub fn cluster_live_nodes(count: usize) {
    metrics::gauge!(CLUSTER_LIVE_NODES).set(count as f64);
}

/// Counts one push outcome for a partner.
pub fn ocpi_push(party: &str, outcome: &'static str) {
    metrics::counter!(OCPI_PUSHES, "party" => party.to_owned(), "outcome" => outcome).increment(1);
}

/// Sets a partner's queue depth.
pub fn ocpi_push_queue_depth(party: &str, depth: u64) {
    metrics::gauge!(OCPI_PUSH_QUEUE_DEPTH, "party" => party.to_owned()).set(depth as f64);
}

/// Records how long a delivered push waited.
pub fn ocpi_push_delay(party: &str, waited: Duration) {
    metrics::histogram!(OCPI_PUSH_DELAY, "party" => party.to_owned()).record(waited);
}

/// Counts one CommandResponse given to a partner.
pub fn ocpi_command(result: &str) {
    metrics::counter!(OCPI_COMMANDS, "result" => result.to_owned()).increment(1);
}

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
