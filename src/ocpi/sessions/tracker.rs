//! Follows transactions into OCPI Sessions and CDRs. A transaction becomes
//! a session when its token belongs to a registered eMSP: one that allowed
//! it in real time or by START_SESSION (see `authorizations`), or that
//! issued a token voltgate keeps. The session is stored (for the pull) and
//! queued to that eMSP: whole (PUT) when it starts, as a PATCH of its
//! progress at most every `--ocpi-session-update-secs`, and as a PATCH
//! when it ends, followed by the CDR (POST).
//!
//! What each running transaction is (a session, or local) is kept in
//! memory, so a meter value of a local transaction costs one map lookup. A
//! restart finds a running session again by its stored record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;

use super::authorizations::{Authorizations, Granted};
use super::view::{session_id, start_register, Authorization, CdrToken, Place, SessionFacts};
use crate::ocpi::credentials::Identity;
use crate::ocpi::pusher::Pusher;
use crate::station::transaction_feed::TransactionFeed;
use crate::store::{
    MeterValue, OcpiObject, OcpiObjectKind, OcpiPartner, OcpiPush, OcpiRegistrationStatus, Page,
    Store, StoreResult, Transaction, TransactionEvent, TransactionEventKind,
};

/// Meter values read at once for a CDR.
const METER_PAGE: u32 = 1_000;
/// Most meter values read for one CDR (its periods are merged anyway).
const MOST_METER_VALUES: u64 = 100_000;
/// Running transactions remembered; beyond, the local ones are forgotten
/// (they are looked at again, once, when their next event comes).
const MOST_TRACKED: usize = 200_000;

/// A running transaction that is an OCPI session.
#[derive(Debug, Clone)]
struct Roaming {
    id: String,
    partner_id: String,
    token: CdrToken,
    auth: Authorization,
    place: Place,
    start_wh: Option<f64>,
    /// When its state was last queued; None: it must be before anything else.
    pushed_at: Option<Instant>,
    /// Whether the eMSP has been sent the whole session.
    announced: bool,
}

/// What a running transaction is to the tracker.
#[derive(Debug, Clone)]
enum Tracked {
    Local,
    Roaming(Box<Roaming>),
}

/// What looking at a transaction found.
enum Resolved {
    Tracked(Tracked),
    /// No token yet (a 2.0.1 transaction started before authorization).
    NotYet,
}

/// The CPO's side of what sessions are made with.
pub struct SessionSettings {
    /// Who voltgate is.
    pub identity: Arc<Identity>,
    /// ISO 4217 currency of sessions and CDRs.
    pub currency: String,
    /// Least time between two progress pushes of one session.
    pub update_every: Duration,
}

/// Turns transactions into sessions and CDRs.
pub struct SessionTracker {
    store: Arc<dyn Store>,
    pusher: Pusher,
    settings: SessionSettings,
    authorizations: Arc<Authorizations>,
    running: Mutex<HashMap<(String, String), Tracked>>,
}

/// The registered partner that plays party `cc`-`pid`.
fn partner_of<'a>(partners: &'a [OcpiPartner], cc: &str, pid: &str) -> Option<&'a OcpiPartner> {
    partners.iter().find(|p| {
        p.status == OcpiRegistrationStatus::Registered
            && p.roles.iter().any(|r| {
                r.country_code.eq_ignore_ascii_case(cc) && r.party_id.eq_ignore_ascii_case(pid)
            })
    })
}

impl SessionTracker {
    /// Sessions kept in `store` and queued through `pusher`.
    pub fn new(
        store: Arc<dyn Store>,
        pusher: Pusher,
        settings: SessionSettings,
        authorizations: Arc<Authorizations>,
    ) -> Self {
        SessionTracker {
            store,
            pusher,
            settings,
            authorizations,
            running: Mutex::default(),
        }
    }

    fn remember(&self, key: (String, String), tracked: Option<Tracked>) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        match tracked {
            Some(tracked) => {
                if running.len() >= MOST_TRACKED {
                    running.retain(|_, t| matches!(t, Tracked::Roaming(_)));
                }
                running.insert(key, tracked);
            }
            None => {
                running.remove(&key);
            }
        }
    }

    /// Where the transaction runs: the EVSE linked to its station (and its
    /// OCPP EVSE or connector), with the connector it uses.
    async fn place_of(
        &self,
        station_id: &str,
        evse_id: Option<u32>,
        connector_id: Option<u32>,
    ) -> StoreResult<Option<Place>> {
        let links = self.store.evse_links(station_id).await?;
        let wanted = |ocpp: Option<i32>, reported: Option<u32>| matches!((ocpp, reported), (Some(a), Some(b)) if i64::from(a) == i64::from(b));
        let link = links
            .iter()
            .find(|l| wanted(l.ocpp_evse_id, evse_id))
            .or_else(|| {
                links
                    .iter()
                    .find(|l| wanted(l.ocpp_connector_id, connector_id))
            })
            .or_else(|| (links.len() == 1).then(|| &links[0]));
        let Some(link) = link else {
            return Ok(None);
        };
        let Some(stored) = self.store.location(&link.location_id).await? else {
            return Ok(None);
        };
        let Some(evse) = stored
            .location
            .evses()
            .iter()
            .find(|e| e.uid == link.evse_uid)
            .cloned()
        else {
            return Ok(None);
        };
        // 2.0.1 numbers connectors within the EVSE; a 1.6 connector is the EVSE.
        let within = connector_id
            .filter(|_| link.ocpp_evse_id.is_some())
            .map(|c| c.to_string());
        let Some(connector) = within
            .and_then(|id| evse.connectors.iter().find(|c| c.id == id))
            .or_else(|| evse.connectors.first())
            .cloned()
        else {
            return Ok(None);
        };
        Ok(Some(Place {
            location: stored.location,
            evse,
            connector,
        }))
    }

    /// A session that was stored before (this node restarted while it ran).
    async fn resumed(
        &self,
        stored: OcpiObject,
        summary: &Transaction,
    ) -> StoreResult<Option<Roaming>> {
        let body = &stored.body;
        let Ok(token) = serde_json::from_value::<CdrToken>(body["cdr_token"].clone()) else {
            return Ok(None);
        };
        let partners = self.store.list_partners().await?;
        let Some(partner) = partner_of(&partners, &token.country_code, &token.party_id) else {
            return Ok(None);
        };
        let Some(place) = self
            .place_of(&summary.station_id, summary.evse_id, summary.connector_id)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Roaming {
            id: stored.id,
            partner_id: partner.id.clone(),
            token,
            auth: Authorization {
                method: body["auth_method"].as_str().unwrap_or("WHITELIST").into(),
                reference: body["authorization_reference"].as_str().map(str::to_owned),
            },
            place,
            start_wh: None,
            pushed_at: None,
            announced: true,
        }))
    }

    /// Looks at a transaction not seen before: is it a session?
    async fn resolve(&self, event: &TransactionEvent) -> StoreResult<Resolved> {
        let (station, transaction) = (&event.station_id, &event.transaction_id);
        let id = session_id(station, transaction);
        let summary = match (&event.id_token, event.kind) {
            (Some(_), TransactionEventKind::Started) => None,
            _ => self.store.transaction(station, transaction).await?,
        };
        // Not a new transaction: this node may have stored its session
        // before a restart.
        if event.kind != TransactionEventKind::Started {
            if let Some(stored) = self.store.ocpi_object(OcpiObjectKind::Session, &id).await? {
                let Some(summary) = &summary else {
                    return Ok(Resolved::NotYet);
                };
                return Ok(Resolved::Tracked(
                    match self.resumed(stored, summary).await? {
                        Some(roaming) => Tracked::Roaming(Box::new(roaming)),
                        None => Tracked::Local,
                    },
                ));
            }
        }
        let token_ref = event
            .id_token
            .clone()
            .or_else(|| summary.as_ref().and_then(|s| s.id_token.clone()));
        let Some(token_ref) = token_ref else {
            return Ok(Resolved::NotYet);
        };
        let granted = match self.authorizations.take(&token_ref.id) {
            Some(granted) => granted,
            None => match self.issuer_of(&token_ref.id).await? {
                Some(granted) => granted,
                None => return Ok(Resolved::Tracked(Tracked::Local)),
            },
        };
        let (evse_id, connector_id) = (
            event.evse_id.or(summary.as_ref().and_then(|s| s.evse_id)),
            event
                .connector_id
                .or(summary.as_ref().and_then(|s| s.connector_id)),
        );
        let Some(place) = self.place_of(station, evse_id, connector_id).await? else {
            tracing::info!(%station, %transaction, "a roaming token charges at an EVSE no location names; no OCPI session");
            return Ok(Resolved::Tracked(Tracked::Local));
        };
        Ok(Resolved::Tracked(Tracked::Roaming(Box::new(Roaming {
            id,
            partner_id: granted.partner_id,
            token: granted.token,
            auth: granted.auth,
            place,
            start_wh: start_register(&event.meter_values),
            pushed_at: None,
            announced: false,
        }))))
    }

    /// The eMSP of a token voltgate keeps, when it is a registered partner.
    async fn issuer_of(&self, uid: &str) -> StoreResult<Option<Granted>> {
        let partners = self.store.list_partners().await?;
        if partners.is_empty() {
            return Ok(None);
        }
        let Some(token) = self.store.token(uid).await? else {
            return Ok(None);
        };
        let Some(partner) = partner_of(&partners, &token.country_code, &token.party_id) else {
            return Ok(None);
        };
        Ok(Some(Granted {
            partner_id: partner.id.clone(),
            token: CdrToken::of(&token),
            auth: Authorization {
                method: "WHITELIST".into(),
                reference: None,
            },
        }))
    }

    /// The transaction's meter values, oldest first (bounded).
    async fn meter_of(&self, station: &str, transaction: &str) -> StoreResult<Vec<MeterValue>> {
        let mut values = Vec::new();
        loop {
            let page = Page::new(values.len() as u64, METER_PAGE);
            let got = self.store.meter_values(station, transaction, page).await?;
            let done = got.len() < METER_PAGE as usize;
            values.extend(got);
            if done || values.len() as u64 >= MOST_METER_VALUES {
                return Ok(values);
            }
        }
    }

    /// Stores the session's state (and the CDR once it ended) and queues
    /// them to its eMSP.
    async fn publish(&self, roaming: &mut Roaming, event: &TransactionEvent) -> StoreResult<()> {
        let (station, transaction) = (&event.station_id, &event.transaction_id);
        let Some(summary) = self.store.transaction(station, transaction).await? else {
            return Ok(());
        };
        let ended = summary.ended_at.is_some();
        let meter = if ended || roaming.start_wh.is_none() {
            self.meter_of(station, transaction).await?
        } else {
            Vec::new()
        };
        if roaming.start_wh.is_none() {
            roaming.start_wh = start_register(&meter);
        }
        let identity = &self.settings.identity;
        let facts = SessionFacts {
            id: &roaming.id,
            cpo: (&identity.country_code, &identity.party_id),
            transaction: &summary,
            start_wh: roaming.start_wh,
            token: &roaming.token,
            auth: &roaming.auth,
            place: &roaming.place,
            currency: &self.settings.currency,
            now: crate::store::ocpi_time::truncate(Utc::now()),
        };
        let object = |kind, body: Value| OcpiObject {
            kind,
            id: roaming.id.clone(),
            party: roaming.token.party(),
            station_id: station.clone(),
            transaction_id: transaction.clone(),
            body,
            last_updated: facts.now,
        };
        let session = facts.session();
        self.store
            .put_ocpi_object(object(OcpiObjectKind::Session, session.clone()))
            .await?;
        let cdr = ended.then(|| facts.cdr(&meter));
        if let Some(cdr) = &cdr {
            self.store
                .put_ocpi_object(object(OcpiObjectKind::Cdr, cdr.clone()))
                .await?;
        }
        let partner = self.store.partner(&roaming.partner_id).await?;
        let Some(partner) = partner.filter(|p| p.status == OcpiRegistrationStatus::Registered)
        else {
            roaming.pushed_at = Some(Instant::now());
            return Ok(());
        };
        let path = format!(
            "{}/{}/{}",
            identity.country_code, identity.party_id, roaming.id
        );
        let push = |object: String, module: &str, method: &str, path: String, body| OcpiPush {
            seq: 0,
            object,
            module: module.into(),
            method: method.into(),
            path,
            body,
            queued_at: Utc::now(),
        };
        let session_push = if roaming.announced {
            let object = format!("session/{}", roaming.id);
            push(object, "sessions", "PATCH", path, facts.session_patch())
        } else {
            let object = format!("session/{}/whole", roaming.id);
            push(object, "sessions", "PUT", path, session)
        };
        self.pusher.enqueue_billing(&partner, session_push).await;
        if let Some(cdr) = cdr {
            let object = format!("cdr/{}", roaming.id);
            let cdr_push = push(object, "cdrs", "POST", String::new(), cdr);
            self.pusher.enqueue_billing(&partner, cdr_push).await;
        }
        roaming.announced = true;
        roaming.pushed_at = Some(Instant::now());
        Ok(())
    }
}

#[async_trait]
impl TransactionFeed for SessionTracker {
    async fn applied(&self, event: &TransactionEvent) {
        if event.transaction_id.is_empty() {
            return;
        }
        let key = (event.station_id.clone(), event.transaction_id.clone());
        let ended = event.kind == TransactionEventKind::Ended;
        let known = self
            .running
            .lock()
            .ok()
            .and_then(|running| running.get(&key).cloned());
        let known = match known {
            Some(known) => known,
            None => match self.resolve(event).await {
                Ok(Resolved::Tracked(tracked)) => tracked,
                Ok(Resolved::NotYet) => return,
                Err(e) => {
                    tracing::warn!(error = %e, station = %event.station_id, transaction = %event.transaction_id, "cannot tell whether a transaction is an OCPI session");
                    return;
                }
            },
        };
        let mut roaming = match known {
            Tracked::Local => {
                self.remember(key, (!ended).then_some(Tracked::Local));
                return;
            }
            Tracked::Roaming(roaming) => roaming,
        };
        let due = ended
            || roaming
                .pushed_at
                .is_none_or(|at| at.elapsed() >= self.settings.update_every);
        if due {
            if let Err(e) = self.publish(&mut roaming, event).await {
                tracing::warn!(error = %e, session = %roaming.id, "cannot store or queue an OCPI session");
            }
        }
        self.remember(key, (!ended).then_some(Tracked::Roaming(roaming)));
    }
}
