//! Converts the per-kind work queues of older redb files (settings,
//! certificates to install, triggers, charging profiles) into commands, in
//! the transaction that opens the file, and deletes their tables: a file
//! written by an older release opens with its queued work intact.

use std::collections::BTreeMap;

use chrono::Utc;
use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::de::DeserializeOwned;

use super::{backend, decode, encode, Bytes, COMMANDS, OUTBOX};
use crate::store::legacy_work::LegacyWork;
use crate::store::StoreResult;

const SETTINGS: TableDefinition<(&str, &str), Bytes> = TableDefinition::new("station_settings");
const INSTALL_CERTIFICATES: TableDefinition<(&str, &str), Bytes> =
    TableDefinition::new("station_install_certificates");
const TRIGGERS: TableDefinition<(&str, u64), Bytes> = TableDefinition::new("station_triggers");
const CHARGING_PROFILES: TableDefinition<(&str, i64), Bytes> =
    TableDefinition::new("station_charging_profiles");

/// Every row of an old queue table, by station, in key order; the table is
/// deleted afterwards.
fn drain<K, T>(
    txn: &WriteTransaction,
    table: TableDefinition<'static, (&'static str, K), Bytes>,
    into: &mut BTreeMap<String, LegacyWork>,
    keep: impl Fn(&mut LegacyWork, T),
) -> StoreResult<()>
where
    K: redb::Key + 'static,
    T: DeserializeOwned,
{
    let exists = txn
        .list_tables()
        .map_err(backend)?
        .any(|handle| handle.name() == table.name());
    if !exists {
        return Ok(());
    }
    {
        let rows = txn.open_table(table).map_err(backend)?;
        for entry in rows.iter().map_err(backend)? {
            let (key, value) = entry.map_err(backend)?;
            let station = key.value().0.to_owned();
            keep(into.entry(station).or_default(), decode(value.value())?);
        }
    }
    txn.delete_table(table).map_err(backend)?;
    Ok(())
}

/// Converts whatever old queues the file holds; answers how many commands
/// were written.
pub(super) fn convert(txn: &WriteTransaction) -> StoreResult<usize> {
    let mut work: BTreeMap<String, LegacyWork> = BTreeMap::new();
    drain(txn, SETTINGS, &mut work, |w, s| w.settings.push(s))?;
    drain(txn, INSTALL_CERTIFICATES, &mut work, |w, c| {
        w.certificates.push(c)
    })?;
    drain(txn, TRIGGERS, &mut work, |w, t| w.triggers.push(t))?;
    drain(txn, CHARGING_PROFILES, &mut work, |w, p| {
        w.charging_profiles.push(p)
    })?;
    let now = Utc::now();
    let mut written = 0;
    let mut commands = txn.open_table(COMMANDS).map_err(backend)?;
    let mut outbox = txn.open_table(OUTBOX).map_err(backend)?;
    for (station, queued) in work {
        for command in queued.into_commands(&station, now) {
            let key = (command.station_id.as_str(), command.id.as_str());
            commands
                .insert(key, encode(&command)?.as_slice())
                .map_err(backend)?;
            if !command.status.is_final() {
                outbox.insert(key, 0u8).map_err(backend)?;
            }
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redb::RedbStore;
    use crate::store::{CommandFilter, CommandStatus, CommandStore, Page};
    use serde_json::json;

    #[tokio::test]
    async fn a_file_with_old_queues_opens_with_them_as_commands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::store::redb::FILE_NAME);
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut settings = txn.open_table(SETTINGS).unwrap();
                let row = json!({"key": "HeartbeatInterval", "value": "60",
                    "delivery": {"status": "Pending", "updatedAt": "2026-11-30T10:00:00Z"}});
                let bytes = serde_json::to_vec(&row).unwrap();
                settings
                    .insert(("CS1", "HeartbeatInterval"), bytes.as_slice())
                    .unwrap();
                let mut triggers = txn.open_table(TRIGGERS).unwrap();
                let row = json!({"seq": 1, "trigger": "BootNotification",
                    "delivery": {"status": "Accepted", "updatedAt": "2026-11-30T10:00:01Z"}});
                let bytes = serde_json::to_vec(&row).unwrap();
                triggers.insert(("CS1", 1), bytes.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = RedbStore::open(dir.path()).unwrap();
        let outbox = store.outbox("CS1").await.unwrap();
        assert_eq!(outbox.len(), 1, "{outbox:?}");
        assert_eq!(outbox[0].operation, "reconfigure");
        assert_eq!(outbox[0].payload["key"], "HeartbeatInterval");
        let all = store
            .list_commands("CS1", CommandFilter::default(), Page::new(0, 10))
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].status,
            CommandStatus::Accepted,
            "the trigger's outcome is kept"
        );
    }
}
