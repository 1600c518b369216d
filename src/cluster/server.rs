//! The internal API other nodes call (`--cluster-listen`, never the public
//! REST listener), each call with `Authorization: Bearer <cluster token>`:
//!
//! - `POST /cluster/v1/deliver {command}`: hand a stored command to the
//!   station's connection on this node → `{"routed": "ok" | "busy" |
//!   "not_connected"}`; with `reply_to` (a node id), the command's answer
//!   is pushed to that node once the station gives it;
//! - `POST /cluster/v1/settled {command}`: the answer of a command this
//!   node forwarded, for its REST caller still waiting → `{"taken": bool}`;
//! - `POST /cluster/v1/taken-over {station_id, connection}`: the station
//!   connected to another node; its older connection here closes (1008)
//!   → `{"closed": bool}`;
//! - `GET /cluster/v1/node`: who this node is.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::link::ClusterLink;
use crate::station::actor::SendCommand;
use crate::store::{CommandRecord, Store};
use crate::supervisor::{Registry, RouteError};

/// What the handlers share.
struct Internal {
    registry: Registry,
    link: ClusterLink,
    store: Arc<dyn Store>,
    token_hash: [u8; 32],
    node_id: String,
}

fn refused(status: actix_web::http::StatusCode, why: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"status": status.as_u16(), "error": why}))
}

/// Whether the request carries the cluster token (compared by hash, so
/// the time taken says nothing about the token).
fn authorized(req: &ServiceRequest, token_hash: &[u8; 32]) -> bool {
    let presented = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    presented.is_some_and(|token| {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        hash == *token_hash
    })
}

/// Refuses every call without the cluster token, before its body is read.
async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let allowed = req
        .app_data::<web::Data<Internal>>()
        .is_some_and(|internal| authorized(&req, &internal.token_hash));
    if !allowed {
        return Ok(req.into_response(unauthorized()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn unauthorized() -> HttpResponse {
    refused(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "missing or wrong cluster token (Authorization: Bearer <--cluster-token>)",
    )
}

#[derive(Deserialize)]
struct Deliver {
    command: CommandRecord,
    /// The node whose REST caller waits for the answer: it is pushed there.
    #[serde(default)]
    reply_to: Option<String>,
}

async fn deliver(internal: web::Data<Internal>, body: web::Json<Deliver>) -> HttpResponse {
    let Deliver { command, reply_to } = body.into_inner();
    let station = command.station_id.clone();
    // The sending node stored it before forwarding: its status changes here
    // need not look it up first.
    internal.store.command_forwarded(&station, &command.id);
    let (waiter, answer) = match reply_to {
        Some(_) => {
            let (waiter, answer) = tokio::sync::oneshot::channel();
            (Some(waiter), Some(answer))
        }
        None => (None, None),
    };
    let routed = internal
        .registry
        .send_command(&station, SendCommand { command, waiter })
        .await;
    if let (Ok(()), Some(origin), Some(answer)) = (&routed, reply_to, answer) {
        internal.link.reply_when_settled(origin, answer);
    }
    let routed = match routed {
        Ok(()) => "ok",
        Err(RouteError::Busy) => "busy",
        Err(RouteError::NotConnected) => "not_connected",
    };
    HttpResponse::Ok().json(json!({ "routed": routed }))
}

#[derive(Deserialize)]
struct Settled {
    command: CommandRecord,
}

/// The answer of a command this node forwarded, from the node that
/// delivered it.
async fn settled(internal: web::Data<Internal>, body: web::Json<Settled>) -> HttpResponse {
    let taken = internal.link.settled(body.into_inner().command);
    HttpResponse::Ok().json(json!({ "taken": taken }))
}

#[derive(Deserialize)]
struct TakenOver {
    station_id: String,
    connection: u64,
}

async fn taken_over(internal: web::Data<Internal>, body: web::Json<TakenOver>) -> HttpResponse {
    let closed = internal
        .registry
        .taken_over(&body.station_id, body.connection)
        .await;
    if closed {
        crate::metrics::cluster_takeover();
    }
    HttpResponse::Ok().json(json!({ "closed": closed }))
}

async fn node(internal: web::Data<Internal>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "node_id": internal.node_id }))
}

/// Binds and starts the internal API; `registry` is this node's own
/// stations (a forward is never forwarded again).
pub fn serve(
    listen: SocketAddr,
    registry: Registry,
    link: ClusterLink,
    store: Arc<dyn Store>,
    token: &str,
    node_id: &str,
) -> std::io::Result<(Server, SocketAddr)> {
    let internal = web::Data::new(Internal {
        registry: registry.local_only(),
        link,
        store,
        token_hash: Sha256::digest(token.as_bytes()).into(),
        node_id: node_id.to_owned(),
    });
    let listener = std::net::TcpListener::bind(listen)?;
    let bound = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(internal.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(1024 * 1024)
                    .error_handler(|e, _| {
                        actix_web::error::InternalError::from_response(
                            e.to_string(),
                            refused(
                                actix_web::http::StatusCode::BAD_REQUEST,
                                &format!("invalid body: {e}"),
                            ),
                        )
                        .into()
                    }),
            )
            .wrap(from_fn(require_token))
            .route("/cluster/v1/deliver", web::post().to(deliver))
            .route("/cluster/v1/settled", web::post().to(settled))
            .route("/cluster/v1/taken-over", web::post().to(taken_over))
            .route("/cluster/v1/node", web::get().to(node))
            .default_service(web::to(|| async {
                refused(
                    actix_web::http::StatusCode::NOT_FOUND,
                    "no such internal endpoint",
                )
            }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, bound))
}
