//! [`CommandStore`] on redb: one row per (station, command id) holding the
//! record, and an outbox row per pending command. Command ids sort by time,
//! so a station's newest commands are the end of its key range.

use std::ops::Bound;

use async_trait::async_trait;
use redb::ReadableTable;

use super::stations::station_exists;
use super::{
    backend, decode, encode, get_one, put_one, RedbStore, BATCHES, BATCH_MEMBERS, COMMANDS, OUTBOX,
};
use crate::store::{
    BatchRecord, CommandFilter, CommandRecord, CommandStore, Page, StoreError, StoreResult,
};

#[async_trait]
impl CommandStore for RedbStore {
    async fn create_command(&self, command: CommandRecord) -> StoreResult<()> {
        // Encoded here: the writer thread, which every write waits for, only writes.
        let bytes = encode(&command)?;
        self.write("create_command", move |txn| {
            station_exists(txn, &command.station_id)?;
            let key = (command.station_id.as_str(), command.id.as_str());
            let mut commands = txn.open_table(COMMANDS).map_err(backend)?;
            commands.insert(key, bytes.as_slice()).map_err(backend)?;
            if !command.status.is_final() {
                let mut outbox = txn.open_table(OUTBOX).map_err(backend)?;
                outbox.insert(key, 0u8).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn create_commands(
        &self,
        station_id: &str,
        commands: &[CommandRecord],
    ) -> StoreResult<()> {
        let station_id = station_id.to_owned();
        let encoded = commands
            .iter()
            .map(|command| {
                Ok((
                    command.id.clone(),
                    encode(command)?,
                    command.status.is_final(),
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // One transaction: all of them or none.
        self.write("create_commands", move |txn| {
            station_exists(txn, &station_id)?;
            let mut table = txn.open_table(COMMANDS).map_err(backend)?;
            let mut outbox = txn.open_table(OUTBOX).map_err(backend)?;
            for (id, bytes, settled) in &encoded {
                let key = (station_id.as_str(), id.as_str());
                table.insert(key, bytes.as_slice()).map_err(backend)?;
                if !settled {
                    outbox.insert(key, 0u8).map_err(backend)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn command(&self, station_id: &str, id: &str) -> StoreResult<Option<CommandRecord>> {
        let (station_id, id) = (station_id.to_owned(), id.to_owned());
        self.read("command", move |txn| {
            let table = txn.open_table(COMMANDS).map_err(backend)?;
            let value = table
                .get((station_id.as_str(), id.as_str()))
                .map_err(backend)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn list_commands(
        &self,
        station_id: &str,
        filter: CommandFilter,
        page: Page,
    ) -> StoreResult<Vec<CommandRecord>> {
        let station_id = station_id.to_owned();
        self.read("list_commands", move |txn| {
            let table = txn.open_table(COMMANDS).map_err(backend)?;
            let station = station_id.as_str();
            let end = match page.after.as_deref() {
                Some(after) => Bound::Excluded((station, after)),
                // Past every id of this station: ids are 28 hex digits.
                None => Bound::Included((station, "~")),
            };
            let rows = table
                .range::<(&str, &str)>((Bound::Included((station, "")), end))
                .map_err(backend)?
                .rev();
            let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
            let mut out = Vec::new();
            let mut skipped = 0usize;
            for entry in rows {
                let (_, value) = entry.map_err(backend)?;
                let record: CommandRecord = decode(value.value())?;
                if !filter.admits(&record) {
                    continue;
                }
                if skipped < offset {
                    skipped += 1;
                    continue;
                }
                out.push(record);
                if out.len() >= page.limit as usize {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn update_command(&self, command: &CommandRecord) -> StoreResult<()> {
        let bytes = encode(command)?;
        let (station_id, id) = (command.station_id.clone(), command.id.clone());
        let settled = command.status.is_final();
        self.write("update_command", move |txn| {
            let key = (station_id.as_str(), id.as_str());
            let mut commands = txn.open_table(COMMANDS).map_err(backend)?;
            if commands.get(key).map_err(backend)?.is_none() {
                return Err(StoreError::NotFound("command"));
            }
            commands.insert(key, bytes.as_slice()).map_err(backend)?;
            let mut outbox = txn.open_table(OUTBOX).map_err(backend)?;
            if settled {
                outbox.remove(key).map_err(backend)?;
            } else {
                outbox.insert(key, 0u8).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn outbox(&self, station_id: &str) -> StoreResult<Vec<CommandRecord>> {
        let station_id = station_id.to_owned();
        self.read_point("outbox", move |txn| {
            let outbox = txn.open_table(OUTBOX).map_err(backend)?;
            let commands = txn.open_table(COMMANDS).map_err(backend)?;
            let station = station_id.as_str();
            let mut out = Vec::new();
            for entry in outbox
                .range::<(&str, &str)>((station, "")..=(station, "~"))
                .map_err(backend)?
            {
                let (key, _) = entry.map_err(backend)?;
                let (_, id) = key.value();
                if let Some(value) = commands.get((station, id)).map_err(backend)? {
                    out.push(decode(value.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn create_batch(
        &self,
        batch: BatchRecord,
        commands: Vec<CommandRecord>,
    ) -> StoreResult<()> {
        // One write job: the whole batch lands in one transaction (one fsync).
        self.write("create_batch", move |txn| {
            put_one(txn, BATCHES, &batch.batch_id, &batch)?;
            let mut table = txn.open_table(COMMANDS).map_err(backend)?;
            let mut outbox = txn.open_table(OUTBOX).map_err(backend)?;
            let mut members = txn.open_table(BATCH_MEMBERS).map_err(backend)?;
            for command in &commands {
                let key = (command.station_id.as_str(), command.id.as_str());
                let bytes = encode(command)?;
                table.insert(key, bytes.as_slice()).map_err(backend)?;
                if !command.status.is_final() {
                    outbox.insert(key, 0u8).map_err(backend)?;
                }
                members
                    .insert(
                        (batch.batch_id.as_str(), command.station_id.as_str()),
                        command.id.as_str(),
                    )
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn batch(&self, batch_id: &str) -> StoreResult<Option<BatchRecord>> {
        let batch_id = batch_id.to_owned();
        self.read("batch", move |txn| get_one(txn, BATCHES, &batch_id))
            .await
    }

    async fn batch_commands(&self, batch_id: &str, page: Page) -> StoreResult<Vec<CommandRecord>> {
        let batch_id = batch_id.to_owned();
        self.read("batch_commands", move |txn| {
            let members = txn.open_table(BATCH_MEMBERS).map_err(backend)?;
            let commands = txn.open_table(COMMANDS).map_err(backend)?;
            let batch = batch_id.as_str();
            let start = match page.after.as_deref() {
                Some(after) => Bound::Excluded((batch, after)),
                None => Bound::Included((batch, "")),
            };
            let rows = members
                .range::<(&str, &str)>((start, Bound::Unbounded))
                .map_err(backend)?
                .take_while(|entry| match entry {
                    Ok((key, _)) => key.value().0 == batch,
                    Err(_) => true,
                });
            let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for entry in rows.skip(offset).take(page.limit as usize) {
                let (key, command_id) = entry.map_err(backend)?;
                let (_, station) = key.value();
                if let Some(value) = commands
                    .get((station, command_id.value()))
                    .map_err(backend)?
                {
                    out.push(decode(value.value())?);
                }
            }
            Ok(out)
        })
        .await
    }
}
