//! [`VariableStore`] on redb: one row per (station, key).

use async_trait::async_trait;

use super::{backend, encode, owned_page, RedbStore, VARIABLES};
use crate::store::{Page, ReportedVariable, StoreResult, VariableStore};

#[async_trait]
impl VariableStore for RedbStore {
    async fn put_variables(
        &self,
        station_id: &str,
        variables: Vec<ReportedVariable>,
    ) -> StoreResult<()> {
        let station_id = station_id.to_owned();
        let encoded = variables
            .iter()
            .map(|variable| Ok((variable.key.clone(), encode(variable)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.write("put_variables", move |txn| {
            let mut table = txn.open_table(VARIABLES).map_err(backend)?;
            for (key, bytes) in &encoded {
                table
                    .insert((station_id.as_str(), key.as_str()), bytes.as_slice())
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn variables(&self, station_id: &str, page: Page) -> StoreResult<Vec<ReportedVariable>> {
        let station_id = station_id.to_owned();
        self.read("variables", move |txn| {
            owned_page(txn, VARIABLES, &station_id, &page)
        })
        .await
    }
}
