//! Registrations: the operator's `/api/v0/register` and the partner's
//! credentials calls turned into partner records, and the handshake
//! voltgate runs itself when it was given the partner's versions URL,
//! retried with back-off until it succeeds or the registration changes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use awc::http::Method;
use chrono::Utc;

use super::client::call;
use super::credentials::{fetch_endpoints, read_credentials, Credentials, Identity};
use super::outbound::Outbound;
use super::transport::{new_token, OcpiError};
use crate::store::{token_hash, OcpiPartner, OcpiRegistrationStatus, Store};

/// First wait after a failed attempt; doubled per failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
const LONGEST_RETRY: Duration = Duration::from_secs(300);

/// Runs and records registrations.
#[derive(Clone)]
pub struct Registrar {
    store: Arc<dyn Store>,
    identity: Arc<Identity>,
    outbound: Outbound,
    running: Arc<Mutex<HashSet<String>>>,
}

/// Whether voltgate has work to do for a partner: a handshake to run
/// (PENDING with a versions URL and a token to call it with) or the
/// endpoints of a REGISTERED partner still to learn.
fn needs_work(partner: &OcpiPartner) -> bool {
    partner.versions_url.is_some()
        && partner.token_to_partner.is_some()
        && (partner.status == OcpiRegistrationStatus::Pending || partner.endpoints.is_empty())
}

/// The wait after `failures` failed attempts in a row.
pub fn backoff(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .min(LONGEST_RETRY)
}

impl Registrar {
    /// Registrations kept in `store`, made as `identity`.
    pub fn new(store: Arc<dyn Store>, identity: Arc<Identity>, outbound: Outbound) -> Self {
        Registrar {
            store,
            identity,
            outbound,
            running: Arc::default(),
        }
    }

    /// Who voltgate is towards partners.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The store the partners are kept in.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Records an operator's registration and, when voltgate is to call the
    /// partner, starts the handshake. Registering the same token again
    /// replaces the record (and so retries at once).
    pub async fn register(
        &self,
        partner: OcpiPartner,
    ) -> Result<OcpiPartner, crate::store::StoreError> {
        self.store.put_partner(partner.clone()).await?;
        self.resume(&partner);
        Ok(partner)
    }

    /// Starts the work a partner needs, unless it is already running.
    pub fn resume(&self, partner: &OcpiPartner) {
        if !needs_work(partner) {
            return;
        }
        let first = self
            .running
            .lock()
            .map(|mut running| running.insert(partner.id.clone()))
            .unwrap_or(false);
        if first {
            let (registrar, id) = (self.clone(), partner.id.clone());
            self.outbound.spawn(move || registrar.run(id));
        }
    }

    /// Starts the work every stored partner needs (at start).
    pub async fn resume_all(&self) {
        match self.store.list_partners().await {
            Ok(partners) => partners.iter().for_each(|p| self.resume(p)),
            Err(e) => tracing::warn!(error = %e, "cannot list the OCPI partners to resume"),
        }
    }

    async fn run(self, id: String) {
        loop {
            let partner = match self.store.partner(&id).await {
                Ok(Some(partner)) if needs_work(&partner) => partner,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, partner = %id, "cannot read an OCPI partner");
                    tokio::time::sleep(LONGEST_RETRY).await;
                    continue;
                }
            };
            let failures = partner.failed_attempts;
            match self.attempt(partner.clone()).await {
                Ok(done) => {
                    tracing::info!(partner = %id, parties = ?done.parties(), "OCPI partner registered");
                    break;
                }
                Err(reason) => {
                    tracing::warn!(partner = %id, %reason, "OCPI handshake failed; retrying");
                    let failed = OcpiPartner {
                        last_error: Some(reason),
                        failed_attempts: failures + 1,
                        updated_at: Utc::now(),
                        ..partner
                    };
                    if let Err(e) = self.store.put_partner(failed).await {
                        tracing::warn!(error = %e, partner = %id, "cannot record a failed handshake");
                    }
                    tokio::time::sleep(backoff(failures + 1)).await;
                }
            }
        }
        if let Ok(mut running) = self.running.lock() {
            running.remove(&id);
        }
    }

    /// One attempt: the whole handshake for a PENDING partner, the
    /// endpoints only for a REGISTERED one.
    async fn attempt(&self, partner: OcpiPartner) -> Result<OcpiPartner, String> {
        let (Some(versions_url), Some(token)) = (
            partner.versions_url.clone(),
            partner.token_to_partner.clone(),
        ) else {
            return Err("no versions URL or token to call it with".into());
        };
        let timeout = self.identity.call_timeout;
        let endpoints = fetch_endpoints(&versions_url, &token, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if partner.status == OcpiRegistrationStatus::Registered {
            let done = OcpiPartner {
                endpoints,
                last_error: None,
                failed_attempts: 0,
                updated_at: Utc::now(),
                ..partner
            };
            self.store
                .put_partner(done.clone())
                .await
                .map_err(|e| e.to_string())?;
            return Ok(done);
        }
        let credentials_url = endpoints
            .iter()
            .find(|e| e.identifier == "credentials")
            .map(|e| e.url.clone())
            .ok_or("the partner lists no credentials endpoint")?;
        // TOKEN_B is accepted before it is sent: the partner may call
        // voltgate's versions with it while it handles the POST.
        let token_b = new_token().map_err(|e| e.message)?;
        let waiting = OcpiPartner {
            token_hash: Some(token_hash(&token_b)),
            endpoints: endpoints.clone(),
            updated_at: Utc::now(),
            ..partner
        };
        self.store
            .put_partner(waiting.clone())
            .await
            .map_err(|e| e.to_string())?;
        let answer = call(
            Method::POST,
            &credentials_url,
            &token,
            Some(&self.identity.credentials(&token_b)),
            timeout,
        )
        .await
        .map_err(|e| e.to_string())?;
        let theirs = read_credentials(&answer)
            .map_err(|e| format!("the partner's credentials answer: {}", e.message))?;
        // The partner's endpoints as TOKEN_C sees them (its versions URL may
        // have changed); the ones read with TOKEN_A serve when that fails.
        let endpoints = fetch_endpoints(&theirs.url, &theirs.token, timeout)
            .await
            .unwrap_or(endpoints);
        let done = OcpiPartner {
            status: OcpiRegistrationStatus::Registered,
            versions_url: Some(theirs.url),
            token_to_partner: Some(theirs.token),
            roles: theirs.roles,
            endpoints,
            last_error: None,
            failed_attempts: 0,
            updated_at: Utc::now(),
            ..waiting
        };
        self.store
            .put_partner(done.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(done)
    }

    /// The partner's side of the handshake (`POST` or, to rotate, `PUT`
    /// `/credentials`): learns its endpoints with the token it sent, keeps
    /// that token for voltgate's calls, and answers voltgate's credentials
    /// with a fresh token that replaces the one the partner called with.
    pub async fn accept(
        &self,
        partner: OcpiPartner,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, OcpiError> {
        let Credentials { token, url, roles } = read_credentials(body)?;
        let endpoints = fetch_endpoints(&url, &token, self.identity.call_timeout)
            .await
            .map_err(|e| e.as_ocpi())?;
        let token_c = new_token()?;
        let registered = OcpiPartner {
            status: OcpiRegistrationStatus::Registered,
            versions_url: Some(url),
            token_to_partner: Some(token),
            token_hash: Some(token_hash(&token_c)),
            roles,
            endpoints,
            last_error: None,
            failed_attempts: 0,
            updated_at: Utc::now(),
            ..partner
        };
        self.store.put_partner(registered).await?;
        Ok(self.identity.credentials(&token_c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), LONGEST_RETRY);
    }
}
