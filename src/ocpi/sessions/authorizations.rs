//! Authorizations given by eMSPs, remembered until the transaction they
//! allow starts: a real-time authorization (AUTH_REQUEST, with the eMSP's
//! authorization_reference) or a START_SESSION (COMMAND). The session of
//! the transaction then carries how it was authorized and goes to the
//! eMSP that allowed it, even for a token voltgate does not keep.
//!
//! Kept in memory: a restart between the authorization and the start of
//! the transaction leaves the session to be recognized by its token alone
//! (as WHITELIST), or not at all for a token voltgate does not keep.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::view::{Authorization, CdrToken};

/// How long an authorization waits for its transaction.
const KEPT_FOR: Duration = Duration::from_secs(15 * 60);
/// Most authorizations waiting at once (the oldest go first beyond).
const MOST_WAITING: usize = 100_000;

/// One eMSP's authorization of a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Granted {
    /// The registration of the eMSP that gave it.
    pub partner_id: String,
    /// The token as the eMSP described it.
    pub token: CdrToken,
    /// How, and the eMSP's reference.
    pub auth: Authorization,
}

/// The authorizations waiting for their transaction, by token uid.
#[derive(Default)]
pub struct Authorizations {
    waiting: Mutex<HashMap<String, (Instant, Granted)>>,
}

impl Authorizations {
    /// Remembers that `granted` allows its token (replacing an earlier one).
    pub fn grant(&self, granted: Granted) {
        let Ok(mut waiting) = self.waiting.lock() else {
            return;
        };
        if waiting.len() >= MOST_WAITING {
            waiting.retain(|_, (at, _)| at.elapsed() < KEPT_FOR);
            if waiting.len() >= MOST_WAITING {
                waiting.clear();
            }
        }
        // A START_SESSION's token is usually authorized again when the
        // station starts: the session stays one started by command.
        let by_command = |g: &Granted| g.auth.method == "COMMAND";
        if let Some((at, earlier)) = waiting.get(&granted.token.uid) {
            if by_command(earlier) && !by_command(&granted) && at.elapsed() < KEPT_FOR {
                return;
            }
        }
        waiting.insert(granted.token.uid.clone(), (Instant::now(), granted));
    }

    /// The authorization of token `uid`, if one is waiting (it is used up).
    pub fn take(&self, uid: &str) -> Option<Granted> {
        let (at, granted) = self.waiting.lock().ok()?.remove(uid)?;
        (at.elapsed() < KEPT_FOR).then_some(granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authorization_is_taken_once() {
        let memo = Authorizations::default();
        let token = CdrToken {
            country_code: "NL".into(),
            party_id: "EMS".into(),
            uid: "T1".into(),
            token_type: "RFID".into(),
            contract_id: "C1".into(),
        };
        memo.grant(Granted {
            partner_id: "p1".into(),
            token,
            auth: Authorization {
                method: "COMMAND".into(),
                reference: Some("R1".into()),
            },
        });
        assert!(memo.take("T2").is_none());
        let granted = memo.take("T1").expect("waiting");
        assert_eq!(granted.auth.reference.as_deref(), Some("R1"));
        assert!(memo.take("T1").is_none());
    }
}
