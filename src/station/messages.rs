//! The messages a station connection's actor takes from the rest of the
//! node: work and commands to deliver, and the orders to close.

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::store::{CommandRecord, Delivery, PendingWork, WorkItemRef};

/// What the answers to one delivery request add up to.
pub type DeliveryReport = Vec<(WorkItemRef, Delivery)>;

/// Deliver queued work to the station now; `waiter` hears how each item ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The items (already stored as pending).
    pub work: PendingWork,
    /// Who waits for the answers, if anyone.
    pub waiter: Option<oneshot::Sender<DeliveryReport>>,
}

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
