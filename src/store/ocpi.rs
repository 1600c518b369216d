//! OCPI roaming partners: what voltgate keeps of each registration (its
//! state in the credentials handshake, the token voltgate sends, the hash of
//! the token the partner sends, the partner's roles and module endpoints).
//!
//! The token a partner sends is only ever checked, so only its SHA-256 is
//! kept; the token voltgate sends is kept as given, since it is sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{OcpiParty, OcpiRegistrationStatus};

impl From<OcpiParty> for OcpiPartner {
    fn from(party: OcpiParty) -> Self {
        OcpiPartner::from_registration(&party.token, party.url, party.status, party.registered_at)
    }
}

/// One OCPI partner and where its registration stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcpiPartner {
    /// Stable id of the registration (`p` + 16 hex digits of the first
    /// token's hash): what `/api/v0/register` lists and metrics name.
    pub id: String,
    /// PENDING: the partner's token reaches only versions, version details
    /// and credentials. REGISTERED: every module.
    pub status: OcpiRegistrationStatus,
    /// The partner's versions URL, once known.
    #[serde(default)]
    pub versions_url: Option<String>,
    /// The token voltgate sends in its calls to the partner.
    #[serde(default)]
    pub token_to_partner: Option<String>,
    /// SHA-256 (hex) of the token the partner sends to voltgate.
    #[serde(default)]
    pub token_hash: Option<String>,
    /// The partner's roles from its credentials.
    #[serde(default)]
    pub roles: Vec<PartnerRole>,
    /// The partner's OCPI 2.2.1 module endpoints.
    #[serde(default)]
    pub endpoints: Vec<PartnerEndpoint>,
    /// Why the last handshake attempt failed (cleared when one succeeds).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Handshake attempts that failed in a row (drives the back-off).
    #[serde(default)]
    pub failed_attempts: u32,
    /// Set when location pushes did not fit the full queue: every published
    /// location updated since then is sent again once the queue is drained.
    #[serde(default)]
    pub resync_locations_since: Option<DateTime<Utc>>,
    /// When the registration was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A role the partner plays (OCPI CredentialsRole).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerRole {
    /// CPO, EMSP, HUB, NAP, NSP, OTHER, SCSP.
    pub role: String,
    /// ISO 3166-1 alpha-2 country code of the party.
    pub country_code: String,
    /// The party id (3 characters).
    pub party_id: String,
    /// The party's BusinessDetails, as sent.
    #[serde(default)]
    pub business_details: serde_json::Value,
}

/// One module endpoint of the partner (OCPI Endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerEndpoint {
    /// Module identifier (`locations`, `tokens`, ...).
    pub identifier: String,
    /// SENDER or RECEIVER.
    pub role: String,
    /// The endpoint's URL.
    pub url: String,
}

impl OcpiPartner {
    /// The partner of an operator's registration (`POST /api/v0/register`):
    /// with `url`, `token` is TOKEN_A for voltgate's calls to the partner
    /// (and, once REGISTERED, also accepted from it); without, it is the
    /// token the partner will call voltgate with.
    pub fn from_registration(
        token: &str,
        url: Option<String>,
        status: OcpiRegistrationStatus,
        now: DateTime<Utc>,
    ) -> Self {
        let accepted = url.is_none() || status == OcpiRegistrationStatus::Registered;
        OcpiPartner {
            id: partner_id_for(token),
            status,
            token_to_partner: url.as_ref().map(|_| token.to_owned()),
            versions_url: url,
            token_hash: accepted.then(|| token_hash(token)),
            roles: Vec::new(),
            endpoints: Vec::new(),
            last_error: None,
            failed_attempts: 0,
            resync_locations_since: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The URL of the partner's `identifier` module in `role`, if it has one.
    pub fn endpoint(&self, identifier: &str, role: &str) -> Option<&str> {
        self.endpoints
            .iter()
            .find(|e| e.identifier == identifier && e.role == role)
            .map(|e| e.url.as_str())
    }

    /// The role voltgate deals with: the partner's eMSP role, else its first.
    pub fn emsp_role(&self) -> Option<&PartnerRole> {
        self.roles
            .iter()
            .find(|r| r.role == "EMSP")
            .or_else(|| self.roles.first())
    }

    /// The party ids of the partner's roles, `CC-PID` each (for logs, metrics).
    pub fn parties(&self) -> Vec<String> {
        self.roles
            .iter()
            .map(|r| format!("{}-{}", r.country_code, r.party_id))
            .collect()
    }
}

/// One call waiting in a partner's push queue: a module object sent to the
/// partner's receiver endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcpiPush {
    /// Its place in the partner's queue (given by the store; 0 before).
    pub seq: u64,
    /// The object it carries the state of (`location/L1`, `evse/L1/E1`):
    /// a full queue keeps only the latest push of an object.
    pub object: String,
    /// The receiver module (`locations`).
    pub module: String,
    /// PUT or PATCH.
    pub method: String,
    /// The path below the module's endpoint (`GB/TWK/L1/E1`).
    pub path: String,
    /// The JSON body.
    pub body: serde_json::Value,
    /// When it was queued (the delay partners see is measured from here).
    pub queued_at: DateTime<Utc>,
}

/// The kinds of OCPI object voltgate keeps for partners to pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OcpiObjectKind {
    /// A charging session (OCPI Session), while it runs and after.
    Session,
    /// A charge detail record (OCPI CDR), once its session ended.
    Cdr,
    /// An eMSP's reservation (RESERVE_NOW) and the OCPP one it became.
    Reservation,
}

impl OcpiObjectKind {
    /// Its name in keys (`session`, `cdr`).
    pub fn name(self) -> &'static str {
        match self {
            OcpiObjectKind::Session => "session",
            OcpiObjectKind::Cdr => "cdr",
            OcpiObjectKind::Reservation => "reservation",
        }
    }
}

/// A Session or CDR as voltgate sends it to the eMSP it belongs to, with
/// the OCPP transaction it tells of (never sent: voltgate's own ids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcpiObject {
    /// Session or CDR.
    pub kind: OcpiObjectKind,
    /// The object's OCPI id.
    pub id: String,
    /// The eMSP it belongs to, `CC-PID` of the token's issuer: only that
    /// party pulls it.
    pub party: String,
    /// The station that ran the transaction.
    pub station_id: String,
    /// The OCPP transaction id.
    pub transaction_id: String,
    /// The OCPI object, as pushed and pulled.
    pub body: serde_json::Value,
    /// Its `last_updated` (lists are ordered by it).
    pub last_updated: DateTime<Utc>,
}

/// The SHA-256 (hex) a partner's token is kept and looked up as.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A registration id derived from the first token of the registration.
pub fn partner_id_for(token: &str) -> String {
    format!("p{}", &token_hash(token)[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_to_hex_sha256_and_ids_follow() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(partner_id_for("abc"), "pba7816bf8f01cfea");
    }
}
