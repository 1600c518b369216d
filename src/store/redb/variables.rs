//! [`VariableStore`] on redb: one row per (station, key).

use std::ops::Bound;

use async_trait::async_trait;

use super::{backend, decode, encode, RedbStore, VARIABLES};
use crate::store::{Page, ReportedVariable, StoreResult, VariableStore};

#[async_trait]
impl VariableStore for RedbStore {
    async fn put_variables(
        &self,
        station_id: &str,
        variables: Vec<ReportedVariable>,
    ) -> StoreResult<()> {
        let station_id = station_id.to_owned();
        self.write("put_variables", move |txn| {
            let mut table = txn.open_table(VARIABLES).map_err(backend)?;
            for variable in &variables {
                let bytes = encode(variable)?;
                table
                    .insert(
                        (station_id.as_str(), variable.key.as_str()),
                        bytes.as_slice(),
                    )
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn variables(&self, station_id: &str, page: Page) -> StoreResult<Vec<ReportedVariable>> {
        let station_id = station_id.to_owned();
        self.read("variables", move |txn| {
            let table = txn.open_table(VARIABLES).map_err(backend)?;
            let station = station_id.as_str();
            let start = match page.after.as_deref() {
                Some(after) => Bound::Excluded((station, after)),
                None => Bound::Included((station, "")),
            };
            let rows = table
                .range::<(&str, &str)>((start, Bound::Unbounded))
                .map_err(backend)?
                .take_while(|entry| match entry {
                    Ok((key, _)) => key.value().0 == station,
                    Err(_) => true,
                });
            let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for entry in rows.skip(offset).take(page.limit as usize) {
                let (_, value) = entry.map_err(backend)?;
                out.push(decode(value.value())?);
            }
            Ok(out)
        })
        .await
    }
}
