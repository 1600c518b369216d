//! The Commands module, receiver side: an eMSP asks voltgate to start a
//! session or unlock a connector at one of its locations. The request is
//! answered at once with a CommandResponse (ACCEPTED with the time the
//! station has, or REJECTED saying why); the command then goes through the
//! operations pipeline like a REST command, and its outcome is POSTed as a
//! CommandResult to the eMSP's `response_url`.
//!
//! STOP_SESSION finds the transaction by the session's stored record and
//! answers UNKNOWN_SESSION for a session that is not the eMSP's.
//! RESERVE_NOW and CANCEL_RESERVATION keep a reservation record
//! (`reservations`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use awc::http::Method;
use serde_json::{json, Value};

use super::client::{call_routed, Route};
use super::outbound::Outbound;
use super::registrar::Registrar;
use super::reservations::{self, id_token_type, Planned};
use super::sessions::authorizations::{Authorizations, Granted};
use super::sessions::view::{Authorization, CdrToken};
use super::tokens::read_token;
use super::transport::{caller, code, success, OcpiError};
use crate::ocpp::Version;
use crate::station::operations::dispatch::{dispatch, version_of};
use crate::station::operations::remote_start::RemoteStart;
use crate::station::operations::remote_stop::RemoteStop;
use crate::station::operations::unlock::Unlock;
use crate::station::operations::{self, Operation};
use crate::store::{CommandRecord, CommandStatus, Evse, OcpiObjectKind, Store};
use crate::supervisor::Registry;

/// Writes a command's CALL for a station's OCPP version, or says why not.
pub type Planner = Box<dyn Fn(Version) -> Result<operations::Call, String>>;

/// Attempts at delivering a CommandResult to a partner that is away.
const RESULT_ATTEMPTS: u32 = 4;

/// What the commands receiver needs.
#[derive(Clone)]
pub struct Commands {
    store: Arc<dyn Store>,
    registry: Registry,
    outbound: Outbound,
    /// How long a station has to answer (the CommandResponse's timeout).
    answer_within: Duration,
    /// Timeout of the CommandResult call.
    call_timeout: Duration,
    /// Where a START_SESSION leaves its authorization for the session.
    authorizations: Arc<Authorizations>,
}

impl Commands {
    /// Commands kept in `store`, sent through `registry`.
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        outbound: Outbound,
        answer_within: Duration,
        call_timeout: Duration,
        authorizations: Arc<Authorizations>,
    ) -> Self {
        Commands {
            store,
            registry,
            outbound,
            answer_within,
            call_timeout,
            authorizations,
        }
    }
}

/// A CommandResponse.
fn response(result: &str, timeout: Duration, message: Option<String>) -> HttpResponse {
    let mut body = json!({"result": result, "timeout": timeout.as_secs().max(1)});
    if let Some(message) = message {
        body["message"] = json!([{"language": "en", "text": message}]);
    }
    crate::metrics::ocpi_command(result);
    success(body)
}

/// The CommandResult of a settled command.
pub fn result_of(command: Option<&CommandRecord>) -> (&'static str, Option<String>) {
    let Some(command) = command else {
        return ("TIMEOUT", Some("the station did not answer in time".into()));
    };
    let why = command.error.as_ref().map(|e| e.description.clone());
    let answered = command
        .response
        .as_ref()
        .and_then(|r| r["status"].as_str())
        .unwrap_or_default();
    match command.status {
        CommandStatus::Accepted => ("ACCEPTED", None),
        CommandStatus::Rejected => {
            let said = Some(format!("the charger answered {answered}"));
            match answered {
                "UnlockFailed" | "OngoingAuthorizedTransaction" | "UnknownConnector" => {
                    ("FAILED", said)
                }
                "NotSupported" => ("NOT_SUPPORTED", said),
                "Occupied" => ("EVSE_OCCUPIED", said),
                "Faulted" | "Unavailable" => ("EVSE_INOPERATIVE", said),
                _ => ("REJECTED", said),
            }
        }
        CommandStatus::Failed if command.error.as_ref().is_some_and(|e| e.code == "Timeout") => {
            ("TIMEOUT", why)
        }
        CommandStatus::Failed => ("FAILED", why),
        CommandStatus::Expired => (
            "TIMEOUT",
            Some("the station was not reachable in time".into()),
        ),
        CommandStatus::Pending => ("TIMEOUT", Some("the station did not answer in time".into())),
    }
}

/// The non-empty string `field` of `body`, or 2001 naming it.
pub fn text<'a>(body: &'a Value, field: &str) -> Result<&'a str, OcpiError> {
    body[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OcpiError::invalid(field, "missing or not a string"))
}

/// The EVSE a command names at `location_id` (its first EVSE linked to a
/// station when `evse_uid` is absent); 2003 when there is none.
pub async fn target(
    store: &dyn Store,
    location_id: &str,
    evse_uid: Option<&str>,
) -> Result<Evse, OcpiError> {
    let unknown = |what: String| OcpiError::ok_with(code::UNKNOWN_LOCATION, what);
    let stored = store
        .location(location_id)
        .await?
        .filter(|s| s.location.publish)
        .ok_or_else(|| unknown(format!("unknown location {location_id:?}")))?;
    let evses = stored.location.evses();
    let found = match evse_uid {
        Some(uid) => evses.iter().find(|e| e.uid == uid),
        None => evses
            .iter()
            .find(|e| e.station_id.is_some() && e.status == crate::store::EvseStatus::Available)
            .or_else(|| evses.iter().find(|e| e.station_id.is_some())),
    };
    found
        .cloned()
        .ok_or_else(|| unknown(format!("no such EVSE at location {location_id:?}")))
}

/// The station a command goes to, and how messages name what it acts on.
pub struct Target {
    /// The station, when the target has one.
    pub station: Option<String>,
    /// "EVSE \"E1\"", "session \"…\"": how answers name it.
    pub named: String,
}

impl Target {
    /// The station of an EVSE.
    pub fn of(evse: &Evse) -> Target {
        Target {
            station: evse.station_id.clone(),
            named: format!("EVSE {:?}", evse.uid),
        }
    }
}

/// `POST /ocpi/2.2.1/commands/{command}`.
pub async fn receive(
    req: HttpRequest,
    registrar: web::Data<Registrar>,
    commands: web::Data<Commands>,
    command: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let who = caller(&req, registrar.store(), false).await?;
    let response_url = text(&body, "response_url")?.to_owned();
    if !(response_url.starts_with("http://") || response_url.starts_with("https://")) {
        return Err(OcpiError::invalid("response_url", "must be an http(s) URL"));
    }
    let store = &*commands.store;
    let (target, operation_name, plan): (Target, &str, Planner) = match command.as_str() {
        "START_SESSION" => {
            let token = read_token(&body["token"]).map_err(|e| OcpiError {
                message: format!("token: {}", e.message),
                ..e
            })?;
            let evse = target(
                store,
                text(&body, "location_id")?,
                body["evse_uid"].as_str(),
            )
            .await?;
            let start = RemoteStart {
                id_token: token.uid.clone(),
                id_token_type: Some(id_token_type(token.token_type).to_owned()),
                evse_id: evse.ocpp_evse_id.map(i64::from),
                connector_id: evse.ocpp_connector_id.map(i64::from),
                charging_profile: None,
            };
            // The session this starts is the eMSP's, authorized by command.
            commands.authorizations.grant(Granted {
                partner_id: who.partner.id.clone(),
                token: CdrToken::of(&token),
                auth: Authorization {
                    method: "COMMAND".into(),
                    reference: body["authorization_reference"].as_str().map(str::to_owned),
                },
            });
            (
                Target::of(&evse),
                RemoteStart::NAME,
                Box::new(move |version| {
                    operations::plan(&start, version, &mut operations::next_number).map_err(|e| e.0)
                }),
            )
        }
        "STOP_SESSION" => {
            let session_id = text(&body, "session_id")?;
            let own = |party: &str| {
                who.partner
                    .parties()
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(party))
            };
            let session = store
                .ocpi_object(OcpiObjectKind::Session, session_id)
                .await?
                .filter(|s| own(&s.party));
            let Some(session) = session else {
                return Ok(response(
                    "UNKNOWN_SESSION",
                    commands.answer_within,
                    Some(format!("no session {session_id:?} of yours")),
                ));
            };
            if session.body["status"] == "COMPLETED" {
                return Ok(response(
                    "REJECTED",
                    commands.answer_within,
                    Some(format!("session {session_id:?} has already ended")),
                ));
            }
            let stop = RemoteStop {
                transaction_id: session.transaction_id.clone(),
            };
            (
                Target {
                    station: Some(session.station_id.clone()),
                    named: format!("session {session_id:?}"),
                },
                RemoteStop::NAME,
                Box::new(move |version| {
                    operations::plan(&stop, version, &mut operations::next_number).map_err(|e| e.0)
                }),
            )
        }
        "UNLOCK_CONNECTOR" => {
            let evse = target(
                store,
                text(&body, "location_id")?,
                Some(text(&body, "evse_uid")?),
            )
            .await?;
            let connector = text(&body, "connector_id")?;
            if !evse.connectors.iter().any(|c| c.id == connector) {
                return Err(OcpiError::ok_with(
                    code::UNKNOWN_LOCATION,
                    format!("no connector {connector:?} at EVSE {:?}", evse.uid),
                ));
            }
            let unlock = Unlock {
                evse_id: evse.ocpp_evse_id.map(i64::from),
                // 1.6: the connector the EVSE is; 2.0.1: the connector within the EVSE.
                connector_id: evse
                    .ocpp_connector_id
                    .map(i64::from)
                    .unwrap_or_else(|| connector.parse().unwrap_or(1)),
            };
            (
                Target::of(&evse),
                Unlock::NAME,
                Box::new(move |version| {
                    operations::plan(&unlock, version, &mut operations::next_number)
                        .map_err(|e| e.0)
                }),
            )
        }
        "RESERVE_NOW" | "CANCEL_RESERVATION" => {
            let planned = if command.as_str() == "RESERVE_NOW" {
                reservations::reserve_now(store, &who, &body).await?
            } else {
                reservations::cancel(store, &who, &body).await?
            };
            match planned {
                Planned::Send(target, name, plan) => (target, name, plan),
                Planned::Answer(result, why) => {
                    return Ok(response(result, commands.answer_within, Some(why)))
                }
            }
        }
        other => {
            return Err(OcpiError::ok_with(
                code::INVALID_PARAMETERS,
                format!("unknown command {other:?}"),
            ))
        }
    };
    let rejected = |why: String| Ok(response("REJECTED", commands.answer_within, Some(why)));
    let named = &target.named;
    let Some(station) = target.station.clone() else {
        return rejected(format!("{named} is not remotely controllable"));
    };
    if !commands.registry.is_connected(&station).await {
        return rejected(format!("the charger of {named} is offline"));
    }
    let Some(version) = version_of(store, &station).await? else {
        return rejected(format!("the charger of {named} is offline"));
    };
    let planned = match plan(version) {
        Ok(planned) => planned,
        Err(why) => return rejected(why),
    };
    let expires_at = chrono::Duration::from_std(commands.answer_within)
        .ok()
        .map(|d| chrono::Utc::now() + d);
    let dispatched = dispatch(
        store,
        &commands.registry,
        &station,
        operation_name,
        planned,
        version,
        expires_at,
        true,
    )
    .await?;
    if dispatched.routed.is_err() {
        return rejected(format!("the charger of {named} cannot take commands now"));
    }
    // The outcome goes to the eMSP once the station has answered.
    let (Some(answer), Some(token)) = (dispatched.answer, who.partner.token_to_partner.clone())
    else {
        return Ok(response("ACCEPTED", commands.answer_within, None));
    };
    let (wait, call_timeout, partner) = (
        commands.answer_within,
        commands.call_timeout,
        who.partner.id.clone(),
    );
    let route = Route::to_partner(registrar.identity(), &who.partner);
    commands.outbound.spawn(move || async move {
        let settled = tokio::time::timeout(wait, answer)
            .await
            .ok()
            .and_then(Result::ok);
        let (result, message) = result_of(settled.as_ref());
        let mut body = json!({"result": result});
        if let Some(message) = message {
            body["message"] = json!([{"language": "en", "text": message}]);
        }
        for attempt in 1..=RESULT_ATTEMPTS {
            match call_routed(
                Method::POST,
                &response_url,
                &token,
                Some(&body),
                call_timeout,
                route.as_ref(),
            )
            .await
            {
                Ok(_) => return,
                Err(e) if e.is_transient() && attempt < RESULT_ATTEMPTS => {
                    tokio::time::sleep(super::registrar::backoff(attempt)).await;
                }
                Err(e) => {
                    tracing::warn!(%partner, error = %e, "CommandResult not delivered");
                    return;
                }
            }
        }
    });
    Ok(response("ACCEPTED", commands.answer_within, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CommandError, DeliveryClass};

    #[test]
    fn settled_commands_become_command_results() {
        let mut command = CommandRecord::pending(
            "CS1",
            "remote-start",
            "RequestStartTransaction",
            Version::V201,
            json!({}),
            DeliveryClass::Immediate,
            chrono::Utc::now(),
        );
        assert_eq!(result_of(None).0, "TIMEOUT");
        command.status = CommandStatus::Accepted;
        assert_eq!(result_of(Some(&command)).0, "ACCEPTED");
        command.status = CommandStatus::Rejected;
        assert_eq!(result_of(Some(&command)).0, "REJECTED");
        command.response = Some(json!({"status": "UnlockFailed"}));
        assert_eq!(result_of(Some(&command)).0, "FAILED");
        command.response = None;
        command.status = CommandStatus::Failed;
        command.error = Some(CommandError {
            code: "Timeout".into(),
            description: "no answer".into(),
            details: None,
        });
        assert_eq!(result_of(Some(&command)).0, "TIMEOUT");
        command.error.as_mut().unwrap().code = "InternalError".into();
        assert_eq!(result_of(Some(&command)).0, "FAILED");
    }
}
