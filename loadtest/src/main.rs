//! `loadtest`: parses the command line and runs the subcommand; `run`
//! prints the report and writes the JSON and the chart when asked.

use anyhow::Context;
use clap::Parser;

use loadtest::{chart, reference, worker, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loadtest::raise_open_files_limit();
    match Cli::parse().command {
        Command::Run(args) => {
            let (report_path, chart_path) = (args.report.clone(), args.chart.clone());
            let report = loadtest::run(*args).await?;
            print!("{report}");
            if let Some(path) = report_path {
                let json = serde_json::to_string_pretty(&report)?;
                std::fs::write(&path, json + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("report written to {}", path.display());
            }
            if let Some(path) = chart_path {
                chart::write_svg(&path, &report)?;
                println!("chart written to {}", path.display());
            }
            Ok(())
        }
        Command::ReferenceServer { listen } => {
            let listener =
                reference::bind(listen).with_context(|| format!("listening on {listen}"))?;
            eprintln!(
                "reference server listening on ws://{}/ws",
                listener.local_addr()?
            );
            tokio::select! {
                served = reference::serve(listener) => Ok(served?),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Locations(args) => loadtest::places::run(args).await,
        Command::OcpiStatus(args) => loadtest::ocpi_status::run(args).await,
        Command::Worker { spec } => worker::main(&spec).await,
    }
}
