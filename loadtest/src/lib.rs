//! loadtest: load for voltgate, end to end. A fleet of simulated OCPP-J
//! charge stations (1.6 and 2.0.1) connects over real WebSockets, boots,
//! and runs a scenario (idle, heartbeat, charge, commands, storm) while the
//! harness measures throughput, latencies, errors and the server's memory.
//!
//! # Layout
//! * `cli`: the command line; [`RunArgs`] is also the run's configuration.
//! * `run`: the coordinator: provision, start, boot, measure, merge, report.
//! * `provision`: registering stations and the token over REST.
//! * `plan`: station ids, versions, and the cut into processes.
//! * `fleet`: the stations of one process, their phase, their result.
//! * `station`: one station: pure protocol `machine` and `messages`, the
//!   WebSocket `link`, the `task` that drives it.
//! * `commands`: the REST command driver of the commands scenario.
//! * `worker`: fleets spread over processes (JSON lines over pipes).
//! * `stats`, `histogram`: counters, sharded HdrHistograms, mergeable results.
//! * `report`, `chart`, `progress`: what the user sees.
//! * `rss`: the server's memory from `/proc`.
//! * `reference`: the minimal OCPP-J responder used as a throughput floor.
//!
//! Tests and `main` go through the same entry: [`run()`] with [`RunArgs`].

pub mod chart;
pub mod cli;
pub mod commands;
pub mod fleet;
pub mod histogram;
pub mod ocpi_status;
pub mod places;
pub mod plan;
pub mod progress;
pub mod provision;
pub mod reference;
pub mod report;
pub mod rss;
pub mod run;
pub mod station;
pub mod stats;
pub mod worker;

pub use cli::{Cli, Command, RunArgs, Scenario};
pub use report::Report;
pub use run::run;

/// Raises the open-files soft limit to the hard limit: every station is a
/// socket, and the default soft limit (often 1024) is far below a fleet.
pub fn raise_open_files_limit() {
    // Failing leaves the old limit; connection errors will then say why.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}
