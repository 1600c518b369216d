//! `GET /api/v0/cs/{csId}/variables`: what the station's configuration is,
//! as far as voltgate knows: the last value of each key it reported
//! (GetConfiguration, GetVariables, NotifyReport) or accepted from a set,
//! with when and how it was learnt, and the values voltgate is still
//! setting (reconfigure, or a ChangeConfiguration / SetVariables command not
//! answered yet) marked as pending.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::paging::{with_next_cursor, PageQuery};
use super::AppState;
use crate::ocpp::setting_key::VariableRef;
use crate::station::operations::work_item::WorkItem;
use crate::store::{Page, ReportedVariable};

/// One key of the station's configuration.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariableView {
    /// The key (as `reconfigure` takes it).
    key: String,
    /// What the station last reported or accepted, if anything yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    reported: Option<ReportedVariable>,
    /// A value voltgate is setting and the station has not confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<PendingValue>,
}

/// A value on its way to the station.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingValue {
    /// The value.
    value: String,
    /// `reconfigure`, or the command's action (ChangeConfiguration, SetVariables).
    via: String,
    /// Since when.
    since: DateTime<Utc>,
}

/// Values voltgate is setting on the station, by key (the newest wins).
async fn pending_values(
    state: &AppState,
    id: &str,
) -> Result<BTreeMap<String, PendingValue>, ApiError> {
    let mut pending = BTreeMap::new();
    for command in state.store.outbox(id).await? {
        if let Some(WorkItem::Setting { key, value }) = WorkItem::of(&command) {
            let since = command.created_at;
            let via = "reconfigure".to_owned();
            pending.insert(key, PendingValue { value, via, since });
            continue;
        }
        let via = command.action.clone();
        let since = command.created_at;
        let values: Vec<(String, String)> = match command.action.as_str() {
            "ChangeConfiguration" => command.payload["key"]
                .as_str()
                .zip(command.payload["value"].as_str())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into_iter()
                .collect(),
            "SetVariables" => command.payload["setVariableData"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|data| {
                    let name = VariableRef::of_entry(data)?;
                    Some((name.key(), data["attributeValue"].as_str()?.to_owned()))
                })
                .collect(),
            _ => Vec::new(),
        };
        for (key, value) in values {
            let newer = pending
                .get(&key)
                .is_none_or(|p: &PendingValue| p.since <= since);
            if newer {
                pending.insert(
                    key,
                    PendingValue {
                        value,
                        via: via.clone(),
                        since,
                    },
                );
            }
        }
    }
    Ok(pending)
}

/// The station's configuration as reported, with what voltgate is setting.
#[utoipa::path(get, path = "/api/v0/cs/{csId}/variables", tag = "charge stations",
    params(("csId" = String, Path, description = "The charge station id"), PageQuery),
    responses((status = 200, body = [VariableView]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    id: web::Path<String>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = paging.page()?;
    if state.store.station(&id).await?.is_none() {
        return Err(ApiError::not_found("charge station", &id));
    }
    // Offsets count merged entries: read from the start of the window.
    let window = Page {
        offset: 0,
        limit: page
            .limit
            .saturating_add(u32::try_from(page.offset).unwrap_or(u32::MAX)),
        after: page.after.clone(),
    };
    let reported = state.store.variables(&id, window.clone()).await?;
    let mut pending = pending_values(&state, &id).await?;
    if let Some(after) = &page.after {
        pending.retain(|key, _| key > after);
    }
    // A pending key past the last reported one of a full window belongs to
    // a later page (reported keys may lie between).
    let full = reported.len() == window.limit as usize;
    if full {
        if let Some(last) = reported.last().map(|r| r.key.clone()) {
            pending.retain(|key, _| *key <= last);
        }
    }
    let mut merged: BTreeMap<String, VariableView> = BTreeMap::new();
    for variable in reported {
        merged.insert(
            variable.key.clone(),
            VariableView {
                key: variable.key.clone(),
                reported: Some(variable),
                pending: None,
            },
        );
    }
    for (key, value) in pending {
        merged
            .entry(key.clone())
            .or_insert_with(|| VariableView {
                key,
                reported: None,
                pending: None,
            })
            .pending = Some(value);
    }
    let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let views: Vec<VariableView> = merged
        .into_values()
        .skip(offset)
        .take(page.limit as usize)
        .collect();
    let last = views.last().map(|v| v.key.clone());
    Ok(with_next_cursor(HttpResponse::Ok(), &page, views.len(), last.as_deref()).json(views))
}
