//! The `/api/v1` management API in OCPI conventions (snake_case, the
//! envelope, OCPI status codes and paging). The caller mounts it under
//! `/api/v1` behind the API token guard.

pub mod batch;
pub mod body;
pub mod envelope;
pub mod import;
pub mod locations;
pub mod search;
pub mod stations;
pub mod templates;

use actix_web::{web, HttpRequest, HttpResponse};

pub use body::V1Settings;
use envelope::V1Error;

/// Registers the `/api/v1` routes (in a scope mounted at `/api/v1`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Before /locations/{id}, which would take "nearby" for an id.
    cfg.service(resource("/locations/nearby").route(web::get().to(search::nearby)))
        .service(resource("/filters").route(web::get().to(search::filters)))
        .service(resource("/filters/cities").route(web::get().to(search::cities)))
        .service(resource("/locations/import").route(web::post().to(import::import)))
        .service(resource("/chargestations").route(web::post().to(stations::create)))
        .service(
            resource("/chargestations/batch")
                .route(web::post().to(batch::put_stations))
                .route(web::patch().to(batch::patch_stations)),
        )
        .service(
            resource("/templates")
                .route(web::post().to(templates::create))
                .route(web::get().to(templates::list)),
        )
        .service(
            resource("/templates/{id}")
                .route(web::get().to(templates::show))
                .route(web::put().to(templates::put)),
        )
        .service(
            resource("/chargestations/{id}")
                .route(web::get().to(stations::show))
                .route(web::put().to(stations::put))
                .route(web::patch().to(stations::patch)),
        )
        .service(
            resource("/locations/batch")
                .route(web::post().to(batch::put))
                .route(web::patch().to(batch::patch)),
        )
        .service(
            resource("/locations")
                .route(web::post().to(locations::create))
                .route(web::get().to(locations::list)),
        )
        .service(
            resource("/locations/{id}")
                .route(web::get().to(locations::show))
                .route(web::put().to(locations::put))
                .route(web::patch().to(locations::patch))
                .route(web::delete().to(locations::delete)),
        )
        .service(
            resource("/locations/{id}/evses/{uid}")
                .route(web::get().to(locations::show_evse))
                .route(web::put().to(locations::put_evse))
                .route(web::patch().to(locations::patch_evse)),
        )
        .service(
            resource("/locations/{id}/evses/{uid}/connectors/{cid}")
                .route(web::get().to(locations::show_connector))
                .route(web::put().to(locations::put_connector))
                .route(web::patch().to(locations::patch_connector)),
        );
}

/// A resource whose unmatched methods answer 405 in the envelope.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        Err::<HttpResponse, _>(V1Error::http(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} is not allowed here", req.method()),
        ))
    }))
}
