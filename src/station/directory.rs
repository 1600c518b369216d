//! How a station connection makes itself known to the node: the
//! [`Directory`] it registers a [`StationHandle`] with when it starts and
//! leaves when it stops. The supervisor's registry implements it; the
//! station side knows only this trait and its own message types, so the
//! dependency runs one way (supervisor → station), and a handle to a
//! station on another node can later stand where a local one does.

use actix::Recipient;

use super::actor::{GoingAway, Replaced, SendCommand};
use crate::ocpp::Version;

/// Identifies one connection (a station may reconnect; the old one must not
/// unregister the new one): microseconds of the node's clock when it opened,
/// kept increasing within the node, so that across the nodes of a cluster
/// the later connection of a station has the larger id.
pub type ConnectionId = u64;

/// The id of a connection opening now (`last`: the node's latest).
pub fn next_connection_id(last: &std::sync::atomic::AtomicU64) -> ConnectionId {
    use std::sync::atomic::Ordering;
    let now = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
    let mut seen = last.load(Ordering::Relaxed);
    loop {
        let id = now.max(seen + 1);
        match last.compare_exchange_weak(seen, id, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return id,
            Err(current) => seen = current,
        }
    }
}

/// What the node can ask of one connected station.
#[derive(Clone)]
pub struct StationHandle {
    /// The station id.
    pub id: String,
    /// Its connection.
    pub connection: ConnectionId,
    /// The OCPP version it speaks.
    pub version: Version,
    /// Send a stored command.
    pub command: Recipient<SendCommand>,
    /// A newer connection took over.
    pub replaced: Recipient<Replaced>,
    /// The node is shutting down.
    pub going_away: Recipient<GoingAway>,
}

impl StationHandle {
    /// Whether the connection is still there.
    pub fn connected(&self) -> bool {
        self.command.connected()
    }
}

/// The node's directory of connected stations.
pub trait Directory: Send + Sync {
    /// Registers a connection; an older one of the same station is told to close.
    fn connect(&self, handle: StationHandle);
    /// Unregisters a connection, without waiting (ignored when a newer one replaced it).
    fn disconnect(&self, id: &str, connection: ConnectionId);
}
