//! The Tokens module, receiver side: eMSPs push their tokens (`PUT`, and
//! `PATCH` to change some fields), and read back what voltgate holds
//! (`GET`). They land in the same token store as MaEVe's `/api/v0/token`,
//! so stations' Authorize, StartTransaction and TransactionEvent use them,
//! and operators see them with their party.
//!
//! A partner pushes only tokens of its own parties. The contract id is
//! kept normalized when it is an eMAID, and as sent otherwise (OCPI does
//! not require an eMAID).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::registrar::Registrar;
use super::transport::{caller, code, success, Caller, OcpiError};
use crate::store::{ocpi_time, CacheMode, Token, TokenType};

/// The `?type=` of a token request (RFID when absent, as OCPI says).
#[derive(Debug, Deserialize)]
pub struct TypeQuery {
    #[serde(rename = "type")]
    token_type: Option<String>,
}

type TokenPath = web::Path<(String, String, String)>;

fn token_type(text: &str) -> Option<TokenType> {
    serde_json::from_value(Value::String(text.to_owned())).ok()
}

/// An OCPI Token as voltgate's token record; 2001 naming the field.
pub fn read_token(value: &Value) -> Result<Token, OcpiError> {
    let text = |field: &str, min: usize, max: usize| -> Result<String, OcpiError> {
        let v = value[field]
            .as_str()
            .ok_or_else(|| OcpiError::invalid(field, "missing or not a string"))?;
        if !(min..=max).contains(&v.chars().count()) {
            return Err(OcpiError::invalid(
                field,
                format!("must be {min} to {max} characters"),
            ));
        }
        Ok(v.to_owned())
    };
    let optional = |field: &str, max: usize| -> Result<Option<String>, OcpiError> {
        match &value[field] {
            Value::Null => Ok(None),
            Value::String(s) if s.chars().count() <= max => Ok(Some(s.clone())),
            _ => Err(OcpiError::invalid(
                field,
                format!("must be a string of at most {max} characters"),
            )),
        }
    };
    let kind = text("type", 1, 16)?;
    let whitelist = text("whitelist", 1, 16)?;
    let contract_id = text("contract_id", 1, 36)?;
    let last_updated = text("last_updated", 1, 35)?;
    let last_updated = DateTime::parse_from_rfc3339(&last_updated)
        .map_err(|e| OcpiError::invalid("last_updated", e))?
        .with_timezone(&Utc);
    Ok(Token {
        country_code: text("country_code", 2, 2)?,
        party_id: text("party_id", 3, 3)?,
        token_type: token_type(&kind)
            .ok_or_else(|| OcpiError::invalid("type", format!("{kind:?} is not a token type")))?,
        uid: text("uid", 1, 36)?,
        contract_id: crate::emaid::normalize(&contract_id).unwrap_or(contract_id),
        visual_number: optional("visual_number", 64)?,
        issuer: text("issuer", 1, 64)?,
        group_id: optional("group_id", 36)?,
        valid: value["valid"]
            .as_bool()
            .ok_or_else(|| OcpiError::invalid("valid", "missing or not a boolean"))?,
        language_code: optional("language", 2)?,
        cache_mode: serde_json::from_value::<CacheMode>(Value::String(whitelist.clone())).map_err(
            |_| {
                OcpiError::invalid(
                    "whitelist",
                    format!("{whitelist:?} is not a whitelist type"),
                )
            },
        )?,
        last_updated: Some(ocpi_time::truncate(last_updated)),
    })
}

/// voltgate's token record as an OCPI Token.
pub fn token_view(token: &Token) -> Value {
    let mut value = json!({
        "country_code": token.country_code,
        "party_id": token.party_id,
        "uid": token.uid,
        "type": token.token_type,
        "contract_id": token.contract_id,
        "issuer": token.issuer,
        "valid": token.valid,
        "whitelist": token.cache_mode,
        "last_updated": ocpi_time::format(&token.last_updated.unwrap_or_else(Utc::now)),
    });
    for (field, v) in [
        ("visual_number", &token.visual_number),
        ("group_id", &token.group_id),
        ("language", &token.language_code),
    ] {
        if let Some(v) = v {
            value[field] = json!(v);
        }
    }
    value
}

/// The caller, checked to be the eMSP of `country_code`/`party_id`.
async fn owner(
    req: &HttpRequest,
    registrar: &Registrar,
    country_code: &str,
    party_id: &str,
) -> Result<Caller, OcpiError> {
    let who = caller(req, registrar.store(), false).await?;
    let owns = who.partner.roles.iter().any(|r| {
        r.country_code.eq_ignore_ascii_case(country_code)
            && r.party_id.eq_ignore_ascii_case(party_id)
    });
    if !owns {
        return Err(OcpiError::ok_with(
            code::CLIENT_ERROR,
            format!("tokens of {country_code}-{party_id} are not this partner's"),
        ));
    }
    Ok(who)
}

/// The stored token at the path, if it is the type asked for.
async fn stored(
    registrar: &Registrar,
    (country_code, party_id, uid): &(String, String, String),
    wanted: TokenType,
) -> Result<Option<Token>, OcpiError> {
    Ok(registrar.store().token(uid).await?.filter(|t| {
        t.token_type == wanted
            && t.country_code.eq_ignore_ascii_case(country_code)
            && t.party_id.eq_ignore_ascii_case(party_id)
    }))
}

fn wanted_type(query: &TypeQuery) -> Result<TokenType, OcpiError> {
    match &query.token_type {
        None => Ok(TokenType::Rfid),
        Some(kind) => token_type(kind)
            .ok_or_else(|| OcpiError::invalid("type", format!("{kind:?} is not a token type"))),
    }
}

fn unknown(uid: &str) -> OcpiError {
    OcpiError::ok_with(code::UNKNOWN_TOKEN, format!("unknown token {uid:?}"))
}

/// `GET /ocpi/2.2.1/tokens/{country_code}/{party_id}/{uid}[?type=]`.
pub async fn get(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    path: TokenPath,
    query: web::Query<TypeQuery>,
) -> Result<HttpResponse, OcpiError> {
    owner(&req, &registrar, &path.0, &path.1).await?;
    let token = stored(&registrar, &path, wanted_type(&query)?)
        .await?
        .ok_or_else(|| unknown(&path.2))?;
    Ok(success(token_view(&token)))
}

/// `PUT /ocpi/2.2.1/tokens/{country_code}/{party_id}/{uid}[?type=]`.
pub async fn put(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    path: TokenPath,
    query: web::Query<TypeQuery>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    owner(&req, &registrar, &path.0, &path.1).await?;
    let token = read_token(&body)?;
    check_path(&token, &path, wanted_type(&query)?)?;
    registrar.store().put_token(token).await?;
    Ok(success(Value::Null))
}

/// `PATCH /ocpi/2.2.1/tokens/{country_code}/{party_id}/{uid}[?type=]`:
/// the fields sent replace the stored ones; `last_updated` is required.
pub async fn patch(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    path: TokenPath,
    query: web::Query<TypeQuery>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    owner(&req, &registrar, &path.0, &path.1).await?;
    let wanted = wanted_type(&query)?;
    let Value::Object(changes) = body.into_inner() else {
        return Err(OcpiError::invalid("body", "must be a JSON object"));
    };
    if !changes.contains_key("last_updated") {
        return Err(OcpiError::invalid("last_updated", "a PATCH must carry it"));
    }
    let current = stored(&registrar, &path, wanted)
        .await?
        .ok_or_else(|| unknown(&path.2))?;
    let Value::Object(mut merged) = token_view(&current) else {
        return Err(OcpiError::server("a token view is not an object"));
    };
    merged.extend(changes);
    let token = read_token(&Value::Object(merged))?;
    check_path(&token, &path, wanted)?;
    registrar.store().put_token(token).await?;
    Ok(success(Value::Null))
}

/// The token's ids must be those of the URL.
fn check_path(
    token: &Token,
    (country_code, party_id, uid): &(String, String, String),
    wanted: TokenType,
) -> Result<(), OcpiError> {
    let mismatch = |field: &str| OcpiError::invalid(field, "differs from the URL");
    if !token.country_code.eq_ignore_ascii_case(country_code) {
        return Err(mismatch("country_code"));
    }
    if !token.party_id.eq_ignore_ascii_case(party_id) {
        return Err(mismatch("party_id"));
    }
    if token.uid != *uid {
        return Err(mismatch("uid"));
    }
    if token.token_type != wanted {
        return Err(OcpiError::invalid(
            "type",
            "differs from the ?type= of the URL",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Value {
        json!({"country_code": "NL", "party_id": "EMS", "uid": "ABC123", "type": "RFID",
            "contract_id": "NL-EMS-C12345678-X", "issuer": "EMS", "valid": true,
            "whitelist": "ALLOWED", "last_updated": "2026-12-01T10:00:00Z"})
    }

    #[test]
    fn ocpi_tokens_read_into_records_and_back() {
        let read = read_token(&token()).unwrap();
        assert_eq!(read.cache_mode, CacheMode::Allowed);
        assert_eq!(read.token_type, TokenType::Rfid);
        let view = token_view(&read);
        assert_eq!(view["whitelist"], "ALLOWED");
        assert_eq!(view["uid"], "ABC123");
        for (field, bad) in [
            ("whitelist", json!("SOMETIMES")),
            ("type", json!("CARD")),
            ("valid", json!("yes")),
            ("uid", json!("")),
        ] {
            let mut value = token();
            value[field] = bad;
            let error = read_token(&value).unwrap_err();
            assert!(error.message.contains(field), "{field}: {}", error.message);
        }
    }
}
