//! Every setting of voltgate, each a command-line flag and a `VOLTGATE_*`
//! environment variable (the flag wins), with the defaults of DESIGN.md.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api::auth::ApiAuthSettings;
use crate::station::gate::LimitSettings;
use crate::store::scylla::ScyllaSettings;
use crate::transport::TransportSettings;

/// voltgate: an OCPP-J charge station management engine.
#[derive(Debug, Parser)]
#[command(
    name = "voltgate",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: Config,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Config),
}

impl Cli {
    /// The server settings, whichever way they were given.
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(config)) => config,
            None => self.serve,
        }
    }
}

/// Settings of a running server.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the OCPP-J WebSocket listener (stations connect to ws://HOST:PORT/ws/{csId}).
    #[arg(long, env = "VOLTGATE_WS_LISTEN", default_value = "0.0.0.0:9310")]
    pub ws_listen: SocketAddr,

    /// Address of the REST API listener (/api/v0, /health). Keep it on the operator's network.
    #[arg(long, env = "VOLTGATE_API_LISTEN", default_value = "127.0.0.1:9410")]
    pub api_listen: SocketAddr,

    /// Directory of the embedded store (created when missing); one file, voltgate.redb.
    #[arg(long, env = "VOLTGATE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The ScyllaDB store: used instead of the embedded one when --scylla-uri is given.
    #[command(flatten)]
    pub scylla: ScyllaSettings,

    /// Largest REST request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "VOLTGATE_API_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub api_max_body_bytes: usize,

    /// Worker threads of the REST listener (default: one per CPU core).
    #[arg(long, env = "VOLTGATE_API_WORKERS")]
    pub api_workers: Option<usize>,

    /// Most REST connections open at once, over all workers. Clients beyond
    /// it wait in the listen queue until one closes, so a flood of REST
    /// clients cannot take the file descriptors kept for the store, the
    /// other nodes and stations' handshakes (1,024 at most).
    #[arg(long, env = "VOLTGATE_API_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub api_max_connections: u32,

    /// Worker threads of the OCPP listener (default: one per CPU core).
    #[arg(long, env = "VOLTGATE_WS_WORKERS")]
    pub ws_workers: Option<usize>,

    /// Heartbeat interval told to accepted stations, in seconds.
    #[arg(long, env = "VOLTGATE_HEARTBEAT_INTERVAL_SECS", default_value_t = 300)]
    pub heartbeat_interval_secs: u32,

    /// Interval after which a station answered Pending at boot tries again, in seconds.
    #[arg(
        long,
        env = "VOLTGATE_PENDING_BOOT_INTERVAL_SECS",
        default_value_t = 15
    )]
    pub pending_boot_interval_secs: u32,

    /// A connection without any traffic (messages, pongs) for this long is closed, in
    /// seconds (default: twice the heartbeat interval plus 30 s). Pings go out at a third of it.
    #[arg(long, env = "VOLTGATE_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,

    /// How long a station has to answer a CSMS call, in seconds.
    #[arg(long, env = "VOLTGATE_CALL_TIMEOUT_SECS", default_value_t = 30)]
    pub call_timeout_secs: u64,

    /// Longest wait of a REST call with ?wait=true for the station's answer, in seconds.
    #[arg(long, env = "VOLTGATE_WAIT_TIMEOUT_SECS", default_value_t = 35)]
    pub wait_timeout_secs: u64,

    /// How long an immediate-effect command (remote start/stop, reset, unlock, trigger,
    /// reads, ...) may wait to be sent, in seconds, unless the call gives ?ttl=.
    #[arg(long, env = "VOLTGATE_COMMAND_TTL_SECS", default_value_t = 60)]
    pub command_ttl_secs: u64,

    /// PEM certificate of the CA that signs charge stations' CSRs (SignCertificate); with
    /// --csms-ca-key. Without them CSRs are answered Rejected.
    #[arg(long, env = "VOLTGATE_CSMS_CA_CERT")]
    pub csms_ca_cert: Option<PathBuf>,

    /// PEM private key of that CA.
    #[arg(long, env = "VOLTGATE_CSMS_CA_KEY")]
    pub csms_ca_key: Option<PathBuf>,

    /// Most stations one fan-out (POST /api/v0/commands) may target.
    #[arg(long, env = "VOLTGATE_MAX_BATCH_STATIONS", default_value_t = 100_000)]
    pub max_batch_stations: usize,

    /// IANA time zone given to a location created through MaEVe's
    /// `POST /api/v0/location/{id}` without one (OCPI requires it).
    #[arg(long, env = "VOLTGATE_DEFAULT_TIME_ZONE", default_value = "UTC")]
    pub default_time_zone: String,

    /// Seconds past its heartbeat interval that a disconnected station's
    /// EVSEs keep their last status before they show UNKNOWN.
    #[arg(long, env = "VOLTGATE_EVSE_UNKNOWN_MARGIN_SECS", default_value_t = 60)]
    pub evse_unknown_margin_secs: u64,

    /// The payment type codes EVSEs may carry (comma-separated, e.g.
    /// `GCASH,MAYA`), listed by `GET /api/v1/filters`. Empty: any code of
    /// A-Z, 0-9 and `_` is taken, and none is listed.
    #[arg(long, env = "VOLTGATE_PAYMENT_TYPES", value_delimiter = ',')]
    pub payment_types: Vec<String>,

    /// Longest OCPP message accepted; a longer one is answered with a CALLERROR.
    #[arg(long, env = "VOLTGATE_OCPP_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub ocpp_max_message_bytes: usize,

    /// Largest WebSocket message; a larger one closes the connection (code 1009).
    #[arg(long, env = "VOLTGATE_WS_MAX_FRAME_BYTES", default_value_t = 1024 * 1024)]
    pub ws_max_frame_bytes: usize,

    /// REST API authentication.
    #[command(flatten)]
    pub api_auth: ApiAuthSettings,

    /// The OCPI 2.2.1 CPO interface (`--ocpi-*`).
    #[command(flatten)]
    pub ocpi: crate::ocpi::OcpiSettings,

    /// The TLS listener and proxy mode.
    #[command(flatten)]
    pub transport: TransportSettings,

    /// Connection limits and the shutdown drain.
    #[command(flatten)]
    pub limits: LimitSettings,

    /// Several nodes on one ScyllaDB keyspace (`--node-*`, `--cluster-*`).
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterSettings,
}

impl Config {
    /// The idle bound: as given, or twice the heartbeat interval plus 30 s.
    pub fn idle_timeout(&self) -> std::time::Duration {
        let secs = self
            .idle_timeout_secs
            .unwrap_or(2 * u64::from(self.heartbeat_interval_secs) + 30);
        std::time::Duration::from_secs(secs.max(1))
    }

    /// Settings for tests: loopback listeners on free ports, data in `data_dir`,
    /// one REST worker.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            ws_listen: ([127, 0, 0, 1], 0).into(),
            api_listen: ([127, 0, 0, 1], 0).into(),
            data_dir: data_dir.into(),
            scylla: ScyllaSettings::unset(),
            api_max_body_bytes: 1024 * 1024,
            api_workers: Some(1),
            api_max_connections: 512,
            ws_workers: Some(1),
            heartbeat_interval_secs: 300,
            pending_boot_interval_secs: 15,
            idle_timeout_secs: None,
            call_timeout_secs: 30,
            wait_timeout_secs: 35,
            command_ttl_secs: 60,
            max_batch_stations: 100_000,
            default_time_zone: "UTC".into(),
            evse_unknown_margin_secs: 60,
            payment_types: Vec::new(),
            csms_ca_cert: None,
            csms_ca_key: None,
            ocpp_max_message_bytes: 64 * 1024,
            ws_max_frame_bytes: 1024 * 1024,
            api_auth: ApiAuthSettings::default(),
            ocpi: crate::ocpi::OcpiSettings::for_tests(),
            transport: TransportSettings::plain(),
            limits: LimitSettings::with_max_stations(10_000),
            cluster: crate::cluster::ClusterSettings {
                presence_ttl_secs: 30,
                ..crate::cluster::ClusterSettings::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    /// The configuration of `args` alone: the `VOLTGATE_*` variables of
    /// the process running the tests (e.g. `VOLTGATE_SCYLLA_URI`) are not
    /// read.
    fn parse(args: &[&str]) -> Config {
        let without_env = |arg: clap::Arg| arg.env(None::<&str>);
        let command = Cli::command()
            .mut_args(without_env)
            .mut_subcommand("serve", |serve| serve.mut_args(without_env));
        let matches = command.get_matches_from(args);
        Cli::from_arg_matches(&matches)
            .expect("parsed")
            .into_config()
    }

    #[test]
    fn defaults_follow_the_design() {
        let config = parse(&["voltgate"]);
        assert_eq!(config.ws_listen.to_string(), "0.0.0.0:9310");
        assert_eq!(config.api_listen.to_string(), "127.0.0.1:9410");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.scylla.uri, None);
        assert_eq!(config.scylla.replication.to_string(), "1");
        assert_eq!(config.api_max_connections, 512);
    }

    #[test]
    fn serve_subcommand_takes_the_same_flags() {
        let config = parse(&[
            "voltgate",
            "serve",
            "--api-listen",
            "127.0.0.1:1",
            "--scylla-uri",
            "a:9042,b:9042",
            "--scylla-replication",
            "dc1:3",
        ]);
        assert_eq!(config.api_listen.to_string(), "127.0.0.1:1");
        assert_eq!(
            config.scylla.uri,
            Some(vec!["a:9042".to_owned(), "b:9042".to_owned()])
        );
        assert_eq!(config.scylla.replication.to_string(), "dc1:3");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
