//! Storing the commands of MaEVe's queueing endpoints and handing them to
//! the station's actor, and `?wait=true`: waiting (bounded) for the
//! station's answers.
//!
//! The commands are stored as pending before any is routed, so nothing is
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

fn reply(results: Vec<ItemResult>, reason: Option<&str>) -> HttpResponse {
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

/// Stores the commands of one request (all or none on the embedded store),
/// then routes them, in order, to the station; waits for its answers when
/// asked. `operation` names the endpoint for metrics.
pub async fn queue(
    state: &AppState,
    operation: &'static str,
    id: &str,
    commands: Vec<CommandRecord>,
    wait: bool,
) -> Result<HttpResponse, ApiError> {
    state.store.create_commands(id, &commands).await?;
    let started = std::time::Instant::now();
    let mut routed = Ok(());
    // How each item stands as it was stored; an answer replaces its entry.
    let mut results: Vec<ItemResult> = Vec::with_capacity(commands.len());
    let mut answers = Vec::new();
    for command in commands {
        results.extend(item_result(&command));
        if command.status.is_final() || routed.is_err() {
            // Settled at once, or the station cannot take it now: it waits
            // for the next boot.
            continue;
        }
        let (waiter, answer) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let send = SendCommand { command, waiter };
        routed = state.registry.send_command(id, send).await;
        if routed.is_ok() {
            answers.extend(answer.map(|rx| (results.len() - 1, rx)));
        }
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
    let (result, reason) = match routed {
        Err(RouteError::NotConnected) => (
            "not_connected",
            Some("the station is not connected; it gets this at its next boot"),
        ),
        Err(RouteError::Busy) => (
            "busy",
            Some("the station is busy; it gets this at its next boot"),
        ),
        Ok(()) => {
            let all = join_all(
                answers
                    .into_iter()
                    .map(|(index, rx)| async move { (index, rx.await) }),
            );
            match tokio::time::timeout(state.wait_timeout, all).await {
                Ok(outcomes) => {
                    let mut closed = false;
                    for (index, outcome) in outcomes {
                        match outcome.ok().as_ref().and_then(item_result) {
                            Some(answered) => results[index] = answered,
                            None => closed = true,
                        }
                    }
                    if closed {
                        let why =
                            "the connection closed; the station gets the rest at its next boot";
                        ("connection_closed", Some(why))
                    } else {
                        crate::metrics::command_round_trip(operation, started.elapsed());
                        ("answered", None)
                    }
                }
                Err(_) => {
                    refresh(state, id, &mut results).await?;
                    ("timeout", Some("no answer in time; delivery goes on"))
                }
            }
        }
    };
    crate::metrics::command(operation, result);
    Ok(reply(results, reason))
}

/// The items still pending as the store has them now (the actor may have
/// settled some since).
async fn refresh(
    state: &AppState,
    station: &str,
    results: &mut [ItemResult],
) -> Result<(), ApiError> {
    for result in results.iter_mut() {
        if result.delivery.status != DeliveryStatus::Pending {
            continue;
        }
        let stored = state.store.command(station, &result.command_id).await?;
        if let Some(now) = stored.as_ref().and_then(item_result) {
            *result = now;
        }
    }
    Ok(())
}
