//! The store: domain records, one trait per aggregate, and the backends.
//!
//! The traits speak in domain records (`records`), never in backend types, so the
//! REST API and the station engine work the same on every backend. Every write
//! is durable when its future resolves: a caller that acknowledged a write to
//! its own client (HTTP 201, CALLRESULT) may rely on it surviving a crash.
//!
//! Time is passed in (`now`) rather than read here, so tests control it and the
//! backends stay deterministic.
//!
//! Backends:
//! * [`redb`]: the embedded default, one file under `--data-dir`.
//! * [`scylla`]: ScyllaDB (or Cassandra 4+), for large fleets and several nodes.

pub mod cluster;
pub mod command;
pub mod legacy_work;
pub mod location;
pub mod ocpi;
pub mod records;
pub mod redb;
pub mod scylla;
pub mod variables;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use cluster::{ClusterStore, NodeLease, Presence};
pub use command::*;
pub use location::*;
pub use ocpi::*;
pub use records::*;
pub use variables::ReportedVariable;

/// What can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record the call depends on does not exist (the value names it, e.g. "charge station").
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The backend failed. The text is for logs, never for API callers.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The store is shutting down or its write queue is closed.
    #[error("store unavailable: {0}")]
    Unavailable(&'static str),
    /// The backend cannot be reached or did not answer in time (nodes
    /// down, connections broken, timeouts): nothing is known to be wrong
    /// with the data, and the same call may succeed later.
    #[error("store unreachable: {0}")]
    Unreachable(String),
}

impl StoreError {
    /// True when the failure is the backend's, not a fact about the data.
    pub fn is_backend(&self) -> bool {
        !matches!(self, StoreError::NotFound(_))
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// A window into an ordered list: start after the key `after` (or at the
/// start), skip `offset` records, return at most `limit`.
///
/// `after` is the seek cursor: a list key (station id, token uid, location id,
/// transaction id) at which the previous page ended. Every backend serves it
/// without reading the records before it; `offset` costs reading the records
/// it skips, so it is for short lists and MaEVe compatibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Records to skip (after `after`, when given).
    pub offset: u64,
    /// Most records to return.
    pub limit: u32,
    /// Start after this key (exclusive).
    pub after: Option<String>,
}

impl Page {
    /// Refuses a cursor for a list that pages by offset only (meter values).
    pub fn require_offset_only(&self, list: &str) -> StoreResult<()> {
        match self.after {
            Some(_) => Err(StoreError::Backend(format!("{list} page by offset only"))),
            None => Ok(()),
        }
    }

    /// `limit` records after skipping `offset` from the start of the list.
    pub fn new(offset: u64, limit: u32) -> Page {
        Page {
            offset,
            limit,
            after: None,
        }
    }
}

/// Charge stations: registration and auth, settings, pending work, runtime state.
#[async_trait]
pub trait StationStore: Send + Sync {
    /// Registers a station or replaces its credentials. A new station starts in
    /// [`Provisioning::Pending`]; an existing one keeps its state and pending work.
    async fn register_station(
        &self,
        id: &str,
        auth: ChargeStationAuth,
        now: DateTime<Utc>,
    ) -> StoreResult<StationRecord>;

    /// The station's registration, if it is registered.
    async fn station(&self, id: &str) -> StoreResult<Option<StationRecord>>;

    /// Registered stations in id order.
    async fn list_stations(&self, page: Page) -> StoreResult<Vec<StationRecord>>;

    /// Sets the station's provisioning state. `NotFound` for an unknown station.
    async fn set_provisioning(
        &self,
        id: &str,
        provisioning: Provisioning,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// What the station last reported about itself, if it ever connected.
    async fn runtime(&self, id: &str) -> StoreResult<Option<StationRuntime>>;

    /// Replaces the station's runtime state. `NotFound` for an unknown station.
    async fn set_runtime(&self, id: &str, runtime: StationRuntime) -> StoreResult<()>;
}

/// CSMS-initiated commands, per station: the record of each and the
/// station's outbox (the pending ones, oldest first).
#[async_trait]
pub trait CommandStore: Send + Sync {
    /// Stores a new command (pending commands also enter the outbox).
    /// `NotFound` for an unknown station.
    async fn create_command(&self, command: CommandRecord) -> StoreResult<()>;
    /// Stores several new commands of station `station_id`, in order. The
    /// default stores them one by one and stops at the first failure (the
    /// ones stored stay queued); a backend that can does it all or none.
    async fn create_commands(
        &self,
        station_id: &str,
        commands: &[CommandRecord],
    ) -> StoreResult<()> {
        debug_assert!(commands.iter().all(|c| c.station_id == station_id));
        for command in commands {
            self.create_command(command.clone()).await?;
        }
        Ok(())
    }
    /// The station's command with this id.
    async fn command(&self, station_id: &str, id: &str) -> StoreResult<Option<CommandRecord>>;
    /// The station's commands, newest first, that pass `filter`; `page.after`
    /// is a command id (the list goes on with older ones).
    async fn list_commands(
        &self,
        station_id: &str,
        filter: CommandFilter,
        page: Page,
    ) -> StoreResult<Vec<CommandRecord>>;
    /// Replaces a command's record with its new state; a settled command
    /// leaves the outbox. `NotFound` when there is no such command.
    async fn update_command(&self, command: &CommandRecord) -> StoreResult<()>;
    /// The station's pending commands, oldest first.
    async fn outbox(&self, station_id: &str) -> StoreResult<Vec<CommandRecord>>;
    /// Stores a fan-out batch with its commands (every station must be
    /// registered; the caller checked). Durable as a whole when it returns.
    async fn create_batch(
        &self,
        batch: BatchRecord,
        commands: Vec<CommandRecord>,
    ) -> StoreResult<()>;
    /// The batch with this id.
    async fn batch(&self, batch_id: &str) -> StoreResult<Option<BatchRecord>>;
    /// The batch's commands in station id order; `page.after` is a station id.
    async fn batch_commands(&self, batch_id: &str, page: Page) -> StoreResult<Vec<CommandRecord>>;
}

/// What stations report about their configuration, per station and key.
#[async_trait]
pub trait VariableStore: Send + Sync {
    /// Stores these variables of the station, each replacing its key's record.
    async fn put_variables(
        &self,
        station_id: &str,
        variables: Vec<ReportedVariable>,
    ) -> StoreResult<()>;
    /// The station's variables in key order; `page.after` is a key.
    async fn variables(&self, station_id: &str, page: Page) -> StoreResult<Vec<ReportedVariable>>;
}

/// Authorization tokens (RFID cards, app users, ...), keyed by uid.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Creates or replaces the token with this uid.
    async fn put_token(&self, token: Token) -> StoreResult<()>;
    /// The token with this uid.
    async fn token(&self, uid: &str) -> StoreResult<Option<Token>>;
    /// Tokens in uid order.
    async fn list_tokens(&self, page: Page) -> StoreResult<Vec<Token>>;
    /// Deletes the token; false when there was none.
    async fn delete_token(&self, uid: &str) -> StoreResult<bool>;
}

/// Client certificates uploaded for proxy-terminated mutual TLS, keyed by hash.
#[async_trait]
pub trait CertificateStore: Send + Sync {
    /// Stores the certificate under its hash (replacing an identical upload).
    async fn put_certificate(&self, certificate: StoredCertificate) -> StoreResult<()>;
    /// The certificate with this hash.
    async fn certificate(&self, hash: &str) -> StoreResult<Option<StoredCertificate>>;
    /// Deletes the certificate; false when there was none.
    async fn delete_certificate(&self, hash: &str) -> StoreResult<bool>;
}

/// Charging locations with their EVSEs and connectors, keyed by location id,
/// with an index by `last_updated`. Writes are conditional on the version
/// the caller read ([`Expect`]), so read-modify-write callers never lose a
/// concurrent change.
#[async_trait]
pub trait LocationStore: Send + Sync {
    /// The location with this id and its entity tag.
    async fn location(&self, id: &str) -> StoreResult<Option<StoredLocation>>;
    /// Writes `location` under its id when the stored version is what
    /// `expect` says. Its `last_updated` (set by the caller) orders it in
    /// [`locations_updated`](Self::locations_updated).
    async fn write_location(
        &self,
        location: Location,
        expect: Expect,
    ) -> StoreResult<LocationWrite>;
    /// Deletes the location when the stored version is what `expect` says
    /// (a missing one is a `Conflict(None)`).
    async fn delete_location(&self, id: &str, expect: Expect) -> StoreResult<LocationWrite>;
    /// Locations in id order.
    async fn list_locations(&self, page: Page) -> StoreResult<Vec<Location>>;
    /// Locations in `last_updated` order (then id) within the window; a
    /// seek from `window.after` costs the same whatever precedes it.
    async fn locations_updated(&self, window: UpdatedWindow) -> StoreResult<Vec<Location>>;
    /// The EVSEs that name charge station `station_id` (`station_id` on
    /// the EVSE), in (location, uid) order.
    async fn evse_links(&self, station_id: &str) -> StoreResult<Vec<EvseLink>>;
    /// The published locations inside `circle`, read from the cells that
    /// start with one of `prefixes` (geohash prefixes that cover it), with
    /// their distances and search summaries, in no particular order.
    async fn locations_near(
        &self,
        circle: Circle,
        prefixes: &[String],
    ) -> StoreResult<Vec<PlaceEntry>>;
    /// The cities of published locations in `province` (any case), sorted.
    async fn cities_of_province(&self, province: &str) -> StoreResult<Vec<String>>;
    /// Creates or replaces a hardware template.
    async fn put_template(&self, template: HardwareTemplate) -> StoreResult<()>;
    /// The hardware template with this id.
    async fn template(&self, id: &str) -> StoreResult<Option<HardwareTemplate>>;
    /// Hardware templates in id order.
    async fn list_templates(&self, page: Page) -> StoreResult<Vec<HardwareTemplate>>;
    /// How many locations (only published ones when `published_only`)
    /// were last updated in `[from, to)`.
    async fn count_locations_updated(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        published_only: bool,
    ) -> StoreResult<u64>;
}

/// Charging transactions and their meter values, per station.
#[async_trait]
pub trait TransactionStore: Send + Sync {
    /// Applies one transaction event. Events are idempotent by `(station,
    /// transaction, seq_no)`: a retried event changes nothing and returns
    /// `Ok(false)`. The first event creates the transaction. A Started event
    /// puts the transaction in the index of active transactions and an
    /// Ended one takes it out (a retried one sets the index again).
    async fn apply_transaction_event(&self, event: TransactionEvent) -> StoreResult<bool>;
    /// The transaction with its summary state.
    async fn transaction(
        &self,
        station_id: &str,
        transaction_id: &str,
    ) -> StoreResult<Option<Transaction>>;
    /// The station's transactions in transaction id order.
    async fn list_transactions(
        &self,
        station_id: &str,
        page: Page,
    ) -> StoreResult<Vec<Transaction>>;
    /// A new OCPP 1.6 transaction id for a transaction of `station_id`:
    /// unique across the store, never reused, positive and within `i32` as
    /// 1.6 requires. (A backend may note that no row of that station and id
    /// can exist yet.)
    async fn next_transaction_number(&self, station_id: &str) -> StoreResult<i32>;
    /// The active transactions of the whole fleet in (station, transaction)
    /// order; `page.after` is an [`active_key`].
    async fn active_transactions(&self, page: Page) -> StoreResult<Vec<Transaction>>;
    /// The transaction's meter values in event order, each with its seq_no.
    /// Pages by `offset` only: a meter value has no key of its own to seek
    /// to, and `after` is refused as a backend error.
    async fn meter_values(
        &self,
        station_id: &str,
        transaction_id: &str,
        page: Page,
    ) -> StoreResult<Vec<MeterValue>>;
}

/// OCPI partners by registration id, found also by the hash of the token
/// they send. Partners are few (tens): the list is read whole.
#[async_trait]
pub trait OcpiPartnerStore: Send + Sync {
    /// Creates or replaces the partner. Afterwards its `token_hash` finds it
    /// and a former hash of the same partner finds nothing.
    async fn put_partner(&self, partner: OcpiPartner) -> StoreResult<()>;
    /// The partner with this registration id.
    async fn partner(&self, id: &str) -> StoreResult<Option<OcpiPartner>>;
    /// The partner that sends the token of this hash.
    async fn partner_by_token(&self, token_hash: &str) -> StoreResult<Option<OcpiPartner>>;
    /// Every partner, by id.
    async fn list_partners(&self) -> StoreResult<Vec<OcpiPartner>>;
    /// Deletes the partner and its token; false when there was none.
    async fn delete_partner(&self, id: &str) -> StoreResult<bool>;
}

/// Each OCPI partner's queue of pushes, in order; durable, so a restart or a
/// partner that is down loses none.
#[async_trait]
pub trait OcpiPushStore: Send + Sync {
    /// Appends `push` to the partner's queue; its seq. With `coalesce`, the
    /// pending push of the same object is removed and this one appended
    /// instead, and when the object has none nothing is appended (None):
    /// the caller's queue is full.
    async fn enqueue_push(
        &self,
        partner_id: &str,
        push: OcpiPush,
        coalesce: bool,
    ) -> StoreResult<Option<u64>>;
    /// The oldest pending pushes of the partner, at most `limit`.
    async fn pending_pushes(&self, partner_id: &str, limit: u32) -> StoreResult<Vec<OcpiPush>>;
    /// Removes a push that was delivered (or refused for good).
    async fn remove_push(&self, partner_id: &str, seq: u64) -> StoreResult<()>;
    /// How many pushes the partner's queue holds.
    async fn count_pushes(&self, partner_id: &str) -> StoreResult<u64>;
    /// Drops the partner's whole queue (it unregistered).
    async fn clear_pushes(&self, partner_id: &str) -> StoreResult<()>;
}

/// The Sessions and CDRs of OCPI partners, by kind and id, and listed per
/// owning party by `last_updated` (the OCPI pull).
#[async_trait]
pub trait OcpiObjectStore: Send + Sync {
    /// Creates or replaces the object; its list entry moves to its new
    /// `last_updated`.
    async fn put_ocpi_object(&self, object: OcpiObject) -> StoreResult<()>;
    /// The object of this kind and id.
    async fn ocpi_object(&self, kind: OcpiObjectKind, id: &str) -> StoreResult<Option<OcpiObject>>;
    /// The party's objects of `kind` in `window` (`published_only` is
    /// ignored), oldest `last_updated` first, then by id.
    async fn ocpi_objects_updated(
        &self,
        kind: OcpiObjectKind,
        party: &str,
        window: UpdatedWindow,
    ) -> StoreResult<Vec<OcpiObject>>;
    /// How many of the party's objects of `kind` were updated in [from, to).
    async fn count_ocpi_objects_updated(
        &self,
        kind: OcpiObjectKind,
        party: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> StoreResult<u64>;
}

/// The key of a transaction in the index of active transactions: the
/// station id and the transaction id, separated by U+001F (below every
/// character a station id may hold, so keys sort by station first).
pub fn active_key(station_id: &str, transaction_id: &str) -> String {
    format!("{station_id}\u{1f}{transaction_id}")
}

/// The (station, transaction) of an [`active_key`].
pub fn split_active_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('\u{1f}')
}

/// Runs one store operation and records its duration and failure (every
/// backend's operations go through this, so the metrics compare).
pub(crate) async fn timed<T>(
    backend: &'static str,
    operation: &'static str,
    op: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let started = std::time::Instant::now();
    let result = op.await;
    let ok = !matches!(
        result,
        Err(StoreError::Backend(_) | StoreError::Unavailable(_) | StoreError::Unreachable(_))
    );
    crate::metrics::store_operation(backend, operation, started.elapsed(), ok);
    result
}

/// Every aggregate in one handle: what the app holds as `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    StationStore
    + CommandStore
    + VariableStore
    + TokenStore
    + CertificateStore
    + LocationStore
    + TransactionStore
    + OcpiPartnerStore
    + OcpiPushStore
    + OcpiObjectStore
{
    /// The backend's name for logs and metrics ("redb", "scylla").
    fn backend(&self) -> &'static str;
    /// A cheap call that succeeds only when the backend answers (readiness).
    async fn probe(&self) -> StoreResult<()> {
        self.station("\u{1}readiness-probe").await.map(drop)
    }
    /// The state nodes share, when the backend can hold several nodes.
    fn cluster(&self) -> Option<&dyn ClusterStore> {
        None
    }
    /// A station connected to this node. A backend that keeps copies of
    /// what this node wrote for the station drops them: the station may
    /// have written through another node since.
    fn station_connected(&self, _station_id: &str) {}
    /// Another node stored this command and forwarded it here to deliver.
    /// A backend that checks that a command exists before each status
    /// change may take it as stored.
    fn command_forwarded(&self, _station_id: &str, _command_id: &str) {}
    /// Finishes queued writes and releases the backend (file locks, sessions).
    async fn close(&self);
}
