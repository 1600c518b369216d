//! Pushes to partners' receiver endpoints: every location change becomes a
//! push in the durable queue of each registered partner that has a
//! Locations receiver (a PUT of the whole location, or a PATCH of an EVSE
//! whose status alone moved), and sessions and CDRs are queued for the eMSP
//! they belong to (`sessions::tracker`); one worker per partner sends its queue in
//! order on the outbound thread, retrying with back-off while the partner
//! is away, so a partner that is down loses nothing and holds up no other.
//!
//! A queue is bounded (`--ocpi-push-queue-max`). Full, it keeps the latest
//! push of each object (coalescing); a push of an object with nothing
//! queued marks the partner for a resync of the locations updated since,
//! sent once the queue is drained.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use awc::http::Method;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Notify;

use super::client::{call_routed, CallError, Route};
use super::credentials::Identity;
use super::locations::location_view;
use super::outbound::Outbound;
use super::registrar::backoff;
use crate::locations::feed::{LocationChange, LocationFeed};
use crate::store::{
    ocpi_time, Location, OcpiObjectKind, OcpiPartner, OcpiPush, OcpiRegistrationStatus, Store,
    UpdatedWindow,
};

/// Pushes read from the head of a queue at a time.
const HEAD: u32 = 100;
/// How long an idle worker sleeps before looking at its queue again.
const IDLE: Duration = Duration::from_secs(30);
/// The longest wait between attempts at a partner that is away.
const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// One partner's worker: woken when its queue grows.
struct Worker {
    wake: Notify,
    depth: AtomicU64,
}

/// Queues pushes and runs the partners' workers.
#[derive(Clone)]
pub struct Pusher {
    store: Arc<dyn Store>,
    identity: Arc<Identity>,
    outbound: Outbound,
    queue_max: u64,
    workers: Arc<Mutex<HashMap<String, Arc<Worker>>>>,
}

/// The label a partner's metrics carry: its first party, else its id.
fn party(partner: &OcpiPartner) -> String {
    partner
        .parties()
        .into_iter()
        .next()
        .unwrap_or_else(|| partner.id.clone())
}

/// Whether voltgate may call the partner at all.
fn reachable(partner: &OcpiPartner) -> bool {
    partner.status == OcpiRegistrationStatus::Registered && partner.token_to_partner.is_some()
}

/// Whether the partner takes pushes of `module`.
pub fn receives(partner: &OcpiPartner, module: &str) -> bool {
    reachable(partner) && partner.endpoint(module, "RECEIVER").is_some()
}

/// The pushes that tell a location change, in the order to send them.
pub fn pushes_of(change: &LocationChange, now: DateTime<Utc>) -> Vec<OcpiPush> {
    let location = change.location();
    let base = format!(
        "{}/{}/{}",
        location.country_code, location.party_id, location.id
    );
    let push = |object: String, method: &str, path: String, body| OcpiPush {
        seq: 0,
        object,
        module: "locations".into(),
        method: method.into(),
        path,
        body,
        queued_at: now,
    };
    match change {
        LocationChange::Put(_) | LocationChange::Removed(_) => vec![push(
            format!("location/{}", location.id),
            "PUT",
            base,
            location_view(location),
        )],
        LocationChange::EvseStatus(_, evses) => evses
            .iter()
            .map(|evse| {
                let stamp = evse.last_updated.or(location.last_updated).unwrap_or(now);
                push(
                    format!("evse/{}/{}", location.id, evse.uid),
                    "PATCH",
                    format!("{base}/{}", evse.uid),
                    json!({"status": evse.status, "last_updated": ocpi_time::format(&stamp)}),
                )
            })
            .collect(),
    }
}

impl Pusher {
    /// Pushes kept in `store`, sent as `identity` on `outbound`.
    pub fn new(
        store: Arc<dyn Store>,
        identity: Arc<Identity>,
        outbound: Outbound,
        queue_max: u64,
    ) -> Self {
        Pusher {
            store,
            identity,
            outbound,
            queue_max: queue_max.max(1),
            workers: Arc::default(),
        }
    }

    /// Starts the workers of every partner with pushes queued (at start).
    pub async fn resume_all(&self) {
        match self.store.list_partners().await {
            Ok(partners) => {
                for partner in partners.iter().filter(|p| reachable(p)) {
                    self.worker(&partner.id).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the OCPI partners to push to"),
        }
    }

    /// The partner's worker, started (with its queue's depth) when missing.
    async fn worker(&self, partner_id: &str) -> Arc<Worker> {
        let existing = self
            .workers
            .lock()
            .ok()
            .and_then(|w| w.get(partner_id).cloned());
        if let Some(worker) = existing {
            return worker;
        }
        let depth = self.store.count_pushes(partner_id).await.unwrap_or(0);
        let worker = Arc::new(Worker {
            wake: Notify::new(),
            depth: AtomicU64::new(depth),
        });
        let started = match self.workers.lock() {
            Ok(mut workers) => match workers.get(partner_id) {
                Some(other) => return other.clone(),
                None => {
                    workers.insert(partner_id.to_owned(), worker.clone());
                    true
                }
            },
            Err(_) => false,
        };
        if started {
            let (pusher, id, running) = (self.clone(), partner_id.to_owned(), worker.clone());
            self.outbound.spawn(move || pusher.run(id, running));
        }
        worker
    }

    /// Queues `push` for `partner` (coalescing when its queue is full) and
    /// wakes its worker. `changed_at`: the `last_updated` of the location it
    /// carries, where a resync starts when the push does not fit (the push
    /// is queued a little later than the change was stamped).
    async fn enqueue(&self, partner: &OcpiPartner, push: OcpiPush, changed_at: DateTime<Utc>) {
        let worker = self.worker(&partner.id).await;
        let label = party(partner);
        let full = worker.depth.load(Ordering::Acquire) >= self.queue_max;
        match self.store.enqueue_push(&partner.id, push, full).await {
            Ok(Some(_)) if full => crate::metrics::ocpi_push(&label, "coalesced"),
            Ok(Some(_)) => {
                let depth = worker.depth.fetch_add(1, Ordering::AcqRel) + 1;
                crate::metrics::ocpi_push_queue_depth(&label, depth);
            }
            Ok(None) => {
                crate::metrics::ocpi_push(&label, "overflowed");
                self.mark_resync(&partner.id, changed_at).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, partner = %partner.id, "cannot queue an OCPI push");
                self.mark_resync(&partner.id, changed_at).await;
            }
        }
        worker.wake.notify_one();
    }

    /// Queues a push of a Session or CDR for `partner` and wakes its worker.
    /// Billing data is never dropped: a full queue coalesces a session's
    /// PATCHes, and takes anything else beyond its bound (counted as
    /// `overfull`).
    pub async fn enqueue_billing(&self, partner: &OcpiPartner, push: OcpiPush) {
        let worker = self.worker(&partner.id).await;
        let label = party(partner);
        let full = worker.depth.load(Ordering::Acquire) >= self.queue_max;
        let coalesce = full && push.method == "PATCH";
        let mut queued = self
            .store
            .enqueue_push(&partner.id, push.clone(), coalesce)
            .await;
        if coalesce {
            match queued {
                Ok(Some(_)) => {
                    crate::metrics::ocpi_push(&label, "coalesced");
                    worker.wake.notify_one();
                    return;
                }
                Ok(None) => queued = self.store.enqueue_push(&partner.id, push, false).await,
                Err(_) => {}
            }
        }
        match queued {
            Ok(_) => {
                if full {
                    crate::metrics::ocpi_push(&label, "overfull");
                }
                let depth = worker.depth.fetch_add(1, Ordering::AcqRel) + 1;
                crate::metrics::ocpi_push_queue_depth(&label, depth);
            }
            Err(e) => {
                crate::metrics::ocpi_push(&label, "unqueued");
                tracing::error!(error = %e, partner = %partner.id, "cannot queue a session or CDR push; it is kept for the pull only");
            }
        }
        worker.wake.notify_one();
    }

    /// Notes that the locations updated since `since` must be sent again.
    async fn mark_resync(&self, partner_id: &str, since: DateTime<Utc>) {
        let Ok(Some(mut partner)) = self.store.partner(partner_id).await else {
            return;
        };
        let earliest = partner
            .resync_locations_since
            .map_or(since, |at| at.min(since));
        if partner.resync_locations_since != Some(earliest) {
            partner.resync_locations_since = Some(earliest);
            if let Err(e) = self.store.put_partner(partner).await {
                tracing::warn!(error = %e, partner = %partner_id, "cannot mark a partner for a resync");
            }
        }
    }

    /// Sends the partner's queue, in order, for as long as it is registered.
    async fn run(self, partner_id: String, worker: Arc<Worker>) {
        let mut failures = 0u32;
        loop {
            let partner = match self.store.partner(&partner_id).await {
                Ok(Some(partner)) if reachable(&partner) => partner,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, partner = %partner_id, "cannot read an OCPI partner");
                    tokio::time::sleep(backoff(4)).await;
                    continue;
                }
            };
            let pushes = match self.store.pending_pushes(&partner_id, HEAD).await {
                Ok(pushes) => pushes,
                Err(e) => {
                    tracing::warn!(error = %e, partner = %partner_id, "cannot read an OCPI push queue");
                    tokio::time::sleep(backoff(4)).await;
                    continue;
                }
            };
            if pushes.is_empty() {
                worker.depth.store(0, Ordering::Release);
                crate::metrics::ocpi_push_queue_depth(&party(&partner), 0);
                if let Some(since) = partner.resync_locations_since {
                    match self.resync(&partner, since).await {
                        Ok(()) => failures = 0,
                        Err(()) => {
                            failures += 1;
                            tokio::time::sleep(backoff(failures).min(LONGEST_RETRY)).await;
                        }
                    }
                    continue;
                }
                let _ = tokio::time::timeout(IDLE, worker.wake.notified()).await;
                continue;
            }
            for push in pushes {
                if self.send(&partner, &push).await {
                    failures = 0;
                    if let Err(e) = self.store.remove_push(&partner_id, push.seq).await {
                        tracing::warn!(error = %e, partner = %partner_id, "cannot remove a sent OCPI push");
                        break;
                    }
                    let depth = worker
                        .depth
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                            Some(d.saturating_sub(1))
                        })
                        .unwrap_or(1)
                        .saturating_sub(1);
                    crate::metrics::ocpi_push_queue_depth(&party(&partner), depth);
                } else {
                    failures += 1;
                    tokio::time::sleep(backoff(failures).min(LONGEST_RETRY)).await;
                    break;
                }
            }
        }
        if let Ok(mut workers) = self.workers.lock() {
            workers.remove(&partner_id);
        }
    }

    /// Sends one push. True when it is done with: delivered, or refused for
    /// good (counted and logged; retrying cannot change the answer). False
    /// when the partner is away and the push must be tried again.
    async fn send(&self, partner: &OcpiPartner, push: &OcpiPush) -> bool {
        let label = party(partner);
        let refused = match self.deliver(partner, push).await {
            Ok(()) => return self.delivered(&label, push),
            Err(e) if e.is_transient() => return self.retried(partner, &label, &e),
            Err(e) => e,
        };
        // A PATCH the partner refuses most likely names an object it does
        // not have (it registered after the location was pushed, or lost
        // the session): the whole object tells it everything at once.
        if let Some(whole) = self.whole_object_of(push).await {
            match self.deliver(partner, &whole).await {
                Ok(()) => return self.delivered(&label, push),
                Err(e) if e.is_transient() => return self.retried(partner, &label, &e),
                Err(_) => {}
            }
        }
        tracing::warn!(partner = %partner.id, error = %refused, object = %push.object, "OCPI push refused by the partner; dropped");
        crate::metrics::ocpi_push(&label, "rejected");
        true
    }

    /// Makes the call a push is.
    async fn deliver(&self, partner: &OcpiPartner, push: &OcpiPush) -> Result<(), CallError> {
        let (Some(base), Some(token)) = (
            partner.endpoint(&push.module, "RECEIVER"),
            partner.token_to_partner.as_deref(),
        ) else {
            return Err(CallError::Refused {
                url: String::new(),
                status_code: 2000,
                message: format!("the partner has no {} receiver", push.module),
            });
        };
        let url = if push.path.is_empty() {
            base.to_owned()
        } else {
            format!("{}/{}", base.trim_end_matches('/'), push.path)
        };
        let method = match push.method.as_str() {
            "PATCH" => Method::PATCH,
            "POST" => Method::POST,
            _ => Method::PUT,
        };
        let route = Route::to_partner(&self.identity, partner);
        call_routed(
            method,
            &url,
            token,
            Some(&push.body),
            self.identity.call_timeout,
            route.as_ref(),
        )
        .await
        .map(drop)
    }

    fn delivered(&self, label: &str, push: &OcpiPush) -> bool {
        crate::metrics::ocpi_push(label, "delivered");
        let waited = (Utc::now() - push.queued_at).to_std().unwrap_or_default();
        crate::metrics::ocpi_push_delay(label, waited);
        true
    }

    fn retried(&self, partner: &OcpiPartner, label: &str, e: &CallError) -> bool {
        tracing::info!(partner = %partner.id, error = %e, "OCPI push not delivered; retrying");
        crate::metrics::ocpi_push(label, "retried");
        false
    }

    /// For a PATCH, a PUT of the whole object as it is now: an EVSE's
    /// location (when it is still published), or a session.
    async fn whole_object_of(&self, push: &OcpiPush) -> Option<OcpiPush> {
        if push.method != "PATCH" {
            return None;
        }
        if let Some(id) = push.object.strip_prefix("session/") {
            let stored = self
                .store
                .ocpi_object(OcpiObjectKind::Session, id)
                .await
                .ok()??;
            return Some(OcpiPush {
                method: "PUT".into(),
                body: stored.body,
                ..push.clone()
            });
        }
        let (location_id, _) = push.object.strip_prefix("evse/")?.rsplit_once('/')?;
        let stored = self.store.location(location_id).await.ok()??;
        stored
            .location
            .publish
            .then(|| location_push(&stored.location, push.queued_at))
    }

    /// Sends every published location updated since `since` (a queue that
    /// overflowed), then clears the mark. Err when the partner went away
    /// (the mark then starts where the resync stopped).
    async fn resync(&self, partner: &OcpiPartner, since: DateTime<Utc>) -> Result<(), ()> {
        let mut after: Option<(DateTime<Utc>, String)> = None;
        loop {
            let window = UpdatedWindow {
                from: Some(since),
                after: after.clone(),
                limit: HEAD,
                published_only: true,
                ..UpdatedWindow::default()
            };
            let page = self.store.locations_updated(window).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot read locations to resync");
            })?;
            for location in &page {
                let push = pushes_of(&LocationChange::Put(location.clone()), Utc::now());
                for push in push {
                    if !self.send(partner, &push).await {
                        let at = location.last_updated.unwrap_or(since);
                        self.restart_resync_at(partner, since, at).await;
                        return Err(());
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == HEAD as usize => {
                    after = Some((last.last_updated.unwrap_or(since), last.id.clone()));
                }
                _ => break,
            }
        }
        self.restart_resync_at(partner, since, DateTime::<Utc>::MAX_UTC)
            .await;
        Ok(())
    }

    /// Moves the resync mark from `was` to `at` (cleared when `at` is the
    /// end), unless an overflow since moved it earlier.
    async fn restart_resync_at(
        &self,
        partner: &OcpiPartner,
        was: DateTime<Utc>,
        at: DateTime<Utc>,
    ) {
        let Ok(Some(mut current)) = self.store.partner(&partner.id).await else {
            return;
        };
        if current.resync_locations_since != Some(was) {
            return;
        }
        current.resync_locations_since = (at != DateTime::<Utc>::MAX_UTC).then_some(at);
        if let Err(e) = self.store.put_partner(current).await {
            tracing::warn!(error = %e, partner = %partner.id, "cannot move a resync mark");
        }
    }
}

#[async_trait]
impl LocationFeed for Pusher {
    async fn changed(&self, change: LocationChange, was_published: bool) {
        if !(change.location().publish || was_published) {
            return;
        }
        let partners = match self.store.list_partners().await {
            Ok(partners) => partners,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the OCPI partners to push a location to");
                return;
            }
        };
        let now = Utc::now();
        let changed_at = change.location().last_updated.unwrap_or(now);
        for partner in partners.iter().filter(|p| receives(p, "locations")) {
            for push in pushes_of(&change, now) {
                self.enqueue(partner, push, changed_at).await;
            }
        }
    }
}

/// A location's state as a push (for tests and benches of the queue).
pub fn location_push(location: &Location, now: DateTime<Utc>) -> OcpiPush {
    pushes_of(&LocationChange::Put(location.clone()), now).remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Evse, EvseStatus};

    #[test]
    fn changes_become_puts_of_locations_and_patches_of_evses() {
        let location: Location = serde_json::from_value(json!({
            "id": "L1", "country_code": "GB", "party_id": "TWK", "publish": true,
            "address": "1 High Street", "city": "London", "country": "GBR",
            "coordinates": {"latitude": "51.5", "longitude": "-0.12"}, "time_zone": "UTC",
            "evses": [{"uid": "E1", "status": "CHARGING", "station_id": "CS1", "connectors": [],
                "last_updated": "2026-12-01T10:00:00Z"}],
            "last_updated": "2026-12-01T10:00:00Z"}))
        .unwrap();
        let now = Utc::now();
        let put = location_push(&location, now);
        assert_eq!(
            (put.method.as_str(), put.path.as_str()),
            ("PUT", "GB/TWK/L1")
        );
        assert!(put.body["evses"][0].get("station_id").is_none());
        let evse: Evse = location.evses()[0].clone();
        let patches = pushes_of(
            &LocationChange::EvseStatus(location.clone(), vec![evse]),
            now,
        );
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].path, "GB/TWK/L1/E1");
        assert_eq!(patches[0].method, "PATCH");
        assert_eq!(patches[0].object, "evse/L1/E1");
        assert_eq!(
            patches[0].body,
            json!({"status": EvseStatus::Charging, "last_updated": "2026-12-01T10:00:00.000Z"})
        );
    }
}
