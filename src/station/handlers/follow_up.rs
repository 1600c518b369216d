//! Station messages that report on an earlier command: firmware and log
//! status notifications become the command's progress, and the transaction
//! a remote start caused is linked to it.
//!
//! The command is found among the station's recent commands of the action
//! that asked: by `requestId` when the message carries one (2.0.1, and the
//! 1.6 security extension), else the newest one the station accepted. A
//! failure here is logged and never fails the station's message: its
//! CALLRESULT does not depend on the link.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Env, Station};
use crate::store::{CommandFilter, CommandRecord, CommandStatus, Page, StoreResult};

/// How far back a follow-up looks, in commands of one action.
const RECENT: u32 = 50;
/// How far back a remote start is looked for, in commands of any action.
const RECENT_ANY: u32 = 100;

/// The station's newest command of one of `actions` that `matches`.
async fn find(
    env: &Env,
    station: &Station,
    actions: &[&str],
    matches: impl Fn(&CommandRecord) -> bool,
) -> StoreResult<Option<CommandRecord>> {
    let mut best: Option<CommandRecord> = None;
    for action in actions {
        let filter = CommandFilter {
            status: None,
            action: Some((*action).to_owned()),
        };
        let recent = env
            .store
            .list_commands(&station.id, filter, Page::new(0, RECENT))
            .await?;
        if let Some(found) = recent.into_iter().find(|c| matches(c)) {
            if best.as_ref().is_none_or(|b| found.id > b.id) {
                best = Some(found);
            }
        }
    }
    Ok(best)
}

/// Records `status` as progress of the command that asked for it.
async fn progress(
    env: &Env,
    station: &Station,
    actions: &[&str],
    request_id: Option<i64>,
    status: &str,
    now: DateTime<Utc>,
) {
    // Sent right after the command's answer, the notification must see
    // (and keep) what the answer stored.
    station.commands_stored().await;
    let found = find(env, station, actions, |c| match request_id {
        Some(id) => c.payload["requestId"].as_i64() == Some(id),
        None => c.status == CommandStatus::Accepted,
    })
    .await;
    let result = match found {
        Ok(Some(mut command)) => {
            command.report_progress(status.to_owned(), now);
            env.store.update_command(&command).await
        }
        Ok(None) => {
            tracing::debug!(station = %station.id, status, "a status notification for no known command");
            Ok(())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, station = %station.id, "cannot record a command's progress");
    }
}

/// Links the transaction `transaction_id` to the newest remote start of
/// `action` the station accepted that `matches` and has no transaction
/// yet; with `accepted_since`, only one accepted (its status last changed)
/// since then: a remote start the station never acted on stays Accepted
/// for good, and must neither be linked to a much later start nor count
/// as waiting. Whether another accepted remote start of `action` is still
/// without one, as far as the read could tell (true when it failed).
pub(super) async fn remote_start(
    env: &Env,
    station: &Station,
    action: &str,
    transaction_id: &str,
    accepted_since: Option<DateTime<Utc>>,
    matches: impl Fn(&Value) -> bool,
) -> bool {
    // A start sent right after the acceptance: the command may still be on
    // its way to the store as Accepted.
    station.commands_stored().await;
    // A bounded read of the station's newest commands, whatever their
    // action (a remote start is answered within seconds and expires within
    // minutes, so it is recent).
    let recent = env
        .store
        .list_commands(
            &station.id,
            CommandFilter::default(),
            Page::new(0, RECENT_ANY),
        )
        .await;
    let open = |c: &CommandRecord| {
        c.action == action
            && c.transaction_id.is_none()
            && c.status == CommandStatus::Accepted
            && accepted_since.is_none_or(|since| c.updated_at >= since)
    };
    let (found, others_open) = match recent {
        Ok(commands) => {
            let found = commands.iter().position(|c| open(c) && matches(&c.payload));
            let others_open = commands
                .iter()
                .enumerate()
                .any(|(i, c)| Some(i) != found && open(c));
            (Ok(found.map(|i| commands[i].clone())), others_open)
        }
        Err(e) => (Err(e), true),
    };
    let result = match found {
        Ok(Some(mut command)) => {
            command.transaction_id = Some(transaction_id.to_owned());
            env.store.update_command(&command).await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => others_open,
        Err(e) => {
            tracing::warn!(error = %e, station = %station.id, "cannot link a transaction to its remote start");
            true
        }
    }
}

/// A firmware, diagnostics or log status notification `p`: its status is
/// progress of the command of action `asked_by` (by `requestId` when sent).
pub(super) async fn report_progress(
    env: &Env,
    station: &Station,
    asked_by: &str,
    p: &Value,
    now: DateTime<Utc>,
) {
    if let Some(status) = p["status"].as_str() {
        progress(
            env,
            station,
            &[asked_by],
            p["requestId"].as_i64(),
            status,
            now,
        )
        .await;
    }
}
