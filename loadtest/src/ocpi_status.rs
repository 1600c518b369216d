//! `loadtest ocpi-status`: how long a station's status change takes to
//! reach a live eMSP. It serves a minimal OCPI 2.2.1 eMSP (versions,
//! details, credentials, a Locations receiver that timestamps each EVSE
//! PATCH), registers it with voltgate (voltgate runs the handshake), makes
//! one location per station with its EVSE linked to the station, connects
//! the stations (2.0.1) and has them report alternating statuses at
//! `--rate` changes per second in all. The latency is from sending the
//! StatusNotification to the eMSP receiving the PATCH of that status.
//!
//! The eMSP here is a measuring instrument (it answers every call at once
//! and records times); the interop tests use an independent OCPI library.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::histogram::{micros, new_histogram, Percentiles};
use crate::provision::registration_body;
use crate::station::link::{connect, Target};
use crate::station::Version;

/// The measurement's settings.
#[derive(Debug, Clone, Args)]
pub struct OcpiStatusArgs {
    /// REST base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:9410")]
    pub api: String,
    /// OCPP WebSocket base URL (the station id follows).
    #[arg(long, default_value = "ws://127.0.0.1:9310/ws")]
    pub ws: String,
    /// Bearer token of the REST API, when it needs one.
    #[arg(long)]
    pub token: Option<String>,
    /// Where the eMSP listens (its URLs are told to voltgate).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub emsp_listen: SocketAddr,
    /// Stations (one location each).
    #[arg(long, default_value_t = 100)]
    pub stations: u32,
    /// Status changes per second, all stations together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of status changes.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
}

/// Send times of each station's reports, oldest first, with the OCPI
/// status each should become.
type Sent = Arc<Mutex<HashMap<String, VecDeque<(&'static str, Instant)>>>>;

/// What the eMSP saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    unmatched: u64,
    superseded: u64,
}

const PASSWORD: &str = "ocpi-status-loadtest";

fn envelope(data: Value) -> Value {
    json!({"data": data, "status_code": 1000, "status_message": "Success",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)})
}

/// Answers one eMSP request.
async fn answer(
    req: Request<Incoming>,
    base: Arc<String>,
    sent: Sent,
    seen: Arc<Mutex<Seen>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let data = match (method.as_str(), path.as_str()) {
        ("GET", "/versions") => json!([{"version": "2.2.1", "url": format!("{base}/details")}]),
        ("GET", "/details") => json!({"version": "2.2.1", "endpoints": [
            {"identifier": "credentials", "role": "RECEIVER", "url": format!("{base}/credentials")},
            {"identifier": "locations", "role": "RECEIVER", "url": format!("{base}/locations")}]}),
        ("POST", "/credentials") => {
            json!({"token": "loadtest-emsp-token", "url": format!("{base}/versions"),
            "roles": [{"role": "EMSP", "party_id": "LTE", "country_code": "NL",
                "business_details": {"name": "loadtest eMSP"}}]})
        }
        ("PATCH", _) => {
            // /locations/{cc}/{pid}/{location}/{evse}
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            if let (Some(location), Some(status)) = (parts.get(3), body["status"].as_str()) {
                record(&sent, &seen, location, status, received);
            }
            Value::Null
        }
        _ => Value::Null,
    };
    let text = serde_json::to_vec(&envelope(data)).unwrap_or_default();
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default())
}

/// Matches a PATCH with the oldest report of that status; older reports of
/// the other status were superseded (coalesced on the way).
fn record(sent: &Sent, seen: &Mutex<Seen>, location: &str, status: &str, at: Instant) {
    let (Ok(mut sent), Ok(mut seen)) = (sent.lock(), seen.lock()) else {
        return;
    };
    let Some(queue) = sent.get_mut(location) else {
        seen.unmatched += 1;
        return;
    };
    while let Some((wanted, when)) = queue.pop_front() {
        if wanted == status {
            seen.latencies.push(at.saturating_duration_since(when));
            return;
        }
        seen.superseded += 1;
    }
    seen.unmatched += 1;
}

/// Serves the eMSP on its own thread; its base URL.
async fn serve_emsp(
    listen: SocketAddr,
    sent: Sent,
    seen: Arc<Mutex<Seen>>,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .context("eMSP listener")?;
    let base = Arc::new(format!("http://{}", listener.local_addr()?));
    let url = base.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (base, sent, seen) = (base.clone(), sent.clone(), seen.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    answer(req, base.clone(), sent.clone(), seen.clone())
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(url)
}

fn client(
    args: &OcpiStatusArgs,
    method: reqwest::Method,
    path: &str,
    http: &reqwest::Client,
) -> reqwest::RequestBuilder {
    let builder = http.request(method, format!("{}{path}", args.api));
    match &args.token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    }
}

/// Sends `request` (with `body` as JSON, when given) and reads a JSON answer.
async fn exchange(
    request: reqwest::RequestBuilder,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body)?),
        None => request,
    };
    let response = request.send().await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Runs the measurement and prints its report.
pub async fn run(args: OcpiStatusArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let sent: Sent = Arc::default();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let emsp = serve_emsp(args.emsp_listen, sent.clone(), seen.clone()).await?;

    // voltgate registers with the eMSP.
    let token_a = format!("loadtest-token-a-{}", std::process::id());
    let (status, made) = exchange(
        client(&args, reqwest::Method::POST, "/api/v0/register", &http),
        Some(&json!({"token": token_a, "url": format!("{emsp}/versions")})),
    )
    .await?;
    if status != 201 {
        bail!("POST /api/v0/register answered {status}: {made}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = exchange(
            client(&args, reqwest::Method::GET, "/api/v0/register", &http),
            None,
        )
        .await?;
        let ours = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["url"].as_str().is_some_and(|u| u.starts_with(&emsp)));
        if ours.is_some_and(|r| r["status"] == "REGISTERED") {
            break;
        }
        if Instant::now() > deadline {
            bail!("voltgate did not register with the eMSP: {list}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // One location per station, its EVSE linked to the station.
    for i in 0..args.stations {
        let id = format!("OCPISTAT{i:05}");
        let (status, answer) = exchange(
            client(
                &args,
                reqwest::Method::POST,
                &format!("/api/v0/cs/{id}"),
                &http,
            ),
            Some(&registration_body(PASSWORD)),
        )
        .await?;
        if !(200..300).contains(&status) {
            bail!("registering {id}: {status} {answer}");
        }
        let location = json!({"id": id, "country_code": "NL", "party_id": "VGT", "publish": true,
            "address": "Loadtest street 1", "city": "Utrecht", "country": "NLD", "time_zone": "Europe/Amsterdam",
            "coordinates": {"latitude": "52.09", "longitude": "5.12"},
            "evses": [{"uid": "E1", "station_id": id, "ocpp_evse_id": 1, "connectors": [{"id": "1",
                "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                "max_voltage": 230, "max_amperage": 32}]}]});
        let (_, put) = exchange(
            client(
                &args,
                reqwest::Method::PUT,
                &format!("/api/v1/locations/{id}"),
                &http,
            ),
            Some(&location),
        )
        .await?;
        if put["status_code"] != 1000 {
            bail!("PUT location {id}: {put}");
        }
        sent.lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(id, VecDeque::new());
    }

    // The stations report alternating statuses, spread evenly in time.
    let target = Target::resolve(&args.ws, PASSWORD, 0).await?;
    let per_station = Duration::from_secs_f64(f64::from(args.stations) / args.rate.max(0.001));
    let until = Instant::now() + Duration::from_secs(args.duration) + per_station;
    let mut stations = Vec::new();
    for i in 0..args.stations {
        let id = format!("OCPISTAT{i:05}");
        let mut ws = connect(&target, &id, i, Version::V201, Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("{id}: {}", e.detail))?;
        let boot = json!([2, "b", "BootNotification", {"reason": "PowerUp",
            "chargingStation": {"model": "loadtest", "vendorName": "voltgate"}}]);
        ws.send(Message::Text(boot.to_string().into())).await?;
        ws.next().await.context("boot answer")??;
        let (sent, offset) = (
            sent.clone(),
            per_station.mul_f64(f64::from(i) / f64::from(args.stations)),
        );
        stations.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(per_station);
            let mut n = 0u64;
            while Instant::now() < until {
                tick.tick().await;
                let (ocpp, ocpi) = if n.is_multiple_of(2) { ("Occupied", "CHARGING") } else { ("Available", "AVAILABLE") };
                let frame = json!([2, format!("s{n}"), "StatusNotification", {
                    "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "connectorStatus": ocpp, "evseId": 1, "connectorId": 1}]);
                if let Ok(mut queues) = sent.lock() {
                    queues.entry(id.clone()).or_default().push_back((ocpi, Instant::now()));
                }
                if tx.send(Message::Text(frame.to_string().into())).await.is_err() {
                    break;
                }
                n += 1;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            n
        }));
    }
    let mut reports = 0u64;
    for station in stations {
        reports += station.await.unwrap_or(0);
    }
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut histogram = new_histogram();
    for latency in &seen.latencies {
        histogram.saturating_record(micros(*latency));
    }
    let lost: u64 = sent
        .lock()
        .map(|queues| queues.values().map(|q| q.len() as u64).sum())
        .unwrap_or(0);
    println!(
        "ocpi-status: {} stations, {:.0} changes/s for {} s: {reports} StatusNotifications sent, {} PATCHes received ({} superseded on the way, {} not received, {} unmatched)",
        args.stations, args.rate, args.duration, seen.latencies.len(), seen.superseded, lost, seen.unmatched
    );
    match Percentiles::of(&histogram) {
        Some(p) => println!(
            "StatusNotification -> eMSP PATCH latency ms: p50 {:.1}, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}, mean {:.1}",
            p.p50, p.p90, p.p99, p.p99_9, p.max, p.mean
        ),
        None => println!("no PATCH received"),
    }
    Ok(())
}
