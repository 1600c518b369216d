//! The `voltgate` binary: parses the command line and runs the server until
//! SIGINT/SIGTERM, then closes the store.

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
    // actix-web stops the listener gracefully on SIGINT/SIGTERM.
    let served = app.wait().await;
    app.store().close().await;
    served?;
    Ok(())
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
