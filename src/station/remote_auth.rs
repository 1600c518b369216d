//! Real-time authorization by a token's issuer: the port through which the
//! handlers ask (an OCPI eMSP, when one is registered) whether a token may
//! charge here, before they fall back on what the token store says.

use async_trait::async_trait;

use crate::store::Token;

/// What the issuer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteVerdict {
    /// Allowed; with the token as the issuer describes it, when it did.
    Allowed(Option<Box<Token>>),
    /// Blocked by the issuer.
    Blocked,
    /// Expired.
    Expired,
    /// No credit left.
    NoCredit,
    /// Not allowed here or now.
    NotAllowed,
}

/// Asks a token's issuer.
#[async_trait]
pub trait RemoteAuthorizer: Send + Sync {
    /// The issuer's answer for token `uid` (`known`: the local record, if
    /// any) presented at `station_id`; None when no issuer answered in time
    /// or none is there to ask.
    async fn authorize(
        &self,
        known: Option<&Token>,
        uid: &str,
        station_id: &str,
    ) -> Option<RemoteVerdict>;
}
