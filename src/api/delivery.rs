//! Handing freshly queued work to the station's actor, and `?wait=true`:
//! waiting (bounded) for the station's answers.
//!
//! The work is already stored as pending when this runs, so nothing is lost
//! when the station is offline or busy: it gets the work at its next boot.
//! Without `wait`, the MaEVe status codes apply (200). With it: 200 and the
//! answers when every item was answered in time, 202 and the statuses so far
//! when not (offline, busy, slow).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::AppState;
use crate::station::actor::{Deliver, DeliveryReport};
use crate::store::{Delivery, DeliveryStatus, PendingWork, WorkItemRef};
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
pub struct ItemResult {
    /// setting, certificate, trigger or chargingProfile.
    item: &'static str,
    /// The setting key, certificate id, trigger number or profile id.
    id: String,
    /// Its delivery.
    #[serde(flatten)]
    delivery: Delivery,
}

fn item_result((item, delivery): (WorkItemRef, Delivery)) -> ItemResult {
    let (kind, id) = match item {
        WorkItemRef::Setting(key) => ("setting", key),
        WorkItemRef::Certificate(id) => ("certificate", id),
        WorkItemRef::Trigger(seq) => ("trigger", seq.to_string()),
        WorkItemRef::ChargingProfile(id) => ("chargingProfile", id.to_string()),
    };
    ItemResult {
        item: kind,
        id,
        delivery,
    }
}

fn as_report(work: &PendingWork) -> DeliveryReport {
    let mut report: DeliveryReport = Vec::new();
    report.extend(
        work.settings
            .iter()
            .map(|s| (WorkItemRef::Setting(s.key.clone()), s.delivery.clone())),
    );
    report.extend(work.certificates.iter().map(|c| {
        (
            WorkItemRef::Certificate(c.certificate_id.clone()),
            c.delivery.clone(),
        )
    }));
    report.extend(
        work.triggers
            .iter()
            .map(|t| (WorkItemRef::Trigger(t.seq), t.delivery.clone())),
    );
    report.extend(work.charging_profiles.iter().map(|p| {
        (
            WorkItemRef::ChargingProfile(p.profile_id),
            p.delivery.clone(),
        )
    }));
    report
}

fn reply(status: StatusCode, report: DeliveryReport, reason: Option<&str>) -> HttpResponse {
    let delivered = reason.is_none()
        && report
            .iter()
            .all(|(_, d)| d.status != DeliveryStatus::Pending);
    let reason = reason
        .map(str::to_owned)
        .or_else(|| (!delivered).then(|| "the station has not answered every item yet".to_owned()));
    let status = if delivered {
        status
    } else {
        StatusCode::ACCEPTED
    };
    HttpResponse::build(status).json(DeliveryReply {
        delivered,
        reason,
        results: report.into_iter().map(item_result).collect(),
    })
}

/// Routes `work` (already stored) to the station; waits for its answers when
/// asked. `action` names the command for metrics.
pub async fn dispatch(
    state: &AppState,
    action: &'static str,
    id: &str,
    work: PendingWork,
    wait: bool,
) -> Result<HttpResponse, ApiError> {
    if !wait {
        let result = match state
            .registry
            .deliver(id, Deliver { work, waiter: None })
            .await
        {
            Ok(()) => "routed",
            Err(RouteError::NotConnected) => "not_connected",
            Err(RouteError::Busy) => {
                tracing::warn!(station = %id, "station busy; work stays pending until its next boot");
                "busy"
            }
        };
        crate::metrics::command(action, result);
        return Ok(HttpResponse::Ok().finish());
    }
    let started = std::time::Instant::now();
    let pending = as_report(&work);
    let (tx, rx) = oneshot::channel();
    let deliver = Deliver {
        work,
        waiter: Some(tx),
    };
    let (result, report, reason) = match state.registry.deliver(id, deliver).await {
        Err(RouteError::NotConnected) => (
            "not_connected",
            pending,
            Some("the station is not connected; it gets this at its next boot"),
        ),
        Err(RouteError::Busy) => (
            "busy",
            pending,
            Some("the station is busy; it gets this at its next boot"),
        ),
        Ok(()) => match tokio::time::timeout(state.wait_timeout, rx).await {
            Ok(Ok(report)) => {
                crate::metrics::command_round_trip(action, started.elapsed());
                ("answered", report, None)
            }
            Ok(Err(_)) => (
                "connection_closed",
                pending,
                Some("the connection closed; the station gets this at its next boot"),
            ),
            Err(_) => (
                "timeout",
                pending,
                Some("no answer in time; delivery goes on"),
            ),
        },
    };
    crate::metrics::command(action, result);
    Ok(reply(StatusCode::OK, report, reason))
}
