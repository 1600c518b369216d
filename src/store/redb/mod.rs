//! The embedded store: one redb file under `--data-dir`.
//!
//! Writes go through one writer thread that batches whatever is queued into a
//! single transaction and commits it with `Durability::Immediate` (fsync):
//! each write is durable before its caller hears back, and concurrent callers
//! share the cost of one fsync (group commit). Reads run on tokio's blocking
//! pool against MVCC snapshots, so they never wait for the writer and never
//! block an actix worker.
//!
//! Records are stored as JSON values under typed redb keys; keys that start
//! with the station id keep a station's rows together for prefix scans.

mod catalog;
mod commands;
mod legacy;
mod locations;
mod objects;
mod partners;
mod pushes;
mod stations;
mod transactions;
mod variables;

use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::{timed, Page, Store, StoreError, StoreResult};

/// File name of the database inside the data directory.
pub const FILE_NAME: &str = "voltgate.redb";
/// The backend's name (metrics, logs).
const BACKEND: &str = "redb";

/// Writes queued for the writer thread before callers wait for room.
const WRITE_QUEUE_CAPACITY: usize = 4096;
/// 10 ms steps `close` waits for running reads to let go of the file.
const CLOSE_WAIT_STEPS: u32 = 500;
/// Most writes committed together in one transaction.
const MAX_WRITES_PER_COMMIT: usize = 512;

type Bytes = &'static [u8];
/// A table keyed by one string, holding JSON records.
pub(crate) type KeyedTable = TableDefinition<'static, &'static str, Bytes>;

pub(crate) const STATIONS: TableDefinition<&str, Bytes> = TableDefinition::new("stations");
pub(crate) const RUNTIME: TableDefinition<&str, Bytes> = TableDefinition::new("station_runtime");
pub(crate) const TOKENS: TableDefinition<&str, Bytes> = TableDefinition::new("tokens");
pub(crate) const CERTIFICATES: TableDefinition<&str, Bytes> = TableDefinition::new("certificates");
pub(crate) const LOCATIONS: TableDefinition<&str, Bytes> = TableDefinition::new("locations");
pub(crate) const OCPI_PARTIES: TableDefinition<&str, Bytes> = TableDefinition::new("ocpi_parties");
pub(crate) const TRANSACTIONS: TableDefinition<(&str, &str), Bytes> =
    TableDefinition::new("transactions");
/// (station, transaction, seq_no) of every event applied: makes retries idempotent.
pub(crate) const TRANSACTION_EVENTS: TableDefinition<(&str, &str, u64), u8> =
    TableDefinition::new("transaction_events");
/// (station, command id) → command record.
pub(crate) const COMMANDS: TableDefinition<(&str, &str), Bytes> =
    TableDefinition::new("station_commands");
/// (station, command id) of every pending command: the station's outbox.
pub(crate) const OUTBOX: TableDefinition<(&str, &str), u8> = TableDefinition::new("station_outbox");
/// (station, key) → what the station reported for that key.
pub(crate) const VARIABLES: TableDefinition<(&str, &str), Bytes> =
    TableDefinition::new("station_variables");
/// `active_key(station, transaction)` of every running transaction.
pub(crate) const ACTIVE_TRANSACTIONS: TableDefinition<&str, Bytes> =
    TableDefinition::new("active_transactions");
/// Batch id → batch record.
pub(crate) const BATCHES: TableDefinition<&str, Bytes> = TableDefinition::new("command_batches");
/// (batch id, station) → the station's command id.
pub(crate) const BATCH_MEMBERS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("batch_members");
/// Named counters (the 1.6 transaction id).
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// (station, transaction, seq_no, index within the event) → meter value.
pub(crate) const METER_VALUES: TableDefinition<(&str, &str, u64, u32), Bytes> =
    TableDefinition::new("meter_values");

/// A write waiting for the writer thread.
trait WriteJob: Send {
    /// Runs the write inside the shared transaction. An `Err` aborts the whole batch.
    fn apply(&mut self, txn: &WriteTransaction) -> StoreResult<()>;
    /// Tells the caller how it ended: `committed` is the batch's commit result.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Job<T, F> {
    op: Option<F>,
    outcome: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send,
{
    fn apply(&mut self, txn: &WriteTransaction) -> StoreResult<()> {
        let Some(op) = self.op.take() else {
            return Ok(());
        };
        // A domain outcome (NotFound) is this caller's answer and leaves the
        // batch alone; ops check before they write, so it leaves no partial
        // write behind. A backend failure dooms the transaction.
        match catch_unwind(AssertUnwindSafe(|| op(txn))) {
            Ok(Err(e)) if e.is_backend() => Err(e),
            Ok(outcome) => {
                self.outcome = Some(outcome);
                Ok(())
            }
            Err(_) => Err(StoreError::Backend("write operation panicked".into())),
        }
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let result = match committed {
            Ok(()) => self
                .outcome
                .unwrap_or_else(|| Err(StoreError::Backend("write was not applied".into()))),
            Err(reason) => Err(StoreError::Backend(reason)),
        };
        // The caller may have gone away (request cancelled); the write stands.
        let _ = self.reply.send(result);
    }
}

/// The redb-backed [`Store`].
pub struct RedbStore {
    /// `None` once closed. Reads hold a clone only while they run.
    db: Mutex<Option<Arc<Database>>>,
    writes: Mutex<Option<mpsc::Sender<Box<dyn WriteJob>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RedbStore {
    /// Opens (or creates) `voltgate.redb` in `data_dir`, creating the directory
    /// and every table, and starts the writer thread.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(FILE_NAME);
        let db = Database::create(&path)
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        create_tables(&db)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || run_writer(&writer_db, rx))
            .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
        Ok(RedbStore {
            db: Mutex::new(Some(db)),
            writes: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Runs `op` in the next write transaction and returns its outcome once
    /// committed. `operation` names it for metrics.
    async fn write<T, F>(&self, operation: &'static str, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        timed(BACKEND, operation, async move {
            let sender = self
                .writes
                .lock()
                .map_err(|_| StoreError::Unavailable("writer lock poisoned"))?
                .clone()
                .ok_or(StoreError::Unavailable("store is closed"))?;
            let (reply, answer) = oneshot::channel();
            let job: Box<dyn WriteJob> = Box::new(Job {
                op: Some(op),
                outcome: None,
                reply,
            });
            sender
                .send(job)
                .await
                .map_err(|_| StoreError::Unavailable("writer stopped"))?;
            answer
                .await
                .map_err(|_| StoreError::Unavailable("writer stopped"))?
        })
        .await
    }

    /// The open database, for a read; Unavailable once the store is closed.
    fn database(&self) -> StoreResult<Arc<Database>> {
        self.db
            .lock()
            .map_err(|_| StoreError::Unavailable("store lock poisoned"))?
            .clone()
            .ok_or(StoreError::Unavailable("store is closed"))
    }

    /// Runs `op`, a lookup of one key or one station's few rows, against a
    /// snapshot on the calling thread. Such a read touches a few pages that
    /// redb's cache or the OS's hold: microseconds, where a hop to the
    /// blocking pool and back costs two thread wake-ups, and those hops were
    /// the largest part of a station's connect and boot (benches/README,
    /// "Idle stations against the raw responder"). Scans use [`Self::read`].
    async fn read_point<T, F>(&self, operation: &'static str, op: F) -> StoreResult<T>
    where
        F: FnOnce(&ReadTransaction) -> StoreResult<T>,
    {
        timed(BACKEND, operation, async move {
            let db = self.database()?;
            let txn = db.begin_read().map_err(backend)?;
            op(&txn)
        })
        .await
    }

    /// Runs `op` against a snapshot on the blocking pool. `operation` names
    /// it for metrics.
    async fn read<T, F>(&self, operation: &'static str, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> StoreResult<T> + Send + 'static,
    {
        timed(BACKEND, operation, async move {
            let db = self.database()?;
            tokio::task::spawn_blocking(move || {
                let txn = db.begin_read().map_err(backend)?;
                op(&txn)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
        })
        .await
    }
}

fn create_tables(db: &Database) -> StoreResult<()> {
    let txn = db.begin_write().map_err(backend)?;
    txn.open_table(STATIONS).map_err(backend)?;
    txn.open_table(RUNTIME).map_err(backend)?;
    txn.open_table(TOKENS).map_err(backend)?;
    txn.open_table(CERTIFICATES).map_err(backend)?;
    txn.open_table(LOCATIONS).map_err(backend)?;
    txn.open_table(OCPI_PARTIES).map_err(backend)?;
    txn.open_table(TRANSACTIONS).map_err(backend)?;
    txn.open_table(TRANSACTION_EVENTS).map_err(backend)?;
    txn.open_table(METER_VALUES).map_err(backend)?;
    txn.open_table(COUNTERS).map_err(backend)?;
    txn.open_table(COMMANDS).map_err(backend)?;
    txn.open_table(OUTBOX).map_err(backend)?;
    txn.open_table(BATCHES).map_err(backend)?;
    txn.open_table(VARIABLES).map_err(backend)?;
    txn.open_table(ACTIVE_TRANSACTIONS).map_err(backend)?;
    txn.open_table(BATCH_MEMBERS).map_err(backend)?;
    txn.open_table(locations::LOCATIONS_BY_UPDATED)
        .map_err(backend)?;
    txn.open_table(locations::EVSE_LINKS).map_err(backend)?;
    txn.open_table(locations::LOCATION_CELLS).map_err(backend)?;
    txn.open_table(locations::PROVINCE_CITIES)
        .map_err(backend)?;
    txn.open_table(locations::TEMPLATES).map_err(backend)?;
    txn.open_table(locations::PUBLISHED_BY_UPDATED)
        .map_err(backend)?;
    txn.open_table(partners::OCPI_PARTNERS).map_err(backend)?;
    txn.open_table(pushes::OCPI_PUSHES).map_err(backend)?;
    txn.open_table(pushes::OCPI_PUSH_OBJECTS).map_err(backend)?;
    txn.open_table(objects::OCPI_OBJECTS).map_err(backend)?;
    txn.open_table(objects::OCPI_OBJECTS_UPDATED)
        .map_err(backend)?;
    txn.open_table(partners::OCPI_PARTNER_TOKENS)
        .map_err(backend)?;
    let converted = partners::convert_parties(&txn)?;
    if converted > 0 {
        tracing::info!(
            partners = converted,
            "OCPI parties of an older file converted into partners"
        );
    }
    let indexed = locations::index_existing(&txn)?;
    if indexed > 0 {
        tracing::info!(
            locations = indexed,
            "locations of an older file indexed by last_updated"
        );
    }
    let converted = legacy::convert(&txn)?;
    if converted > 0 {
        tracing::info!(
            commands = converted,
            "queued work of an older file converted into commands"
        );
    }
    txn.commit().map_err(backend)
}

fn run_writer(db: &Database, mut queue: mpsc::Receiver<Box<dyn WriteJob>>) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_WRITES_PER_COMMIT);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_WRITES_PER_COMMIT {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_batch(db, &mut batch);
        if let Err(reason) = &committed {
            tracing::error!(%reason, writes = batch.len(), "store write batch failed");
        }
        for job in batch.drain(..) {
            job.finish(committed.clone());
        }
    }
}

fn commit_batch(db: &Database, batch: &mut [Box<dyn WriteJob>]) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    // The default, stated because the API's promise rests on it: fsync before
    // any caller in the batch hears back.
    txn.set_durability(Durability::Immediate)
        .map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        if let Err(e) = job.apply(&txn) {
            let _ = txn.abort();
            return Err(e.to_string());
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

#[async_trait]
impl Store for RedbStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn probe(&self) -> StoreResult<()> {
        // Reads go on after a close; ready means writes are taken too.
        let open = self
            .writes
            .lock()
            .map_err(|_| StoreError::Unavailable("writer lock poisoned"))?
            .as_ref()
            .is_some_and(|sender| !sender.is_closed());
        if !open {
            return Err(StoreError::Unavailable("store is closed"));
        }
        crate::store::StationStore::station(self, "\u{1}readiness-probe")
            .await
            .map(drop)
    }

    async fn close(&self) {
        // Dropping the sender ends the writer loop once the queue is drained.
        if let Ok(mut writes) = self.writes.lock() {
            writes.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
        // The file lock goes with the last handle: wait (boundedly) for reads
        // still running so that the same data dir can be opened again at once.
        let db = self.db.lock().ok().and_then(|mut db| db.take());
        if let Some(mut db) = db {
            for _ in 0..CLOSE_WAIT_STEPS {
                match Arc::try_unwrap(db) {
                    Ok(db) => {
                        drop(db);
                        return;
                    }
                    Err(shared) => db = shared,
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            tracing::warn!("store closed while reads were still running");
        }
    }
}

/// Maps any redb error to a backend failure.
pub(crate) fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(e.into().to_string())
}

/// Encodes a record for storage.
pub(crate) fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(format!("cannot encode record: {e}")))
}

/// Decodes a stored record.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Backend(format!("corrupt record in store: {e}")))
}

/// The records of a whole single-key table, windowed by `page`.
pub(crate) fn list_page<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: KeyedTable,
    page: Page,
) -> StoreResult<Vec<T>> {
    let table = txn.open_table(table).map_err(backend)?;
    let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let start = match page.after.as_deref() {
        Some(after) => Bound::Excluded(after),
        None => Bound::Unbounded,
    };
    let mut out = Vec::new();
    for entry in table
        .range::<&str>((start, Bound::Unbounded))
        .map_err(backend)?
        .skip(offset)
        .take(page.limit as usize)
    {
        let (_, value) = entry.map_err(backend)?;
        out.push(decode(value.value())?);
    }
    Ok(out)
}

/// A table keyed by (owner, key) holding JSON records: a station's
/// transactions, variables, ...
pub(crate) type OwnedTable = TableDefinition<'static, (&'static str, &'static str), Bytes>;

/// The records of `owner` in an [`OwnedTable`], in key order, windowed by
/// `page` (`page.after` is a key within the owner's rows).
pub(crate) fn owned_page<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: OwnedTable,
    owner: &str,
    page: &Page,
) -> StoreResult<Vec<T>> {
    let table = txn.open_table(table).map_err(backend)?;
    let start = match page.after.as_deref() {
        Some(after) => Bound::Excluded((owner, after)),
        None => Bound::Included((owner, "")),
    };
    let rows = table
        .range::<(&str, &str)>((start, Bound::Unbounded))
        .map_err(backend)?
        .take_while(|entry| match entry {
            Ok((key, _)) => key.value().0 == owner,
            Err(_) => true,
        });
    let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for entry in rows.skip(offset).take(page.limit as usize) {
        let (_, value) = entry.map_err(backend)?;
        out.push(decode(value.value())?);
    }
    Ok(out)
}

/// One record of a single-key table.
pub(crate) fn get_one<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: KeyedTable,
    key: &str,
) -> StoreResult<Option<T>> {
    let table = txn.open_table(table).map_err(backend)?;
    let value = table.get(key).map_err(backend)?;
    value.map(|v| decode(v.value())).transpose()
}

/// Stores one record in a single-key table.
pub(crate) fn put_one<T: Serialize>(
    txn: &WriteTransaction,
    table: KeyedTable,
    key: &str,
    value: &T,
) -> StoreResult<()> {
    put_encoded(txn, table, key, &encode(value)?)
}

/// Puts one record already encoded (by [`encode`]) into a single-key table.
pub(crate) fn put_encoded(
    txn: &WriteTransaction,
    table: KeyedTable,
    key: &str,
    bytes: &[u8],
) -> StoreResult<()> {
    let mut table = txn.open_table(table).map_err(backend)?;
    table.insert(key, bytes).map_err(backend)?;
    Ok(())
}

/// Removes one record from a single-key table; true when there was one.
pub(crate) fn remove_one(
    txn: &WriteTransaction,
    table: KeyedTable,
    key: &str,
) -> StoreResult<bool> {
    let mut table = txn.open_table(table).map_err(backend)?;
    let removed = table.remove(key).map_err(backend)?.is_some();
    Ok(removed)
}
