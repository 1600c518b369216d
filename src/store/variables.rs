//! What a station reports about its configuration: one record per key
//! (a 1.6 configuration key, or a 2.0.1 component variable written
//! `Component[;instance][;evse]/Variable[;instance][;attribute]`), the last
//! value learnt with when and how.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The last known state of one station setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportedVariable {
    /// The key, in the form `reconfigure` takes.
    pub key: String,
    /// The value, when the station gave one (write-only ones have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// ReadOnly, ReadWrite, WriteOnly, when the station said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutability: Option<String>,
    /// Why there is no value (UnknownKey, UnknownComponent, Rejected, ...),
    /// or RebootRequired for a value set that applies after a reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// How it was learnt: GetConfiguration, GetVariables, NotifyReport,
    /// or the set that the station accepted (ChangeConfiguration, SetVariables).
    pub source: String,
    /// When.
    pub reported_at: DateTime<Utc>,
}
