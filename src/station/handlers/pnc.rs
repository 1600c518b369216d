//! ISO 15118 Plug & Charge for OCPP 1.6, tunnelled through DataTransfer with
//! vendor `org.openchargealliance.iso15118pnc`: the `data` field carries the
//! OCPP 2.0.1 message as a JSON string, and so does the answer.
//!
//! Token authorization is answered from the token store. The certificate
//! services (CSR signing, OCSP, contract certificates) need outside services
//! that voltgate does not have configured: they get the protocol's failure
//! status, counted, never an invented success.

use serde_json::{json, Value};

use chrono::{DateTime, Utc};

use super::{decide_token, signing, Env, Handled, HandlerError, Station, TokenDecision};
use crate::metrics::unconfigured_service;

/// The DataTransfer answer for one PnC message (with the stored
/// CertificateSigned to send after it, for a signed CSR).
pub(super) async fn handle(
    env: &Env,
    station: &Station,
    message_id: Option<&str>,
    data: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    let Some(request) = data
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .filter(Value::is_object)
    else {
        return Ok(Handled::reply(json!({"status": "Rejected"})));
    };
    let mut command = None;
    let inner = match message_id {
        Some("Authorize") => {
            let Some(id_token) = request["idToken"]["idToken"].as_str() else {
                return Ok(Handled::reply(json!({"status": "Rejected"})));
            };
            json!({ "idTokenInfo": id_token_info(env, id_token, Some(&station.id)).await? })
        }
        Some("SignCertificate") => {
            let (status, signed) =
                signing::sign(env, station, &request, signing::Route::PlugAndCharge, now).await?;
            command = signed;
            json!({ "status": status })
        }
        Some("GetCertificateStatus") => {
            unconfigured_service("ocsp_responder");
            json!({"status": "Failed"})
        }
        Some("Get15118EVCertificate") => {
            unconfigured_service("contract_certificate_pool");
            json!({"status": "Failed", "exiResponse": ""})
        }
        _ => return Ok(Handled::reply(json!({"status": "UnknownMessageId"}))),
    };
    Ok(Handled {
        command,
        ..Handled::reply(json!({"status": "Accepted", "data": inner.to_string()}))
    })
}

/// 2.0.1 `IdTokenInfoType` for an id token looked up by uid (`asking_at`:
/// see [`decide_token`]).
pub(super) async fn id_token_info(
    env: &Env,
    id_token: &str,
    asking_at: Option<&str>,
) -> Result<Value, HandlerError> {
    Ok(match decide_token(env, id_token, asking_at).await? {
        TokenDecision::Accepted(token) => {
            let mut info = json!({"status": "Accepted"});
            if let Some(group) = token.group_id {
                info["groupIdToken"] = json!({"idToken": group, "type": "Central"});
            }
            if let Some(language) = token.language_code {
                info["language1"] = json!(language);
            }
            info
        }
        TokenDecision::Blocked => json!({"status": "Blocked"}),
        TokenDecision::Expired => json!({"status": "Expired"}),
        TokenDecision::NoCredit => json!({"status": "NoCredit"}),
        TokenDecision::NotAllowed => json!({"status": "NotAtThisLocation"}),
        TokenDecision::Unknown => json!({"status": "Unknown"}),
    })
}
