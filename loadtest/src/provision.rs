//! Provisioning through the REST API before any station connects: every
//! station registered with security profile 0 and the run's password, and
//! the token the charge scenario authorizes with.
//!
//! Registering an existing station replaces its credentials (voltgate
//! answers 201 either way), so reruns with the same ids need no clean-up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::cli::RunArgs;
use crate::plan;
use crate::progress::Bar;

/// Longest wait for one registration.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// How provisioning went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionReport {
    /// Stations to register.
    pub stations: u32,
    /// Registered (2xx, or 409 as "already there").
    pub registered: u32,
    /// Registrations that failed.
    pub failed: u32,
    /// Whether the token was created (or replaced).
    pub token_created: bool,
    /// Wall time.
    pub secs: f64,
    /// Failures by kind (`http_error`, `http_failed`).
    pub errors: BTreeMap<String, u64>,
    /// The first failure, to tell what went wrong.
    pub first_error: Option<String>,
}

/// The standard base64 of the password's SHA-256, as voltgate stores it.
pub fn password_hash(password: &str) -> String {
    STANDARD.encode(Sha256::digest(password.as_bytes()))
}

/// The registration body of a profile 0 station.
pub fn registration_body(password: &str) -> serde_json::Value {
    json!({"securityProfile": 0, "base64SHA256Password": password_hash(password)})
}

/// The load-test token (an RFID card, valid, always cached).
pub fn token_body(uid: &str) -> serde_json::Value {
    json!({
        "countryCode": "GB", "partyId": "VGT", "type": "RFID", "uid": uid,
        "contractId": "GB-VGT-012345678", "issuer": "voltgate loadtest", "valid": true,
        "cacheMode": "ALWAYS"
    })
}

/// Whether a registration answer means the station is there.
fn registered(status: u16) -> bool {
    (200..300).contains(&status) || status == 409
}

/// Registers every station and the token; fails only when nothing could be
/// registered at all (then no station could connect).
pub async fn provision(args: &RunArgs, bar: &Bar) -> anyhow::Result<ProvisionReport> {
    let started = Instant::now();
    let urls = args.api_urls();
    let api = urls.first().map_or("", String::as_str);
    let client = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .pool_max_idle_per_host(args.provision_concurrency)
        .build()
        .context("HTTP client")?;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error = None;
    let mut note = |kind: &str, detail: String| {
        *errors.entry(kind.to_owned()).or_default() += 1;
        first_error.get_or_insert(detail);
    };

    let token = client
        .post(format!("{api}/token"))
        .header("content-type", "application/json")
        .body(token_body(&args.token_uid).to_string())
        .send()
        .await;
    let token_created = match token {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            note(
                "http_error",
                format!("POST {api}/token: HTTP {}", r.status()),
            );
            false
        }
        Err(e) => {
            note("http_failed", format!("POST {api}/token: {e}"));
            false
        }
    };

    bar.start_provisioning(args.stations);
    let body = registration_body(&args.password).to_string();
    let mut answers = futures_util::stream::iter(0..args.stations)
        .map(|index| {
            let url = format!("{api}/cs/{}", plan::station_id(&args.id_prefix, index));
            let request = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            async move { (url, request.await) }
        })
        .buffer_unordered(args.provision_concurrency.max(1));
    let (mut ok, mut failed) = (0, 0);
    while let Some((url, answer)) = answers.next().await {
        match answer {
            Ok(r) if registered(r.status().as_u16()) => ok += 1,
            Ok(r) => {
                failed += 1;
                note("http_error", format!("POST {url}: HTTP {}", r.status()));
            }
            Err(e) => {
                failed += 1;
                note("http_failed", format!("POST {url}: {e}"));
            }
        }
        bar.provisioned(ok + failed);
    }
    if ok == 0 && args.stations > 0 {
        bail!(
            "no station could be registered at {api}: {}",
            first_error.unwrap_or_default()
        );
    }
    Ok(ProvisionReport {
        stations: args.stations,
        registered: ok,
        failed,
        token_created,
        secs: started.elapsed().as_secs_f64(),
        errors,
        first_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_hash_is_base64_of_sha256() {
        // printf '%s' secret | openssl dgst -sha256 -binary | base64
        assert_eq!(
            password_hash("secret"),
            "K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols="
        );
        assert_eq!(registration_body("secret")["securityProfile"], 0);
    }

    #[test]
    fn existing_stations_count_as_registered() {
        assert!(registered(201) && registered(200) && registered(409));
        assert!(!registered(400) && !registered(500));
    }
}
