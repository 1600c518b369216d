//! OCPI push queues on redb: (partner, seq) → push, and (partner, object)
//! → the seq of the object's pending push, both changed in one
//! transaction. A seq is one more than the partner's last.

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{backend, decode, encode, RedbStore};
use crate::store::{OcpiPush, OcpiPushStore, StoreResult};

type Bytes = &'static [u8];
/// (partner id, seq) → push.
pub(crate) const OCPI_PUSHES: TableDefinition<(&str, u64), Bytes> =
    TableDefinition::new("ocpi_pushes");
/// (partner id, object) → seq of its latest pending push.
pub(crate) const OCPI_PUSH_OBJECTS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("ocpi_push_objects");

fn remove(txn: &WriteTransaction, partner: &str, seq: u64) -> StoreResult<()> {
    let mut pushes = txn.open_table(OCPI_PUSHES).map_err(backend)?;
    let Some(old) = pushes.remove((partner, seq)).map_err(backend)? else {
        return Ok(());
    };
    let old: OcpiPush = decode(old.value())?;
    let mut objects = txn.open_table(OCPI_PUSH_OBJECTS).map_err(backend)?;
    let current = objects
        .get((partner, old.object.as_str()))
        .map_err(backend)?
        .map(|v| v.value());
    if current == Some(seq) {
        objects
            .remove((partner, old.object.as_str()))
            .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl OcpiPushStore for RedbStore {
    async fn enqueue_push(
        &self,
        partner_id: &str,
        push: OcpiPush,
        coalesce: bool,
    ) -> StoreResult<Option<u64>> {
        let partner = partner_id.to_owned();
        self.write("enqueue_push", move |txn| {
            let pending = {
                let objects = txn.open_table(OCPI_PUSH_OBJECTS).map_err(backend)?;
                let seq = objects
                    .get((partner.as_str(), push.object.as_str()))
                    .map_err(backend)?
                    .map(|v| v.value());
                seq
            };
            if coalesce {
                match pending {
                    Some(seq) => remove(txn, &partner, seq)?,
                    None => return Ok(None),
                }
            }
            let mut pushes = txn.open_table(OCPI_PUSHES).map_err(backend)?;
            let last = pushes
                .range((partner.as_str(), 0)..=(partner.as_str(), u64::MAX))
                .map_err(backend)?
                .next_back()
                .transpose()
                .map_err(backend)?
                .map(|(key, _)| key.value().1);
            let seq = last.map_or(1, |s| s + 1);
            let stored = OcpiPush { seq, ..push };
            let bytes = encode(&stored)?;
            pushes
                .insert((partner.as_str(), seq), bytes.as_slice())
                .map_err(backend)?;
            let mut objects = txn.open_table(OCPI_PUSH_OBJECTS).map_err(backend)?;
            objects
                .insert((partner.as_str(), stored.object.as_str()), seq)
                .map_err(backend)?;
            Ok(Some(seq))
        })
        .await
    }

    async fn pending_pushes(&self, partner_id: &str, limit: u32) -> StoreResult<Vec<OcpiPush>> {
        let partner = partner_id.to_owned();
        self.read("pending_pushes", move |txn| {
            let pushes = txn.open_table(OCPI_PUSHES).map_err(backend)?;
            let mut out = Vec::new();
            for entry in pushes
                .range((partner.as_str(), 0)..=(partner.as_str(), u64::MAX))
                .map_err(backend)?
                .take(limit as usize)
            {
                let (_, value) = entry.map_err(backend)?;
                out.push(decode(value.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn remove_push(&self, partner_id: &str, seq: u64) -> StoreResult<()> {
        let partner = partner_id.to_owned();
        self.write("remove_push", move |txn| remove(txn, &partner, seq))
            .await
    }

    async fn count_pushes(&self, partner_id: &str) -> StoreResult<u64> {
        let partner = partner_id.to_owned();
        self.read("count_pushes", move |txn| {
            let pushes = txn.open_table(OCPI_PUSHES).map_err(backend)?;
            let mut count = 0;
            for entry in pushes
                .range((partner.as_str(), 0)..=(partner.as_str(), u64::MAX))
                .map_err(backend)?
            {
                entry.map_err(backend)?;
                count += 1;
            }
            Ok(count)
        })
        .await
    }

    async fn clear_pushes(&self, partner_id: &str) -> StoreResult<()> {
        let partner = partner_id.to_owned();
        self.write("clear_pushes", move |txn| {
            let mut pushes = txn.open_table(OCPI_PUSHES).map_err(backend)?;
            pushes
                .retain_in(
                    (partner.as_str(), 0)..=(partner.as_str(), u64::MAX),
                    |_, _| false,
                )
                .map_err(backend)?;
            let mut objects = txn.open_table(OCPI_PUSH_OBJECTS).map_err(backend)?;
            objects
                .retain_in(
                    (partner.as_str(), "")..=(partner.as_str(), "\u{10ffff}"),
                    |_, _| false,
                )
                .map_err(backend)?;
            Ok(())
        })
        .await
    }
}
