//! Fleet fan-out: `POST /api/v0/commands` sends one operation to many
//! stations in one call (a list of ids, or a selector), and
//! `GET /api/v0/commands/{batchId}` shows how it stands.
//!
//! The operation is planned once per OCPP version; every targeted station
//! gets an ordinary command (listed and inspectable per station) carrying
//! the batch id, all stored in one store call before any CALL goes out.
//! Stations that get none are counted by reason: not connected (an
//! immediate-effect operation without `?ttl=`), unknown, version unknown,
//! or a payload that cannot be translated for their version.

use std::collections::{BTreeMap, HashMap, HashSet};

use actix_web::{web, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use utoipa::ToSchema;

use super::commands::{check_ttl, expiry, view, CommandQuery, CommandView};
use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::paging::{with_next_cursor, PageQuery};
use super::validate::invalid;
use super::AppState;
use crate::ocpp::Version;
use crate::station::actor::SendCommand;
use crate::station::operations::{self, raw, Call, Untranslatable};
use crate::store::{
    is_command_id, new_command_id, BatchRecord, CommandRecord, CommandStatus, DeliveryClass, Page,
};

/// Station records read per request while walking the fleet for a selector.
const SELECT_PAGE: u32 = 1_000;
/// Commands handed to the registry at once.
const ROUTES_IN_FLIGHT: usize = 256;
/// Commands read per request while counting a batch.
const COUNT_PAGE: u32 = 1_000;

/// Which stations a fan-out targets, by what they reported.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    /// Only connected (true) or disconnected (false) stations.
    connected: Option<bool>,
    /// Only stations of this OCPP version ("1.6", "2.0.1").
    #[schema(value_type = Option<String>)]
    version: Option<Version>,
    /// Only stations whose boot reported this vendor.
    vendor: Option<String>,
    /// Only stations whose boot reported this model.
    model: Option<String>,
    /// Only stations whose boot reported this firmware version.
    firmware: Option<String>,
    /// Only stations whose id starts with this.
    id_prefix: Option<String>,
}

impl Selector {
    fn needs_boot_info(&self) -> bool {
        self.vendor.is_some() || self.model.is_some() || self.firmware.is_some()
    }
}

/// A fan-out request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchBody {
    /// The stations, by id (or give `select`).
    stations: Option<Vec<String>>,
    /// Which stations, by what they reported (or give `stations`).
    select: Option<Selector>,
    /// A typed operation's name (`reset`, `remote-start`, ...) or `ocpp` for a raw action.
    operation: String,
    /// With `ocpp`: the OCPP action.
    action: Option<String>,
    /// The operation's body; for `ocpp` the OCPP payload, either one for
    /// every version or `{"1.6": {...}, "2.0.1": {...}}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    payload: Value,
}

/// A fan-out accepted.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchAccepted {
    /// Its id, for `GET /api/v0/commands/{batchId}`.
    batch_id: String,
    /// Stations that got a command.
    stations: u64,
    /// Stations that got none, by reason.
    skipped: BTreeMap<String, u64>,
}

/// How a fan-out stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    /// The batch.
    #[serde(flatten)]
    batch: BatchRecord,
    /// Its commands by status (as a reader sees them now).
    counts: BTreeMap<String, u64>,
    /// True when no command is pending any more.
    complete: bool,
    /// A page of its commands in station order (`GET` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    commands: Option<Vec<CommandView>>,
}

/// The operation planned for each version, or why it cannot be.
struct Plans {
    name: &'static str,
    calls: HashMap<Version, Result<Call, Untranslatable>>,
}

impl Plans {
    fn new(body: &BatchBody) -> Result<Plans, ApiError> {
        let mut calls = HashMap::new();
        let mut name = raw::NAME;
        for version in [Version::V16, Version::V201] {
            let planned = if body.operation == raw::NAME {
                let action = body
                    .action
                    .as_deref()
                    .ok_or_else(|| invalid("action", "is required with operation ocpp"))?;
                raw::plan(version, action, raw_payload(&body.payload, version))
            } else {
                match operations::plan_named(
                    &body.operation,
                    &body.payload,
                    version,
                    &mut operations::next_number,
                ) {
                    Ok((typed, call)) => {
                        name = typed;
                        Ok(call)
                    }
                    Err(e) if e.0.starts_with("unknown operation") => {
                        return Err(invalid("operation", e.0))
                    }
                    Err(e) => Err(e),
                }
            };
            calls.insert(version, planned);
        }
        if calls.values().all(Result::is_err) {
            let reasons: Vec<String> = [Version::V16, Version::V201]
                .iter()
                .filter_map(|v| {
                    calls[v]
                        .as_ref()
                        .err()
                        .map(|e| format!("OCPP {}: {e}", v.label()))
                })
                .collect();
            return Err(ApiError::BadRequest(reasons.join("; ")));
        }
        Ok(Plans { name, calls })
    }

    /// The delivery class (the same action on both versions has the same one).
    fn class(&self) -> DeliveryClass {
        self.calls
            .values()
            .find_map(|c| c.as_ref().ok().map(|c| c.class))
            .unwrap_or(DeliveryClass::Immediate)
    }

    /// The action when both versions send the same one.
    fn action(&self) -> Option<String> {
        let actions: HashSet<&str> = self
            .calls
            .values()
            .filter_map(|c| c.as_ref().ok().map(|c| c.action))
            .collect();
        match actions.len() {
            1 => actions.into_iter().next().map(str::to_owned),
            _ => None,
        }
    }
}

/// The raw payload for `version`: the per-version member when the payload
/// is keyed by version, else the payload itself.
fn raw_payload(payload: &Value, version: Version) -> Value {
    let keyed = payload.as_object().is_some_and(|object| {
        !object.is_empty() && object.keys().all(|k| k == "1.6" || k == "2.0.1")
    });
    if keyed {
        payload.get(version.label()).cloned().unwrap_or(Value::Null)
    } else {
        payload.clone()
    }
}

/// A station the fan-out reaches, with the version to write its command in.
struct Target {
    id: String,
    version: Option<Version>,
    connected: bool,
}

/// Resolves the targets; 400 for none, both or neither of `stations` and
/// `select`, an empty selection or one over the limit.
async fn targets(state: &AppState, body: &BatchBody) -> Result<(Vec<Target>, u64), ApiError> {
    let limit = state.max_batch_stations;
    let too_many = |n: String| {
        invalid(
            "stations",
            format!("{n} stations targeted, at most {limit} per batch (--max-batch-stations)"),
        )
    };
    match (&body.stations, &body.select) {
        (Some(ids), None) => {
            if ids.len() > limit {
                return Err(too_many(ids.len().to_string()));
            }
            let mut seen = HashSet::with_capacity(ids.len());
            let ids: Vec<String> = ids.iter().filter(|id| seen.insert(*id)).cloned().collect();
            let mut versions = state.registry.versions_of(&ids).await;
            versions.extend(connected_elsewhere(state, &ids, &versions).await?);
            let mut out = Vec::with_capacity(ids.len());
            let mut unknown = 0;
            for id in ids {
                if let Some(version) = versions.get(&id) {
                    out.push(Target {
                        id,
                        version: Some(*version),
                        connected: true,
                    });
                } else if state.store.station(&id).await?.is_some() {
                    let version = state.store.runtime(&id).await?.and_then(|r| r.ocpp_version);
                    out.push(Target {
                        id,
                        version,
                        connected: false,
                    });
                } else {
                    unknown += 1;
                }
            }
            Ok((out, unknown))
        }
        (None, Some(select)) => {
            let mut connected: HashMap<String, Version> = state
                .registry
                .connected_versions()
                .await
                .into_iter()
                .collect();
            // In a cluster, this node knows only its own connections: the
            // registered stations are looked up on the others.
            let in_cluster = state.registry.in_cluster();
            let candidates: Vec<String> = if select.connected == Some(true) && !in_cluster {
                let mut ids: Vec<String> = connected.keys().cloned().collect();
                ids.sort();
                ids
            } else {
                registered_ids(state, select.id_prefix.as_deref(), limit).await?
            };
            if in_cluster {
                let elsewhere = connected_elsewhere(state, &candidates, &connected).await?;
                connected.extend(elsewhere);
            }
            let mut out = Vec::new();
            for id in candidates {
                if select
                    .id_prefix
                    .as_deref()
                    .is_some_and(|p| !id.starts_with(p))
                {
                    continue;
                }
                let live = connected.get(&id).copied();
                if select.connected.is_some_and(|want| want != live.is_some()) {
                    continue;
                }
                let runtime = if select.needs_boot_info() || live.is_none() {
                    state.store.runtime(&id).await?
                } else {
                    None
                };
                let version = live.or(runtime.as_ref().and_then(|r| r.ocpp_version));
                if select.version.is_some_and(|want| version != Some(want)) {
                    continue;
                }
                if select.needs_boot_info() {
                    let boot = runtime.as_ref().and_then(|r| r.boot.as_ref());
                    let matches = |want: &Option<String>, have: Option<&str>| {
                        want.as_deref().is_none_or(|w| have == Some(w))
                    };
                    if !(matches(&select.vendor, boot.map(|b| b.vendor.as_str()))
                        && matches(&select.model, boot.map(|b| b.model.as_str()))
                        && matches(
                            &select.firmware,
                            boot.and_then(|b| b.firmware_version.as_deref()),
                        ))
                    {
                        continue;
                    }
                }
                if out.len() == limit {
                    return Err(too_many(format!("more than {limit}")));
                }
                out.push(Target {
                    id,
                    version,
                    connected: live.is_some(),
                });
            }
            Ok((out, 0))
        }
        _ => Err(ApiError::BadRequest(
            "invalid body: give either stations (a list of ids) or select".into(),
        )),
    }
}

/// In a cluster, those of `ids` not connected here (`here`) that another
/// live node holds, with the version they last connected with.
async fn connected_elsewhere(
    state: &AppState,
    ids: &[String],
    here: &HashMap<String, Version>,
) -> Result<HashMap<String, Version>, ApiError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    if !state.registry.in_cluster() {
        return Ok(HashMap::new());
    }
    let others = ids.iter().filter(|id| !here.contains_key(*id));
    let found: Vec<Option<(String, Version)>> = stream::iter(others)
        .map(|id| async move {
            if !state.registry.holder(id).await.0 {
                return Ok(None);
            }
            let version = state.store.runtime(id).await?.and_then(|r| r.ocpp_version);
            Ok::<_, ApiError>(version.map(|v| (id.clone(), v)))
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Registered station ids in id order (from `prefix` on, when given), at
/// most `limit + 1` of them (one past the limit tells the caller it is hit).
async fn registered_ids(
    state: &AppState,
    prefix: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, ApiError> {
    let mut ids = Vec::new();
    // Ids sort by prefix: start just before the first that can match.
    let mut after = prefix.filter(|p| !p.is_empty()).map(|p| {
        let mut before = p.to_owned();
        before.pop();
        before
    });
    loop {
        let page = Page {
            offset: 0,
            limit: SELECT_PAGE,
            after: after.clone().filter(|a| !a.is_empty()),
        };
        let stations = state.store.list_stations(page).await?;
        let full = stations.len() == SELECT_PAGE as usize;
        for station in stations {
            after = Some(station.id.clone());
            match prefix {
                Some(p) if !station.id.starts_with(p) => {
                    if station.id.as_str() > p {
                        // Past every id that starts with the prefix.
                        return Ok(ids);
                    }
                    continue;
                }
                _ => {}
            }
            ids.push(station.id);
            if ids.len() > limit {
                return Ok(ids);
            }
        }
        if !full {
            return Ok(ids);
        }
    }
}

/// Send one operation to many stations.
#[utoipa::path(post, path = "/api/v0/commands", tag = "operations",
    params(CommandQuery),
    request_body = BatchBody,
    responses((status = 202, body = BatchAccepted), (status = 200, description = "?wait=true: the aggregate outcome", body = BatchView),
        (status = 400, body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    query: web::Query<CommandQuery>,
    ValidJson(body): ValidJson<BatchBody>,
) -> Result<HttpResponse, ApiError> {
    check_ttl(query.ttl)?;
    let plans = Plans::new(&body)?;
    let (targets, unknown) = targets(&state, &body).await?;
    let now = Utc::now();
    let batch_id = new_command_id(now);
    let class = plans.class();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut untranslatable = None;
    if unknown > 0 {
        skipped.insert("UnknownStation".into(), unknown);
    }
    let mut commands = Vec::with_capacity(targets.len());
    for target in targets {
        let reason =
            if !target.connected && class == DeliveryClass::Immediate && query.ttl.is_none() {
                Some("NotConnected")
            } else {
                match target.version.map(|v| (v, &plans.calls[&v])) {
                    None => Some("VersionUnknown"),
                    Some((_, Err(why))) => {
                        untranslatable.get_or_insert_with(|| why.0.clone());
                        Some("Untranslatable")
                    }
                    Some((version, Ok(call))) => {
                        let mut command = CommandRecord::pending(
                            &target.id,
                            plans.name,
                            call.action,
                            version,
                            call.payload.clone(),
                            call.class,
                            now,
                        );
                        command.expires_at = expiry(&state, call.class, query.ttl, now);
                        command.batch_id = Some(batch_id.clone());
                        commands.push(command);
                        None
                    }
                }
            };
        if let Some(reason) = reason {
            *skipped.entry(reason.into()).or_default() += 1;
        }
    }
    if commands.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "invalid body: no station to send to (skipped: {})",
            describe(&skipped, untranslatable.as_deref())
        )));
    }
    let batch = BatchRecord {
        batch_id: batch_id.clone(),
        operation: plans.name.to_owned(),
        action: plans.action(),
        created_at: now,
        commands: commands.len() as u64,
        skipped: skipped.clone(),
        untranslatable,
    };
    state
        .store
        .create_batch(batch.clone(), commands.clone())
        .await?;

    let wait = query.wait.unwrap_or(false);
    let started = std::time::Instant::now();
    let answers = route(&state, plans.name, commands.clone(), wait).await;
    if !wait {
        return Ok(HttpResponse::Accepted().json(BatchAccepted {
            batch_id,
            stations: batch.commands,
            skipped,
        }));
    }
    let deadline = tokio::time::Instant::now() + state.wait_timeout;
    let settled: HashMap<String, CommandRecord> =
        futures_util::future::join_all(answers.into_iter().map(|answer| async move {
            tokio::time::timeout_at(deadline, answer).await.ok()?.ok()
        }))
        .await
        .into_iter()
        .flatten()
        .map(|command| (command.station_id.clone(), command))
        .collect();
    crate::metrics::command_round_trip(plans.name, started.elapsed());
    let now = Utc::now();
    let mut counts = BTreeMap::new();
    for command in commands {
        let seen = settled
            .get(&command.station_id)
            .cloned()
            .unwrap_or(command)
            .as_seen_at(now);
        *counts.entry(status_name(seen.status)).or_default() += 1;
    }
    let complete = !counts.contains_key("Pending");
    Ok(HttpResponse::Ok().json(BatchView {
        batch,
        counts,
        complete,
        commands: None,
    }))
}

fn describe(skipped: &BTreeMap<String, u64>, untranslatable: Option<&str>) -> String {
    let mut parts: Vec<String> = skipped.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if let Some(why) = untranslatable {
        parts.push(format!("untranslatable because {why}"));
    }
    if parts.is_empty() {
        "no station matched".into()
    } else {
        parts.join(", ")
    }
}

fn status_name(status: CommandStatus) -> String {
    format!("{status:?}")
}

/// Hands every command to its station's actor, `ROUTES_IN_FLIGHT` at a
/// time; with `wait`, returns the receivers of their outcomes.
async fn route(
    state: &AppState,
    operation: &'static str,
    commands: Vec<CommandRecord>,
    wait: bool,
) -> Vec<oneshot::Receiver<CommandRecord>> {
    let registry = &state.registry;
    futures_util::stream::iter(commands)
        .map(|command| async move {
            let (waiter, answer) = if wait {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            let station = command.station_id.clone();
            let routed = registry
                .send_command(&station, SendCommand { command, waiter })
                .await;
            crate::metrics::command(
                operation,
                match routed {
                    Ok(()) => "routed",
                    Err(crate::supervisor::RouteError::NotConnected) => "not_connected",
                    Err(crate::supervisor::RouteError::Busy) => "busy",
                },
            );
            answer
        })
        .buffer_unordered(ROUTES_IN_FLIGHT)
        .filter_map(|answer| async move { answer })
        .collect()
        .await
}

/// How a fan-out stands: counts by status, and its commands in station order.
#[utoipa::path(get, path = "/api/v0/commands/{batchId}", tag = "operations",
    params(("batchId" = String, Path, description = "The batch id"), PageQuery),
    responses((status = 200, body = BatchView), (status = 404, body = ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    batch_id: web::Path<String>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("batch", &batch_id);
    if !is_command_id(&batch_id) {
        return Err(not_found());
    }
    let batch = state.store.batch(&batch_id).await?.ok_or_else(not_found)?;
    let page = paging.page()?;
    let now = Utc::now();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let chunk = state
            .store
            .batch_commands(
                &batch_id,
                Page {
                    offset: 0,
                    limit: COUNT_PAGE,
                    after: after.clone(),
                },
            )
            .await?;
        let full = chunk.len() == COUNT_PAGE as usize;
        for command in chunk {
            after = Some(command.station_id.clone());
            *counts
                .entry(status_name(command.as_seen_at(now).status))
                .or_default() += 1;
        }
        if !full {
            break;
        }
    }
    let commands = state.store.batch_commands(&batch_id, page.clone()).await?;
    let returned = commands.len();
    let last = commands.last().map(|c| c.station_id.clone());
    let complete = !counts.contains_key("Pending");
    let view = BatchView {
        batch,
        counts,
        complete,
        commands: Some(commands.into_iter().map(|c| view(c, None)).collect()),
    };
    Ok(with_next_cursor(HttpResponse::Ok(), &page, returned, last.as_deref()).json(view))
}
