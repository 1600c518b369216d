//! Commands to one station: any OCPP operation, raw
//! (`POST /cs/{csId}/ocpp/{Action}`) or typed (`/reset`, `/remote-start`,
//! ...), and reading commands back (`GET /cs/{csId}/commands[/{id}]`).
//!
//! Every operation becomes one stored command before any CALL is sent
//! (a store failure is a 5xx and nothing is sent); the station's actor then
//! sends it when its state allows. Immediate-effect commands expire
//! (`--command-ttl-secs`, or `?ttl=`) and need a connected station unless
//! `?ttl=` was given; configuration-like ones wait for the next boot.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::paging::{with_next_cursor, PageQuery};
use super::validate::invalid;
use super::AppState;
use crate::ocpp::Version;
use crate::station::operations::{
    self, availability, charging_profiles, clear_cache, configuration, dispatch, firmware,
    installed_certificates, local_list, logs, raw, remote_start, remote_stop, reservations, reset,
    unlock, work_item, Call, Operation,
};
use crate::store::{
    is_command_id, CommandFilter, CommandRecord, CommandStatus, DeliveryClass, TokenType,
};
use crate::supervisor::RouteError;

/// Longest `?ttl=` accepted: 30 days.
const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// How a command call waits and expires.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandQuery {
    /// Wait (bounded by --wait-timeout-secs) for the station's answer.
    pub(super) wait: Option<bool>,
    /// Seconds the command may wait to be sent. Immediate-effect commands
    /// default to --command-ttl-secs and, with ttl given, may be queued for
    /// a station that is not connected; configuration-like ones never
    /// expire unless ttl is given.
    pub(super) ttl: Option<u64>,
}

/// A command accepted without waiting.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// Its id, for `GET /api/v0/cs/{csId}/commands/{commandId}`.
    command_id: String,
}

/// A command as a waited call or a read shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandView {
    /// The command.
    #[serde(flatten)]
    command: CommandRecord,
    /// With ?wait=true, when the wait ended before the station answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait: Option<WaitEnded>,
}

/// Why a wait ended without the outcome (the command goes on).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitEnded {
    /// `Timeout`, `NotConnected`, `Busy` or `ConnectionClosed`.
    code: &'static str,
    /// What happens next.
    description: String,
}

pub(super) fn view(command: CommandRecord, wait: Option<WaitEnded>) -> CommandView {
    let mut command = command.as_seen_at(Utc::now());
    command.delivery = work_item::delivery(&command);
    CommandView { command, wait }
}

/// 400 unless `ttl` is absent or within 1 s to 30 days.
pub(super) fn check_ttl(ttl: Option<u64>) -> Result<(), ApiError> {
    match ttl {
        Some(secs) if secs == 0 || secs > MAX_TTL_SECS => Err(invalid(
            "ttl",
            format!("must be 1 to {MAX_TTL_SECS} seconds"),
        )),
        _ => Ok(()),
    }
}

/// When a command accepted at `now` expires: after `ttl` when given, else
/// after --command-ttl-secs for an immediate-effect one, else never.
pub(super) fn expiry(
    state: &AppState,
    class: DeliveryClass,
    ttl: Option<u64>,
    now: chrono::DateTime<Utc>,
) -> Option<chrono::DateTime<Utc>> {
    let ttl = match (ttl, class) {
        (Some(secs), _) => Duration::from_secs(secs),
        (None, DeliveryClass::Immediate) => state.command_ttl,
        (None, DeliveryClass::Configuration) => return None,
    };
    chrono::Duration::from_std(ttl).ok().map(|d| now + d)
}

/// The OCPP version to write the station's command in: the one it is
/// connected with, else the one it last connected with.
async fn station_version(state: &AppState, id: &str) -> Result<Version, ApiError> {
    if state.store.station(id).await?.is_none() {
        return Err(ApiError::not_found("charge station", id));
    }
    dispatch::version_of(&*state.store, id)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "the OCPP version of charge station {id:?} is unknown: it has never connected"
            ))
        })
}

/// Stores `call` as a command for station `id`, routes it, and answers
/// (202 with its id, or with ?wait=true 200 with its outcome).
async fn submit(
    state: &AppState,
    id: &str,
    operation: &'static str,
    call: Call,
    version: Version,
    query: &CommandQuery,
) -> Result<HttpResponse, ApiError> {
    check_ttl(query.ttl)?;
    let immediate = call.class == DeliveryClass::Immediate;
    if immediate && query.ttl.is_none() && !state.registry.is_connected(id).await {
        crate::metrics::command(operation, "not_connected");
        return Err(ApiError::Conflict(format!(
            "charge station {id:?} is not connected; {} takes effect at once, so it is not queued \
             (give ?ttl=SECONDS to let it wait that long)",
            call.action
        )));
    }
    let expires_at = expiry(state, call.class, query.ttl, Utc::now());
    let wait = query.wait.unwrap_or(false);
    let started = std::time::Instant::now();
    let dispatch::Dispatched {
        command,
        routed,
        answer,
    } = dispatch::dispatch(
        &*state.store,
        &state.registry,
        id,
        operation,
        call,
        version,
        expires_at,
        wait,
    )
    .await?;
    crate::metrics::command(
        operation,
        match routed {
            Ok(()) => "routed",
            Err(RouteError::NotConnected) => "not_connected",
            Err(RouteError::Busy) => "busy",
        },
    );
    let Some(answer) = answer else {
        return Ok(HttpResponse::Accepted().json(Accepted {
            command_id: command.id,
        }));
    };
    let ended = match routed {
        Err(RouteError::NotConnected) => WaitEnded {
            code: "NotConnected",
            description: "the station is not connected; the command waits for it".into(),
        },
        Err(RouteError::Busy) => WaitEnded {
            code: "Busy",
            description: "the station's mailbox is full; the command waits for its next boot"
                .into(),
        },
        Ok(()) => match tokio::time::timeout(state.wait_timeout, answer).await {
            Ok(Ok(settled)) => {
                crate::metrics::command_round_trip(operation, started.elapsed());
                return Ok(HttpResponse::Ok().json(view(settled, None)));
            }
            Ok(Err(_)) => WaitEnded {
                code: "ConnectionClosed",
                description: "the wait ended before the station answered; read the command later"
                    .into(),
            },
            Err(_) => WaitEnded {
                code: "Timeout",
                description: format!(
                    "no answer within {} s; the command goes on",
                    state.wait_timeout.as_secs()
                ),
            },
        },
    };
    // The command as the store has it now (the actor may have settled it).
    let current = state
        .store
        .command(id, &command.id)
        .await?
        .unwrap_or(command);
    Ok(HttpResponse::Ok().json(view(current, Some(ended))))
}

/// Plans a typed operation for the station and submits it.
async fn typed<O: Operation>(
    state: &AppState,
    id: &str,
    operation: &O,
    query: &CommandQuery,
) -> Result<HttpResponse, ApiError> {
    let version = station_version(state, id).await?;
    let call = operations::plan(operation, version, &mut operations::next_number)
        .map_err(|e| ApiError::BadRequest(e.0))?;
    submit(state, id, O::NAME, call, version, query).await
}

/// Send any CSMS-initiated OCPP action of the station's version; the body
/// is the request payload exactly as OCPP defines it.
#[utoipa::path(post, path = "/api/v0/cs/{csId}/ocpp/{action}", tag = "operations",
    params(("csId" = String, Path, description = "The charge station id"),
        ("action" = String, Path, description = "A CSMS-initiated action of the station's OCPP version, e.g. Reset"),
        CommandQuery),
    request_body(content = Object, description = "The OCPP request payload"),
    responses((status = 202, body = Accepted), (status = 200, description = "?wait=true: the outcome", body = CommandView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn raw_action(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<CommandQuery>,
    ValidJson(payload): ValidJson<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = path.into_inner();
    let version = station_version(&state, &id).await?;
    let call = raw::plan(version, &action, payload).map_err(|e| ApiError::BadRequest(e.0))?;
    submit(&state, &id, raw::NAME, call, version, &query).await
}

/// A typed operation's handler with its OpenAPI description.
macro_rules! typed_operation {
    ($handler:ident, $body:ty, $path:literal, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "operations",
            params(("csId" = String, Path, description = "The charge station id"), CommandQuery),
            request_body = $body,
            responses((status = 202, body = Accepted), (status = 200, description = "?wait=true: the outcome", body = CommandView),
                (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        pub async fn $handler(
            state: web::Data<AppState>,
            id: web::Path<String>,
            query: web::Query<CommandQuery>,
            ValidJson(body): ValidJson<$body>,
        ) -> Result<HttpResponse, ApiError> {
            typed(&state, &id, &body, &query).await
        }
    };
}

typed_operation!(
    reset,
    reset::Reset,
    "/api/v0/cs/{csId}/reset",
    "Reset the station (1.6 Reset Soft/Hard, 2.0.1 Reset Immediate/OnIdle)."
);
typed_operation!(
    remote_start,
    remote_start::RemoteStart,
    "/api/v0/cs/{csId}/remote-start",
    "Start a transaction (1.6 RemoteStartTransaction, 2.0.1 RequestStartTransaction)."
);
typed_operation!(
    remote_stop,
    remote_stop::RemoteStop,
    "/api/v0/cs/{csId}/remote-stop",
    "Stop a transaction (1.6 RemoteStopTransaction, 2.0.1 RequestStopTransaction)."
);
typed_operation!(
    unlock,
    unlock::Unlock,
    "/api/v0/cs/{csId}/unlock",
    "Unlock a connector (UnlockConnector)."
);
typed_operation!(
    availability,
    availability::Availability,
    "/api/v0/cs/{csId}/availability",
    "Make the station, an EVSE or a connector operative or inoperative (ChangeAvailability)."
);
typed_operation!(read_configuration, configuration::ReadConfiguration, "/api/v0/cs/{csId}/configuration/read",
    "Read configuration (1.6 GetConfiguration; 2.0.1 GetVariables for named keys, GetBaseReport for all).");
typed_operation!(
    firmware,
    firmware::Firmware,
    "/api/v0/cs/{csId}/firmware",
    "Update firmware (1.6 UpdateFirmware or SignedUpdateFirmware, 2.0.1 UpdateFirmware)."
);
typed_operation!(
    logs,
    logs::Logs,
    "/api/v0/cs/{csId}/logs",
    "Upload logs (1.6 GetDiagnostics or GetLog, 2.0.1 GetLog)."
);
typed_operation!(
    reserve,
    reservations::Reserve,
    "/api/v0/cs/{csId}/reservations",
    "Reserve an EVSE or connector (ReserveNow; voltgate assigns the reservation id)."
);
typed_operation!(
    clear_charging_profiles,
    charging_profiles::ClearProfiles,
    "/api/v0/cs/{csId}/charging-profiles/clear",
    "Clear charging profiles (ClearChargingProfile)."
);
typed_operation!(
    read_charging_profiles,
    charging_profiles::ReadProfiles,
    "/api/v0/cs/{csId}/charging-profiles/read",
    "Report installed charging profiles (2.0.1 GetChargingProfiles)."
);
typed_operation!(
    composite_schedule,
    charging_profiles::CompositeSchedule,
    "/api/v0/cs/{csId}/composite-schedule",
    "Read the composite schedule (GetCompositeSchedule)."
);
typed_operation!(
    read_installed_certificates,
    installed_certificates::ReadInstalledCertificates,
    "/api/v0/cs/{csId}/installed-certificates/read",
    "List installed certificates (GetInstalledCertificateIds)."
);

/// A local authorization list update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalListBody {
    /// Full replaces the station's list; Differential changes entries.
    update: local_list::UpdateType,
    /// The entries; without them voltgate builds them from the token store
    /// (Full: every token; Differential: what changed since the list the
    /// station last accepted).
    tokens: Option<Vec<local_list::Entry>>,
}

/// Most tokens a list built from the token store may hold.
const MAX_LOCAL_LIST: usize = 10_000;

/// What the station's list is: the newest version voltgate sent, and the
/// entries of the lists it accepted (the last Full and the Differentials
/// after it), replayed.
async fn station_list(
    state: &AppState,
    id: &str,
) -> Result<(i64, BTreeMap<String, String>), ApiError> {
    let filter = CommandFilter {
        status: None,
        action: Some("SendLocalList".into()),
    };
    let sent = state
        .store
        .list_commands(id, filter, crate::store::Page::new(0, 1_000))
        .await?;
    let newest = sent
        .iter()
        .filter_map(|c| local_list::version_of(&c.payload))
        .max()
        .unwrap_or(0);
    let mut accepted: Vec<&CommandRecord> = Vec::new();
    for command in &sent {
        if command.status == CommandStatus::Accepted {
            accepted.push(command);
            if command.payload["updateType"] == "Full" {
                break;
            }
        }
    }
    let mut list = BTreeMap::new();
    for command in accepted.into_iter().rev() {
        if command.payload["updateType"] == "Full" {
            list.clear();
        }
        for (token, status) in local_list::entries_of(&command.payload) {
            match status {
                Some(status) => list.insert(token, status),
                None => list.remove(&token),
            };
        }
    }
    Ok((newest, list))
}

/// Every token of the store as a list entry (valid: Accepted, else Blocked).
async fn token_entries(state: &AppState) -> Result<Vec<local_list::Entry>, ApiError> {
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = crate::store::Page {
            offset: 0,
            limit: 1_000,
            after: after.clone(),
        };
        let tokens = state.store.list_tokens(page).await?;
        let full = tokens.len() == 1_000;
        for token in tokens {
            after = Some(token.uid.clone());
            entries.push(local_list::Entry {
                id_token_type: Some(
                    match token.token_type {
                        TokenType::Rfid => "ISO14443",
                        _ => "Central",
                    }
                    .to_owned(),
                ),
                status: Some(if token.valid { "Accepted" } else { "Blocked" }.to_owned()),
                id_token: token.uid,
            });
        }
        if entries.len() > MAX_LOCAL_LIST {
            return Err(invalid(
                "tokens",
                format!("the token store holds more than {MAX_LOCAL_LIST} tokens: send the list in parts with tokens"),
            ));
        }
        if !full {
            return Ok(entries);
        }
    }
}

/// Send a local authorization list (SendLocalList): given entries, or built
/// from the token store; voltgate numbers the list versions per station.
#[utoipa::path(post, path = "/api/v0/cs/{csId}/local-list", tag = "operations",
    params(("csId" = String, Path, description = "The charge station id"), CommandQuery),
    request_body = LocalListBody,
    responses((status = 202, body = Accepted), (status = 200, description = "?wait=true: the outcome", body = CommandView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn local_list(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<CommandQuery>,
    ValidJson(body): ValidJson<LocalListBody>,
) -> Result<HttpResponse, ApiError> {
    let version = station_version(&state, &id).await?;
    let (newest, current) = station_list(&state, &id).await?;
    let entries = match (body.update, body.tokens) {
        (_, Some(tokens)) => tokens,
        (local_list::UpdateType::Full, None) => token_entries(&state).await?,
        (local_list::UpdateType::Differential, None) => {
            let wanted = token_entries(&state).await?;
            let mut changes: Vec<local_list::Entry> = wanted
                .iter()
                .filter(|entry| current.get(&entry.id_token) != entry.status.as_ref())
                .cloned()
                .collect();
            let kept: std::collections::HashSet<&str> =
                wanted.iter().map(|e| e.id_token.as_str()).collect();
            changes.extend(
                current
                    .keys()
                    .filter(|token| !kept.contains(token.as_str()))
                    .map(|token| local_list::Entry {
                        id_token: token.clone(),
                        id_token_type: None,
                        status: None,
                    }),
            );
            changes
        }
    };
    let list = local_list::LocalList {
        update: body.update,
        version: newest + 1,
        entries,
    };
    let call = operations::plan(&list, version, &mut operations::next_number)
        .map_err(|e| ApiError::BadRequest(e.0))?;
    submit(
        &state,
        &id,
        local_list::LocalList::NAME,
        call,
        version,
        &query,
    )
    .await
}

/// Delete an installed certificate (DeleteCertificate), named by the
/// serial number the station reported in its last installed-certificates read.
#[utoipa::path(delete, path = "/api/v0/cs/{csId}/installed-certificates/{serialNumber}", tag = "operations",
    params(("csId" = String, Path, description = "The charge station id"),
        ("serialNumber" = String, Path, description = "The serial number as GetInstalledCertificateIds reported it"), CommandQuery),
    responses((status = 202, body = Accepted), (status = 200, description = "?wait=true: the outcome", body = CommandView),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_certificate(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<CommandQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, serial) = path.into_inner();
    let version = station_version(&state, &id).await?;
    let filter = CommandFilter {
        status: Some(CommandStatus::Accepted),
        action: Some("GetInstalledCertificateIds".into()),
    };
    let reads = state
        .store
        .list_commands(&id, filter, crate::store::Page::new(0, 50))
        .await?;
    // The newest read that lists the serial number decides.
    let found = reads.iter().find_map(|read| {
        let answer = read.response.as_ref()?;
        let matching: Vec<&Value> = installed_certificates::reported_hash_data(answer)
            .into_iter()
            .filter(|data| data["serialNumber"] == serial.as_str())
            .collect();
        (!matching.is_empty()).then_some(matching)
    });
    let data = match found.as_deref() {
        None => {
            return Err(ApiError::NotFound(format!(
                "no installed certificate with serial number {serial:?} in charge station {id:?}'s reads: \
                 read them first (POST /cs/{id}/installed-certificates/read)"
            )))
        }
        Some([one]) => (*one).clone(),
        Some(several) => {
            return Err(ApiError::Conflict(format!(
                "{} installed certificates have serial number {serial:?}; delete with a raw DeleteCertificate naming its hash data",
                several.len()
            )))
        }
    };
    let delete = installed_certificates::DeleteCertificate {
        certificate_hash_data: data,
    };
    let call = operations::plan(&delete, version, &mut operations::next_number)
        .map_err(|e| ApiError::BadRequest(e.0))?;
    submit(
        &state,
        &id,
        installed_certificates::DeleteCertificate::NAME,
        call,
        version,
        &query,
    )
    .await
}

/// Clear the station's authorization cache (ClearCache); no body.
#[utoipa::path(post, path = "/api/v0/cs/{csId}/clear-cache", tag = "operations",
    params(("csId" = String, Path, description = "The charge station id"), CommandQuery),
    responses((status = 202, body = Accepted), (status = 200, description = "?wait=true: the outcome", body = CommandView),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn clear_cache(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<CommandQuery>,
) -> Result<HttpResponse, ApiError> {
    typed(&state, &id, &clear_cache::ClearCache::default(), &query).await
}

/// Cancel a reservation (CancelReservation).
#[utoipa::path(delete, path = "/api/v0/cs/{csId}/reservations/{reservationId}", tag = "operations",
    params(("csId" = String, Path, description = "The charge station id"),
        ("reservationId" = i64, Path, description = "The id ReserveNow carried"), CommandQuery),
    responses((status = 202, body = Accepted), (status = 200, description = "?wait=true: the outcome", body = CommandView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_reservation(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    query: web::Query<CommandQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, reservation_id) = path.into_inner();
    let cancel = reservations::CancelReservation { reservation_id };
    typed(&state, &id, &cancel, &query).await
}

/// One command of the station, with its status and the station's answer.
#[utoipa::path(get, path = "/api/v0/cs/{csId}/commands/{commandId}", tag = "operations",
    params(("csId" = String, Path, description = "The charge station id"),
        ("commandId" = String, Path, description = "The command id")),
    responses((status = 200, body = CommandView), (status = 404, body = ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, command_id) = path.into_inner();
    let not_found = || ApiError::not_found("command", &command_id);
    if !is_command_id(&command_id) {
        return Err(not_found());
    }
    let command = state
        .store
        .command(&id, &command_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(view(command, None)))
}

/// Filters of the command list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandListQuery {
    /// Only commands with this status (Pending, Accepted, Rejected, Failed, Expired).
    status: Option<CommandStatus>,
    /// Only commands of this OCPP action.
    action: Option<String>,
}

/// The station's commands, newest first.
#[utoipa::path(get, path = "/api/v0/cs/{csId}/commands", tag = "operations",
    params(("csId" = String, Path, description = "The charge station id"), CommandListQuery, PageQuery),
    responses((status = 200, body = [CommandView]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    id: web::Path<String>,
    filter: web::Query<CommandListQuery>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = paging.page()?;
    if page
        .after
        .as_deref()
        .is_some_and(|after| !is_command_id(after))
    {
        return Err(invalid("cursor", "not a cursor of this list"));
    }
    if state.store.station(&id).await?.is_none() {
        return Err(ApiError::not_found("charge station", &id));
    }
    let filter = filter.into_inner();
    // Expired is how a reader sees a pending command past its expiry (the
    // outbox settles it only when the station next comes): the store lists
    // every command and the view keeps the expired ones, so such a page may
    // hold fewer than `limit` (X-Next-Cursor still walks on).
    let (stored_status, seen_status) = match filter.status {
        Some(CommandStatus::Expired) => (None, Some(CommandStatus::Expired)),
        Some(CommandStatus::Pending) => {
            (Some(CommandStatus::Pending), Some(CommandStatus::Pending))
        }
        other => (other, None),
    };
    let commands = state
        .store
        .list_commands(
            &id,
            CommandFilter {
                status: stored_status,
                action: filter.action,
            },
            page.clone(),
        )
        .await?;
    let returned = commands.len();
    let last = commands.last().map(|c| c.id.clone());
    let views: Vec<CommandView> = commands
        .into_iter()
        .map(|c| view(c, None))
        .filter(|v| seen_status.is_none_or(|s| v.command.status == s))
        .collect();
    Ok(with_next_cursor(HttpResponse::Ok(), &page, returned, last.as_deref()).json(views))
}
