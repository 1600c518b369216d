//! The `commands` scenario's REST driver: sends trigger and reconfigure
//! commands for this process's stations at its share of `--rate`, and times
//! each from the request's start to the station receiving the CALL (and,
//! with `--wait`, to the HTTP answer).
//!
//! The two ends of a measurement meet in [`Probes`]: the driver notes the
//! request's start in the target station's slot, the station's task takes the
//! oldest note when the CALL arrives. Both live in this process, so one
//! monotonic clock measures both. Commands to one station are matched in
//! order (first request, first CALL); the driver spreads commands round-robin
//! so a station rarely has two at once.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::fleet::Shared;
use crate::station::Version;
use crate::stats::ErrorKind;

/// Longest HTTP exchange (above voltgate's 35 s `?wait=true` limit).
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long CALLs may trail their HTTP answers after the last command.
const DRAIN: Duration = Duration::from_secs(5);

/// Request start times per station, oldest first, tagged with the command
/// number so a failed request can take its note back.
#[derive(Default)]
pub struct Probes(Vec<Mutex<VecDeque<(u64, Instant)>>>);

impl Probes {
    /// Slots for `stations` stations.
    pub fn new(stations: usize) -> Self {
        Probes((0..stations).map(|_| Mutex::default()).collect())
    }

    fn slot(&self, local: usize) -> std::sync::MutexGuard<'_, VecDeque<(u64, Instant)>> {
        self.0[local]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that command `seq` for station `local` started at `at`.
    pub fn push(&self, local: usize, seq: u64, at: Instant) {
        self.slot(local).push_back((seq, at));
    }

    /// The oldest pending start for station `local` (a CALL arrived).
    pub fn pop(&self, local: usize) -> Option<Instant> {
        if self.0.is_empty() {
            return None;
        }
        self.slot(local).pop_front().map(|(_, at)| at)
    }

    /// Takes back command `seq`'s note (its request failed).
    pub fn remove(&self, local: usize, seq: u64) {
        self.slot(local).retain(|&(s, _)| s != seq);
    }
}

/// What the driver sends and how fast.
#[derive(Debug, Clone)]
pub struct Plan {
    /// REST base URLs (the nodes of a cluster): each command goes to one at random.
    pub api_urls: Vec<String>,
    /// This process's commands per second.
    pub rate_per_sec: f64,
    /// How long to send.
    pub duration: Duration,
    /// `?wait=true`.
    pub wait: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// Command number `seq` for `station`: rounds over the stations alternate
/// between a trigger and a reconfigure (with the version's setting name).
pub fn command_for(seq: u64, stations: usize, version: Version) -> (&'static str, Value) {
    let round = seq / stations.max(1) as u64;
    if round.is_multiple_of(2) {
        ("trigger", json!({"trigger": "StatusNotification"}))
    } else {
        let key = match version {
            Version::V16 => "HeartbeatInterval",
            Version::V201 => "OCPPCommCtrlr/HeartbeatInterval",
        };
        ("reconfigure", json!({ key: "300" }))
    }
}

/// Sends the commands, waits for their answers and for the CALLs to arrive
/// (bounded), then marks the driver done.
pub async fn drive(shared: Arc<Shared>, plan: Plan) {
    run(&shared, &plan).await;
    shared.stats.commands_done.store(true, Ordering::Relaxed);
}

async fn run(shared: &Arc<Shared>, plan: &Plan) {
    let stats = &shared.stats;
    let stations = shared.stations.len();
    let client = match reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .pool_max_idle_per_host(plan.concurrency)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            stats.error(ErrorKind::HttpFailed);
            stats.note(ErrorKind::HttpFailed, || format!("HTTP client: {e}"));
            return;
        }
    };
    if stations == 0 || plan.rate_per_sec <= 0.0 {
        return;
    }
    let total = (plan.rate_per_sec * plan.duration.as_secs_f64()).round() as u64;
    let concurrency = plan.concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    for seq in 0..total {
        // Paced against the start, not the previous send, so a slow moment
        // is caught up rather than lowering the rate for the rest of the run.
        let due = started + Duration::from_secs_f64(seq as f64 / plan.rate_per_sec);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let local = (seq % stations as u64) as usize;
        let station = &shared.stations[local];
        let (command, body) = command_for(seq, stations, station.version);
        // A random node: with stations spread over the nodes in turn, a
        // command goes through the node holding its station or not by chance.
        let api_url = &plan.api_urls[fastrand::usize(..plan.api_urls.len().max(1))];
        let mut url = format!("{api_url}/cs/{}/{command}", station.id);
        if plan.wait {
            url.push_str("?wait=true");
        }
        stats.commands_sent.inc();
        let (shared, client, wait) = (shared.clone(), client.clone(), plan.wait);
        tokio::spawn(async move {
            send(&shared, &client, local, seq, url, body.to_string(), wait).await;
            drop(permit);
        });
    }
    // Every answer in...
    let _all = permits.acquire_many(concurrency as u32).await;
    // ... and every accepted command's CALL at its station, or given up on.
    await_deliveries(stats).await;
}

/// Waits (at most [`DRAIN`]) until every accepted command's CALL has
/// reached its station; counts the ones that did not.
async fn await_deliveries(stats: &crate::stats::Stats) {
    let deadline = Instant::now() + DRAIN;
    while stats.commands_delivered.get() < stats.commands_http_ok.get() && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing = stats
        .commands_http_ok
        .get()
        .saturating_sub(stats.commands_delivered.get());
    if missing > 0 {
        for _ in 0..missing {
            stats.error(ErrorKind::CommandNotDelivered);
        }
        stats.note(ErrorKind::CommandNotDelivered, || {
            format!(
                "{missing} CALLs did not reach their station within {DRAIN:?} of the last answer"
            )
        });
    }
}

/// What the `batch` scenario sends.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    /// REST base URL.
    pub api_url: String,
    /// The fleet's station id prefix (the batch selects its stations by it).
    pub id_prefix: String,
    /// Batches go out, one after the other, until this has passed (at least one).
    pub duration: Duration,
    /// `?wait=true`: also time the aggregate answer.
    pub wait: bool,
}

/// Sends fan-outs of TriggerMessage(StatusNotification) to every connected
/// station of the fleet, each once the previous one's CALLs have arrived
/// (bounded), then marks the driver done. Every station's request → CALL
/// time counts from the POST's start; with `--wait` the aggregate answer's
/// time is recorded once per batch.
pub async fn drive_batch(shared: Arc<Shared>, plan: BatchPlan) {
    run_batches(&shared, &plan).await;
    shared.stats.commands_done.store(true, Ordering::Relaxed);
}

async fn run_batches(shared: &Arc<Shared>, plan: &BatchPlan) {
    let stats = &shared.stats;
    let client = match reqwest::Client::builder().timeout(HTTP_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            stats.error(ErrorKind::HttpFailed);
            stats.note(ErrorKind::HttpFailed, || format!("HTTP client: {e}"));
            return;
        }
    };
    let url = format!(
        "{}/commands{}",
        plan.api_url,
        if plan.wait { "?wait=true" } else { "" }
    );
    let body = json!({
        "select": {"connected": true, "idPrefix": plan.id_prefix},
        "operation": "ocpp",
        "action": "TriggerMessage",
        "payload": {"requestedMessage": "StatusNotification"},
    })
    .to_string();
    let stations = shared.stations.len();
    let started = Instant::now();
    for seq in 0u64.. {
        let at = Instant::now();
        for local in 0..stations {
            shared.probes.push(local, seq, at);
        }
        stats.commands_sent.add(stations as u64);
        let answer = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let status = answer.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
        let json: Option<Value> = match answer {
            Ok(response) if status == 200 || status == 202 => response
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
            Ok(_) => None,
            Err(e) => {
                stats.error(ErrorKind::HttpFailed);
                stats.note(ErrorKind::HttpFailed, || format!("POST {url}: {e}"));
                None
            }
        };
        let Some(json) = json else {
            if status != 0 {
                stats.error(ErrorKind::HttpError);
                stats.note(ErrorKind::HttpError, || {
                    format!("POST {url}: HTTP {status}")
                });
            }
            for local in 0..stations {
                shared.probes.remove(local, seq);
            }
            return;
        };
        let accepted = json["commands"]
            .as_u64()
            .or_else(|| json["stations"].as_u64())
            .unwrap_or(0);
        stats.commands_http_ok.add(accepted);
        if plan.wait {
            stats.command_to_answer.record(0, at.elapsed());
            stats
                .commands_answered
                .add(json["counts"]["Accepted"].as_u64().unwrap_or(0));
        }
        await_deliveries(stats).await;
        // Stations the batch did not reach keep no stale note.
        for local in 0..stations {
            shared.probes.remove(local, seq);
        }
        let incomplete = stats.commands_delivered.get() < stats.commands_http_ok.get();
        if incomplete || started.elapsed() >= plan.duration {
            // After a batch with missing CALLs (counted), the next one
            // would be judged against the same shortfall: stop.
            return;
        }
    }
}

async fn send(
    shared: &Shared,
    client: &reqwest::Client,
    local: usize,
    seq: u64,
    url: String,
    body: String,
    wait: bool,
) {
    let stats = &shared.stats;
    let started = Instant::now();
    shared.probes.push(local, seq, started);
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            shared.probes.remove(local, seq);
            stats.error(ErrorKind::HttpFailed);
            stats.note(ErrorKind::HttpFailed, || format!("POST {url}: {e}"));
            return;
        }
    };
    let status = response.status().as_u16();
    match status {
        200 | 202 => {
            stats.commands_http_ok.inc();
            if !wait {
                return;
            }
            let delivered = response
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v.get("delivered").and_then(Value::as_bool))
                .unwrap_or(false);
            if status == 200 && delivered {
                stats.commands_answered.inc();
                stats.command_to_answer.record(local, started.elapsed());
            } else {
                stats.error(ErrorKind::CommandNotAnswered);
                stats.note(ErrorKind::CommandNotAnswered, || {
                    format!("POST {url}: HTTP {status}, not delivered in time")
                });
            }
        }
        _ => {
            shared.probes.remove(local, seq);
            stats.error(ErrorKind::HttpError);
            stats.note(ErrorKind::HttpError, || {
                format!("POST {url}: HTTP {status}")
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_between_trigger_and_reconfigure() {
        let kinds: Vec<&str> = (0..6)
            .map(|seq| command_for(seq, 2, Version::V16).0)
            .collect();
        assert_eq!(
            kinds,
            [
                "trigger",
                "trigger",
                "reconfigure",
                "reconfigure",
                "trigger",
                "trigger"
            ]
        );
        assert_eq!(
            command_for(0, 1, Version::V201).1,
            json!({"trigger": "StatusNotification"})
        );
        assert_eq!(
            command_for(1, 1, Version::V16).1,
            json!({"HeartbeatInterval": "300"})
        );
        assert_eq!(
            command_for(1, 1, Version::V201).1,
            json!({"OCPPCommCtrlr/HeartbeatInterval": "300"})
        );
    }

    #[test]
    fn probes_match_calls_in_request_order_and_forget_failed_requests() {
        let probes = Probes::new(2);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(1);
        let t2 = t0 + Duration::from_millis(2);
        probes.push(1, 10, t0);
        probes.push(1, 11, t1);
        probes.push(1, 12, t2);
        probes.remove(1, 11); // that request failed: no CALL will come for it
        assert_eq!(probes.pop(1), Some(t0));
        assert_eq!(probes.pop(1), Some(t2));
        assert_eq!(probes.pop(1), None);
        assert_eq!(probes.pop(0), None);
        assert_eq!(
            Probes::default().pop(5),
            None,
            "no slots outside the commands scenario"
        );
    }
}
