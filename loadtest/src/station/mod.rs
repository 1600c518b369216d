//! One simulated charge station: the protocol as a pure state machine
//! (`machine`, with the payloads it sends and answers in `messages`), the
//! WebSocket connection (`link`) and the task that drives one station's
//! life: connect, boot, run its scenario, drop and reconnect (`task`).

pub mod link;
pub mod machine;
pub mod messages;
pub mod task;

use serde::{Deserialize, Serialize};

/// The OCPP version a station speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// OCPP 1.6 (JSON).
    V16,
    /// OCPP 2.0.1.
    V201,
}

impl Version {
    /// The WebSocket subprotocol offered in the handshake.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
        }
    }
}
