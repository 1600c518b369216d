//! The fleet view: `GET /api/v0/cs/{csId}` (one station in full) and
//! `GET /api/v0/cs` (stations in id order, optionally only the connected or
//! the disconnected ones).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::commands::CommandView;
use super::error::{ApiError, ErrorBody};
use super::paging::{with_next_cursor, PageQuery};
use super::AppState;
use crate::store::{Page, Provisioning, StationRecord, StationRuntime};

/// Runtime records read at once for a page of the fleet list.
const RUNTIME_READS_AT_ONCE: usize = 16;

/// A station as the fleet view shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationView {
    /// The station id.
    id: String,
    /// 0, 1 or 2 (see ChargeStationAuth).
    security_profile: u8,
    /// Whether a Basic auth username other than the id is tolerated.
    invalid_username_allowed: bool,
    /// Pending until configured and accepted at boot.
    provisioning: Provisioning,
    /// Whether it has a live connection (to any node of a cluster).
    connected: bool,
    /// On a node of a cluster: the node that holds its connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    /// When it was first registered.
    registered_at: DateTime<Utc>,
    /// When its registration last changed.
    updated_at: DateTime<Utc>,
    /// What it reported while connected (version, boot details, last seen, connectors, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<StationRuntime>,
    /// Its outbox: the commands waiting for it or in flight, oldest first,
    /// MaEVe's queued settings, certificates, triggers and charging
    /// profiles among them (only on the single-station view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_commands: Option<Vec<CommandView>>,
}

fn view(
    station: StationRecord,
    (connected, node): (bool, Option<String>),
    runtime: Option<StationRuntime>,
    pending_commands: Option<Vec<CommandView>>,
) -> StationView {
    StationView {
        id: station.id,
        security_profile: station.auth.security_profile.into(),
        invalid_username_allowed: station.auth.invalid_username_allowed,
        provisioning: station.provisioning,
        connected,
        node,
        registered_at: station.registered_at,
        updated_at: station.updated_at,
        runtime,
        pending_commands,
    }
}

/// The station's registration, connection, runtime state and outbox.
#[utoipa::path(get, path = "/api/v0/cs/{csId}", tag = "charge stations",
    params(("csId" = String, Path, description = "The charge station id")),
    responses((status = 200, body = StationView), (status = 404, body = ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let station = state
        .store
        .station(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("charge station", &id))?;
    let runtime = state.store.runtime(&id).await?;
    let now = Utc::now();
    let outbox = state.store.outbox(&id).await?;
    let pending = outbox
        .into_iter()
        .map(|command| super::commands::view(command.as_seen_at(now), None))
        .collect();
    let holder = state.registry.holder(&id).await;
    Ok(HttpResponse::Ok().json(view(station, holder, runtime, Some(pending))))
}

/// Filter of the station list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectedFilter {
    /// Only connected (true) or only disconnected (false) stations.
    connected: Option<bool>,
}

/// Registered stations in id order, paged like tokens (`X-Next-Cursor` on a full page).
#[utoipa::path(get, path = "/api/v0/cs", tag = "charge stations", params(PageQuery, ConnectedFilter),
    responses((status = 200, body = Vec<StationView>), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
    filter: web::Query<ConnectedFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = page.page()?;
    let registry = &state.registry;
    let stations: Vec<StationRecord> = match filter.connected {
        None => state.store.list_stations(page.clone()).await?,
        // This node's own connected stations, listed from its registry.
        Some(true) if !registry.in_cluster() => {
            let connected = registry.connected().await;
            let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
            let after = page.after.as_deref().unwrap_or("");
            let mut out = Vec::new();
            let ids = connected.iter().filter(|id| id.as_str() > after);
            for id in ids.skip(offset).take(page.limit as usize) {
                if let Some(station) = state.store.station(id).await? {
                    out.push(station);
                }
            }
            out
        }
        // The others are sought in the store batch by batch, each batch
        // looked up at once (in a cluster, on the other nodes too: this
        // node knows only its own).
        Some(wanted) => {
            seek_stations(&state, &page, |ids| async move {
                let holders = registry.holders(&ids).await;
                holders.into_iter().map(|(c, _)| c == wanted).collect()
            })
            .await?
        }
    };
    let last = stations.last().map(|s| s.id.clone());
    let ids: Vec<String> = stations.iter().map(|s| s.id.clone()).collect();
    let holders = registry.holders(&ids).await;
    // The page's runtime records side by side (one round trip each on
    // ScyllaDB), in the page's order.
    let runtimes: Vec<_> = stream::iter(&ids)
        .map(|id| state.store.runtime(id))
        .buffered(RUNTIME_READS_AT_ONCE)
        .collect()
        .await;
    let mut views = Vec::with_capacity(stations.len());
    for ((station, holder), runtime) in stations.into_iter().zip(holders).zip(runtimes) {
        views.push(view(station, holder, runtime?, None));
    }
    let mut response = with_next_cursor(HttpResponse::Ok(), &page, views.len(), last.as_deref());
    Ok(response.json(views))
}

/// The page of stations, in id order, that `keep` keeps: seeks through the
/// store in batches until the page is full. `keep` decides on a batch's ids
/// at once and answers in their order.
async fn seek_stations<F, Fut>(
    state: &AppState,
    page: &Page,
    keep: F,
) -> Result<Vec<StationRecord>, ApiError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Vec<bool>>,
{
    const BATCH: u32 = 500;
    let (mut out, mut skipped) = (Vec::new(), 0u64);
    let mut after = page.after.clone();
    while out.len() < page.limit as usize {
        let batch = state
            .store
            .list_stations(Page {
                offset: 0,
                limit: BATCH,
                after: after.clone(),
            })
            .await?;
        let done = batch.len() < BATCH as usize;
        after = batch.last().map(|s| s.id.clone());
        let kept = keep(batch.iter().map(|s| s.id.clone()).collect()).await;
        for (station, kept) in batch.into_iter().zip(kept) {
            if !kept {
                continue;
            }
            if skipped < page.offset {
                skipped += 1;
            } else if out.len() < page.limit as usize {
                out.push(station);
            }
        }
        if done {
            break;
        }
    }
    Ok(out)
}
