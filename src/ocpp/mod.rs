//! The OCPP protocol, free of I/O: versions, OCPP-J frames, CALLERROR codes,
//! the official JSON schemas and which actions exist in each version.
//! Nothing here knows about actors, sockets or the store.

pub mod actions;
pub mod error;
pub mod frame;
pub mod schema;
pub mod setting_key;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// OCPP protocol versions voltgate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Version {
    /// OCPP 1.6 (JSON, edition 2 with the security extensions).
    #[serde(rename = "1.6")]
    V16,
    /// OCPP 2.0.1.
    #[serde(rename = "2.0.1")]
    V201,
}

impl Version {
    /// Supported WebSocket subprotocols, in our order of preference.
    pub const SUBPROTOCOLS: [&'static str; 2] = ["ocpp2.0.1", "ocpp1.6"];

    /// The version a subprotocol name stands for.
    pub fn from_subprotocol(name: &str) -> Option<Version> {
        match name.trim() {
            "ocpp1.6" => Some(Version::V16),
            "ocpp2.0.1" => Some(Version::V201),
            _ => None,
        }
    }

    /// The subprotocol name of this version.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
        }
    }

    /// Picks the first subprotocol the station offers that voltgate speaks
    /// (OCPP-J: the station lists them in its order of preference).
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Version> {
        offered.into_iter().find_map(Version::from_subprotocol)
    }

    /// A short label for logs and metrics ("1.6", "2.0.1").
    pub fn label(self) -> &'static str {
        match self {
            Version::V16 => "1.6",
            Version::V201 => "2.0.1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_first_supported_offer() {
        assert_eq!(
            Version::negotiate(["ocpp1.6", "ocpp2.0.1"]),
            Some(Version::V16)
        );
        assert_eq!(
            Version::negotiate(["ocpp2.1", "ocpp2.0.1", "ocpp1.6"]),
            Some(Version::V201)
        );
        assert_eq!(Version::negotiate(["ocpp1.5", "mqtt"]), None);
        assert_eq!(Version::negotiate([]), None);
    }
}
