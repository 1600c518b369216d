//! voltgate: an OCPP-J charge station management engine.
//!
//! # Layout
//! * `config`: every setting, as a flag and a `VOLTGATE_*` env var.
//! * `api`: the REST API (actix-web): handlers, validation, error mapping, OpenAPI.
//! * `store`: domain records, one trait per aggregate, the redb backend.
//! * `ocpp`: the protocol, no I/O (the official JSON schemas so far).
//! * `pki`, `emaid`: certificate and contract-id rules the API enforces.
//!
//! [`start`] builds the whole app exactly as `main` does; tests call it with
//! [`Config::for_tests`] and talk to the listeners it bound.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod emaid;
pub mod metrics;
pub mod ocpp;
pub mod pki;
pub mod station;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::ServerHandle;

pub use config::Config;
use store::redb::RedbStore;
use store::Store;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] store::StoreError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The configuration asks for something this build cannot do.
    #[error("{0}")]
    Unsupported(String),
}

/// A running voltgate: its bound addresses and the handles to stop it.
pub struct App {
    api_addr: SocketAddr,
    server: ServerHandle,
    server_task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Arc<dyn Store>,
}

impl App {
    /// Where the REST API listens (with the real port when 0 was asked for).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The store the app runs on.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Resolves when the server stops by itself (or on a signal, in `main`).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match (&mut self.server_task).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Stops accepting, lets in-flight requests finish, then closes the store
    /// (every acknowledged write is already on disk; this releases the file).
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.server_task.await;
        self.store.close().await;
    }
}

/// Opens the store and starts the listeners. Must run inside an actix system
/// (`#[actix_web::main]`, `#[actix_web::test]`).
pub async fn start(config: Config) -> Result<App, StartError> {
    if let Some(uri) = &config.scylla_uri {
        return Err(StartError::Unsupported(format!(
            "--scylla-uri {} was given, but the ScyllaDB backend is not built yet; \
             omit it to use the embedded store in --data-dir",
            uri.join(",")
        )));
    }
    let data_dir = config.data_dir.clone();
    let store: Arc<dyn Store> = Arc::new(
        tokio::task::spawn_blocking(move || RedbStore::open(&data_dir))
            .await
            .map_err(|e| store::StoreError::Backend(format!("store open task failed: {e}")))??,
    );
    let (server, api_addr) =
        api::serve(&config, store.clone()).map_err(|source| StartError::Bind {
            addr: config.api_listen,
            source,
        })?;
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(%api_addr, backend = store.backend(), "voltgate REST API listening");
    Ok(App {
        api_addr,
        server: handle,
        server_task,
        store,
    })
}
