//! The `voltgate` binary: parses the command line and runs the server until
//! SIGINT/SIGTERM, then shuts it down gracefully (`App::stop`).

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use voltgate::config::Cli;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::stdout().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_env("VOLTGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Cli::parse().into_config();
    raise_open_file_limit();
    // The error names its cause in its own text; no "Caused by" repetition.
    let mut app = voltgate::start(config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let served = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutdown asked");
            Ok(())
        }
        served = app.wait() => served,
    };
    app.stop().await;
    served?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT with the signal's name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Every connected station holds a socket: lift the soft open-file limit to
/// the hard one (many systems start services at 1,024), and say what it is,
/// since it bounds the fleet one node can hold.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-file limit (bounds the connected stations)"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}
