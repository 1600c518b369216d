//! Transactions for the operators who stop them: a station's transactions,
//! newest first (`GET /api/v0/cs/{csId}/transactions[?active=true]`), and
//! the ongoing ones of the whole fleet (`GET /api/v0/transactions?active=true`),
//! each with its token, EVSE or connector, start, energy so far and last
//! meter value, so a remote stop (or a charging profile) can name it.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::paging::{with_next_cursor, PageQuery};
use super::validate::invalid;
use super::AppState;
use crate::store::{active_key, Page, Transaction};

/// Most of a station's transactions read to order them newest first.
const MAX_STATION_TRANSACTIONS: usize = 10_000;
/// Transactions read per store request.
const READ_PAGE: u32 = 1_000;

/// One transaction as operators see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionView {
    /// Its id (a number on 1.6 stations).
    transaction_id: String,
    /// The station that runs it.
    station_id: String,
    /// True until it ended.
    active: bool,
    /// The token it was authorized with.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    /// That token's OCPP type.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_type: Option<String>,
    /// The EVSE (2.0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    evse_id: Option<u32>,
    /// The connector.
    #[serde(skip_serializing_if = "Option::is_none")]
    connector_id: Option<u32>,
    /// When it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<DateTime<Utc>>,
    /// Why it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_reason: Option<String>,
    /// The energy register of its latest meter value, in Wh.
    #[serde(skip_serializing_if = "Option::is_none")]
    energy_wh: Option<f64>,
    /// Its latest meter value.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    last_meter_value: Option<Value>,
}

fn view(t: Transaction) -> TransactionView {
    TransactionView {
        active: t.is_active(),
        id_token: t.id_token.as_ref().map(|token| token.id.clone()),
        id_token_type: t.id_token.map(|token| token.token_type),
        transaction_id: t.transaction_id,
        station_id: t.station_id,
        evse_id: t.evse_id,
        connector_id: t.connector_id,
        started_at: t.started_at,
        ended_at: t.ended_at,
        stop_reason: t.stop_reason,
        energy_wh: t.energy_wh,
        last_meter_value: t.last_meter_value.map(meter_value),
    }
}

/// A meter value in the API's camelCase: `{timestamp, sampledValues: [...]}`.
fn meter_value(value: crate::store::MeterValue) -> Value {
    let sampled: Vec<Value> = value
        .sampled_values
        .into_iter()
        .map(|sampled| {
            let mut out = serde_json::json!({ "value": sampled.value });
            for (field, text) in [
                ("measurand", sampled.measurand),
                ("phase", sampled.phase),
                ("unit", sampled.unit),
                ("context", sampled.context),
                ("location", sampled.location),
            ] {
                if let Some(text) = text {
                    out[field] = Value::String(text);
                }
            }
            out
        })
        .collect();
    serde_json::json!({"timestamp": value.timestamp, "sampledValues": sampled})
}

/// Which transactions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActiveQuery {
    /// Only the ongoing ones.
    active: Option<bool>,
}

/// The station's ongoing transactions, from the fleet-wide index.
async fn active_of(state: &AppState, id: &str) -> Result<Vec<Transaction>, ApiError> {
    // Index keys are "station U+001F transaction": start just below the
    // station's first key and read until another station's.
    let mut after = format!("{id}\u{1e}");
    let mut out = Vec::new();
    loop {
        let page = Page {
            offset: 0,
            limit: READ_PAGE,
            after: Some(after.clone()),
        };
        let chunk = state.store.active_transactions(page).await?;
        let full = chunk.len() == READ_PAGE as usize;
        for transaction in chunk {
            if transaction.station_id != id {
                return Ok(out);
            }
            after = active_key(&transaction.station_id, &transaction.transaction_id);
            out.push(transaction);
        }
        if !full {
            return Ok(out);
        }
    }
}

/// The station's transactions, newest first (by start), optionally only the ongoing ones.
#[utoipa::path(get, path = "/api/v0/cs/{csId}/transactions", tag = "transactions",
    params(("csId" = String, Path, description = "The charge station id"), ActiveQuery, PageQuery),
    responses((status = 200, body = [TransactionView]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn of_station(
    state: web::Data<AppState>,
    id: web::Path<String>,
    filter: web::Query<ActiveQuery>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = paging.page()?;
    if page.after.is_some() {
        return Err(invalid(
            "cursor",
            "a station's transactions page by offset (newest first)",
        ));
    }
    if state.store.station(&id).await?.is_none() {
        return Err(ApiError::not_found("charge station", &id));
    }
    let mut transactions = if filter.active == Some(true) {
        active_of(&state, &id).await?
    } else {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let chunk = state
                .store
                .list_transactions(
                    &id,
                    Page {
                        offset: 0,
                        limit: READ_PAGE,
                        after: after.clone(),
                    },
                )
                .await?;
            let full = chunk.len() == READ_PAGE as usize;
            after = chunk.last().map(|t| t.transaction_id.clone());
            all.extend(chunk);
            if all.len() > MAX_STATION_TRANSACTIONS {
                return Err(invalid(
                    "active",
                    format!(
                        "the station has more than {MAX_STATION_TRANSACTIONS} transactions: list the ongoing ones with ?active=true"
                    ),
                ));
            }
            if !full {
                break;
            }
        }
        if filter.active == Some(false) {
            all.retain(|t| !t.is_active());
        }
        all
    };
    // Newest first; a transaction whose start was not reported sorts last.
    transactions.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| b.transaction_id.cmp(&a.transaction_id))
    });
    let views: Vec<TransactionView> = transactions
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(page.limit as usize)
        .map(view)
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// The ongoing transactions of the whole fleet, in (station, transaction) order.
#[utoipa::path(get, path = "/api/v0/transactions", tag = "transactions",
    params(ActiveQuery, PageQuery),
    responses((status = 200, body = [TransactionView]), (status = 400, body = ErrorBody)))]
pub async fn active(
    state: web::Data<AppState>,
    filter: web::Query<ActiveQuery>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    if filter.active != Some(true) {
        return Err(invalid(
            "active",
            "the fleet-wide list shows the ongoing transactions: give ?active=true (a station's history is under /cs/{csId}/transactions)",
        ));
    }
    let page = paging.page()?;
    let transactions = state.store.active_transactions(page.clone()).await?;
    let last = transactions
        .last()
        .map(|t| active_key(&t.station_id, &t.transaction_id));
    let returned = transactions.len();
    let views: Vec<TransactionView> = transactions.into_iter().map(view).collect();
    Ok(with_next_cursor(HttpResponse::Ok(), &page, returned, last.as_deref()).json(views))
}
