//! Handing one planned operation to a station, for every surface that
//! commands stations (the REST API, OCPI): the command is stored as
//! pending before anything is sent (a store failure sends nothing), then
//! routed to the station's actor, with a waiter for its outcome when the
//! caller wants one.

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::Call;
use crate::ocpp::Version;
use crate::station::actor::SendCommand;
use crate::store::{CommandRecord, Store, StoreResult};
use crate::supervisor::{Registry, RouteError};

/// A command stored and handed over (or not) to its station.
pub struct Dispatched {
    /// The command as stored.
    pub command: CommandRecord,
    /// Whether the station's actor took it.
    pub routed: Result<(), RouteError>,
    /// Its outcome once settled, when a waiter was asked for.
    pub answer: Option<oneshot::Receiver<CommandRecord>>,
}

/// The OCPP version to write a station's command in: the one it is
/// connected with, else the one it last connected with (None: it never
/// connected).
pub async fn version_of(store: &dyn Store, station: &str) -> StoreResult<Option<Version>> {
    Ok(store
        .runtime(station)
        .await?
        .and_then(|runtime| runtime.ocpp_version))
}

/// Stores `call` for `station` as a command of `operation` (expiring at
/// `expires_at`), then routes it; with `wait`, the answer channel.
#[allow(clippy::too_many_arguments)]
pub async fn dispatch(
    store: &dyn Store,
    registry: &Registry,
    station: &str,
    operation: &str,
    call: Call,
    version: Version,
    expires_at: Option<DateTime<Utc>>,
    wait: bool,
) -> StoreResult<Dispatched> {
    let mut command = CommandRecord::pending(
        station,
        operation,
        call.action,
        version,
        call.payload,
        call.class,
        Utc::now(),
    );
    command.expires_at = expires_at;
    store.create_command(command.clone()).await?;
    let (waiter, answer) = if wait {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let routed = registry
        .send_command(
            station,
            SendCommand {
                command: command.clone(),
                waiter,
            },
        )
        .await;
    Ok(Dispatched {
        command,
        routed,
        answer,
    })
}
