//! Every setting of voltgate, each a command-line flag and a `VOLTGATE_*`
//! environment variable (the flag wins), with the defaults of DESIGN.md.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// (The station engine is not built yet: nothing listens here so far.)
    #[arg(long, env = "VOLTGATE_WS_LISTEN", default_value = "0.0.0.0:9310")]
    pub ws_listen: SocketAddr,

    /// Address of the REST API listener (/api/v0, /health). Keep it on the operator's network.
    #[arg(long, env = "VOLTGATE_API_LISTEN", default_value = "127.0.0.1:9410")]
    pub api_listen: SocketAddr,

    /// Directory of the embedded store (created when missing); one file, voltgate.redb.
    #[arg(long, env = "VOLTGATE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// ScyllaDB contact points, host:port[,host:port]; switches the store to ScyllaDB.
    /// (The ScyllaDB backend is not built yet: giving this flag stops with an error.)
    #[arg(long, env = "VOLTGATE_SCYLLA_URI", value_delimiter = ',')]
    pub scylla_uri: Option<Vec<String>>,

    /// ScyllaDB keyspace (with --scylla-uri).
    #[arg(long, env = "VOLTGATE_SCYLLA_KEYSPACE", default_value = "voltgate")]
    pub scylla_keyspace: String,

    /// Largest REST request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "VOLTGATE_API_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub api_max_body_bytes: usize,

    /// Worker threads of the REST listener (default: one per CPU core).
    #[arg(long, env = "VOLTGATE_API_WORKERS")]
    pub api_workers: Option<usize>,
}

impl Config {
    /// Settings for tests: loopback listeners on free ports, data in `data_dir`,
    /// one REST worker.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            ws_listen: ([127, 0, 0, 1], 0).into(),
            api_listen: ([127, 0, 0, 1], 0).into(),
            data_dir: data_dir.into(),
            scylla_uri: None,
            scylla_keyspace: "voltgate".into(),
            api_max_body_bytes: 1024 * 1024,
            api_workers: Some(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design() {
        let config = Cli::parse_from(["voltgate"]).into_config();
        assert_eq!(config.ws_listen.to_string(), "0.0.0.0:9310");
        assert_eq!(config.api_listen.to_string(), "127.0.0.1:9410");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.scylla_uri, None);
    }

    #[test]
    fn serve_subcommand_takes_the_same_flags() {
        let config = Cli::parse_from([
            "voltgate",
            "serve",
            "--api-listen",
            "127.0.0.1:1",
            "--scylla-uri",
            "a:9042,b:9042",
        ])
        .into_config();
        assert_eq!(config.api_listen.to_string(), "127.0.0.1:1");
        assert_eq!(
            config.scylla_uri,
            Some(vec!["a:9042".to_owned(), "b:9042".to_owned()])
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
