//! The OCPI listener (`--ocpi-listen`): versions, version details and
//! credentials, with request and correlation ids echoed on every answer
//! and an OCPI envelope on every error, including unknown paths.

use std::net::SocketAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use super::credentials::VERSION;
use super::registrar::Registrar;
use super::transport::{caller, code, success, OcpiError};
use crate::store::OcpiRegistrationStatus;

/// Largest request body a partner may send.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Binds the OCPI listener; the server is not yet polled.
pub fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<(BoundOcpi, SocketAddr)> {
    let listener = std::net::TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    Ok((BoundOcpi { listener, workers }, bound))
}

/// A bound listener waiting for the registrar it serves.
pub struct BoundOcpi {
    listener: std::net::TcpListener,
    workers: usize,
}

impl BoundOcpi {
    /// Serves the OCPI routes on the bound listener.
    pub fn serve(
        self,
        registrar: Registrar,
        commands: super::commands::Commands,
    ) -> std::io::Result<Server> {
        let registrar = web::Data::new(registrar);
        let commands = web::Data::new(commands);
        Ok(HttpServer::new(move || {
            App::new()
                .app_data(registrar.clone())
                .app_data(commands.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .error_handler(|e, _| {
                            OcpiError::ok_with(
                                code::INVALID_PARAMETERS,
                                format!("invalid JSON body: {e}"),
                            )
                            .into()
                        }),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    OcpiError::ok_with(code::INVALID_PARAMETERS, format!("invalid query: {e}"))
                        .into()
                }))
                .wrap(from_fn(echo_ids))
                .configure(routes)
        })
        .workers(self.workers)
        .disable_signals()
        .listen(self.listener)?
        .run())
    }
}

/// The OCPI routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ocpi/versions", web::get().to(versions))
        .route(&format!("/ocpi/{VERSION}"), web::get().to(details))
        .service(
            web::resource(format!("/ocpi/{VERSION}/credentials"))
                .route(web::get().to(get_credentials))
                .route(web::post().to(post_credentials))
                .route(web::put().to(put_credentials))
                .route(web::delete().to(delete_credentials)),
        )
        .service(
            web::resource(format!(
                "/ocpi/{VERSION}/tokens/{{country_code}}/{{party_id}}/{{uid}}"
            ))
            .route(web::get().to(super::tokens::get))
            .route(web::put().to(super::tokens::put))
            .route(web::patch().to(super::tokens::patch)),
        )
        .route(
            &format!("/ocpi/{VERSION}/commands/{{command}}"),
            web::post().to(super::commands::receive),
        )
        .route(
            &format!("/ocpi/{VERSION}/sessions"),
            web::get().to(super::sessions::pull::sessions),
        )
        .route(
            &format!("/ocpi/{VERSION}/cdrs"),
            web::get().to(super::sessions::pull::cdrs),
        )
        .route(
            &format!("/ocpi/{VERSION}/locations"),
            web::get().to(super::locations::list),
        )
        .route(
            &format!("/ocpi/{VERSION}/locations/{{path:.*}}"),
            web::get().to(super::locations::object),
        )
        .default_service(web::to(not_found));
}

/// Copies `X-Request-ID` and `X-Correlation-ID` from the request to the answer.
async fn echo_ids(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let ids: Vec<(HeaderName, HeaderValue)> = ["x-request-id", "x-correlation-id"]
        .into_iter()
        .filter_map(|name| {
            let value = req.headers().get(name)?.clone();
            Some((HeaderName::from_static(name), value))
        })
        .collect();
    let mut response = next.call(req).await?;
    for (name, value) in ids {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(super::transport::envelope(
        Value::Null,
        code::CLIENT_ERROR,
        "no such OCPI endpoint (voltgate speaks OCPI 2.2.1 at /ocpi/2.2.1)",
    ))
}

async fn versions(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
) -> Result<HttpResponse, OcpiError> {
    caller(&req, registrar.store(), true).await?;
    let identity = registrar.identity();
    Ok(success(
        json!([{"version": VERSION, "url": identity.details_url()}]),
    ))
}

/// The modules voltgate implements, each with its role.
const MODULES: &[(&str, &str)] = &[
    ("credentials", "SENDER"),
    ("credentials", "RECEIVER"),
    ("locations", "SENDER"),
    ("sessions", "SENDER"),
    ("cdrs", "SENDER"),
    ("tokens", "RECEIVER"),
    ("commands", "RECEIVER"),
];

async fn details(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
) -> Result<HttpResponse, OcpiError> {
    caller(&req, registrar.store(), true).await?;
    let identity = registrar.identity();
    let endpoints: Vec<Value> = MODULES
        .iter()
        .map(|(module, role)| json!({"identifier": module, "role": role, "url": identity.module_url(module)}))
        .collect();
    Ok(success(json!({"version": VERSION, "endpoints": endpoints})))
}

/// voltgate's credentials, carrying the token the partner called with.
async fn get_credentials(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
) -> Result<HttpResponse, OcpiError> {
    let who = caller(&req, registrar.store(), true).await?;
    Ok(success(registrar.identity().credentials(&who.token)))
}

async fn post_credentials(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let who = caller(&req, registrar.store(), true).await?;
    if who.partner.status == OcpiRegistrationStatus::Registered {
        return Err(OcpiError::not_allowed(
            "already registered: PUT updates the credentials, DELETE unregisters",
        ));
    }
    Ok(success(registrar.accept(who.partner, &body).await?))
}

async fn put_credentials(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let who = caller(&req, registrar.store(), true).await?;
    if who.partner.status != OcpiRegistrationStatus::Registered {
        return Err(OcpiError::not_allowed("not registered yet: POST registers"));
    }
    Ok(success(registrar.accept(who.partner, &body).await?))
}

async fn delete_credentials(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
) -> Result<HttpResponse, OcpiError> {
    let who = caller(&req, registrar.store(), true).await?;
    if who.partner.status != OcpiRegistrationStatus::Registered {
        return Err(OcpiError::not_allowed(
            "not registered: nothing to unregister",
        ));
    }
    registrar.store().delete_partner(&who.partner.id).await?;
    registrar.store().clear_pushes(&who.partner.id).await?;
    Ok(success(Value::Null))
}
