//! The command record: one CSMS-initiated OCPP operation for one station,
//! from the REST call that asked for it to the station's answer.
//!
//! Every operation (raw or typed) is stored as one of these before any CALL
//! is sent, so a command survives restarts and its outcome can be read back.
//! The record holds the OCPP action and payload already translated for the
//! station's version: adding an operation never changes the store. MaEVe's
//! queueing endpoints are the exception: their commands may be stored before
//! the station's version is known, so they keep the version-neutral item as
//! payload and get their action and version when they are sent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Delivery, OcppVersion};

/// When a command may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum DeliveryClass {
    /// Settings, certificates, local lists, charging profiles, firmware:
    /// wait for an offline station's next boot, without expiry by default.
    Configuration,
    /// Starts, stops, resets, triggers, reads, ...: only useful now, so they
    /// expire (never sent late) and need a connected station.
    Immediate,
}

/// Where a command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum CommandStatus {
    /// Stored, not answered yet: waiting for the station or in flight.
    Pending,
    /// The station answered with a positive status (Accepted, Scheduled,
    /// Unlocked, ...) or with data and no status.
    Accepted,
    /// The station answered with a negative status (Rejected, NotSupported,
    /// UnlockFailed, ...); the answer is kept in `response`.
    Rejected,
    /// No usable answer: CALLERROR, timeout, broken answer, or the
    /// connection closed before the answer; `error` says which.
    Failed,
    /// Its expiry passed before it could be sent; it never was.
    Expired,
}

impl CommandStatus {
    /// True once the command is settled and leaves the outbox.
    pub fn is_final(self) -> bool {
        self != CommandStatus::Pending
    }
}

/// Why a command failed: the station's CALLERROR, or voltgate's own reason
/// (code `Timeout`, `ConnectionClosed`, `InvalidAnswer`, `VersionChanged`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandError {
    /// The OCPP error code, or voltgate's reason code.
    pub code: String,
    /// What happened.
    pub description: String,
    /// The CALLERROR's details object, when the station sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// One command for one station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandRecord {
    /// The station it is for.
    pub station_id: String,
    /// Its id: time-ordered, so newer commands sort after older ones.
    #[serde(rename = "commandId")]
    pub id: String,
    /// The REST operation that made it (`reset`, `remote-start`, `ocpp`, ...).
    pub operation: String,
    /// The OCPP action sent; empty for a command of MaEVe's queueing
    /// endpoints until it is sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    /// The OCPP version the payload is written for; absent for a command of
    /// MaEVe's queueing endpoints until it is sent.
    #[schema(value_type = Option<String>, example = "2.0.1")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<OcppVersion>,
    /// The CALL payload, valid against the version's request schema (for
    /// MaEVe's queueing endpoints: the queued item, written for the
    /// station's version when it is sent).
    pub payload: Value,
    /// When it may be sent.
    pub class: DeliveryClass,
    /// Where it stands.
    pub status: CommandStatus,
    /// The station's CALLRESULT payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommandError>,
    /// When it was accepted by the API.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
    /// Not sent after this instant (None: no expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The fan-out batch it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// What the station reported on it afterwards (firmware and log
    /// status notifications), oldest first, at most [`MAX_PROGRESS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<CommandProgress>,
    /// The transaction a remote start caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// For MaEVe's queued items: how the item stands in MaEVe's terms
    /// (Pending, Accepted, RebootRequired, NotSupported, ...), as their
    /// endpoints answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// Progress reports kept per command (the oldest go first).
pub const MAX_PROGRESS: usize = 32;

/// One progress report on a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandProgress {
    /// The status the station reported (Downloading, Installed, Uploaded, ...).
    pub status: String,
    /// When it arrived.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
impl CommandRecord {
    /// An immediate OCPP 2.0.1 Reset for station CS1, the unit tests' example.
    pub fn example_reset(now: DateTime<Utc>) -> Self {
        CommandRecord::pending(
            "CS1",
            "reset",
            "Reset",
            crate::ocpp::Version::V201,
            serde_json::json!({"type": "Immediate"}),
            DeliveryClass::Immediate,
            now,
        )
    }
}

impl CommandRecord {
    /// A new pending command with a fresh id, created at `now`, without
    /// expiry or batch (set those fields when they apply).
    pub fn pending(
        station_id: &str,
        operation: &str,
        action: &str,
        version: impl Into<Option<OcppVersion>>,
        payload: Value,
        class: DeliveryClass,
        now: DateTime<Utc>,
    ) -> CommandRecord {
        CommandRecord {
            station_id: station_id.to_owned(),
            id: new_command_id(now),
            operation: operation.to_owned(),
            action: action.to_owned(),
            version: version.into(),
            payload,
            class,
            status: CommandStatus::Pending,
            response: None,
            error: None,
            created_at: now,
            updated_at: now,
            expires_at: None,
            batch_id: None,
            progress: Vec::new(),
            transaction_id: None,
            delivery: None,
        }
    }

    /// Adds a progress report, dropping the oldest beyond the bound.
    pub fn report_progress(&mut self, status: String, at: DateTime<Utc>) {
        self.progress.push(CommandProgress { status, at });
        let excess = self.progress.len().saturating_sub(MAX_PROGRESS);
        self.progress.drain(..excess);
    }

    /// True when it is still pending and its expiry has passed.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.status == CommandStatus::Pending && self.expires_at.is_some_and(|at| at <= now)
    }

    /// The record as a reader sees it at `now`: a pending command past its
    /// expiry reads as `Expired` even before the outbox has swept it.
    pub fn as_seen_at(mut self, now: DateTime<Utc>) -> CommandRecord {
        if self.is_expired(now) {
            self.status = CommandStatus::Expired;
            self.updated_at = self.expires_at.unwrap_or(now);
        }
        self
    }

    /// Settles the command with `status`.
    pub fn settle(
        &mut self,
        status: CommandStatus,
        response: Option<Value>,
        error: Option<CommandError>,
        now: DateTime<Utc>,
    ) {
        self.status = status;
        self.response = response;
        self.error = error;
        self.updated_at = now;
    }
}

/// Which of a station's commands a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandFilter {
    /// Only commands with this status (as stored; see [`CommandRecord::as_seen_at`]).
    pub status: Option<CommandStatus>,
    /// Only commands of this OCPP action.
    pub action: Option<String>,
}

impl CommandFilter {
    /// Whether `record` passes.
    pub fn admits(&self, record: &CommandRecord) -> bool {
        self.status.is_none_or(|s| s == record.status)
            && self.action.as_deref().is_none_or(|a| a == record.action)
    }
}

/// A new command id: 12 hex digits of Unix milliseconds, 8 of this
/// process's random tag, 8 of a process-wide sequence. Ids sort by time
/// across nodes (to the millisecond) and never repeat within a process.
pub fn new_command_id(now: DateTime<Utc>) -> String {
    static TAG: OnceLock<u32> = OnceLock::new();
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let tag = *TAG.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the OS per process: a random tag
        // without a random-number crate.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(u128::from(std::process::id()));
        hasher.finish() as u32
    });
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed) as u32;
    format!("{millis:012x}{tag:08x}{sequence:08x}")
}

/// True when `id` has the shape [`new_command_id`] gives (checked before it
/// reaches a store key).
pub fn is_command_id(id: &str) -> bool {
    id.len() == 28
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_sort_by_time() {
        let earlier = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let later = DateTime::from_timestamp(1_790_000_001, 0).unwrap();
        let a = new_command_id(earlier);
        let b = new_command_id(earlier);
        let c = new_command_id(later);
        assert!(is_command_id(&a), "{a}");
        assert_ne!(a, b);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(!is_command_id("../x"));
    }
}

/// A fan-out: one operation sent to many stations in one call. Each
/// targeted station has an ordinary command carrying the batch id; the
/// stations that got none are counted here by reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    /// Its id (same shape as a command id).
    pub batch_id: String,
    /// The REST operation (`reset`, `ocpp`, ...).
    pub operation: String,
    /// The OCPP action when every command has the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// Stations that got a command.
    pub commands: u64,
    /// Stations that got none, by reason (`NotConnected`, `UnknownStation`,
    /// `VersionUnknown`, `Untranslatable`).
    pub skipped: std::collections::BTreeMap<String, u64>,
    /// The first reason an `Untranslatable` station gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untranslatable: Option<String>,
}
