//! The messages a station connection's actor takes from the rest of the
//! node: commands to deliver, and the orders to close.

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::store::CommandRecord;

/// Send a stored command when the station's state allows (now, or after
/// its boot); `waiter` hears the command's settled record.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendCommand {
    /// The command (already stored as pending).
    pub command: CommandRecord,
    /// Who waits for its outcome, if anyone.
    pub waiter: Option<oneshot::Sender<CommandRecord>>,
}

/// A newer connection of the same station took over: close this one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Replaced;

/// The node is shutting down: close with 1012 (Service Restart), so the
/// station reconnects, to another node or to this one when it is back.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GoingAway;
