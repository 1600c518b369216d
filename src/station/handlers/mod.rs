//! What voltgate answers to each station-initiated action, and what it
//! stores of it. Handlers are async functions over the store traits; the
//! actor runs one at a time per station (the session hands them out in
//! order), so a handler may read, change and write the station's runtime
//! record without racing another.
//!
//! Per version: `v16` and `v201`; the shared rules (token decisions, boot
//! verdicts, meter value conversion) live here.

mod follow_up;
mod pnc;
mod signing;
#[cfg(test)]
mod tests;
mod v16;
mod v201;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::ocpp::error::ErrorCode;
use crate::ocpp::Version;
use crate::store::{
    BootInfo, MeterValue, Provisioning, SampledValue, SecurityEvent, StationRuntime, Store,
    StoreError, Token,
};

/// What every handler can reach.
pub struct Env {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Heartbeat interval told to accepted stations, in seconds.
    pub heartbeat_interval_secs: u32,
    /// Interval after which a station answered `Pending` boots again, in seconds.
    pub pending_boot_interval_secs: u32,
    /// The CA that signs stations' CSRs, when configured.
    pub ca: Option<Arc<crate::pki::ca::StationCa>>,
    /// Where connector statuses go for the locations that show them.
    pub statuses: Arc<crate::station::evse_status::StatusBoard>,
    /// The issuers asked in real time (OCPI eMSPs), when any can be.
    pub remote_auth: Option<Arc<dyn crate::station::remote_auth::RemoteAuthorizer>>,
    /// Told of each transaction event stored (OCPI sessions), when set.
    pub transactions: Option<Arc<dyn crate::station::transaction_feed::TransactionFeed>>,
}

impl Env {
    /// Stores a transaction event and tells the followers of a new one:
    /// true when it was new (events are idempotent by seq_no).
    pub async fn apply_transaction_event(
        &self,
        event: crate::store::TransactionEvent,
    ) -> crate::store::StoreResult<bool> {
        let Some(feed) = &self.transactions else {
            return self.store.apply_transaction_event(event).await;
        };
        let told = event.clone();
        let first_time = self.store.apply_transaction_event(event).await?;
        if first_time {
            feed.applied(&told).await;
        }
        Ok(first_time)
    }
}

/// One connected station as the handlers see it.
pub struct Station {
    /// Its id.
    pub id: String,
    /// The protocol version of this connection.
    pub version: Version,
    runtime: Mutex<StationRuntime>,
    /// Whether its registration is known to be provisioned (read at
    /// connect, or set by an accepted boot). Provisioning only ever goes
    /// from pending to provisioned, so a boot of a station known provisioned
    /// need not read the registration again.
    provisioned: AtomicBool,
    /// Answered commands whose new record is still on its way to the
    /// store ([`CommandWrite`]); `commands_stored` wakes waiters when the
    /// last one landed.
    command_writes: AtomicUsize,
    commands_stored: tokio::sync::Notify,
}

/// How long a message about an earlier command (a start linking its
/// remote start, a firmware or log status) waits for that command's answer
/// to be stored before it looks for it anyway. The write normally lands
/// within milliseconds; a store slower than this delays the message's
/// answer by this much, and the message may then find the command as it
/// was before its answer, as it would without the wait.
const COMMANDS_STORED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// An answered command's record being stored: held from the answer until
/// the write is done (whatever its outcome).
pub struct CommandWrite(Arc<Station>);

impl Drop for CommandWrite {
    fn drop(&mut self) {
        if self.0.command_writes.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.commands_stored.notify_waiters();
        }
    }
}

impl Station {
    /// A station with the runtime record loaded at connect.
    pub fn new(id: String, version: Version, runtime: StationRuntime) -> Self {
        Station {
            id,
            version,
            runtime: Mutex::new(runtime),
            provisioned: AtomicBool::new(false),
            command_writes: AtomicUsize::new(0),
            commands_stored: tokio::sync::Notify::new(),
        }
    }

    /// Notes, before the station's next message is handled, that a
    /// command it answered is being stored, until the returned guard is
    /// dropped.
    pub fn command_write(self: &Arc<Self>) -> CommandWrite {
        self.command_writes.fetch_add(1, Ordering::AcqRel);
        CommandWrite(self.clone())
    }

    /// Waits, at most [`COMMANDS_STORED_WAIT`], until no answered command
    /// is still being stored: a message right after the answer (a start
    /// after a remote start, a firmware status after UpdateFirmware) would
    /// otherwise read the command as it was before, and its write could
    /// undo the answer.
    pub async fn commands_stored(&self) {
        let settled = async {
            loop {
                let stored = self.commands_stored.notified();
                tokio::pin!(stored);
                // Registered before the count is read: a write landing in
                // between still wakes this waiter.
                stored.as_mut().enable();
                if self.command_writes.load(Ordering::Acquire) == 0 {
                    return;
                }
                stored.await;
            }
        };
        if tokio::time::timeout(COMMANDS_STORED_WAIT, settled)
            .await
            .is_err()
        {
            tracing::debug!(station = %self.id, "an answered command is still not stored; looking anyway");
        }
    }

    /// Notes that the station's registration is provisioned.
    pub fn mark_provisioned(&self) {
        self.provisioned.store(true, Ordering::Relaxed);
    }

    fn is_provisioned(&self) -> bool {
        self.provisioned.load(Ordering::Relaxed)
    }

    /// Changes the in-memory runtime record and returns a copy to store.
    pub fn update_runtime(&self, change: impl FnOnce(&mut StationRuntime)) -> StationRuntime {
        let mut runtime = self.locked_runtime();
        change(&mut runtime);
        runtime.clone()
    }

    /// Reads the in-memory runtime record.
    pub fn runtime<T>(&self, read: impl FnOnce(&StationRuntime) -> T) -> T {
        read(&self.locked_runtime())
    }

    /// Clears the remote start marker set at `accepted_at`; one set since
    /// (a remote start accepted while a start was handled) stays. Stored
    /// with the next write.
    pub fn forget_remote_start(&self, accepted_at: DateTime<Utc>) {
        let mut runtime = self.locked_runtime();
        if runtime.remote_start_accepted_at == Some(accepted_at) {
            runtime.remote_start_accepted_at = None;
        }
    }

    /// The in-memory runtime record, held (a handler that panicked while
    /// holding it left a record still worth keeping).
    fn locked_runtime(&self) -> std::sync::MutexGuard<'_, StationRuntime> {
        self.runtime
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that a message arrived; kept in memory, stored with the next write.
    pub fn seen(&self, now: DateTime<Utc>) {
        // No copy here: this runs for every message.
        let mut runtime = self.locked_runtime();
        runtime.last_seen = Some(now);
    }
}

/// What a BootNotification was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootVerdict {
    /// Provisioned: the station may operate.
    Accepted,
    /// Settings or certificates are still to be applied first.
    Pending,
}

/// What a BootNotification came to, for the actor.
#[derive(Debug, Clone, PartialEq)]
pub struct Booted {
    /// What the station was answered.
    pub verdict: BootVerdict,
    /// Its pending commands as the handler read them to decide: the actor
    /// takes them without reading the outbox a second time.
    pub outbox: Vec<crate::store::CommandRecord>,
}

/// A handler's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The CALLRESULT payload.
    pub response: Value,
    /// Set for BootNotification: what the actor must do next.
    pub boot: Option<Booted>,
    /// A stored command to send once the answer is out (CertificateSigned).
    pub command: Option<crate::store::CommandRecord>,
}

impl Handled {
    fn reply(response: Value) -> Self {
        Handled {
            response,
            boot: None,
            command: None,
        }
    }
}

/// A handler failure, as the CALLERROR to send.
pub type Failure = (ErrorCode, String);

fn internal(e: StoreError) -> Failure {
    tracing::error!(error = %e, "store call failed while handling a station message");
    (ErrorCode::Internal, "internal error".to_owned())
}

/// Handles one station CALL that the session admitted and schema-checked.
pub async fn handle(
    env: Arc<Env>,
    station: Arc<Station>,
    action: String,
    payload: Value,
    now: DateTime<Utc>,
) -> Result<Handled, Failure> {
    station.seen(now);
    let result = match station.version {
        Version::V16 => v16::handle(&env, &station, &action, &payload, now).await,
        Version::V201 => v201::handle(&env, &station, &action, &payload, now).await,
    };
    result.map_err(|e| match e {
        HandlerError::Store(e) => internal(e),
        HandlerError::Refused(code, why) => (code, why),
    })
}

/// The answer to a CALL that needs no store, given without a future: a
/// Heartbeat (the same in 1.6 and 2.0.1). `None` for every other action,
/// which goes through [`handle`].
pub fn answer_at_once(station: &Station, action: &str, now: DateTime<Utc>) -> Option<Handled> {
    if action != "Heartbeat" {
        return None;
    }
    station.seen(now);
    Some(heartbeat(now))
}

/// The answer to a Heartbeat: the CSMS's time.
pub(crate) fn heartbeat(now: DateTime<Utc>) -> Handled {
    Handled::reply(serde_json::json!({"currentTime": timestamp(now)}))
}

/// Why a handler could not answer with a CALLRESULT.
#[derive(Debug)]
pub(crate) enum HandlerError {
    /// The store failed: InternalError.
    Store(StoreError),
    /// The payload passed the schema but breaks a rule of the protocol.
    Refused(ErrorCode, String),
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        HandlerError::Store(e)
    }
}

pub(crate) type HandlerResult = Result<Handled, HandlerError>;

/// RFC 3339 UTC with seconds, as OCPP timestamps are written.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads an OCPP timestamp; `fallback` when absent or unreadable.
pub(crate) fn parse_time(value: &Value, fallback: DateTime<Utc>) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(fallback)
}

/// An optional string field.
pub(crate) fn opt_str(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// The answer to BootNotification (the same shape in 1.6 and 2.0.1): stores
/// what the station said and decides whether it may operate yet.
pub(crate) async fn boot(
    env: &Env,
    station: &Station,
    info: BootInfo,
    now: DateTime<Utc>,
) -> HandlerResult {
    let outbox = env.store.outbox(&station.id).await?;
    let verdict = if crate::station::outbox::holds_boot(&outbox) {
        BootVerdict::Pending
    } else {
        BootVerdict::Accepted
    };
    if verdict == BootVerdict::Accepted && !station.is_provisioned() {
        let registered = env.store.station(&station.id).await?;
        if let Some(registered) = registered {
            if registered.provisioning == Provisioning::Pending {
                env.store
                    .set_provisioning(&station.id, Provisioning::Provisioned, now)
                    .await?;
            }
            station.mark_provisioned();
        }
    }
    let runtime = station.update_runtime(|r| {
        r.ocpp_version = Some(station.version);
        r.boot = Some(info);
        r.last_boot = Some(now);
    });
    env.store.set_runtime(&station.id, runtime).await?;
    let (status, interval) = match verdict {
        BootVerdict::Accepted => ("Accepted", env.heartbeat_interval_secs),
        BootVerdict::Pending => ("Pending", env.pending_boot_interval_secs),
    };
    Ok(Handled {
        response: serde_json::json!({"status": status, "currentTime": timestamp(now), "interval": interval}),
        boot: Some(Booted { verdict, outbox }),
        command: None,
    })
}

/// SecurityEventNotification (the same fields in 1.6 and 2.0.1): kept in the
/// runtime record's bounded list.
pub(crate) async fn security_event(
    env: &Env,
    station: &Station,
    p: &Value,
    now: DateTime<Utc>,
) -> HandlerResult {
    let event = SecurityEvent {
        kind: p["type"].as_str().unwrap_or_default().to_owned(),
        timestamp: parse_time(&p["timestamp"], now),
        tech_info: opt_str(&p["techInfo"]),
    };
    store_runtime(env, station, |r| r.push_security_event(event)).await?;
    Ok(Handled::reply(serde_json::json!({})))
}

/// Stores the runtime record after a change.
pub(crate) async fn store_runtime(
    env: &Env,
    station: &Station,
    change: impl FnOnce(&mut StationRuntime),
) -> Result<(), HandlerError> {
    let runtime = station.update_runtime(change);
    env.store.set_runtime(&station.id, runtime).await?;
    Ok(())
}

/// Whether a token may charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenDecision {
    /// Known (or allowed by its issuer) and valid.
    Accepted(Box<Token>),
    /// Known and not valid (revoked or suspended), or blocked by its issuer.
    Blocked,
    /// Expired, says its issuer.
    Expired,
    /// No credit, says its issuer.
    NoCredit,
    /// Not allowed here or now, says its issuer.
    NotAllowed,
    /// Not known.
    Unknown,
}

/// Decides on a token. With `asking_at` (the station where it is
/// presented, for an authorization), the issuer is asked in real time when
/// the token's whitelist says so (ALLOWED, NEVER) or the token is not
/// known here; without an answer in time the local rules decide (a NEVER
/// token is then not accepted). Otherwise (a transaction already running)
/// the token store decides alone.
pub(crate) async fn decide_token(
    env: &Env,
    id_token: &str,
    asking_at: Option<&str>,
) -> Result<TokenDecision, HandlerError> {
    use crate::station::remote_auth::RemoteVerdict;
    use crate::store::CacheMode;
    let local = env.store.token(id_token).await?;
    let must_ask = local
        .as_ref()
        .is_none_or(|t| matches!(t.cache_mode, CacheMode::Allowed | CacheMode::Never));
    if let (Some(station), Some(remote), true) = (asking_at, &env.remote_auth, must_ask) {
        if let Some(verdict) = remote.authorize(local.as_ref(), id_token, station).await {
            return Ok(match verdict {
                RemoteVerdict::Allowed(described) => {
                    match described.map(|t| *t).or_else(|| local.clone()) {
                        Some(token) => TokenDecision::Accepted(Box::new(token)),
                        None => TokenDecision::Accepted(Box::new(Token::unknown(id_token))),
                    }
                }
                RemoteVerdict::Blocked => TokenDecision::Blocked,
                RemoteVerdict::Expired => TokenDecision::Expired,
                RemoteVerdict::NoCredit => TokenDecision::NoCredit,
                RemoteVerdict::NotAllowed => TokenDecision::NotAllowed,
            });
        }
        if local
            .as_ref()
            .is_some_and(|t| t.cache_mode == CacheMode::Never)
        {
            return Ok(TokenDecision::Unknown);
        }
    }
    Ok(match local {
        Some(token) if token.valid => TokenDecision::Accepted(Box::new(token)),
        Some(_) => TokenDecision::Blocked,
        None => TokenDecision::Unknown,
    })
}

/// OCPP `MeterValue[]` to records. The versions differ only in how a sampled
/// value's number and unit are written: `sample` reads those, and samples it
/// cannot read (e.g. 1.6 signed data) are left out.
pub(crate) fn meter_values(
    list: &Value,
    now: DateTime<Utc>,
    sample: impl Fn(&Value) -> Option<(f64, Option<String>)>,
) -> Vec<MeterValue> {
    let Some(list) = list.as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|mv| MeterValue {
            seq_no: 0,
            timestamp: parse_time(&mv["timestamp"], now),
            sampled_values: mv["sampledValue"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|sv| {
                    let (value, unit) = sample(sv)?;
                    Some(SampledValue {
                        value,
                        measurand: opt_str(&sv["measurand"]),
                        phase: opt_str(&sv["phase"]),
                        unit,
                        context: opt_str(&sv["context"]),
                        location: opt_str(&sv["location"]),
                    })
                })
                .collect(),
        })
        .collect()
}
