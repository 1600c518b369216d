//! [`VariableStore`] on ScyllaDB: `station_variables`, one JSON record per
//! (station, key), clustered by key.

use async_trait::async_trait;

use super::pages::Pages;
use super::{from_json, to_json, ScyllaStore};
use crate::store::{Page, ReportedVariable, StoreResult, VariableStore};

/// Variables written in one batch.
const VARIABLES_PER_BATCH: usize = 20;

#[async_trait]
impl VariableStore for ScyllaStore {
    async fn put_variables(
        &self,
        station_id: &str,
        variables: Vec<ReportedVariable>,
    ) -> StoreResult<()> {
        self.call("put_variables", async {
            // One partition: unlogged batches, small enough to stay under
            // the cluster's batch size limits (a report part may be large).
            for chunk in variables.chunks(VARIABLES_PER_BATCH) {
                let batch =
                    super::statements::one_partition(&self.statements.variable_put, chunk.len());
                let mut values = Vec::with_capacity(chunk.len());
                for variable in chunk {
                    values.push((station_id, variable.key.as_str(), to_json(variable)?));
                }
                self.batch(&batch, values).await?;
            }
            Ok(())
        })
        .await
    }

    async fn variables(&self, station_id: &str, page: Page) -> StoreResult<Vec<ReportedVariable>> {
        self.call("variables", async {
            let wanted = page.offset.saturating_add(u64::from(page.limit));
            let mut rows: Pages<(String,)> = match page.after.as_deref() {
                Some(after) => Pages::new(
                    &self.statements.variables_after,
                    &(station_id, after),
                    wanted,
                )?,
                None => Pages::new(&self.statements.variables_of, &(station_id,), wanted)?,
            };
            let mut out = Vec::new();
            let mut skipped = 0u64;
            while out.len() < page.limit as usize {
                let Some((record,)) = rows.next(self).await? else {
                    break;
                };
                if skipped < page.offset {
                    skipped += 1;
                    continue;
                }
                out.push(from_json(&record)?);
            }
            Ok(out)
        })
        .await
    }
}
