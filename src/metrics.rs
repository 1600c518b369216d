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
