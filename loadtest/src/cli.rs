//! The command line: `run` (a fleet against a server), `reference-server`
//! (the throughput floor) and the hidden `worker` (one process of a fleet
//! spread over several). [`RunArgs`] is also the run's whole configuration:
//! it is serialized into worker specs and echoed in the report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

/// Load test for voltgate: simulated OCPP-J charge stations, REST commands,
/// and a minimal reference server to compare against.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a fleet of stations against a running server and report.
    /// An option given twice takes its last value (scripts can override defaults).
    #[command(args_override_self = true)]
    Run(Box<RunArgs>),
    /// Serve a minimal OCPP-J responder (no auth, no storage, no schema checks).
    ReferenceServer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9311")]
        listen: SocketAddr,
    },
    /// Load locations and time nearby searches against a running server.
    Locations(crate::places::LocationsArgs),
    /// Time station status changes to a live eMSP (OCPI location pushes).
    OcpiStatus(crate::ocpi_status::OcpiStatusArgs),
    /// One process of a fleet spread over several (started by `run`).
    #[command(hide = true)]
    Worker {
        /// The part of the fleet to run, as JSON.
        #[arg(long)]
        spec: String,
    },
}

/// What the fleet does once every station has booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Charge cycles: status, authorize, start, meter values, stop, again.
    Charge,
    /// REST commands (trigger / reconfigure) fanned out at `--rate`.
    Commands,
    /// One `POST /commands` fan-out (a TriggerMessage) to every station,
    /// repeated until `--duration` has passed.
    Batch,
    /// Closed-loop heartbeats: throughput and round-trip times.
    Heartbeat,
    /// Connected and booted, heartbeats at the server's interval: memory.
    Idle,
    /// Every station drops its connection at once and reconnects with back-off.
    Storm,
}

impl Scenario {
    /// Whether the scenario drives REST commands (and so measures them).
    pub fn sends_commands(self) -> bool {
        matches!(self, Scenario::Commands | Scenario::Batch)
    }

    /// The name used on the command line and in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Charge => "charge",
            Scenario::Commands => "commands",
            Scenario::Batch => "batch",
            Scenario::Heartbeat => "heartbeat",
            Scenario::Idle => "idle",
            Scenario::Storm => "storm",
        }
    }
}

/// Options of `run`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct RunArgs {
    /// What the fleet does once booted.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Stations to simulate.
    #[arg(long, default_value_t = 100)]
    pub stations: u32,
    /// OCPP WebSocket base URL; the station id is appended. Several,
    /// comma-separated (the nodes of a cluster): stations are spread over
    /// them in turn and move to the next one when their connection is lost
    /// or refused, as behind a load balancer without stickiness.
    #[arg(long, default_value = "ws://127.0.0.1:9310/ws")]
    pub ws_url: String,
    /// REST API base URL. Several, comma-separated: each command goes to one
    /// of them at random (stations are registered through the first).
    #[arg(long, default_value = "http://127.0.0.1:9410/api/v0")]
    pub api_url: String,
    /// What the server under test is called in the report.
    #[arg(long, default_value = "voltgate")]
    pub target_name: String,
    /// New connections per second across the fleet (0: as fast as the
    /// handshake limit allows).
    #[arg(long, value_name = "PER_SEC", default_value_t = 0.0)]
    pub ramp: f64,
    /// Handshakes in progress at once, per process.
    #[arg(long, default_value_t = 256)]
    pub max_handshakes: u32,
    /// Share of stations speaking OCPP 2.0.1 (the rest speak 1.6).
    #[arg(long, default_value_t = 0.5, value_parser = share)]
    pub v201_share: f64,
    /// Station ids are this prefix and a six-digit number.
    #[arg(long, default_value = "LT")]
    pub id_prefix: String,
    /// Password of every station (registered during provisioning).
    #[arg(long, default_value = "loadtest-secret")]
    pub password: String,
    /// Token created during provisioning and used in Authorize/transactions.
    #[arg(long, default_value = "LOADTEST01")]
    pub token_uid: String,
    /// Seconds of the measuring phase (storm: the longest wait for the fleet
    /// to boot again; commands: how long commands are sent).
    #[arg(long = "duration", value_name = "SECS", default_value_t = 30.0)]
    pub duration_secs: f64,
    /// Longest wait, in seconds, for every station to boot before measuring anyway.
    #[arg(long = "boot-timeout", value_name = "SECS", default_value_t = 300.0)]
    pub boot_timeout_secs: f64,
    /// Longest wait, in seconds, for one TCP connect plus handshake.
    #[arg(long = "connect-timeout", value_name = "SECS", default_value_t = 30.0)]
    pub connect_timeout_secs: f64,
    /// Seconds the server has to answer one station CALL.
    #[arg(long = "call-timeout", value_name = "SECS", default_value_t = 30.0)]
    pub call_timeout_secs: f64,
    /// Spread client sockets over 127.0.0.1..127.0.0.N (loopback servers
    /// only; 0: no binding).
    #[arg(long, default_value_t = 8)]
    pub source_addrs: u8,
    /// Most stations per process; more are spread over worker processes.
    #[arg(long, default_value_t = 15_000)]
    pub per_process: u32,
    /// The stations and the token are registered already.
    #[arg(long)]
    pub skip_provision: bool,
    /// REST registrations in flight at once.
    #[arg(long, default_value_t = 64)]
    pub provision_concurrency: usize,
    /// commands: REST commands per second across the fleet.
    #[arg(long, value_name = "PER_SEC", default_value_t = 100.0)]
    pub rate: f64,
    /// commands: send with `?wait=true` and time the HTTP answer too.
    #[arg(long)]
    pub wait: bool,
    /// commands: REST requests in flight at once, per process.
    #[arg(long, default_value_t = 512)]
    pub command_concurrency: usize,
    /// charge: seconds between meter values.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub meter_interval_secs: f64,
    /// charge: meter values per transaction.
    #[arg(long, default_value_t = 3)]
    pub meter_values: u32,
    /// Reconnect back-off minimum, ms (doubled per failed attempt).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub backoff_min_ms: u64,
    /// Reconnect back-off random range, ms (a fresh uniform draw per attempt).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub backoff_random_ms: u64,
    /// Server process whose RSS is reported (default: the one process named `voltgate`).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write an SVG latency chart here.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// heartbeat and idle: run the same scenario against the reference
    /// server too and report the throughput ratio (heartbeat) and the
    /// connect + boot rate ratio.
    #[arg(long)]
    pub compare_reference: bool,
    /// The loadtest executable to start workers and the reference server
    /// from (default: this one; tests point it at the built binary).
    #[arg(long, hide = true)]
    pub exe: Option<PathBuf>,
}

/// Seconds as a duration; negative or NaN is zero, too large is "forever".
pub fn secs(value: f64) -> Duration {
    if value.is_nan() || value <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX)
    }
}

fn share(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be between 0.0 and 1.0".into())
    }
}

impl RunArgs {
    /// The OCPP URLs of `--ws-url`.
    pub fn ws_urls(&self) -> Vec<String> {
        split_urls(&self.ws_url)
    }

    /// The REST base URLs of `--api-url`, without trailing slashes.
    pub fn api_urls(&self) -> Vec<String> {
        split_urls(&self.api_url)
    }

    /// The measuring phase.
    pub fn duration(&self) -> Duration {
        secs(self.duration_secs)
    }
    /// The longest wait for the fleet to boot.
    pub fn boot_timeout(&self) -> Duration {
        secs(self.boot_timeout_secs)
    }
    /// The longest connect plus handshake.
    pub fn connect_timeout(&self) -> Duration {
        secs(self.connect_timeout_secs)
    }
    /// How long the server has to answer a station CALL.
    pub fn call_timeout(&self) -> Duration {
        secs(self.call_timeout_secs)
    }
    /// Time between meter values.
    pub fn meter_interval(&self) -> Duration {
        secs(self.meter_interval_secs)
    }

    /// Parses `run` options from `args` (without the program name and
    /// `run`), as the command line would: what tests use.
    pub fn parse_from<I, T>(args: I) -> Result<RunArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let all = ["loadtest".into(), "run".into()]
            .into_iter()
            .chain(args.into_iter().map(Into::into));
        match Cli::try_parse_from(all)?.command {
            Command::Run(args) => Ok(*args),
            _ => unreachable!("the first word is run"),
        }
    }
}

/// A comma-separated list of URLs, trimmed, without trailing slashes.
fn split_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_nodes_are_comma_separated() {
        let args = RunArgs::parse_from([
            "--scenario",
            "commands",
            "--ws-url",
            "ws://10.0.0.5:9310/ws, ws://10.0.0.6:9310/ws/",
            "--api-url",
            "http://10.0.0.5:9410/api/v0/,http://10.0.0.6:9410/api/v0",
        ])
        .unwrap();
        assert_eq!(
            args.ws_urls(),
            ["ws://10.0.0.5:9310/ws", "ws://10.0.0.6:9310/ws"]
        );
        assert_eq!(
            args.api_urls(),
            ["http://10.0.0.5:9410/api/v0", "http://10.0.0.6:9410/api/v0"]
        );
    }

    #[test]
    fn defaults_match_a_local_voltgate() {
        let args = RunArgs::parse_from(["--scenario", "heartbeat"]).unwrap();
        assert_eq!(args.ws_url, "ws://127.0.0.1:9310/ws");
        assert_eq!(args.api_url, "http://127.0.0.1:9410/api/v0");
        assert_eq!(
            (args.stations, args.per_process, args.source_addrs),
            (100, 15_000, 8)
        );
    }

    #[test]
    fn the_last_of_a_repeated_option_wins() {
        let args =
            RunArgs::parse_from(["--scenario", "idle", "--duration", "5", "--duration", "2"])
                .unwrap();
        assert_eq!(args.duration_secs, 2.0);
    }

    #[test]
    fn share_must_be_a_fraction() {
        assert!(RunArgs::parse_from(["--scenario", "idle", "--v201-share", "1.5"]).is_err());
        let args = RunArgs::parse_from(["--scenario", "idle", "--v201-share", "0.25"]).unwrap();
        assert_eq!(args.v201_share, 0.25);
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
