//! `GET /api/v0/nodes`: the live nodes of the cluster with the stations
//! each holds (from their leases); a node running alone lists itself.

use actix_web::{web, HttpResponse};

use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::store::NodeLease;

/// The live nodes, by id.
#[utoipa::path(get, path = "/api/v0/nodes", tag = "charge stations",
    responses((status = 200, body = Vec<NodeLease>), (status = 503, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let nodes = match state.store.cluster() {
        Some(cluster) if state.registry.in_cluster() => cluster.live_nodes().await?,
        _ => vec![NodeLease {
            node_id: "local".into(),
            url: String::new(),
            started_at: state.started_at,
            stations: state.registry.connected_versions().await.len() as u64,
        }],
    };
    Ok(HttpResponse::Ok().json(nodes))
}
