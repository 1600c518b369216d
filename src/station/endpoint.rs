//! `GET /ws/{csId}` on the OCPP listeners (plain and TLS): admission limits,
//! authentication and subprotocol negotiation before the upgrade, then a
//! [`StationActor`] for the socket.
//!
//! A source address over its limits gets 429 before the store is asked
//! anything; a node at its station cap (or shutting down) 503 once the
//! station has proved who it is. Unknown stations, wrong
//! credentials and certificates that do not fit get 401 before any upgrade;
//! the reason is counted, the password never logged. A handshake that offers
//! no subprotocol voltgate speaks is completed without one and closed at
//! once, as OCPP-J says.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;

use super::actor::{Engine, NoProtocol, StationActor};
use super::gate::{Gate, Limit};
use crate::auth::{self, Refusal};
use crate::metrics::AUTH_FAILURES;
use crate::ocpp::Version;
use crate::store::Provisioning;
use crate::transport;

/// Registers the OCPP routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/{csId}", web::get().to(connect))
        .default_service(web::to(|| async {
            HttpResponse::NotFound().body("OCPP endpoint is /ws/{csId}\n")
        }));
}

async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    id: web::Path<String>,
    engine: web::Data<Arc<Engine>>,
    gate: web::Data<Arc<Gate>>,
) -> Result<HttpResponse, actix_web::Error> {
    let id = id.into_inner();
    let ip = transport::proxy::client_ip(&req, &gate.trusted_proxies)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let _handshake = match gate.enter(ip, Instant::now()) {
        Ok(handshake) => handshake,
        Err(limit) => return Ok(limited(limit)),
    };
    let store = &engine.env.store;
    let registration = match store.station(&id).await {
        Ok(Some(registration)) => registration,
        Ok(None) => return Ok(refuse(&id, Refusal::UnknownStation)),
        Err(e) => {
            tracing::error!(error = %e, station = %id, "store failed during station authentication");
            return Ok(HttpResponse::ServiceUnavailable().finish());
        }
    };
    let presented = match transport::presented(&req, &gate.trusted_proxies, store.as_ref()).await {
        Ok(presented) => presented,
        Err(e) => {
            tracing::error!(error = %e, station = %id, "store failed during certificate lookup");
            return Ok(HttpResponse::ServiceUnavailable().finish());
        }
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let admitted = auth::admit(
        &id,
        &registration.auth,
        authorization,
        presented.transport,
        &presented.certificate,
        &gate.certificate_policy,
    );
    if let Err(refusal) = admitted {
        return Ok(refuse(&id, refusal));
    }
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    let Some(version) = Version::negotiate(offered) else {
        return ws::WsResponseBuilder::new(NoProtocol, &req, stream).start();
    };
    if gate.is_closing() {
        return Ok(HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")))
            .body("this node is shutting down; reconnect\n"));
    }
    let slot = match gate.station_slot() {
        Ok(slot) => slot,
        Err(limit) => return Ok(limited(limit)),
    };
    let budget = gate.message_budget(&id);
    store.station_connected(&id);
    let runtime = store.runtime(&id).await.ok().flatten().unwrap_or_default();
    tracing::info!(station = %id, version = version.label(), "station connected");
    // Stations do not boot again after a network drop: one accepted before
    // goes on without a BootNotification.
    let accepted_before =
        registration.provisioning == Provisioning::Provisioned && runtime.last_boot.is_some();
    let actor = StationActor::new(
        engine.get_ref().clone(),
        id,
        version,
        runtime,
        accepted_before,
    )
    .with_slot(slot)
    .with_budget(budget);
    let protocols = [version.subprotocol()];
    ws::WsResponseBuilder::new(actor, &req, stream)
        .protocols(&protocols)
        .frame_size(engine.max_frame_bytes)
        .start()
}

/// 429 for a source address over its limits, 503 (try again later) at the
/// node's station cap: both before any upgrade.
fn limited(limit: Limit) -> HttpResponse {
    limit.count();
    metrics::counter!(crate::metrics::CONNECTIONS_CLOSED, "reason" => "limit").increment(1);
    match limit {
        Limit::Stations => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, HeaderValue::from_static("30")))
            .body("this node holds as many stations as it may; try another node or later\n"),
        _ => HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")))
            .body("too many connection attempts from this address\n"),
    }
}

fn refuse(id: &str, refusal: Refusal) -> HttpResponse {
    metrics::counter!(AUTH_FAILURES, "reason" => refusal.label()).increment(1);
    metrics::counter!(crate::metrics::CONNECTIONS_CLOSED, "reason" => "auth_failure").increment(1);
    tracing::info!(station = %id, reason = refusal.label(), "station connection refused");
    HttpResponse::Unauthorized()
        .insert_header((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"voltgate\""),
        ))
        .finish()
}
