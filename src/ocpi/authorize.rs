//! Real-time authorization at the token's eMSP: `POST {tokens}/{uid}/
//! authorize` with the location the token is presented at, answered within
//! a time budget (`--ocpi-realtime-auth-timeout-ms`). A known token is asked
//! of its own party; an unknown one of every registered eMSP with a Tokens
//! sender, the first ALLOWED winning.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use awc::http::Method;
use futures_util::future::join_all;
use serde_json::{json, Value};

use super::client::{call_routed, Route};
use super::credentials::Identity;
use super::outbound::Outbound;
use super::sessions::authorizations::{Authorizations, Granted};
use super::sessions::view::{token_type_name, Authorization, CdrToken};
use super::tokens::read_token;
use crate::station::remote_auth::{RemoteAuthorizer, RemoteVerdict};
use crate::store::{OcpiPartner, OcpiRegistrationStatus, Store, Token, TokenType};

/// Asks eMSPs in real time.
pub struct RealtimeAuth {
    store: Arc<dyn Store>,
    outbound: Outbound,
    budget: Duration,
    authorizations: Arc<Authorizations>,
    identity: Arc<Identity>,
}

impl RealtimeAuth {
    /// Asks the partners kept in `store`, on `outbound`, within `budget`;
    /// an ALLOWED answer is remembered in `authorizations` for the session
    /// it starts.
    pub fn new(
        store: Arc<dyn Store>,
        outbound: Outbound,
        budget: Duration,
        authorizations: Arc<Authorizations>,
        identity: Arc<Identity>,
    ) -> Self {
        RealtimeAuth {
            store,
            outbound,
            budget,
            authorizations,
            identity,
        }
    }
}

/// A path segment with everything but unreserved characters escaped.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The verdict in an AuthorizationInfo.
pub fn verdict_of(info: &Value) -> Option<RemoteVerdict> {
    Some(match info["allowed"].as_str()? {
        "ALLOWED" => RemoteVerdict::Allowed(read_token(&info["token"]).ok().map(Box::new)),
        "BLOCKED" => RemoteVerdict::Blocked,
        "EXPIRED" => RemoteVerdict::Expired,
        "NO_CREDIT" => RemoteVerdict::NoCredit,
        "NOT_ALLOWED" => RemoteVerdict::NotAllowed,
        _ => return None,
    })
}

/// What an eMSP's ALLOWED answer grants: the session of the token goes to
/// that eMSP, as AUTH_REQUEST with its authorization_reference.
fn granted_by(
    partner: &OcpiPartner,
    info: &Value,
    known: Option<&Token>,
    uid: &str,
    type_name: &str,
) -> Granted {
    let described = read_token(&info["token"]).ok();
    let token = described.as_ref().or(known);
    let role = partner.emsp_role();
    let (country_code, party_id) = match (token, role) {
        (Some(t), _) if !t.country_code.is_empty() => (t.country_code.clone(), t.party_id.clone()),
        (_, Some(r)) => (r.country_code.clone(), r.party_id.clone()),
        _ => (String::new(), String::new()),
    };
    Granted {
        partner_id: partner.id.clone(),
        token: CdrToken {
            country_code,
            party_id,
            uid: uid.to_owned(),
            token_type: token
                .map_or_else(|| type_name.to_owned(), |t| token_type_name(t.token_type)),
            contract_id: token
                .map(|t| t.contract_id.clone())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| uid.to_owned()),
        },
        auth: Authorization {
            method: "AUTH_REQUEST".into(),
            reference: info["authorization_reference"].as_str().map(str::to_owned),
        },
    }
}

#[async_trait]
impl RemoteAuthorizer for RealtimeAuth {
    async fn authorize(
        &self,
        known: Option<&Token>,
        uid: &str,
        station_id: &str,
    ) -> Option<RemoteVerdict> {
        let partners = self.store.list_partners().await.ok()?;
        let issuer = |cc: &str, pid: &str| {
            known.is_none_or(|t| {
                t.country_code.eq_ignore_ascii_case(cc) && t.party_id.eq_ignore_ascii_case(pid)
            })
        };
        let token_type = known.map_or(TokenType::Rfid, |t| t.token_type);
        let type_name = token_type_name(token_type);
        let asked: Vec<&OcpiPartner> = partners
            .iter()
            .filter(|p| p.status == OcpiRegistrationStatus::Registered)
            .filter(|p| p.roles.iter().any(|r| issuer(&r.country_code, &r.party_id)))
            .filter(|p| p.endpoint("tokens", "SENDER").is_some() && p.token_to_partner.is_some())
            .collect();
        let asks: Vec<(String, String, Option<Route>)> = asked
            .iter()
            .filter_map(|p| {
                let base = p.endpoint("tokens", "SENDER")?;
                let token = p.token_to_partner.clone()?;
                let url = format!(
                    "{}/{}/authorize?type={type_name}",
                    base.trim_end_matches('/'),
                    segment(uid)
                );
                Some((url, token, Route::to_partner(&self.identity, p)))
            })
            .collect();
        if asks.is_empty() {
            return None;
        }
        let links = self.store.evse_links(station_id).await.unwrap_or_default();
        let body = links.first().map(|first| {
            let evse_uids: Vec<&str> = links
                .iter()
                .filter(|l| l.location_id == first.location_id)
                .map(|l| l.evse_uid.as_str())
                .collect();
            json!({"location_id": first.location_id, "evse_uids": evse_uids})
        });
        let budget = self.budget;
        let answers = self.outbound.run(move || async move {
            let calls = asks.iter().map(|(url, token, route)| {
                call_routed(
                    Method::POST,
                    url,
                    token,
                    body.as_ref(),
                    budget,
                    route.as_ref(),
                )
            });
            join_all(calls).await
        });
        let answers = tokio::time::timeout(budget, answers).await.ok()??;
        let mut verdicts: Vec<(usize, Value, RemoteVerdict)> = answers
            .into_iter()
            .enumerate()
            .filter_map(|(i, answer)| match answer {
                Ok(info) => verdict_of(&info).map(|verdict| (i, info, verdict)),
                Err(e) => {
                    tracing::info!(error = %e, "real-time authorization not answered");
                    None
                }
            })
            .collect();
        let allowed = verdicts
            .iter()
            .position(|(_, _, v)| matches!(v, RemoteVerdict::Allowed(_)));
        let Some(allowed) = allowed else {
            return verdicts.into_iter().next().map(|(_, _, v)| v);
        };
        let (i, info, verdict) = verdicts.swap_remove(allowed);
        self.authorizations
            .grant(granted_by(asked[i], &info, known, uid, &type_name));
        Some(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_verdicts_and_uids_are_escaped() {
        assert_eq!(
            verdict_of(&json!({"allowed": "BLOCKED"})),
            Some(RemoteVerdict::Blocked)
        );
        assert_eq!(
            verdict_of(&json!({"allowed": "NO_CREDIT"})),
            Some(RemoteVerdict::NoCredit)
        );
        assert!(matches!(
            verdict_of(&json!({"allowed": "ALLOWED"})),
            Some(RemoteVerdict::Allowed(None))
        ));
        assert_eq!(verdict_of(&json!({"allowed": "MAYBE"})), None);
        assert_eq!(segment("AB 12/x"), "AB%2012%2Fx");
    }
}
