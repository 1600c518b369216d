//! `loadtest locations`: the nearby-search benchmark. It loads a fleet of
//! locations clustered around cities (PUT /api/v1/locations/{id}, so a
//! second run over the same data is a no-op for the store's shape), then
//! times `GET /api/v1/locations/nearby` at random points of those cities
//! and reports the latency percentiles and how many locations matched.
//!
//! Density: `--count` locations over `--cities` cities spread over Europe,
//! each city's locations normally distributed around its centre with a
//! standard deviation of `--spread-km`; with the defaults (1,000,000 over
//! 200 cities, 8 km) a 10 km search at a centre holds about 2,700
//! locations, a dense city's public chargers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures_util::stream::{self, StreamExt};
use serde_json::json;

use crate::histogram::{new_histogram, Percentiles};

/// The benchmark's settings.
#[derive(Debug, Clone, Args)]
pub struct LocationsArgs {
    /// REST base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:9410")]
    pub api: String,
    /// Bearer token of the REST API, when it needs one.
    #[arg(long)]
    pub token: Option<String>,
    /// Locations to load.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: u64,
    /// Cities they cluster around.
    #[arg(long, default_value_t = 200)]
    pub cities: u64,
    /// Standard deviation of a city's locations around its centre, km.
    #[arg(long, default_value_t = 8.0)]
    pub spread_km: f64,
    /// Loading requests in flight.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Do not load: the server already holds the locations.
    #[arg(long)]
    pub skip_load: bool,
    /// Searches to time.
    #[arg(long, default_value_t = 2_000)]
    pub queries: u64,
    /// Searches in flight.
    #[arg(long, default_value_t = 1)]
    pub query_concurrency: usize,
    /// Search radius, km.
    #[arg(long, default_value_t = 10.0)]
    pub distance_km: f64,
    /// The filter each search carries, `name=value` (empty: none).
    #[arg(long, default_value = "facilities=WIFI")]
    pub filter: String,
    /// Seed of the generated data and searches.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

const FACILITIES: [&str; 5] = ["WIFI", "CAFE", "MALL", "HOTEL", "SUPERMARKET"];
const STANDARDS: [&str; 3] = ["IEC_62196_T2", "IEC_62196_T2_COMBO", "CHADEMO"];
const STATUSES: [&str; 3] = ["AVAILABLE", "CHARGING", "UNKNOWN"];
const KM_PER_DEGREE: f64 = 111.195;

/// City `n`'s centre: spread over Europe (36–60 N, 10 W–30 E).
fn city(seed: u64, n: u64) -> (f64, f64) {
    let mut rng = fastrand::Rng::with_seed(seed ^ (n.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    (36.0 + rng.f64() * 24.0, -10.0 + rng.f64() * 40.0)
}

/// A point around (lat, lon), normally distributed with `sigma_km`.
fn around(rng: &mut fastrand::Rng, (lat, lon): (f64, f64), sigma_km: f64) -> (f64, f64) {
    // Box-Muller.
    let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
    let r = (-2.0 * u1.ln()).sqrt() * sigma_km;
    let (dy, dx) = (
        r * (std::f64::consts::TAU * u2).sin(),
        r * (std::f64::consts::TAU * u2).cos(),
    );
    let lat2 = lat + dy / KM_PER_DEGREE;
    (lat2, lon + dx / (KM_PER_DEGREE * lat2.to_radians().cos()))
}

fn location(args: &LocationsArgs, i: u64) -> serde_json::Value {
    let mut rng = fastrand::Rng::with_seed(args.seed.wrapping_mul(31).wrapping_add(i));
    let centre = city(args.seed, i % args.cities.max(1));
    let (lat, lon) = around(&mut rng, centre, args.spread_km);
    let mut pick = |from: &[&'static str]| from[rng.usize(..from.len())];
    json!({
        "id": format!("BENCH{i:07}"), "country_code": "NL", "party_id": "VGT", "publish": true,
        "name": format!("Bench location {i}"), "address": "Benchmark street 1",
        "city": format!("City{}", i % args.cities.max(1)), "country": "NLD",
        "coordinates": {"latitude": format!("{lat:.6}"), "longitude": format!("{lon:.6}")},
        "time_zone": "Europe/Amsterdam", "facilities": [pick(&FACILITIES)],
        "evses": [{"uid": "E1", "status": pick(&STATUSES), "connectors": [{"id": "1",
            "standard": pick(&STANDARDS), "format": "CABLE", "power_type": "AC_3_PHASE",
            "max_voltage": 230, "max_amperage": 32}]}]
    })
}

fn request(
    client: &reqwest::Client,
    args: &LocationsArgs,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    let builder = client.request(method, format!("{}{path}", args.api));
    match &args.token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    }
}

/// Runs the benchmark and prints its report.
pub async fn run(args: LocationsArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency.max(args.query_concurrency))
        .build()
        .context("HTTP client")?;
    let args = Arc::new(args);
    if !args.skip_load {
        let started = Instant::now();
        let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        stream::iter(0..args.count)
            .for_each_concurrent(args.concurrency, |i| {
                let (client, args, failed) = (client.clone(), args.clone(), failed.clone());
                async move {
                    let body = serde_json::to_vec(&location(&args, i)).unwrap_or_default();
                    let path = format!("/api/v1/locations/BENCH{i:07}");
                    let sent = request(&client, &args, reqwest::Method::PUT, &path)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match sent {
                        Ok(response) => response.bytes().await.is_ok_and(|body| {
                            serde_json::from_slice::<serde_json::Value>(&body)
                                .is_ok_and(|v| v["status_code"] == 1000)
                        }),
                        Err(_) => false,
                    };
                    if !ok {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if i > 0 && i % 100_000 == 0 {
                        eprintln!(
                            "loaded {i} locations in {:.0} s",
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            })
            .await;
        let took = started.elapsed().as_secs_f64();
        let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "load: {} locations in {took:.1} s ({:.0}/s), {failed} failed",
            args.count,
            args.count as f64 / took
        );
        if failed > 0 {
            bail!("{failed} locations were not stored");
        }
    }
    let histogram = Arc::new(std::sync::Mutex::new(new_histogram()));
    let matched = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    stream::iter(0..args.queries)
        .for_each_concurrent(args.query_concurrency.max(1), |q| {
            let (client, args) = (client.clone(), args.clone());
            let (histogram, matched) = (histogram.clone(), matched.clone());
            async move {
                let mut rng =
                    fastrand::Rng::with_seed(args.seed.wrapping_mul(7919).wrapping_add(q));
                let centre = city(args.seed, rng.u64(..args.cities.max(1)));
                let (lat, lon) = around(&mut rng, centre, args.spread_km / 2.0);
                let mut path = format!(
                    "/api/v1/locations/nearby?lat={lat:.6}&lng={lon:.6}&distance_km={}",
                    args.distance_km
                );
                if !args.filter.is_empty() {
                    path.push('&');
                    path.push_str(&args.filter);
                }
                let sent_at = Instant::now();
                let reply = request(&client, &args, reqwest::Method::GET, &path)
                    .send()
                    .await;
                let Ok(reply) = reply else {
                    return;
                };
                let total = reply
                    .headers()
                    .get("x-total-count")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let body = reply.bytes().await;
                let micros = sent_at.elapsed().as_micros().max(1) as u64;
                if body.is_ok() {
                    if let Ok(mut h) = histogram.lock() {
                        let _ = h.record(micros);
                    }
                    if let (Some(total), Ok(mut m)) = (total, matched.lock()) {
                        m.push(total);
                    }
                }
            }
        })
        .await;
    let took = started.elapsed().as_secs_f64();
    let histogram = histogram.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let Some(p) = Percentiles::of(&histogram) else {
        bail!("no search answered");
    };
    let mut matched = matched
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    matched.sort_unstable();
    let median = matched.get(matched.len() / 2).copied().unwrap_or(0);
    println!(
        "nearby: {} searches in {took:.1} s ({:.0}/s), radius {} km, filter {:?}; matches per search: median {median}, max {}",
        p.count,
        p.count as f64 / took,
        args.distance_km,
        args.filter,
        matched.last().copied().unwrap_or(0)
    );
    println!(
        "  latency: p50 {:.2} | p90 {:.2} | p99 {:.2} | p99.9 {:.2} | max {:.2} ms (mean {:.2})",
        p.p50, p.p90, p.p99, p.p99_9, p.max, p.mean
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: LocationsArgs,
    }

    #[test]
    fn generated_locations_keep_the_servers_rules_and_cluster() {
        let args = Wrapper::parse_from(["x", "--cities", "4"]).args;
        for i in 0..200 {
            let value = location(&args, i);
            let parsed: voltgate::store::Location = serde_json::from_value(value).unwrap();
            voltgate::locations::rules::location(&parsed).unwrap();
            let (lat, lon) = parsed.coordinates.degrees().unwrap();
            let centre = city(args.seed, i % 4);
            let km = voltgate::store::distance_km(lat, lon, centre.0, centre.1);
            assert!(km < 8.0 * 6.0, "location {i} is {km} km from its city");
        }
    }
}
