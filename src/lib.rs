//! voltgate: an OCPP-J charge station management engine.
//!
//! # Layout
//! * `config`: every setting, as a flag and a `VOLTGATE_*` env var.
//! * `api`: the REST API (actix-web): handlers, validation, error mapping, OpenAPI.
//! * `store`: domain records, one trait per aggregate, the redb backend.
//! * `ocpp`: the protocol, no I/O: frames, CALLERROR codes, schemas, actions.
//! * `station`: the pure session, the handlers, commands, and the actor per connection.
//! * `supervisor`: the sharded registry of connected stations; routes commands.
//! * `auth`: station authentication at the handshake.
//! * `pki`, `emaid`: certificate and contract-id rules the API enforces.
//!
//! [`start`] builds the whole app exactly as `main` does; tests call it with
//! [`Config::for_tests`] and talk to the listeners it bound.

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod emaid;
pub mod heap;
pub mod locations;
pub mod metrics;
pub mod ocpi;
pub mod ocpp;
pub mod pki;
pub mod station;
pub mod store;
pub mod supervisor;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use actix_web::dev::ServerHandle;

use api::auth::ApiTokens;
use auth::CertificatePolicy;
pub use config::Config;
use station::actor::Engine;
use station::actor::FinalWrites;
use station::gate::{Gate, RESERVED_FILES};
use station::handlers::Env;
use station::listener::ListenerSettings;
use station::session::Limits;
use store::redb::RedbStore;
use store::scylla::ScyllaStore;
use store::Store;
use supervisor::Registry;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] store::StoreError),
    /// The configuration would expose what must not be exposed, or is unusable.
    #[error("{0}")]
    Insecure(String),
    /// The TLS listener's certificate, key or CA could not be used.
    #[error("{0}")]
    Tls(#[from] transport::tls::TlsError),
    /// The station CA (--csms-ca-cert, --csms-ca-key) could not be loaded.
    #[error("cannot use the station CA: {0}")]
    Ca(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
}

/// Pending connections the OCPP listener lets the kernel queue.
const OCPP_ACCEPT_BACKLOG: u32 = 8192;
/// Longest a client may take to send its request head.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// A node's cluster parts.
struct Node {
    link: cluster::ClusterLink,
    /// Renews the node's lease.
    lease: tokio::task::JoinHandle<()>,
    /// Where the internal API listens.
    addr: SocketAddr,
}

/// A running voltgate: its bound addresses and the handles to stop it.
pub struct App {
    api_addr: SocketAddr,
    ocpi_addr: SocketAddr,
    outbound_thread: actix_rt::Arbiter,
    ws_addr: SocketAddr,
    wss_addr: Option<SocketAddr>,
    /// The OCPP listeners' workers (plain, then TLS).
    acceptors: Vec<station::acceptor::Acceptor>,
    /// The HTTP servers (OCPI, cluster, REST).
    servers: Vec<ServerHandle>,
    server_tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    store: Arc<dyn Store>,
    registry: Registry,
    gate: Arc<Gate>,
    final_writes: Arc<FinalWrites>,
    /// The task that carries station statuses over to the locations.
    live: tokio::task::JoinHandle<()>,
    /// This node's place in a cluster, when it is one of several.
    cluster: Option<Node>,
    /// Gives freed heap back to the OS after stations leave.
    trimmer: tokio::task::JoinHandle<()>,
    /// Longest graceful shutdown.
    drain: Duration,
}

impl App {
    /// Where the REST API listens (with the real port when 0 was asked for).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the OCPI listener listens.
    pub fn ocpi_addr(&self) -> SocketAddr {
        self.ocpi_addr
    }

    /// Where the OCPP listener listens.
    pub fn ws_addr(&self) -> SocketAddr {
        self.ws_addr
    }

    /// Where the cluster's internal API listens, on a node of a cluster.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.cluster.as_ref().map(|node| node.addr)
    }

    /// Where the OCPP TLS listener listens, when there is one.
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.wss_addr
    }

    /// The store the app runs on.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Resolves if a listener stops on its own (it does not, short of a
    /// fatal error); `main` races it against SIGINT/SIGTERM.
    pub async fn wait(&mut self) -> std::io::Result<()> {
        if self.server_tasks.is_empty() {
            return Ok(());
        }
        let (result, index, _) =
            futures_util::future::select_all(self.server_tasks.iter_mut()).await;
        // A finished task's handle must not be awaited again (by `stop`).
        drop(self.server_tasks.swap_remove(index));
        result.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Shuts down gracefully, within the drain time: stops accepting,
    /// closes every station socket with 1012 (Service Restart, so stations
    /// reconnect elsewhere), lets REST requests in flight finish, then
    /// closes the store (every acknowledged write is already durable; this
    /// releases the file or the cluster session).
    pub async fn stop(self) {
        let drain = self.drain;
        // Handshakes already past the accept loop are refused from here on,
        // so no station registers after everyone was told to go.
        self.gate.close();
        for acceptor in &self.acceptors {
            acceptor.pause();
        }
        for server in &self.servers {
            server.pause().await;
        }
        let told = self.registry.close_all().await;
        tracing::info!(
            stations = told,
            drain_secs = drain.as_secs(),
            "shutting down"
        );
        let graceful = async {
            for acceptor in &self.acceptors {
                acceptor.drained().await;
            }
            for server in &self.servers {
                server.stop(true).await;
            }
        };
        if tokio::time::timeout(drain, graceful).await.is_err() {
            let left: usize = self.acceptors.iter().map(|a| a.open()).sum();
            tracing::warn!(
                station_sockets = left,
                "drain time over: closing what is left"
            );
            for server in &self.servers {
                server.stop(false).await;
            }
        }
        // Stopping the workers drops the station sockets still open after
        // the drain time: their actors stop there and begin their last
        // writes (on this runtime), which the wait below covers.
        for acceptor in self.acceptors {
            acceptor.stop().await;
        }
        let finished = futures_util::future::join_all(self.server_tasks);
        if tokio::time::timeout(Duration::from_secs(5), finished)
            .await
            .is_err()
        {
            tracing::warn!("listener tasks did not end after the forced stop");
        }
        // The last runtime state of each closed station, then the store.
        if tokio::time::timeout(drain, self.final_writes.settled())
            .await
            .is_err()
        {
            tracing::warn!("drain time over: some stations' last state was not stored");
        }
        // Statuses reported by the closed connections are not applied once
        // the store closes; stations report them again when they reconnect.
        self.live.abort();
        self.trimmer.abort();
        if let Some(node) = &self.cluster {
            node.lease.abort();
            cluster::lease::leave(&node.link).await;
        }
        self.outbound_thread.stop();
        self.store.close().await;
        tracing::info!("stopped");
    }
}

/// Opens the store and starts the listeners. Must run inside an actix system
/// (`#[actix_web::main]`, `#[actix_web::test]`).
pub async fn start(config: Config) -> Result<App, StartError> {
    // The start's state machine is large (every listener, the store, the
    // OCPI and cluster parts): kept on the heap, so that a caller's stack
    // (a test starting two servers in one future) does not carry it.
    Box::pin(start_app(config)).await
}

async fn start_app(config: Config) -> Result<App, StartError> {
    // Settings that cannot work stop the start before anything is opened.
    let tokens =
        ApiTokens::load(&config.api_auth, config.api_listen).map_err(StartError::Insecure)?;
    let tls = match config.transport.wss_listen {
        Some(addr) => Some((addr, transport::tls::server_config(&config.transport)?)),
        None => None,
    };
    let ca = station_ca(&config)?;
    let payment_types =
        locations::PaymentTypes::configured(&config.payment_types).map_err(StartError::Insecure)?;
    config.ocpi.check().map_err(StartError::Insecure)?;
    let node = config
        .cluster
        .node(config.scylla.uri.is_some(), config.ws_listen.port())
        .map_err(StartError::Insecure)?;
    // Install the recorder before anything records.
    crate::metrics::prometheus();
    let store = open_store(&config).await?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (outbound, outbound_thread) = ocpi::outbound::Outbound::start();
    let registry = Registry::new(threads * 16);
    let link = node
        .clone()
        .map(|node| cluster::ClusterLink::new(node, store.clone(), outbound.clone()));
    let registry = match &link {
        Some(link) => registry.with_peers(Arc::new(link.clone())),
        None => registry,
    };
    let registry_handle = registry.clone();
    let statuses = Arc::new(station::evse_status::StatusBoard::default());
    let unknown_after = Duration::from_secs(
        u64::from(config.heartbeat_interval_secs) + config.evse_unknown_margin_secs,
    );
    let (ocpi_bound, ocpi_addr) =
        ocpi::server::bind(config.ocpi.listen, config.api_workers.unwrap_or(1)).map_err(
            |source| StartError::Bind {
                addr: config.ocpi.listen,
                source,
            },
        )?;
    let identity = Arc::new(ocpi_identity(&config.ocpi, ocpi_addr));
    let pusher = Arc::new(ocpi::pusher::Pusher::new(
        store.clone(),
        identity.clone(),
        outbound.clone(),
        config.ocpi.push_queue_max,
    ));
    let located = locations::Locations::new(store.clone())
        .accepting(payment_types)
        .feeding(pusher.clone());
    let trimmer = tokio::spawn(heap::trim_after_churn());
    let live = tokio::spawn(locations::live::run(
        statuses.clone(),
        located.clone(),
        registry.clone(),
        unknown_after,
    ));
    let authorizations = Arc::new(ocpi::sessions::authorizations::Authorizations::default());
    let realtime_auth = Arc::new(ocpi::authorize::RealtimeAuth::new(
        store.clone(),
        outbound.clone(),
        Duration::from_millis(config.ocpi.realtime_auth_timeout_ms.max(1)),
        authorizations.clone(),
        identity.clone(),
    ));
    let sessions = Arc::new(ocpi::sessions::tracker::SessionTracker::new(
        store.clone(),
        (*pusher).clone(),
        ocpi::sessions::tracker::SessionSettings {
            identity: identity.clone(),
            currency: config.ocpi.currency.clone(),
            update_every: Duration::from_secs(config.ocpi.session_update_secs),
        },
        authorizations.clone(),
    ));
    let engine = engine(
        &config,
        store.clone(),
        registry.clone(),
        ca,
        statuses,
        Followers {
            remote_auth: realtime_auth,
            transactions: sessions,
        },
    );
    let final_writes = engine.final_writes.clone();
    let gate = Arc::new(gate(&config));
    let gate_handle = gate.clone();
    let (mut ws_acceptor, ws_addr) = serve_ocpp(
        &config,
        config.ws_listen,
        engine.clone(),
        gate.clone(),
        None,
    )
    .map_err(|source| StartError::Bind {
        addr: config.ws_listen,
        source,
    })?;
    let mut servers = Vec::new();
    let mut server_tasks = vec![tokio::spawn(ws_acceptor.failure())];
    let mut acceptors = vec![ws_acceptor];
    let wss_addr = match tls {
        None => None,
        Some((addr, tls)) => {
            let (mut acceptor, bound) = serve_ocpp(&config, addr, engine, gate, Some(tls))
                .map_err(|source| StartError::Bind { addr, source })?;
            server_tasks.push(tokio::spawn(acceptor.failure()));
            acceptors.push(acceptor);
            Some(bound)
        }
    };
    let commands = ocpi::commands::Commands::new(
        store.clone(),
        registry.clone(),
        outbound.clone(),
        Duration::from_secs(config.call_timeout_secs.max(1) + 5),
        config.ocpi.call_timeout(),
        authorizations,
    );
    let registrar = ocpi::Registrar::new(store.clone(), identity, outbound);
    let ocpi_server = ocpi_bound
        .serve(registrar.clone(), commands)
        .map_err(|source| StartError::Bind {
            addr: config.ocpi.listen,
            source,
        })?;
    servers.push(ocpi_server.handle());
    server_tasks.push(tokio::spawn(ocpi_server));
    let cluster = match (&link, &node) {
        (Some(link), Some(node)) => {
            let (server, bound) = cluster::server::serve(
                node.listen,
                registry.clone(),
                link.clone(),
                store.clone(),
                &node.token,
                &node.node_id,
            )
            .map_err(|source| StartError::Bind {
                addr: node.listen,
                source,
            })?;
            servers.push(server.handle());
            server_tasks.push(tokio::spawn(server));
            let lease = tokio::spawn(cluster::lease::renew(
                link.clone(),
                registry.clone(),
                chrono::Utc::now(),
            ));
            tracing::info!(node_id = %node.node_id, cluster_addr = %bound, "running as a node of a cluster");
            Some(Node {
                link: link.clone(),
                lease,
                addr: bound,
            })
        }
        _ => None,
    };
    registrar.resume_all().await;
    pusher.resume_all().await;
    let (api_server, api_addr) =
        api::serve(&config, store.clone(), registry, tokens, located, registrar).map_err(
            |source| StartError::Bind {
                addr: config.api_listen,
                source,
            },
        )?;
    servers.push(api_server.handle());
    server_tasks.push(tokio::spawn(api_server));
    tracing::info!(%api_addr, %ws_addr, ?wss_addr, %ocpi_addr, backend = store.backend(), "voltgate listening");
    Ok(App {
        api_addr,
        ocpi_addr,
        outbound_thread,
        ws_addr,
        wss_addr,
        acceptors,
        servers,
        server_tasks,
        store,
        registry: registry_handle,
        gate: gate_handle,
        final_writes,
        live,
        cluster,
        trimmer,
        drain: Duration::from_secs(config.limits.shutdown_drain_secs),
    })
}

/// Who voltgate is towards OCPI partners; the base URL defaults to the
/// bound listener.
fn ocpi_identity(settings: &ocpi::OcpiSettings, bound: SocketAddr) -> ocpi::credentials::Identity {
    let base = settings
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    ocpi::credentials::Identity {
        base_url: base.trim_end_matches('/').to_owned(),
        country_code: settings.country_code.clone(),
        party_id: settings.party_id.clone(),
        business_name: settings.business_name.clone(),
        call_timeout: settings.call_timeout(),
    }
}

/// The ScyllaDB store when --scylla-uri is given, else the embedded one.
async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    if config.scylla.uri.is_some() {
        let store = ScyllaStore::connect(&config.scylla).await?;
        return Ok(Arc::new(store));
    }
    let data_dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || RedbStore::open(&data_dir))
        .await
        .map_err(|e| store::StoreError::Backend(format!("store open task failed: {e}")))??;
    Ok(Arc::new(store))
}

/// The CA that signs stations' CSRs: both flags or neither.
fn station_ca(config: &Config) -> Result<Option<Arc<pki::ca::StationCa>>, StartError> {
    match (&config.csms_ca_cert, &config.csms_ca_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let ca = pki::ca::StationCa::load(cert, key, config.transport.tls_allowed_orgs.clone())
                .map_err(StartError::Ca)?;
            Ok(Some(Arc::new(ca)))
        }
        _ => Err(StartError::Ca(
            "--csms-ca-cert and --csms-ca-key go together".into(),
        )),
    }
}

/// The OCPI side the station handlers talk to.
struct Followers {
    /// Real-time authorization at eMSPs.
    remote_auth: Arc<dyn station::remote_auth::RemoteAuthorizer>,
    /// Sessions and CDRs of eMSPs' tokens.
    transactions: Arc<dyn station::transaction_feed::TransactionFeed>,
}

fn engine(
    config: &Config,
    store: Arc<dyn Store>,
    registry: Registry,
    ca: Option<Arc<pki::ca::StationCa>>,
    statuses: Arc<station::evse_status::StatusBoard>,
    followers: Followers,
) -> Arc<Engine> {
    for version in [ocpp::Version::V16, ocpp::Version::V201] {
        ocpp::schema::warm_up(version, ocpp::actions::handled(version).iter().copied());
    }
    let env = Env {
        store,
        heartbeat_interval_secs: config.heartbeat_interval_secs,
        pending_boot_interval_secs: config.pending_boot_interval_secs,
        ca,
        statuses,
        remote_auth: Some(followers.remote_auth),
        transactions: Some(followers.transactions),
    };
    let limits = Limits {
        call_timeout: Duration::from_secs(config.call_timeout_secs.max(1)),
        max_message_bytes: config.ocpp_max_message_bytes,
        ..Limits::default()
    };
    let mut engine = Engine::new(
        Arc::new(env),
        Arc::new(registry),
        limits,
        config.idle_timeout(),
        config.ws_max_frame_bytes,
    );
    engine.max_unread_bytes = config.limits.max_unread_bytes;
    Arc::new(engine)
}

/// The admission gate of the OCPP listeners.
fn gate(config: &Config) -> Gate {
    let policy = CertificatePolicy {
        require_name_match: config.transport.tls_require_cn_match,
        allowed_organizations: config.transport.tls_allowed_orgs.clone(),
    };
    let max_stations = config.limits.max_stations.unwrap_or_else(|| {
        // What the open-file limit leaves (main has lifted the soft limit):
        // a tenth of it, at most RESERVED_FILES, stays for the store, the
        // REST API and handshakes in progress.
        let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1_024, |(soft, _)| soft);
        let files = usize::try_from(files).unwrap_or(usize::MAX);
        files
            .saturating_sub((files / 10).min(RESERVED_FILES))
            .max(1)
    });
    if max_stations < 1_000 {
        tracing::warn!(
            max_stations,
            "this node may hold few stations: raise the open-file limit (ulimit -Hn, LimitNOFILE=)"
        );
    } else {
        tracing::info!(max_stations, "station cap of this node");
    }
    Gate::new(
        config.transport.trust_proxy.clone(),
        policy,
        &config.limits,
        max_stations,
    )
}

/// Binds an OCPP listener: plain, or TLS with `tls`.
fn serve_ocpp(
    config: &Config,
    addr: SocketAddr,
    engine: Arc<Engine>,
    gate: Arc<Gate>,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<(station::acceptor::Acceptor, SocketAddr)> {
    let settings = ListenerSettings {
        backlog: OCPP_ACCEPT_BACKLOG,
        head_timeout: REQUEST_HEAD_TIMEOUT,
        tls_timeout: TLS_HANDSHAKE_TIMEOUT,
        workers: config.ws_workers,
    };
    station::listener::serve(addr, &settings, engine, gate, tls)
}
