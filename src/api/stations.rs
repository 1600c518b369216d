//! `/api/v0/cs/{csId}...`: registering charge stations and queueing work for
//! them (settings, certificates, triggers, charging profiles). Each item is
//! stored as a version-neutral command (`operations::work_item`), written
//! for the station's OCPP version when its actor sends it.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::delivery::{queue, DeliveryReply, WaitQuery};
use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::validate::{invalid, station_id};
use super::AppState;
use crate::ocpp::schema::check_charging_profile;
use crate::ocpp::setting_key::SettingKey;
use crate::pki;
use crate::station::operations::work_item::{self, WorkItem};
use crate::store::{CertificateUse, ChargeStationAuth, TriggerMessage};

/// Most settings in one reconfigure call.
const MAX_SETTINGS_PER_CALL: usize = 500;
/// Most certificates in one install call.
const MAX_CERTIFICATES_PER_CALL: usize = 50;

type Csid = web::Path<String>;

/// Register a charge station (or replace its credentials). A new station is
/// pending until it has been configured at its first boot.
#[utoipa::path(post, path = "/api/v0/cs/{csId}", tag = "charge stations",
    params(("csId" = String, Path, description = "The charge station id")),
    request_body = ChargeStationAuth,
    responses((status = 201, description = "Registered"), (status = 400, body = ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
    id: Csid,
    ValidJson(auth): ValidJson<ChargeStationAuth>,
) -> Result<HttpResponse, ApiError> {
    station_id(&id)?;
    if let Some((field, reason)) = auth.problem() {
        return Err(invalid(field, reason));
    }
    state.store.register_station(&id, auth, Utc::now()).await?;
    Ok(HttpResponse::Created().finish())
}

/// How the station authenticates (MaEVe `lookupChargeStationAuth`).
#[utoipa::path(get, path = "/api/v0/cs/{csId}/auth", tag = "charge stations",
    params(("csId" = String, Path, description = "The charge station id")),
    responses((status = 200, body = ChargeStationAuth), (status = 404, body = ErrorBody)))]
pub async fn auth(state: web::Data<AppState>, id: Csid) -> Result<HttpResponse, ApiError> {
    let station = state
        .store
        .station(&id)
        .await?
        .ok_or_else(|| unknown_station(&id))?;
    Ok(HttpResponse::Ok().json(station.auth))
}

/// Queue settings for the station: each key is a 1.6 configuration key or a
/// 2.0.1 `Component[;instance][;evse]/Variable[;instance][;attribute]`.
#[utoipa::path(post, path = "/api/v0/cs/{csId}/reconfigure", tag = "charge stations",
    params(("csId" = String, Path, description = "The charge station id"), WaitQuery),
    request_body(content = BTreeMap<String, String>, description = "Setting name → value"),
    responses((status = 200, description = "Queued (and delivered at once when connected); with ?wait=true the station's answers", body = DeliveryReply),
        (status = 202, description = "With ?wait=true: not answered yet (station offline, busy or slow); delivery continues", body = DeliveryReply),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reconfigure(
    state: web::Data<AppState>,
    id: Csid,
    wait: web::Query<WaitQuery>,
    ValidJson(settings): ValidJson<BTreeMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    if settings.is_empty() {
        return Err(ApiError::BadRequest(
            "invalid body: no settings given".into(),
        ));
    }
    if settings.len() > MAX_SETTINGS_PER_CALL {
        return Err(ApiError::BadRequest(format!(
            "invalid body: {} settings given, at most {MAX_SETTINGS_PER_CALL} per call",
            settings.len()
        )));
    }
    for (key, value) in &settings {
        SettingKey::parse(key, value).map_err(|e| invalid(key, e))?;
    }
    let now = Utc::now();
    let commands = settings
        .into_iter()
        .map(|(key, value)| WorkItem::Setting { key, value }.command(&id, now))
        .collect();
    queue(&state, "reconfigure", &id, commands, wait.wait()).await
}

/// Certificates to install (MaEVe `ChargeStationInstallCertificates`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct InstallCertificatesBody {
    /// The certificates.
    certificates: Vec<InstallCertificateItem>,
}

/// One certificate to install.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InstallCertificateItem {
    /// What it is for.
    #[serde(rename = "type")]
    certificate_use: CertificateUse,
    /// The PEM text.
    certificate: String,
    /// Pending (default), or Accepted/Rejected to record an outcome already known.
    #[serde(default)]
    status: Option<InstallStatus>,
}

/// Status an installation request may start with.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum InstallStatus {
    /// Already installed.
    Accepted,
    /// Refused.
    Rejected,
    /// To be installed.
    Pending,
}

/// Queue certificates for installation on the station.
#[utoipa::path(post, path = "/api/v0/cs/{csId}/certificates", tag = "charge stations",
    params(("csId" = String, Path, description = "The charge station id"), WaitQuery),
    request_body = InstallCertificatesBody,
    responses((status = 200, description = "Queued (and delivered at once when connected); with ?wait=true the station's answers", body = DeliveryReply),
        (status = 202, description = "With ?wait=true: not answered yet (station offline, busy or slow); delivery continues", body = DeliveryReply),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn install_certificates(
    state: web::Data<AppState>,
    id: Csid,
    wait: web::Query<WaitQuery>,
    ValidJson(body): ValidJson<InstallCertificatesBody>,
) -> Result<HttpResponse, ApiError> {
    if body.certificates.is_empty() {
        return Err(invalid("certificates", "no certificates given"));
    }
    if body.certificates.len() > MAX_CERTIFICATES_PER_CALL {
        return Err(invalid(
            "certificates",
            format!("at most {MAX_CERTIFICATES_PER_CALL} per call"),
        ));
    }
    let now = Utc::now();
    // The same certificate twice in one call is one command: the last
    // request's type and status win, at the place it was first given.
    let mut certificates: Vec<(WorkItem, InstallStatus)> = Vec::new();
    for (index, item) in body.certificates.into_iter().enumerate() {
        let der = pki::leaf_certificate_der(&item.certificate)
            .map_err(|e| invalid(&format!("certificates[{index}].certificate"), e))?;
        let certificate_id = pki::certificate_hash(&der);
        let queued = WorkItem::Certificate {
            certificate_id: certificate_id.clone(),
            certificate_use: item.certificate_use,
            certificate: item.certificate,
        };
        let status = item.status.unwrap_or(InstallStatus::Pending);
        let same = certificates
            .iter_mut()
            .find(|(earlier, _)| earlier.name().as_deref() == Some(certificate_id.as_str()));
        match same {
            Some(earlier) => *earlier = (queued, status),
            None => certificates.push((queued, status)),
        }
    }
    let commands = certificates
        .into_iter()
        .map(|(item, status)| {
            let command = item.command(&id, now);
            match status {
                InstallStatus::Pending => command,
                InstallStatus::Accepted => work_item::known(command, true),
                InstallStatus::Rejected => work_item::known(command, false),
            }
        })
        .collect();
    queue(&state, "certificates", &id, commands, wait.wait()).await
}

/// A trigger request (MaEVe `ChargeStationTrigger`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerBody {
    /// The message the station is to send.
    trigger: TriggerMessage,
    /// About this EVSE only (e.g. its StatusNotification; 2.0.1 F06.FR.13).
    evse_id: Option<u32>,
    /// About this connector only (1.6: of the station; 2.0.1: of the EVSE).
    connector_id: Option<u32>,
}

/// Ask the station to send a message.
#[utoipa::path(post, path = "/api/v0/cs/{csId}/trigger", tag = "charge stations",
    params(("csId" = String, Path, description = "The charge station id"), WaitQuery),
    request_body = TriggerBody,
    responses((status = 200, description = "Queued (and delivered at once when connected); with ?wait=true the station's answers", body = DeliveryReply),
        (status = 202, description = "With ?wait=true: not answered yet (station offline, busy or slow); delivery continues", body = DeliveryReply),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn trigger(
    state: web::Data<AppState>,
    id: Csid,
    wait: web::Query<WaitQuery>,
    ValidJson(body): ValidJson<TriggerBody>,
) -> Result<HttpResponse, ApiError> {
    let item = WorkItem::Trigger {
        trigger: body.trigger,
        evse_id: body.evse_id,
        connector_id: body.connector_id,
    };
    let command = item.command(&id, Utc::now());
    queue(&state, "trigger", &id, vec![command], wait.wait()).await
}

/// Where a charging profile applies.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ChargingProfileTarget {
    /// EVSE the profile applies to; 0 (the default) is the whole station.
    evse_id: Option<u32>,
    /// Wait (bounded) for the station's answer.
    wait: Option<bool>,
}

/// Queue an OCPP 2.0.1 ChargingProfileType for the station (checked against
/// the official schema; 1.6 stations get it translated at delivery).
#[utoipa::path(post, path = "/api/v0/cs/{csId}/setchargingprofile", tag = "charge stations",
    params(("csId" = String, Path, description = "The charge station id"), ChargingProfileTarget),
    request_body(content = Object, description = "OCPP 2.0.1 ChargingProfileType"),
    responses((status = 200, description = "Queued (and delivered at once when connected); with ?wait=true the station's answers", body = DeliveryReply),
        (status = 202, description = "With ?wait=true: not answered yet (station offline, busy or slow); delivery continues", body = DeliveryReply),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_charging_profile(
    state: web::Data<AppState>,
    id: Csid,
    target: web::Query<ChargingProfileTarget>,
    ValidJson(profile): ValidJson<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    check_charging_profile(&profile).map_err(|errors| {
        ApiError::BadRequest(format!("invalid charging profile: {}", errors.join("; ")))
    })?;
    let profile_id = profile["id"]
        .as_i64()
        .ok_or_else(|| invalid("id", "must be an integer"))?;
    let item = WorkItem::ChargingProfile {
        profile_id,
        evse_id: target.evse_id.unwrap_or(0),
        profile,
    };
    let command = item.command(&id, Utc::now());
    let wait = target.wait.unwrap_or(false);
    queue(&state, "setchargingprofile", &id, vec![command], wait).await
}

fn unknown_station(id: &str) -> ApiError {
    ApiError::not_found("charge station", id)
}
