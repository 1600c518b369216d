//! `GET /api/openapi.json`: the OpenAPI 3 document of the API as implemented,
//! generated from the handlers' annotations and the record types.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::{
    batches, commands, error, fleet, locations, nodes, parties, registry, stations, tokens,
    transactions, variables,
};
use crate::store;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "voltgate CSMS API",
        description = "REST API of voltgate, compatible with the MaEVe CSMS internal API (v0).",
        license(name = "Apache-2.0")
    ),
    paths(
        stations::register,
        fleet::show,
        fleet::list,
        nodes::list,
        stations::auth,
        stations::reconfigure,
        stations::install_certificates,
        stations::trigger,
        stations::set_charging_profile,
        tokens::put,
        tokens::list,
        tokens::show,
        tokens::delete,
        registry::upload_certificate,
        registry::show_certificate,
        registry::delete_certificate,
        parties::register,
        parties::list,
        locations::put,
        locations::show,
        locations::list,
        commands::raw_action,
        commands::reset,
        commands::remote_start,
        commands::remote_stop,
        commands::unlock,
        commands::availability,
        commands::clear_cache,
        commands::read_configuration,
        commands::firmware,
        commands::logs,
        commands::reserve,
        commands::cancel_reservation,
        commands::clear_charging_profiles,
        commands::read_charging_profiles,
        commands::composite_schedule,
        commands::read_installed_certificates,
        commands::local_list,
        commands::delete_certificate,
        commands::show,
        commands::list,
        batches::create,
        batches::show,
        variables::list,
        transactions::of_station,
        transactions::active,
        v1::create,
        v1::list,
        v1::show,
        v1::put,
        v1::patch,
        v1::delete,
        v1::show_evse,
        v1::put_evse,
        v1::patch_evse,
        v1::show_connector,
        v1::put_connector,
        v1::patch_connector,
        crate::locations::api::search::nearby,
        crate::locations::api::search::filters,
        crate::locations::api::search::cities,
        crate::locations::api::import::import,
        crate::locations::api::batch::put,
        crate::locations::api::batch::patch,
        crate::locations::api::batch::put_stations,
        crate::locations::api::batch::patch_stations,
        crate::locations::api::stations::create,
        crate::locations::api::stations::put,
        crate::locations::api::stations::patch,
        crate::locations::api::stations::show,
        crate::locations::api::templates::create,
        crate::locations::api::templates::put,
        crate::locations::api::templates::show,
        crate::locations::api::templates::list,
    ),
    components(schemas(
        error::ErrorBody,
        store::ChargeStationAuth,
        store::NodeLease,
        store::Token,
        store::Location,
        store::Evse,
        store::Connector,
        store::StationRuntime,
        store::CommandRecord,
        store::CommandStatus,
        store::CommandError,
        store::DeliveryClass,
        store::BatchRecord,
        store::ReportedVariable,
    ))
)]
struct ApiDoc;

use crate::locations::api::locations as v1;

/// The document, rendered once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| {
            tracing::error!(%e, "cannot render the OpenAPI document");
            "{}".to_owned()
        })
    })
}

/// Serves the document.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}
