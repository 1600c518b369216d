//! A store under test and a way to reopen it (to check what survives).

use std::sync::Arc;

use tempfile::TempDir;
use voltgate::store::redb::RedbStore;
use voltgate::store::Store;

/// Where the store under test keeps its data.
enum Backend {
    /// A redb file in a temporary directory (removed when the fixture drops).
    Redb(TempDir),
}

/// The store under test.
pub struct Fixture {
    /// The open store.
    pub store: Arc<dyn Store>,
    backend: Backend,
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

    /// Closes the store and opens it again on the same data.
    pub async fn reopen(&mut self) {
        self.store.close().await;
        self.store = match &self.backend {
            Backend::Redb(dir) => open_redb(dir).await,
        };
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
