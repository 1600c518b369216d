//! Handing the commands of MaEVe's queueing endpoints to the station's
//! actor, and `?wait=true`: waiting (bounded) for the station's answers.
//!
//! The commands are already stored as pending when this runs, so nothing is
//! lost when the station is offline or busy: it gets them at its next boot.
//! Without `wait`, the MaEVe status codes apply (200). With it: 200 and the
//! answers when every item was answered in time, 202 and the statuses so far
//! when not (offline, busy, slow).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::AppState;
use crate::station::actor::SendCommand;
use crate::station::operations::work_item::{self, WorkItem};
use crate::store::{CommandRecord, Delivery, DeliveryStatus};
use crate::supervisor::RouteError;

/// `?wait=true`: answer with the station's answers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait (bounded by --wait-timeout-secs) for the station's answer.
    wait: Option<bool>,
}

impl WaitQuery {
    /// Whether the caller waits.
    pub fn wait(&self) -> bool {
        self.wait.unwrap_or(false)
    }
}

/// How the items of one request stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryReply {
    /// True when the station answered every item.
    delivered: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// One entry per item.
    results: Vec<ItemResult>,
}

/// How one item stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult {
    /// setting, certificate, trigger or chargingProfile.
    item: &'static str,
    /// The setting key, certificate id or profile id; for a trigger, its command id.
    id: String,
    /// The command that carries it (`GET /api/v0/cs/{csId}/commands/{commandId}`).
    command_id: String,
    /// Its delivery.
    #[serde(flatten)]
    delivery: Delivery,
}

/// The MaEVe view of one item's command.
pub fn item_result(command: &CommandRecord) -> Option<ItemResult> {
    let (kind, name) = WorkItem::label_of(command)?;
    Some(ItemResult {
        item: kind,
        id: name.unwrap_or_else(|| command.id.clone()),
        command_id: command.id.clone(),
        delivery: work_item::delivery(command)
            .unwrap_or_else(|| Delivery::pending(command.created_at)),
    })
}

fn reply(commands: &[CommandRecord], reason: Option<&str>) -> HttpResponse {
    let results: Vec<ItemResult> = commands.iter().filter_map(item_result).collect();
    let delivered = reason.is_none()
        && results
            .iter()
            .all(|r| r.delivery.status != DeliveryStatus::Pending);
    let reason = reason
        .map(str::to_owned)
        .or_else(|| (!delivered).then(|| "the station has not answered every item yet".to_owned()));
    let status = if delivered {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    HttpResponse::build(status).json(DeliveryReply {
        delivered,
        reason,
        results,
    })
}

/// Routes `commands` (already stored, in order) to the station; waits for
/// its answers when asked. `operation` names the endpoint for metrics.
pub async fn dispatch(
    state: &AppState,
    operation: &'static str,
    id: &str,
    commands: Vec<CommandRecord>,
    wait: bool,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let mut routed = Ok(());
    let mut answers = Vec::new();
    for command in commands.iter().filter(|c| !c.status.is_final()) {
        let (waiter, answer) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let send = SendCommand {
            command: command.clone(),
            waiter,
        };
        routed = state.registry.send_command(id, send).await;
        if routed.is_err() {
            // Not connected or busy: the rest waits for the next boot too.
            break;
        }
        answers.extend(answer.map(|rx| (command.id.clone(), rx)));
    }
    let result = match routed {
        Ok(()) => "routed",
        Err(RouteError::NotConnected) => "not_connected",
        Err(RouteError::Busy) => {
            tracing::warn!(station = %id, "station busy; its commands stay pending until its next boot");
            "busy"
        }
    };
    if !wait {
        crate::metrics::command(operation, result);
        return Ok(HttpResponse::Ok().finish());
    }
    let (result, settled, reason) = match routed {
        Err(RouteError::NotConnected) => (
            "not_connected",
            commands,
            Some("the station is not connected; it gets this at its next boot"),
        ),
        Err(RouteError::Busy) => (
            "busy",
            commands,
            Some("the station is busy; it gets this at its next boot"),
        ),
        Ok(()) => {
            let all = join_all(
                answers
                    .into_iter()
                    .map(|(id, rx)| async move { (id, rx.await) }),
            );
            match tokio::time::timeout(state.wait_timeout, all).await {
                Ok(outcomes) => {
                    let closed = outcomes.iter().any(|(_, outcome)| outcome.is_err());
                    let mut answered: std::collections::HashMap<String, CommandRecord> = outcomes
                        .into_iter()
                        .filter_map(|(id, outcome)| Some((id, outcome.ok()?)))
                        .collect();
                    let settled: Vec<CommandRecord> = commands
                        .into_iter()
                        .map(|c| answered.remove(&c.id).unwrap_or(c))
                        .collect();
                    if closed {
                        (
                            "connection_closed",
                            settled,
                            Some(
                                "the connection closed; the station gets the rest at its next boot",
                            ),
                        )
                    } else {
                        crate::metrics::command_round_trip(operation, started.elapsed());
                        ("answered", settled, None)
                    }
                }
                Err(_) => (
                    "timeout",
                    current(state, commands).await?,
                    Some("no answer in time; delivery goes on"),
                ),
            }
        }
    };
    crate::metrics::command(operation, result);
    Ok(reply(&settled, reason))
}

/// The commands as the store has them now (the actor may have settled some).
async fn current(
    state: &AppState,
    commands: Vec<CommandRecord>,
) -> Result<Vec<CommandRecord>, ApiError> {
    let mut now = Vec::with_capacity(commands.len());
    for command in commands {
        let stored = state
            .store
            .command(&command.station_id, &command.id)
            .await?;
        now.push(stored.unwrap_or(command));
    }
    Ok(now)
}
