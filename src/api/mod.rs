//! The REST API (actix-web): the MaEVe CSMS internal API under `/api/v0`,
//! plus `/health` and `/api/openapi.json`.
//!
//! Handlers validate what comes in (`validate`, `json`), call the store, and
//! map every failure through [`error::ApiError`] to a `{"status","error"}`
//! body. Routes are registered in [`routes`] only, so the app served in tests
//! is the one `main` serves.

pub mod auth;
mod batches;
mod commands;
mod delivery;
pub mod error;
mod fleet;
pub mod json;
mod locations;
pub mod log_limited;
mod nodes;
pub mod openapi;
mod paging;
mod parties;
mod registry;
mod stations;
mod tokens;
mod transactions;
mod validate;
mod variables;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, HttpRequest, HttpResponse, HttpServer};

use crate::store::Store;
use crate::supervisor::Registry;
use crate::Config;
use auth::ApiTokens;
use error::ApiError;

/// Body size limit when the app state is missing (never in practice).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler can reach.
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The connected stations.
    pub registry: Registry,
    /// When this node started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The last readiness probe of the store.
    pub readiness: Readiness,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest `?wait=true` wait for a station's answer.
    pub wait_timeout: Duration,
    /// How long an immediate-effect command may wait to be sent by default.
    pub command_ttl: Duration,
    /// Most stations one fan-out may target.
    pub max_batch_stations: usize,
    /// Locations, as every surface changes them.
    pub locations: crate::locations::Locations,
    /// Time zone of a MaEVe location created without one.
    pub default_time_zone: String,
}

/// Binds the REST listener and returns the server (not yet polled) and the
/// address it is bound to.
pub fn serve(
    config: &Config,
    store: Arc<dyn Store>,
    registry: Registry,
    tokens: ApiTokens,
    locations: crate::locations::Locations,
    registrar: crate::ocpi::Registrar,
) -> std::io::Result<(Server, SocketAddr)> {
    let tokens = web::Data::new(tokens);
    let registrar = web::Data::new(registrar);
    let v1 = web::Data::new(crate::locations::api::V1Settings {
        max_body_bytes: config.api_max_body_bytes,
    });
    let located = web::Data::new(locations.clone());
    let state = web::Data::new(AppState {
        locations,
        default_time_zone: config.default_time_zone.clone(),
        store,
        registry,
        started_at: chrono::Utc::now(),
        readiness: Readiness::default(),
        max_body_bytes: config.api_max_body_bytes,
        wait_timeout: Duration::from_secs(config.wait_timeout_secs.max(1)),
        command_ttl: Duration::from_secs(config.command_ttl_secs.max(1)),
        max_batch_stations: config.max_batch_stations.max(1),
    });
    let mut server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .app_data(tokens.clone())
            .app_data(v1.clone())
            .app_data(located.clone())
            .app_data(registrar.clone())
            .wrap(actix_web::middleware::from_fn(measure))
            .configure(routes)
    })
    // `main` handles SIGINT/SIGTERM; requests in flight get the drain time.
    .disable_signals()
    .shutdown_timeout(config.limits.shutdown_drain_secs)
    .bind(config.api_listen)?;
    // actix-server bounds connections per worker: the total is shared out.
    let workers = config
        .api_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let total = usize::try_from(config.api_max_connections).unwrap_or(usize::MAX);
    server = server
        .workers(workers)
        .max_connections(total.div_ceil(workers).max(1));
    let addr = server.addrs().first().copied().unwrap_or(config.api_listen);
    Ok((server.run(), addr))
}

/// Registers every route of the REST API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default().error_handler(|e, _| {
            ApiError::BadRequest(format!("invalid query string: {e}")).into()
        }),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("invalid path: {e}")).into()),
    )
    .service(resource("/health").route(web::get().to(health)))
    .service(resource("/health/ready").route(web::get().to(ready)))
    // The token checks sit on what they guard, so they see the route the
    // router matched (after percent-decoding), never a raw path.
    .service(
        resource("/metrics")
            .wrap(actix_web::middleware::from_fn(auth::guard_metrics))
            .route(web::get().to(metrics)),
    )
    .service(resource("/api/openapi.json").route(web::get().to(openapi::document)))
    .service(
        web::scope("/api/v0")
            .wrap(actix_web::middleware::from_fn(auth::guard_api))
            .service(resource("/cs").route(web::get().to(fleet::list)))
            .service(resource("/nodes").route(web::get().to(nodes::list)))
            .service(
                resource("/cs/{csId}")
                    .route(web::post().to(stations::register))
                    .route(web::get().to(fleet::show)),
            )
            .service(resource("/cs/{csId}/auth").route(web::get().to(stations::auth)))
            .service(
                resource("/cs/{csId}/reconfigure").route(web::post().to(stations::reconfigure)),
            )
            .service(
                resource("/cs/{csId}/certificates")
                    .route(web::post().to(stations::install_certificates)),
            )
            .service(resource("/cs/{csId}/trigger").route(web::post().to(stations::trigger)))
            .service(
                resource("/cs/{csId}/setchargingprofile")
                    .route(web::post().to(stations::set_charging_profile)),
            )
            .service(resource("/commands").route(web::post().to(batches::create)))
            .service(resource("/commands/{batchId}").route(web::get().to(batches::show)))
            .service(resource("/cs/{csId}/commands").route(web::get().to(commands::list)))
            .service(resource("/cs/{csId}/variables").route(web::get().to(variables::list)))
            .service(
                resource("/cs/{csId}/transactions").route(web::get().to(transactions::of_station)),
            )
            .service(resource("/transactions").route(web::get().to(transactions::active)))
            .service(
                resource("/cs/{csId}/commands/{commandId}").route(web::get().to(commands::show)),
            )
            .service(
                resource("/cs/{csId}/ocpp/{action}").route(web::post().to(commands::raw_action)),
            )
            .service(resource("/cs/{csId}/reset").route(web::post().to(commands::reset)))
            .service(
                resource("/cs/{csId}/remote-start").route(web::post().to(commands::remote_start)),
            )
            .service(
                resource("/cs/{csId}/remote-stop").route(web::post().to(commands::remote_stop)),
            )
            .service(resource("/cs/{csId}/unlock").route(web::post().to(commands::unlock)))
            .service(resource("/cs/{csId}/local-list").route(web::post().to(commands::local_list)))
            .service(
                resource("/cs/{csId}/availability").route(web::post().to(commands::availability)),
            )
            .service(
                resource("/cs/{csId}/clear-cache").route(web::post().to(commands::clear_cache)),
            )
            .service(
                resource("/cs/{csId}/configuration/read")
                    .route(web::post().to(commands::read_configuration)),
            )
            .service(resource("/cs/{csId}/firmware").route(web::post().to(commands::firmware)))
            .service(resource("/cs/{csId}/logs").route(web::post().to(commands::logs)))
            .service(resource("/cs/{csId}/reservations").route(web::post().to(commands::reserve)))
            .service(
                resource("/cs/{csId}/reservations/{reservationId}")
                    .route(web::delete().to(commands::cancel_reservation)),
            )
            .service(
                resource("/cs/{csId}/charging-profiles/clear")
                    .route(web::post().to(commands::clear_charging_profiles)),
            )
            .service(
                resource("/cs/{csId}/charging-profiles/read")
                    .route(web::post().to(commands::read_charging_profiles)),
            )
            .service(
                resource("/cs/{csId}/composite-schedule")
                    .route(web::post().to(commands::composite_schedule)),
            )
            .service(
                resource("/cs/{csId}/installed-certificates/read")
                    .route(web::post().to(commands::read_installed_certificates)),
            )
            .service(
                resource("/cs/{csId}/installed-certificates/{serialNumber}")
                    .route(web::delete().to(commands::delete_certificate)),
            )
            .service(
                resource("/token")
                    .route(web::post().to(tokens::put))
                    .route(web::get().to(tokens::list)),
            )
            .service(
                resource("/token/{tokenUid}")
                    .route(web::get().to(tokens::show))
                    .route(web::delete().to(tokens::delete)),
            )
            .service(resource("/certificate").route(web::post().to(registry::upload_certificate)))
            .service(
                resource("/certificate/{certificateHash}")
                    .route(web::get().to(registry::show_certificate))
                    .route(web::delete().to(registry::delete_certificate)),
            )
            .service(
                resource("/register")
                    .route(web::post().to(parties::register))
                    .route(web::get().to(parties::list)),
            )
            .service(resource("/location").route(web::get().to(locations::list)))
            .service(
                resource("/location/{locationId}")
                    .route(web::post().to(locations::put))
                    .route(web::get().to(locations::show)),
            ),
    )
    .service(
        web::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(auth::guard_api))
            .configure(crate::locations::api::routes),
    )
    .default_service(web::to(no_route));
}

/// A resource whose unmatched methods answer 405 with the error body.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed(req.method().to_string()))
    }))
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Counts and times every request by route template (never the raw path:
/// cardinality must not grow with station ids).
async fn measure(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let response = next.call(req).await;
    let status = match &response {
        Ok(response) => response.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    crate::metrics::http_request(route, method, status, started.elapsed());
    response
}

/// A closed-set label for a request method (clients may send any token).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render())
}

/// How long a readiness answer is reused: a load balancer polling many
/// times a second costs the store one probe a second.
const READINESS_FRESH_FOR: Duration = Duration::from_secs(1);

/// The last readiness probe: when, and why not ready (None: ready).
#[derive(Default)]
pub struct Readiness(std::sync::Mutex<Option<(std::time::Instant, Option<String>)>>);

/// `GET /health/ready`: 200 when the store answers a cheap probe (and the
/// listeners are up: this one answers), else 503 with the reason.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let cached = state
        .readiness
        .0
        .lock()
        .ok()
        .and_then(|last| last.clone())
        .filter(|(at, _)| at.elapsed() < READINESS_FRESH_FOR);
    let not_ready = match cached {
        Some((_, why)) => why,
        None => {
            let why = match tokio::time::timeout(Duration::from_secs(2), state.store.probe()).await
            {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!(
                    "the {} store does not answer: {e}",
                    state.store.backend()
                )),
                Err(_) => Some(format!(
                    "the {} store did not answer within 2 s",
                    state.store.backend()
                )),
            };
            if let Ok(mut last) = state.readiness.0.lock() {
                *last = Some((std::time::Instant::now(), why.clone()));
            }
            why
        }
    };
    match not_ready {
        None => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Some(why) => HttpResponse::ServiceUnavailable()
            .insert_header((
                actix_web::http::header::RETRY_AFTER,
                error::RETRY_AFTER_SECS,
            ))
            .json(serde_json::json!({"status": "Service Unavailable", "error": why})),
    }
}

/// `GET /health`: 200 once the server is up.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "OK"}))
}
