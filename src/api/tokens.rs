//! `/api/v0/token`: authorization tokens (create/replace, list, look up, revoke).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::Utc;

use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use super::paging::{with_next_cursor, PageQuery};
use super::validate::{invalid, length, optional_length};
use super::AppState;
use crate::emaid;
use crate::store::Token;

type Uid = web::Path<String>;

/// Create or replace a token. `contractId` must be an eMAID; it is stored
/// normalized (upper case, no hyphens, with its check digit).
#[utoipa::path(post, path = "/api/v0/token", tag = "tokens", request_body = Token,
    responses((status = 201, description = "Stored; Location names the token"),
        (status = 400, body = ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    ValidJson(mut token): ValidJson<Token>,
) -> Result<HttpResponse, ApiError> {
    length("countryCode", &token.country_code, 2, 2)?;
    length("partyId", &token.party_id, 3, 3)?;
    length("uid", &token.uid, 1, 36)?;
    length("issuer", &token.issuer, 1, 64)?;
    optional_length("visualNumber", &token.visual_number, 0, 64)?;
    optional_length("groupId", &token.group_id, 1, 36)?;
    optional_length("languageCode", &token.language_code, 2, 2)?;
    token.contract_id =
        emaid::normalize(&token.contract_id).map_err(|e| invalid("contractId", e))?;
    token.last_updated = Some(Utc::now());
    let location = format!("/api/v0/token/{}", token.uid);
    state.store.put_token(token).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .finish())
}

/// Tokens in uid order; a full page carries `X-Next-Cursor`.
#[utoipa::path(get, path = "/api/v0/token", tag = "tokens", params(PageQuery),
    responses((status = 200, body = Vec<Token>), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let tokens = state.store.list_tokens(page.clone()).await?;
    let last = tokens.last().map(|t| t.uid.as_str());
    Ok(with_next_cursor(HttpResponse::Ok(), &page, tokens.len(), last).json(&tokens))
}

/// One token.
#[utoipa::path(get, path = "/api/v0/token/{tokenUid}", tag = "tokens",
    params(("tokenUid" = String, Path, description = "The token uid")),
    responses((status = 200, body = Token), (status = 404, body = ErrorBody)))]
pub async fn show(state: web::Data<AppState>, uid: Uid) -> Result<HttpResponse, ApiError> {
    let token = state
        .store
        .token(&uid)
        .await?
        .ok_or_else(|| ApiError::not_found("token", &uid))?;
    Ok(HttpResponse::Ok().json(token))
}

/// Revoke (delete) a token.
#[utoipa::path(delete, path = "/api/v0/token/{tokenUid}", tag = "tokens",
    params(("tokenUid" = String, Path, description = "The token uid")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(state: web::Data<AppState>, uid: Uid) -> Result<HttpResponse, ApiError> {
    if state.store.delete_token(&uid).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("token", &uid))
    }
}
