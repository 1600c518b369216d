//! [`CommandStore`] on ScyllaDB: `station_commands` holds each record as
//! JSON, clustered by command id (time order) in the station's partition;
//! `station_outbox` lists the pending ones. A record and its outbox entry
//! change together in one logged batch.

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};

use super::pages::Pages;
use super::{from_json, to_json, ScyllaStore, BACKEND};
use crate::store::{
    timed, BatchRecord, CommandFilter, CommandRecord, CommandStore, Page, StoreError, StoreResult,
};

/// Commands of a batch written at once (each its own logged batch).
const BATCH_WRITES_IN_FLIGHT: usize = 64;

/// The key of a command in `known_commands`.
pub(super) fn command_key(station: &str, id: &str) -> String {
    format!("{station}\u{0}{id}")
}

impl ScyllaStore {
    /// Fails with `NotFound` unless the command is stored. Commands are
    /// never removed, so one this node wrote or saw needs no read: a status
    /// change then costs one round trip, not two.
    async fn ensure_command_exists(&self, station: &str, id: &str) -> StoreResult<()> {
        let stored = async {
            let row = self
                .row::<(String,)>(&self.statements.command_get, (station, id))
                .await?;
            Ok(row.is_some())
        };
        self.known_commands
            .confirm(
                command_key(station, id),
                stored,
                StoreError::NotFound("command"),
            )
            .await
    }
}

#[async_trait]
impl CommandStore for ScyllaStore {
    async fn create_command(&self, command: CommandRecord) -> StoreResult<()> {
        self.call("create_command", async {
            self.ensure_registered(&command.station_id).await?;
            let (station, id) = (command.station_id.as_str(), command.id.as_str());
            let record = to_json(&command)?;
            if command.status.is_final() {
                self.execute(&self.statements.command_put, (station, id, record))
                    .await?;
            } else {
                self.batch(
                    &self.statements.command_open,
                    ((station, id, record), (station, id)),
                )
                .await?;
            }
            self.known_commands.learn(command_key(station, id));
            Ok(())
        })
        .await
    }

    async fn command(&self, station_id: &str, id: &str) -> StoreResult<Option<CommandRecord>> {
        self.call("command", async {
            self.row::<(String,)>(&self.statements.command_get, (station_id, id))
                .await?
                .map(|(record,)| from_json(&record))
                .transpose()
        })
        .await
    }

    async fn list_commands(
        &self,
        station_id: &str,
        filter: CommandFilter,
        page: Page,
    ) -> StoreResult<Vec<CommandRecord>> {
        self.call("list_commands", async {
            let wanted = page.offset.saturating_add(u64::from(page.limit));
            let mut rows: Pages<(String,)> = match page.after.as_deref() {
                Some(after) => Pages::new(
                    &self.statements.commands_before,
                    &(station_id, after),
                    wanted,
                )?,
                None => Pages::new(&self.statements.commands_newest, &(station_id,), wanted)?,
            };
            let mut out = Vec::new();
            let mut skipped = 0u64;
            while out.len() < page.limit as usize {
                let Some((record,)) = rows.next(self).await? else {
                    break;
                };
                let record: CommandRecord = from_json(&record)?;
                if !filter.admits(&record) {
                    continue;
                }
                if skipped < page.offset {
                    skipped += 1;
                    continue;
                }
                out.push(record);
            }
            Ok(out)
        })
        .await
    }

    async fn update_command(&self, command: &CommandRecord) -> StoreResult<()> {
        self.call("update_command", async {
            let (station, id) = (command.station_id.as_str(), command.id.as_str());
            self.ensure_command_exists(station, id).await?;
            let record = to_json(command)?;
            let batch = if command.status.is_final() {
                &self.statements.command_settle
            } else {
                &self.statements.command_open
            };
            self.batch(batch, ((station, id, record), (station, id)))
                .await
        })
        .await
    }

    async fn outbox(&self, station_id: &str) -> StoreResult<Vec<CommandRecord>> {
        self.call("outbox", async {
            let ids = self
                .rows::<(String,)>(&self.statements.outbox_of, (station_id,))
                .await?;
            let mut out = Vec::with_capacity(ids.len());
            for (id,) in ids {
                // An entry whose record is gone (never in practice) is skipped.
                if let Some((record,)) = self
                    .row::<(String,)>(&self.statements.command_get, (station_id, id.as_str()))
                    .await?
                {
                    out.push(from_json(&record)?);
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
        // Not bounded by the call budget as a whole: a batch of 100,000 is
        // many requests, each bounded by the request timeout.
        timed(BACKEND, "create_batch", async {
            self.execute(
                &self.statements.batch_put,
                (batch.batch_id.as_str(), to_json(&batch)?),
            )
            .await?;
            let batch_id = batch.batch_id.as_str();
            let writes = commands.into_iter().map(|command| async move {
                let (station, id) = (command.station_id.as_str(), command.id.as_str());
                self.batch(
                    &self.statements.command_in_batch,
                    (
                        (station, id, to_json(&command)?),
                        (station, id),
                        (batch_id, station, id),
                    ),
                )
                .await?;
                self.known_commands.learn(command_key(station, id));
                Ok::<(), StoreError>(())
            });
            futures_util::stream::iter(writes)
                .buffer_unordered(BATCH_WRITES_IN_FLIGHT)
                .try_collect::<Vec<()>>()
                .await?;
            Ok(())
        })
        .await
    }

    async fn batch(&self, batch_id: &str) -> StoreResult<Option<BatchRecord>> {
        self.call("batch", async {
            self.row::<(String,)>(&self.statements.batch_get, (batch_id,))
                .await?
                .map(|(record,)| from_json(&record))
                .transpose()
        })
        .await
    }

    async fn batch_commands(&self, batch_id: &str, page: Page) -> StoreResult<Vec<CommandRecord>> {
        self.call("batch_commands", async {
            let wanted = page.offset.saturating_add(u64::from(page.limit));
            let mut members: Pages<(String, String)> = match page.after.as_deref() {
                Some(after) => Pages::new(
                    &self.statements.batch_members_after,
                    &(batch_id, after),
                    wanted,
                )?,
                None => Pages::new(&self.statements.batch_members_of, &(batch_id,), wanted)?,
            };
            let mut out = Vec::new();
            let mut skipped = 0u64;
            while out.len() < page.limit as usize {
                let Some((station, command_id)) = members.next(self).await? else {
                    break;
                };
                if skipped < page.offset {
                    skipped += 1;
                    continue;
                }
                if let Some((record,)) = self
                    .row::<(String,)>(
                        &self.statements.command_get,
                        (station.as_str(), command_id.as_str()),
                    )
                    .await?
                {
                    out.push(from_json(&record)?);
                }
            }
            Ok(out)
        })
        .await
    }
}
