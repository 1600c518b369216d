//! A store under test and a way to reopen it (to check what survives).
//!
//! ScyllaDB fixtures need a node: `VOLTGATE_SCYLLA_URI=host:port[,host:port]`.
//! Each case gets a fresh keyspace, dropped when the case ends (pass or fail).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tempfile::TempDir;
use voltgate::store::redb::RedbStore;
use voltgate::store::scylla::{ScyllaSettings, ScyllaStore};
use voltgate::store::Store;

/// The variable naming the ScyllaDB (or Cassandra) node for these tests.
pub const SCYLLA_URI_VAR: &str = "VOLTGATE_SCYLLA_URI";

/// Where the store under test keeps its data.
enum Backend {
    /// A redb file in a temporary directory (removed when the fixture drops).
    Redb(TempDir),
    /// A keyspace of its own on the cluster, and the open store on it.
    Scylla(ScyllaSettings, Arc<ScyllaStore>),
}

/// The store under test.
pub struct Fixture {
    /// The open store.
    pub store: Arc<dyn Store>,
    backend: Backend,
}

/// Drops a fixture's keyspace after its case, whatever the case did.
pub struct Cleanup(Option<Arc<ScyllaStore>>);

impl Cleanup {
    pub async fn run(self) {
        if let Some(store) = self.0 {
            let _schema = schema_lock().lock().await;
            if let Err(e) = store.drop_keyspace().await {
                eprintln!("could not drop keyspace {}: {e}", store.keyspace());
            }
        }
    }
}

impl Fixture {
    /// A redb store in a fresh temporary directory.
    pub async fn redb() -> Result<Fixture, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = open_redb(&dir).await;
        Ok(Fixture {
            store,
            backend: Backend::Redb(dir),
        })
    }

    /// A ScyllaDB store in a fresh keyspace, or why there is none.
    pub async fn scylla() -> Result<Fixture, String> {
        let settings = scylla_settings()?;
        let store = open_scylla(&settings).await;
        Ok(Fixture {
            store: store.clone(),
            backend: Backend::Scylla(settings, store),
        })
    }

    /// What to do once the case is over.
    pub fn cleanup(&self) -> Cleanup {
        match &self.backend {
            Backend::Redb(_) => Cleanup(None),
            Backend::Scylla(_, store) => Cleanup(Some(store.clone())),
        }
    }

    /// Closes the store and opens it again on the same data.
    pub async fn reopen(&mut self) {
        self.store.close().await;
        match &mut self.backend {
            Backend::Redb(dir) => self.store = open_redb(dir).await,
            Backend::Scylla(settings, handle) => {
                *handle = open_scylla(settings).await;
                self.store = handle.clone();
            }
        }
    }
}

async fn open_redb(dir: &TempDir) -> Arc<dyn Store> {
    let path = dir.path().to_owned();
    let store = tokio::task::spawn_blocking(move || RedbStore::open(&path))
        .await
        .expect("open task")
        .expect("redb store opens");
    Arc::new(store)
}

/// Settings for a fresh keyspace on the configured node.
pub fn scylla_settings() -> Result<ScyllaSettings, String> {
    let uri = std::env::var(SCYLLA_URI_VAR)
        .map_err(|_| format!("{SCYLLA_URI_VAR} is not set: ScyllaDB cases not run"))?;
    static RUN: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let keyspace = format!(
        "vg_test_{}_{}_{nanos}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    let nodes = uri.split(',').map(str::to_owned).collect();
    let mut settings = ScyllaSettings::new(nodes, keyspace);
    // A shared test node may be slow to apply schema; requests get room.
    settings.request_timeout_ms = 20_000;
    Ok(settings)
}

/// Schema changes one at a time: concurrent DDL from parallel cases can
/// leave the node's schema in disagreement.
fn schema_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

async fn open_scylla(settings: &ScyllaSettings) -> Arc<ScyllaStore> {
    let _schema = schema_lock().lock().await;
    let store = ScyllaStore::connect(settings)
        .await
        .unwrap_or_else(|e| panic!("ScyllaDB store opens at {:?}: {e}", settings.uri));
    Arc::new(store)
}
