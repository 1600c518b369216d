//! REST API authentication: `Authorization: Bearer <token>` on `/api/v0`
//! (and on `/metrics` unless --metrics-without-token), never on `/health`.
//! The guards wrap the scope and the resource they protect, so they apply to
//! whatever the router matched, however the path was spelled.
//! Tokens come from --api-token and --api-token-file and are compared in
//! constant time, as SHA-256 digests so that not even their length leaks.
//! Without any token the API is open, which voltgate allows only on a
//! loopback address unless --api-insecure says otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use clap::Args;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::metrics::API_AUTH_FAILURES;

/// Shortest token accepted (guessing must not be an option).
pub const MIN_TOKEN_CHARS: usize = 16;

/// The flags of REST API authentication.
#[derive(Debug, Clone, Default, Args)]
pub struct ApiAuthSettings {
    /// Bearer tokens that may use the REST API (comma separated; prefer the
    /// environment variable or --api-token-file). At least 16 characters.
    #[arg(
        long = "api-token",
        env = "VOLTGATE_API_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,

    /// A file of API tokens, one per line (blank lines and # comments skipped).
    #[arg(long = "api-token-file", env = "VOLTGATE_API_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Serve the REST API without a token on a non-loopback address.
    #[arg(long = "api-insecure", env = "VOLTGATE_API_INSECURE")]
    pub insecure: bool,

    /// Serve /metrics without a token even when tokens are set.
    #[arg(long = "metrics-without-token", env = "VOLTGATE_METRICS_WITHOUT_TOKEN")]
    pub metrics_without_token: bool,
}

/// The tokens in force.
#[derive(Clone)]
pub struct ApiTokens {
    digests: Vec<[u8; 32]>,
    metrics_open: bool,
}

impl ApiTokens {
    /// The tokens of `settings` for an API listening on `listen`, or why
    /// voltgate must not start.
    pub fn load(settings: &ApiAuthSettings, listen: SocketAddr) -> Result<ApiTokens, String> {
        let mut tokens: Vec<String> = settings.tokens.clone();
        if let Some(path) = &settings.token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --api-token-file {}: {e}", path.display()))?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        if let Some(short) = tokens
            .iter()
            .position(|t| t.chars().count() < MIN_TOKEN_CHARS)
        {
            return Err(format!(
                "API token {} is shorter than {MIN_TOKEN_CHARS} characters",
                short + 1
            ));
        }
        if tokens.is_empty() && !listen.ip().is_loopback() && !settings.insecure {
            return Err(format!(
                "the REST API would listen on {listen}, not a loopback address, with no token: \
                 give --api-token or --api-token-file, or --api-insecure to serve it open"
            ));
        }
        Ok(ApiTokens {
            digests: tokens.iter().map(|t| digest(t)).collect(),
            metrics_open: settings.metrics_without_token,
        })
    }

    /// True when a token is needed: tokens are set (and, for /metrics,
    /// it is not opened).
    fn required(&self, what: Guarded) -> bool {
        let opened = what == Guarded::Metrics && self.metrics_open;
        !self.digests.is_empty() && !opened
    }

    /// Checks an `Authorization` header; the error is the metric reason.
    fn check(&self, authorization: Option<&str>) -> Result<(), &'static str> {
        let header = authorization.ok_or("no_token")?;
        let (scheme, token) = header.trim().split_once(' ').ok_or("malformed")?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err("not_bearer");
        }
        let offered = digest(token.trim());
        // Compare with every token, whatever matched, so time says nothing.
        let matched = self
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |any, d| any | d.ct_eq(&offered));
        if bool::from(matched) {
            Ok(())
        } else {
            Err("wrong_token")
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a guard stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guarded {
    /// Everything under /api/v0.
    Api,
    /// /metrics.
    Metrics,
}

/// Middleware of the `/api/v0` scope: 401 `{"status","error"}` without a
/// valid token when tokens are set.
pub async fn guard_api(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    authorize(&req, Guarded::Api)?;
    next.call(req).await
}

/// Middleware of `/metrics`: as [`guard_api`], unless --metrics-without-token.
pub async fn guard_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    authorize(&req, Guarded::Metrics)?;
    next.call(req).await
}

fn authorize(req: &ServiceRequest, what: Guarded) -> Result<(), ApiError> {
    // No token state means a wiring mistake: fail closed, never open.
    let Some(tokens) = req.app_data::<web::Data<ApiTokens>>() else {
        tracing::error!("API token state missing: refusing the request");
        return Err(ApiError::Internal);
    };
    if !tokens.required(what) {
        return Ok(());
    }
    let authorization = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    tokens.check(authorization).map_err(|reason| {
        metrics::counter!(API_AUTH_FAILURES, "reason" => reason).increment(1);
        ApiError::Unauthorized(
            "a valid API token is required: Authorization: Bearer <token>".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-operator";

    fn tokens(list: &[&str], listen: &str, insecure: bool) -> Result<ApiTokens, String> {
        let settings = ApiAuthSettings {
            tokens: list.iter().map(|t| t.to_string()).collect(),
            insecure,
            ..ApiAuthSettings::default()
        };
        ApiTokens::load(&settings, listen.parse().unwrap())
    }

    #[test]
    fn open_api_only_on_loopback_or_when_asked() {
        assert!(tokens(&[], "127.0.0.1:9410", false).is_ok());
        assert!(tokens(&[], "[::1]:9410", false).is_ok());
        let refused = tokens(&[], "0.0.0.0:9410", false).err().unwrap();
        assert!(refused.contains("--api-insecure"), "{refused}");
        assert!(tokens(&[], "0.0.0.0:9410", true).is_ok());
        assert!(tokens(&[TOKEN], "0.0.0.0:9410", false).is_ok());
        assert!(tokens(&["short"], "127.0.0.1:9410", false).is_err());
    }

    #[test]
    fn bearer_tokens_are_checked_where_required() {
        let t = tokens(&[TOKEN, "another-token-of-16+"], "127.0.0.1:1", false).unwrap();
        assert!(t.required(Guarded::Api) && t.required(Guarded::Metrics));
        assert_eq!(t.check(Some(&format!("Bearer {TOKEN}"))), Ok(()));
        assert_eq!(t.check(Some("bearer another-token-of-16+")), Ok(()));
        assert_eq!(t.check(None), Err("no_token"));
        assert_eq!(t.check(Some("Basic abc")), Err("not_bearer"));
        assert_eq!(
            t.check(Some("Bearer nope-nope-nope-nope")),
            Err("wrong_token")
        );
        assert_eq!(t.check(Some("Bearer")), Err("malformed"));
        let open = tokens(&[], "127.0.0.1:1", false).unwrap();
        assert!(!open.required(Guarded::Api) && !open.required(Guarded::Metrics));
        let settings = ApiAuthSettings {
            tokens: vec![TOKEN.into()],
            metrics_without_token: true,
            ..ApiAuthSettings::default()
        };
        let metrics_open = ApiTokens::load(&settings, "127.0.0.1:1".parse().unwrap()).unwrap();
        assert!(metrics_open.required(Guarded::Api) && !metrics_open.required(Guarded::Metrics));
    }
}
