//! The ScyllaDB store (Apache Cassandra 4+ works too): one keyspace shared by
//! every voltgate node, for fleets past one disk.
//!
//! At start the store connects with explicit bounds (request and connection
//! timeouts, the driver's default retry policy for idempotent statements, a
//! fixed pool per shard, token-aware and optionally DC-local routing),
//! creates the keyspace and tables when missing and refuses an incompatible
//! one (`schema`), and prepares every statement once (`statements`).
//!
//! Writes are at LOCAL_QUORUM, lightweight transactions at LOCAL_SERIAL;
//! a write is acknowledged once a quorum of replicas holds it. The data
//! model, and which writes are LWTs, is documented in `schema/scylla.cql`.

mod cache;
mod catalog;
mod cluster;
mod commands;
mod directory;
mod legacy;
mod locations;
mod objects;
mod pages;
mod partners;
mod pushes;
mod retry;
mod schema;
pub mod settings;
mod statements;
mod stations;
mod transactions;
mod variables;

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::client::PoolSize;
use scylla::deserialize::row::DeserializeRow;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::DefaultRetryPolicy;
use scylla::response::query_result::QueryResult;
use scylla::serialize::batch::BatchValues;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::Batch;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlTimestamp, CqlValue, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use settings::{Replication, ScyllaSettings};
use statements::Statements;

use super::{timed, Delivery, DeliveryStatus, Store, StoreError, StoreResult};

/// The backend's name (metrics, logs).
pub(crate) const BACKEND: &str = "scylla";
/// A whole store call may take this many request timeouts (a call is a few
/// requests, an LWT retried after a lost race a few more).
const CALL_BUDGET_IN_REQUESTS: u32 = 3;

/// Tokens one node keeps copies of (`cache`).
const HOT_READS: usize = 10_000;
/// How many station ids `registered_stations` holds (about 100 bytes each).
const KNOWN_STATIONS: usize = 100_000;
/// How many command keys `known_commands` holds (about 150 bytes each): the
/// last minute's at 2,000 commands/s, when they are updated.
const KNOWN_COMMANDS: usize = 100_000;
/// How long a copy of a hot read is used: a change made through another
/// node is seen by this one within this time.
const HOT_READ_TTL: Duration = Duration::from_secs(2);

/// The ScyllaDB store.
pub struct ScyllaStore {
    session: Arc<Session>,
    /// The runtime the driver's connections run on.
    io: DriverRuntime,
    statements: Statements,
    keyspace: String,
    /// OCPP 1.6 transaction ids reserved by this node and not yet handed out.
    transaction_ids: transactions::TransactionIds,
    /// Tokens looked up lately (Authorize, then the transaction's start).
    tokens: cache::Fresh<String, Option<crate::store::Token>>,
    /// The OCPI partner list, read per transaction start and status change.
    partners: cache::Fresh<(), Vec<crate::store::OcpiPartner>>,
    /// Stations this node has seen registered (`stations::ensure_registered`).
    registered_stations: cache::Known<String>,
    /// Commands this node has written or read (`commands::ensure_command_exists`).
    known_commands: cache::Known<String>,
    /// (station, 1.6 transaction id) this node handed out whose row it has
    /// not written yet: no such row can exist (`transactions::apply_event`).
    fresh_transactions: cache::Known<String>,
    /// The transaction rows this node wrote last (`transactions`).
    written_transactions: transactions::Written,
    /// One event at a time per transaction on this node (`transactions`).
    transaction_turns: transactions::Turns,
    /// Write timestamps of transaction rows: microseconds, increasing.
    write_clock: AtomicU64,
    /// Set by `close`: later calls fail as Unavailable instead of writing.
    closed: AtomicBool,
    /// Longest a whole store call may take, its retries and pages included.
    call_budget: Duration,
}

impl ScyllaStore {
    /// Connects, creates or checks the schema and prepares the statements.
    /// Fails with a message saying what is wrong: no contact point answers,
    /// authentication failed, the keyspace holds an incompatible schema.
    pub async fn connect(settings: &ScyllaSettings) -> StoreResult<ScyllaStore> {
        let nodes = settings.uri.clone().unwrap_or_default();
        if nodes.is_empty() {
            return Err(StoreError::Backend("--scylla-uri names no node".into()));
        }
        let io = DriverRuntime::start()?;
        let builder = session_builder(settings, &nodes)?;
        // Built on the driver's runtime: the connections' reader and writer
        // tasks are spawned where the session is built, and live there.
        let session = io
            .handle()
            .spawn(async move { builder.build().await })
            .await
            .map_err(|e| StoreError::Backend(format!("ScyllaDB session task failed: {e}")))?
            .map_err(|e| {
                StoreError::Backend(format!(
                    "cannot reach the ScyllaDB cluster at {}: {e}",
                    nodes.join(",")
                ))
            })?;
        schema::ensure(&session, settings).await?;
        let statements = Statements::prepare(&session).await?;
        tracing::info!(
            nodes = %nodes.join(","),
            keyspace = %settings.keyspace,
            schema_version = schema::SCHEMA_VERSION,
            "ScyllaDB store ready"
        );
        let store = ScyllaStore {
            session: Arc::new(session),
            io,
            statements,
            keyspace: settings.keyspace.clone(),
            transaction_ids: Default::default(),
            tokens: cache::Fresh::new(HOT_READS, HOT_READ_TTL),
            partners: cache::Fresh::new(1, HOT_READ_TTL),
            registered_stations: cache::Known::new(KNOWN_STATIONS),
            known_commands: cache::Known::new(KNOWN_COMMANDS),
            fresh_transactions: cache::Known::new(HOT_READS),
            written_transactions: transactions::Written::new(),
            transaction_turns: transactions::Turns::new(),
            write_clock: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            call_budget: settings.request_timeout() * CALL_BUDGET_IN_REQUESTS,
        };
        store.reserve_first_ids().await;
        let converted = store.convert_parties().await?;
        if converted > 0 {
            tracing::info!(
                partners = converted,
                "OCPI parties of an older model converted into partners"
            );
        }
        let indexed = locations::index_existing(&store).await?;
        if indexed > 0 {
            tracing::info!(
                locations = indexed,
                "locations of an older release indexed by last_updated"
            );
        }
        Ok(store)
    }

    /// The keyspace in use.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Drops the store's keyspace with everything in it. For tests, which
    /// give every run a keyspace of its own.
    pub async fn drop_keyspace(&self) -> StoreResult<()> {
        schema::drop_keyspace(&self.session, &self.keyspace).await
    }

    /// Runs one store operation: timed and counted as every backend's are
    /// (`store::timed`), and bounded as a whole by the call budget, so no
    /// caller waits on retries and pages without end.
    async fn call<T>(
        &self,
        operation: &'static str,
        op: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let budget = self.call_budget;
        timed(BACKEND, operation, async move {
            tokio::time::timeout(budget, op).await.unwrap_or_else(|_| {
                Err(StoreError::Unreachable(format!(
                    "{operation} took longer than {} ms",
                    budget.as_millis()
                )))
            })
        })
        .await
    }

    /// Runs `task` on the driver's runtime, for writes no caller waits for.
    fn spawn_io(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(self.io.handle().spawn(task));
    }

    fn refuse_when_closed(&self) -> StoreResult<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Unavailable("the store is closed"))
        } else {
            Ok(())
        }
    }

    /// Runs a statement whose result has no rows (or whose rows are ignored).
    async fn execute(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<QueryResult> {
        self.refuse_when_closed()?;
        let started = std::time::Instant::now();
        let result = self.session.execute_unpaged(statement, values).await;
        crate::metrics::scylla_statement(statements::name_of(statement), started.elapsed());
        result.map_err(db)
    }

    /// Runs a logged batch.
    async fn batch(&self, batch: &Batch, values: impl BatchValues) -> StoreResult<()> {
        self.batch_timed_as("logged_batch", batch, values).await
    }

    /// Runs a batch, timed under `label` in the per-statement histogram.
    async fn batch_timed_as(
        &self,
        label: &'static str,
        batch: &Batch,
        values: impl BatchValues,
    ) -> StoreResult<()> {
        self.refuse_when_closed()?;
        let started = std::time::Instant::now();
        let result = self.session.batch(batch, values).await;
        crate::metrics::scylla_statement(label, started.elapsed());
        result.map_err(db)?;
        Ok(())
    }

    /// Runs a query and decodes every row.
    async fn rows<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<Vec<R>>
    where
        R: for<'frame> DeserializeRow<'frame, 'frame>,
    {
        let result = self.execute(statement, values).await?;
        let rows = result.into_rows_result().map_err(db)?;
        let decoded = rows.rows::<R>().map_err(db)?;
        decoded.map(|row| row.map_err(db)).collect()
    }

    /// Runs a query for at most one row.
    async fn row<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<Option<R>>
    where
        R: for<'frame> DeserializeRow<'frame, 'frame>,
    {
        Ok(self.rows(statement, values).await?.into_iter().next())
    }

    /// Runs a lightweight transaction and reads whether it applied.
    async fn lwt(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<Lwt> {
        Lwt::read(self.execute(statement, values).await?)
    }
}

/// Threads of the driver's own runtime.
const DRIVER_THREADS: usize = 2;

/// A multi-threaded runtime of its own for the driver's connection tasks.
/// On the runtime of whoever connects (the actix main thread, a
/// single-threaded runtime that also runs start-up and shutdown work), every
/// request and response of every station would pass through that one thread.
struct DriverRuntime(Option<tokio::runtime::Runtime>);

impl DriverRuntime {
    fn start() -> StoreResult<DriverRuntime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(DRIVER_THREADS)
            .thread_name("scylla-io")
            .enable_all()
            .build()
            .map(|runtime| DriverRuntime(Some(runtime)))
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the ScyllaDB driver runtime: {e}"))
            })
    }

    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle().clone(),
            // Only while dropping; nothing runs then.
            None => tokio::runtime::Handle::current(),
        }
    }
}

impl Drop for DriverRuntime {
    fn drop(&mut self) {
        // A runtime dropped inside another runtime's task panics; this one
        // is let go without waiting (its tasks are the closed connections').
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn session_builder(settings: &ScyllaSettings, nodes: &[String]) -> StoreResult<SessionBuilder> {
    let mut routing = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &settings.local_dc {
        routing = routing.prefer_datacenter(dc.clone());
    }
    let profile = ExecutionProfile::builder()
        .consistency(Consistency::LocalQuorum)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(settings.request_timeout()))
        .retry_policy(Arc::new(DefaultRetryPolicy::new()))
        .load_balancing_policy(routing.build())
        .build();
    let per_shard =
        NonZeroUsize::new(usize::from(settings.connections_per_shard)).unwrap_or(NonZeroUsize::MIN);
    let mut builder = SessionBuilder::new()
        .known_nodes(nodes)
        .connection_timeout(settings.connect_timeout())
        .pool_size(PoolSize::PerShard(per_shard))
        .default_execution_profile_handle(profile.into_handle());
    match (&settings.user, &settings.password) {
        (Some(user), Some(password)) => builder = builder.user(user, password),
        (None, None) => {}
        _ => {
            return Err(StoreError::Backend(
                "--scylla-user and --scylla-password go together".into(),
            ))
        }
    }
    Ok(builder)
}

#[async_trait]
impl Store for ScyllaStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn cluster(&self) -> Option<&dyn crate::store::ClusterStore> {
        Some(self)
    }

    fn station_connected(&self, station_id: &str) {
        self.written_transactions.forget_station(station_id);
    }

    fn command_forwarded(&self, station_id: &str, command_id: &str) {
        self.known_commands
            .learn(commands::command_key(station_id, command_id));
    }

    async fn close(&self) {
        // Every acknowledged write is already on a quorum of replicas, so
        // there is nothing to flush; later calls are refused. The session's
        // connections close when the store is dropped.
        self.closed.store(true, Ordering::Release);
    }
}

/// What a lightweight transaction answered: whether it applied, and the
/// current row when it did not (Cassandra and ScyllaDB differ in which
/// columns come back, so they are looked up by name).
struct Lwt {
    applied: bool,
    columns: Vec<(String, Option<CqlValue>)>,
}

impl Lwt {
    fn read(result: QueryResult) -> StoreResult<Lwt> {
        let rows = result.into_rows_result().map_err(db)?;
        let names: Vec<String> = rows
            .column_specs()
            .iter()
            .map(|spec| spec.name().to_owned())
            .collect();
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(db)?
            .ok_or_else(|| StoreError::Backend("lightweight transaction answered no row".into()))?;
        let columns: Vec<_> = names.into_iter().zip(row.columns).collect();
        let applied = columns
            .iter()
            .find(|(name, _)| name == "[applied]")
            .and_then(|(_, value)| value.as_ref()?.as_boolean())
            .ok_or_else(|| {
                StoreError::Backend("lightweight transaction answered no [applied]".into())
            })?;
        Ok(Lwt { applied, columns })
    }

    /// A column of the current row (when the LWT did not apply).
    fn column(&self, name: &str) -> Option<&CqlValue> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, value)| value.as_ref())
    }
}

/// A driver failure as a store error (500 / CALLERROR InternalError).
fn db<E: std::fmt::Display + 'static>(error: E) -> StoreError {
    let any: &dyn std::any::Any = &error;
    let unreachable = any
        .downcast_ref::<scylla::errors::ExecutionError>()
        .is_some_and(cannot_reach)
        || any
            .downcast_ref::<scylla::errors::RequestAttemptError>()
            .is_some_and(attempt_cannot_reach);
    if unreachable {
        StoreError::Unreachable(format!("ScyllaDB: {error}"))
    } else {
        StoreError::Backend(format!("ScyllaDB: {error}"))
    }
}

/// Whether a driver error says the cluster could not be reached or did
/// not answer in time (rather than that the request was wrong).
fn cannot_reach(error: &scylla::errors::ExecutionError) -> bool {
    use scylla::errors::ExecutionError as E;
    match error {
        E::ConnectionPoolError(_) | E::RequestTimeout(_) | E::EmptyPlan => true,
        E::LastAttemptError(attempt) => attempt_cannot_reach(attempt),
        _ => false,
    }
}

fn attempt_cannot_reach(error: &scylla::errors::RequestAttemptError) -> bool {
    use scylla::errors::{DbError, RequestAttemptError as A};
    matches!(
        error,
        A::BrokenConnectionError(_)
            | A::UnableToAllocStreamId
            | A::DbError(
                DbError::Unavailable { .. }
                    | DbError::Overloaded
                    | DbError::IsBootstrapping
                    | DbError::ReadTimeout { .. }
                    | DbError::WriteTimeout { .. },
                _
            )
    )
}

/// A time as a CQL timestamp (milliseconds).
fn timestamp(time: DateTime<Utc>) -> CqlTimestamp {
    CqlTimestamp(time.timestamp_millis())
}

/// A CQL timestamp as a time.
fn time(timestamp: CqlTimestamp) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(timestamp.0)
        .ok_or_else(|| StoreError::Backend(format!("timestamp {} out of range", timestamp.0)))
}

/// `time` as the store keeps it (milliseconds), so what a write returns
/// equals what a later read returns.
fn stored_time(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

/// A record as the JSON text of its column.
fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

/// A JSON column as its record.
fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("decode: {e}")))
}

/// A unit enum's serde name (DeliveryStatus::Pending → "Pending"), for text columns.
fn name_of<T: Serialize>(value: &T) -> StoreResult<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        _ => Err(StoreError::Backend("not a unit enum".into())),
    }
}

/// A text column back into its unit enum.
fn parse_name<T: DeserializeOwned>(name: String) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|e| StoreError::Backend(format!("decode: {e}")))
}

/// The delivery columns (status, status_at, detail) of a queued item.
type DeliveryColumns = (String, CqlTimestamp, Option<String>);

fn delivery_from((status, at, detail): DeliveryColumns) -> StoreResult<Delivery> {
    Ok(Delivery {
        status: parse_name::<DeliveryStatus>(status)?,
        updated_at: time(at)?,
        detail,
    })
}
