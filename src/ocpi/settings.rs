//! The OCPI listener's flags: where it listens, the public origin partners
//! reach it at, and the CPO identity it presents in its credentials.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// OCPI settings (`--ocpi-*`).
#[derive(Debug, Clone, Args)]
pub struct OcpiSettings {
    /// Where the OCPI 2.2.1 CPO interface listens.
    #[arg(
        id = "ocpi_listen",
        long = "ocpi-listen",
        env = "VOLTGATE_OCPI_LISTEN",
        default_value = "127.0.0.1:9411"
    )]
    pub listen: SocketAddr,

    /// The public origin partners use (e.g. `https://ocpi.example.com`):
    /// voltgate's versions URL is `{base}/ocpi/versions`. Default:
    /// `http://` + the listen address.
    #[arg(
        id = "ocpi_base_url",
        long = "ocpi-base-url",
        env = "VOLTGATE_OCPI_BASE_URL"
    )]
    pub base_url: Option<String>,

    /// voltgate's ISO 3166-1 alpha-2 country code as a CPO.
    #[arg(
        id = "ocpi_country_code",
        long = "ocpi-country-code",
        env = "VOLTGATE_OCPI_COUNTRY_CODE",
        default_value = "GB"
    )]
    pub country_code: String,

    /// voltgate's OCPI party id as a CPO (3 characters).
    #[arg(
        id = "ocpi_party_id",
        long = "ocpi-party-id",
        env = "VOLTGATE_OCPI_PARTY_ID",
        default_value = "TWK"
    )]
    pub party_id: String,

    /// The business name in voltgate's credentials.
    #[arg(
        id = "ocpi_business_name",
        long = "ocpi-business-name",
        env = "VOLTGATE_OCPI_BUSINESS_NAME",
        default_value = "voltgate"
    )]
    pub business_name: String,

    /// Seconds an outgoing OCPI call may take before it counts as failed.
    #[arg(
        id = "ocpi_call_timeout_secs",
        long = "ocpi-call-timeout-secs",
        env = "VOLTGATE_OCPI_CALL_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub call_timeout_secs: u64,

    /// Most pushes queued for one partner; beyond, the latest state of each
    /// object is kept and the rest resent once the partner is back.
    #[arg(
        id = "ocpi_push_queue_max",
        long = "ocpi-push-queue-max",
        env = "VOLTGATE_OCPI_PUSH_QUEUE_MAX",
        default_value_t = 10_000
    )]
    pub push_queue_max: u64,

    /// Longest wait for an eMSP's real-time authorization of a token, in
    /// milliseconds; then the local rules decide.
    #[arg(
        id = "ocpi_realtime_auth_timeout_ms",
        long = "ocpi-realtime-auth-timeout-ms",
        env = "VOLTGATE_OCPI_REALTIME_AUTH_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub realtime_auth_timeout_ms: u64,

    /// Least seconds between two pushes of a running session's progress
    /// (its start and end are pushed at once).
    #[arg(
        id = "ocpi_session_update_secs",
        long = "ocpi-session-update-secs",
        env = "VOLTGATE_OCPI_SESSION_UPDATE_SECS",
        default_value_t = 60
    )]
    pub session_update_secs: u64,

    /// ISO 4217 currency of sessions and CDRs.
    #[arg(
        id = "ocpi_currency",
        long = "ocpi-currency",
        env = "VOLTGATE_OCPI_CURRENCY",
        default_value = "EUR"
    )]
    pub currency: String,
}

impl OcpiSettings {
    /// Loopback on a free port, for tests.
    pub fn for_tests() -> Self {
        OcpiSettings {
            listen: ([127, 0, 0, 1], 0).into(),
            base_url: None,
            country_code: "GB".into(),
            party_id: "TWK".into(),
            business_name: "voltgate".into(),
            call_timeout_secs: 5,
            push_queue_max: 10_000,
            realtime_auth_timeout_ms: 1_000,
            session_update_secs: 60,
            currency: "EUR".into(),
        }
    }

    /// The timeout of one outgoing call.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.call_timeout_secs.max(1))
    }

    /// Refuses an identity OCPI cannot carry.
    pub fn check(&self) -> Result<(), String> {
        let upper = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        };
        if !upper(&self.country_code, 2) {
            return Err(format!(
                "--ocpi-country-code {:?} must be 2 upper-case letters",
                self.country_code
            ));
        }
        if !upper(&self.party_id, 3) {
            return Err(format!(
                "--ocpi-party-id {:?} must be 3 upper-case letters or digits",
                self.party_id
            ));
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(format!(
                "--ocpi-currency {:?} must be an ISO 4217 code (3 upper-case letters)",
                self.currency
            ));
        }
        if let Some(base) = &self.base_url {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(format!("--ocpi-base-url {base:?} must be an http(s) URL"));
            }
        }
        Ok(())
    }
}
