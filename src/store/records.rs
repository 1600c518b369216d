//! Domain records kept by the store, one type per thing the CSMS remembers.
//!
//! Closed sets (token types, connector standards, ...) are enums, so a value
//! outside the set is refused where it enters (REST body, OCPP payload) and
//! never reaches a backend. The serde names are the wire names of the MaEVe
//! API (camelCase) and of OCPI (snake_case) where the record comes from there.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// ---------------------------------------------------------------------------
// Charge stations
// ---------------------------------------------------------------------------

/// How a station proves who it is, numbered as in the MaEVe API:
/// 0 = Basic auth over ws, 1 = TLS + Basic auth, 2 = TLS client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub enum SecurityProfile {
    /// Unsecured transport with HTTP Basic auth (OCPP security profile 1).
    UnsecuredBasicAuth,
    /// TLS with HTTP Basic auth (OCPP security profile 2).
    TlsBasicAuth,
    /// TLS with a client certificate (OCPP security profile 3).
    TlsClientCertificate,
}

impl TryFrom<i64> for SecurityProfile {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Self::UnsecuredBasicAuth),
            1 => Ok(Self::TlsBasicAuth),
            2 => Ok(Self::TlsClientCertificate),
            other => Err(format!("security profile must be 0, 1 or 2, not {other}")),
        }
    }
}

impl From<SecurityProfile> for u8 {
    fn from(p: SecurityProfile) -> u8 {
        match p {
            SecurityProfile::UnsecuredBasicAuth => 0,
            SecurityProfile::TlsBasicAuth => 1,
            SecurityProfile::TlsClientCertificate => 2,
        }
    }
}

impl SecurityProfile {
    /// True for the profiles that authenticate with a password.
    pub fn uses_password(self) -> bool {
        !matches!(self, SecurityProfile::TlsClientCertificate)
    }
}

impl ChargeStationAuth {
    /// What is wrong with it, as (field, reason): the password hash must be
    /// the base64 of 32 bytes, and profiles 0 and 1 need it.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        use base64::Engine;
        match &self.base64_sha256_password {
            Some(hash) => match base64::engine::general_purpose::STANDARD.decode(hash) {
                Err(e) => Some(("base64SHA256Password", format!("not standard base64: {e}"))),
                Ok(bytes) if bytes.len() != 32 => Some((
                    "base64SHA256Password",
                    format!(
                        "must encode the 32 bytes of a SHA-256 hash, not {}",
                        bytes.len()
                    ),
                )),
                Ok(_) => None,
            },
            None if self.security_profile.uses_password() => Some((
                "base64SHA256Password",
                "is required for security profiles 0 and 1 (Basic auth)".into(),
            )),
            None => None,
        }
    }
}

/// Connection details for a charge station (MaEVe `ChargeStationAuth`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargeStationAuth {
    /// 0 = unsecured transport with basic auth, 1 = TLS with basic auth, 2 = TLS with client certificate.
    #[schema(value_type = u8, minimum = 0, maximum = 2)]
    pub security_profile: SecurityProfile,
    /// base64 of the SHA-256 hash of the station's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "base64SHA256Password")]
    pub base64_sha256_password: Option<String>,
    /// When true, a Basic auth username other than the station id is tolerated.
    #[serde(default)]
    pub invalid_username_allowed: bool,
}

/// Whether a registered station has been configured yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Provisioning {
    /// Registered; its settings and certificates are still to be applied at boot.
    Pending,
    /// Configured and accepted.
    Provisioned,
}

/// A registered charge station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationRecord {
    /// The station's identity (the last path segment of its OCPP URL).
    pub id: String,
    /// How it authenticates.
    pub auth: ChargeStationAuth,
    /// Whether it has been configured yet.
    pub provisioning: Provisioning,
    /// When it was first registered.
    pub registered_at: DateTime<Utc>,
    /// When its registration last changed.
    pub updated_at: DateTime<Utc>,
}

/// Where a queued item stands on its way to the station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum DeliveryStatus {
    /// Not yet answered by the station (waiting for it to connect, or in flight).
    Pending,
    /// The station accepted it.
    Accepted,
    /// The station rejected it.
    Rejected,
    /// Accepted; takes effect after a reboot.
    RebootRequired,
    /// The station does not support it (unknown key, feature absent).
    NotSupported,
    /// The station does not implement the message (CALLERROR NotImplemented).
    NotImplemented,
    /// Delivery failed: CALLERROR or no answer in time. `Delivery::detail` says which.
    Failed,
}

/// The delivery state of one queued item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When the status last changed.
    pub updated_at: DateTime<Utc>,
    /// Why it failed or was refused, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Delivery {
    /// A fresh item waiting to be sent.
    pub fn pending(now: DateTime<Utc>) -> Self {
        Delivery {
            status: DeliveryStatus::Pending,
            updated_at: now,
            detail: None,
        }
    }
}

/// What an installed certificate is for (MaEVe certificate types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum CertificateUse {
    /// V2G root certificate.
    V2G,
    /// Mobility operator root certificate.
    MO,
    /// Manufacturer root certificate.
    MF,
    /// CSMS root certificate.
    CSMS,
}

/// Messages the CSMS may ask a station to send (MaEVe trigger names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TriggerMessage {
    /// Send a BootNotification.
    BootNotification,
    /// Send StatusNotifications.
    StatusNotification,
    /// Start a certificate signing request for the V2G certificate.
    SignV2GCertificate,
    /// Start a certificate signing request for the charging station certificate.
    SignChargingStationCertificate,
    /// Start a certificate signing request for both.
    SignCombinedCertificate,
}

/// OCPP protocol versions (defined with the protocol).
pub use crate::ocpp::Version as OcppVersion;

/// What a station said about itself in its last BootNotification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BootInfo {
    /// Vendor name.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Serial number, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Firmware version, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    /// Boot reason (2.0.1), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The last reported status of one connector (or EVSE, for id "0").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatus {
    /// The status as the station reported it (Available, Occupied, Charging, Faulted, ...).
    pub status: String,
    /// 1.6 error code, when not NoError.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// When the station says the status took effect (or when it arrived).
    pub updated_at: DateTime<Utc>,
}

/// What the station reported about itself while connected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationRuntime {
    /// Protocol version of its last connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocpp_version: Option<OcppVersion>,
    /// Its last BootNotification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootInfo>,
    /// When it last booted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_boot: Option<DateTime<Utc>>,
    /// When a message from it last arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// Connector statuses by "evse/connector" (2.0.1) or connector id (1.6).
    #[serde(default)]
    pub connectors: BTreeMap<String, ConnectorStatus>,
    /// The last firmware status notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_status: Option<String>,
    /// The last diagnostics (1.6) status notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics_status: Option<String>,
    /// The last log upload status notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_status: Option<String>,
    /// When the station last accepted a remote start (1.6
    /// RemoteStartTransaction) that may still wait for its transaction:
    /// only then do its starts look for the command to link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_start_accepted_at: Option<DateTime<Utc>>,
    /// The most recent security events, oldest first (at most [`MAX_SECURITY_EVENTS`]).
    #[serde(default)]
    pub security_events: Vec<SecurityEvent>,
}

/// Security events kept per station in its runtime record.
pub const MAX_SECURITY_EVENTS: usize = 20;

/// A security event a station reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvent {
    /// The event type (e.g. FirmwareUpdated, TamperDetectionActivated).
    pub kind: String,
    /// When it happened at the station.
    pub timestamp: DateTime<Utc>,
    /// Technical detail, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tech_info: Option<String>,
}

impl StationRuntime {
    /// Keeps a security event, dropping the oldest beyond the bound.
    pub fn push_security_event(&mut self, event: SecurityEvent) {
        self.security_events.push(event);
        let excess = self
            .security_events
            .len()
            .saturating_sub(MAX_SECURITY_EVENTS);
        self.security_events.drain(..excess);
    }
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/// The kind of an authorization token (OCPI token types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenType {
    /// One-off token, e.g. a payment terminal session.
    AdHocUser,
    /// Token from an app.
    AppUser,
    /// Anything else.
    Other,
    /// RFID card.
    Rfid,
}

/// How a station may cache a token (OCPI whitelist types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CacheMode {
    /// Always cache; no need to ask the CSMS.
    Always,
    /// Cache allowed.
    Allowed,
    /// Cache allowed only while offline.
    AllowedOffline,
    /// Never cache.
    Never,
}

/// An authorization token (MaEVe `Token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// Country code of the issuing eMSP (2 letters).
    pub country_code: String,
    /// Party id of the issuing eMSP (3 characters).
    pub party_id: String,
    /// The kind of token.
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// The unique token id.
    pub uid: String,
    /// The contract id (eMAID), normalized with its check digit.
    pub contract_id: String,
    /// The number printed on the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual_number: Option<String>,
    /// Issuing company.
    pub issuer: String,
    /// Groups tokens that work as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Whether the token may be used.
    pub valid: bool,
    /// Preferred language (ISO 639-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    /// How the token may be cached.
    pub cache_mode: CacheMode,
    /// When the record last changed (set by the CSMS; ignored on input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<DateTime<Utc>>,
}

impl Token {
    /// A token nothing is known of but its uid (allowed by an issuer that
    /// did not describe it).
    pub fn unknown(uid: &str) -> Token {
        Token {
            country_code: String::new(),
            party_id: String::new(),
            token_type: TokenType::Other,
            uid: uid.to_owned(),
            contract_id: String::new(),
            visual_number: None,
            issuer: String::new(),
            group_id: None,
            valid: true,
            language_code: None,
            cache_mode: CacheMode::Never,
            last_updated: None,
        }
    }
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// A client certificate uploaded by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCertificate {
    /// base64url (no padding) SHA-256 of the certificate's DER.
    pub hash: String,
    /// The PEM text as uploaded.
    pub pem: String,
    /// When it was uploaded.
    pub uploaded_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------

/// Which part of a transaction's life an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransactionEventKind {
    /// The transaction started (1.6 StartTransaction, 2.0.1 Started).
    Started,
    /// Something changed or meter values arrived.
    Updated,
    /// The transaction ended (1.6 StopTransaction, 2.0.1 Ended).
    Ended,
}

/// The token a transaction was authorized with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenRef {
    /// The token id as the station sent it.
    pub id: String,
    /// Its OCPP type (ISO14443, eMAID, Central, ...; "IdTag" for 1.6).
    pub token_type: String,
}

/// One sampled value of a meter reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledValue {
    /// The reading.
    pub value: f64,
    /// What was measured (default Energy.Active.Import.Register).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurand: Option<String>,
    /// Phase, when per phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Unit of the reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Why it was sampled (Sample.Periodic, Transaction.Begin, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Where it was measured (Outlet, Inlet, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A meter reading: sampled values at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterValue {
    /// The seq_no of the event that carried it (set by the store on read).
    #[serde(default)]
    pub seq_no: u64,
    /// When it was measured.
    pub timestamp: DateTime<Utc>,
    /// The values.
    pub sampled_values: Vec<SampledValue>,
}

/// One event in a transaction's life, as a station reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionEvent {
    /// The station that runs the transaction.
    pub station_id: String,
    /// The transaction id (2.0.1: the station's; 1.6: the one the CSMS assigned).
    pub transaction_id: String,
    /// The event's sequence number; events are idempotent by it.
    pub seq_no: u64,
    /// Started, Updated or Ended.
    pub kind: TransactionEventKind,
    /// When it happened at the station.
    pub timestamp: DateTime<Utc>,
    /// The token, when the event carries one.
    pub id_token: Option<IdTokenRef>,
    /// True when the station queued the event while offline.
    pub offline: bool,
    /// EVSE id, when known.
    pub evse_id: Option<u32>,
    /// Connector id, when known.
    pub connector_id: Option<u32>,
    /// Why it ended (on Ended, when given).
    pub stop_reason: Option<String>,
    /// Meter readings carried by the event.
    pub meter_values: Vec<MeterValue>,
}

impl MeterValue {
    /// Its whole-meter active import register, in Wh.
    pub fn energy_wh(&self) -> Option<f64> {
        energy_register_wh(self)
    }
}

/// The whole-meter active import register of `value`, in Wh.
fn energy_register_wh(value: &MeterValue) -> Option<f64> {
    value.sampled_values.iter().find_map(|sampled| {
        let measurand = sampled
            .measurand
            .as_deref()
            .unwrap_or("Energy.Active.Import.Register");
        if measurand != "Energy.Active.Import.Register" || sampled.phase.is_some() {
            return None;
        }
        Some(match sampled.unit.as_deref() {
            Some("kWh") => sampled.value * 1000.0,
            _ => sampled.value,
        })
    })
}

/// A transaction's summary: what its events add up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The station that runs it.
    pub station_id: String,
    /// Its id.
    pub transaction_id: String,
    /// The token it was authorized with (the latest one reported).
    pub id_token: Option<IdTokenRef>,
    /// When it started, once a Started event arrived.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended, once an Ended event arrived.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it ended.
    pub stop_reason: Option<String>,
    /// EVSE id, when known.
    pub evse_id: Option<u32>,
    /// Connector id, when known.
    pub connector_id: Option<u32>,
    /// Highest seq_no applied.
    pub last_seq_no: u64,
    /// Number of distinct events applied.
    pub event_count: u64,
    /// Number of meter values stored.
    pub meter_value_count: u64,
    /// True when any event was sent offline.
    pub offline: bool,
    /// The latest meter value reported (by its timestamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_meter_value: Option<MeterValue>,
    /// The energy register of the latest meter value that had one, in Wh
    /// (Energy.Active.Import.Register, whole-meter, kWh converted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_wh: Option<f64>,
}

impl Transaction {
    /// The summary before any event of `event`'s transaction was applied.
    pub fn empty_for(event: &TransactionEvent) -> Transaction {
        Transaction {
            station_id: event.station_id.clone(),
            transaction_id: event.transaction_id.clone(),
            id_token: None,
            started_at: None,
            ended_at: None,
            stop_reason: None,
            evse_id: None,
            connector_id: None,
            last_seq_no: 0,
            event_count: 0,
            meter_value_count: 0,
            offline: false,
            last_meter_value: None,
            energy_wh: None,
        }
    }

    /// True once the transaction has started and not ended.
    pub fn is_active(&self) -> bool {
        self.ended_at.is_none()
    }

    /// Folds one (not yet applied) event into the summary. Every backend
    /// folds with this, so summaries agree whatever the store.
    pub fn fold(&mut self, event: &TransactionEvent) {
        if event.id_token.is_some() {
            self.id_token = event.id_token.clone();
        }
        match event.kind {
            TransactionEventKind::Started => self.started_at = Some(event.timestamp),
            TransactionEventKind::Ended => {
                self.ended_at = Some(event.timestamp);
                if event.stop_reason.is_some() {
                    self.stop_reason = event.stop_reason.clone();
                }
            }
            TransactionEventKind::Updated => {}
        }
        self.evse_id = event.evse_id.or(self.evse_id);
        self.connector_id = event.connector_id.or(self.connector_id);
        self.last_seq_no = self.last_seq_no.max(event.seq_no);
        self.event_count += 1;
        self.meter_value_count += event.meter_values.len() as u64;
        self.offline |= event.offline;
        for value in &event.meter_values {
            let newer = self
                .last_meter_value
                .as_ref()
                .is_none_or(|last| value.timestamp >= last.timestamp);
            if newer {
                if let Some(wh) = energy_register_wh(value) {
                    self.energy_wh = Some(wh);
                }
                self.last_meter_value = Some(MeterValue {
                    seq_no: event.seq_no,
                    ..value.clone()
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------
// OCPI parties
// ---------------------------------------------------------------------------

/// Where an OCPI party stands in the registration handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OcpiRegistrationStatus {
    /// The token may only reach the registration endpoints.
    Pending,
    /// The token may reach every endpoint.
    Registered,
}

/// An OCPI party as voltgate kept it before [`OcpiPartner`] (the redb
/// table and ScyllaDB table `ocpi_parties`): converted when a store opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcpiParty {
    /// CREDENTIALS_TOKEN_A for the party.
    pub token: String,
    /// The party's versions endpoint, when the CSMS is to start the handshake.
    pub url: Option<String>,
    /// Where the registration stands.
    pub status: OcpiRegistrationStatus,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
}
