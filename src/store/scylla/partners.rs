//! OCPI partners on ScyllaDB: every partner in one small partition (they
//! are tens, read whole), and an index from the hash of the token each
//! partner sends. The index row is written before the record and a
//! replaced one removed after it; a lookup checks the record's hash, so a
//! row left behind by a crash in between finds nothing.
//!
//! A keyspace of model 4 or older kept parties in `ocpi_parties`: they are
//! converted into partners at start and the table dropped (read whole: an
//! upgrade, once, of a table of a few rows).

use async_trait::async_trait;
use scylla::value::CqlTimestamp;

use super::cache::read_through;
use super::schema::table_exists;
use super::{from_json, parse_name, time, to_json, ScyllaStore};
use crate::store::{OcpiPartner, OcpiPartnerStore, OcpiParty, StoreError, StoreResult};

/// The partition every partner lives in.
const SCOPE: &str = "partners";

impl ScyllaStore {
    async fn find_partner(&self, id: &str) -> StoreResult<Option<OcpiPartner>> {
        self.row::<(String,)>(&self.statements.partner_get, (SCOPE, id))
            .await?
            .map(|(record,)| from_json(&record))
            .transpose()
    }

    /// Converts the rows of the older `ocpi_parties` table, then drops it.
    pub(super) async fn convert_parties(&self) -> StoreResult<usize> {
        let failed = |e: &dyn std::fmt::Display| {
            StoreError::Backend(format!("converting ocpi_parties: {e}"))
        };
        if !table_exists(&self.session, &self.keyspace, "ocpi_parties").await? {
            return Ok(0);
        }
        let rows = self
            .session
            .query_unpaged(
                "SELECT credentials_token, url, status, registered_at FROM ocpi_parties",
                (),
            )
            .await
            .map_err(|e| failed(&e))?
            .into_rows_result()
            .map_err(|e| failed(&e))?;
        let mut converted = 0;
        for row in rows
            .rows::<(String, Option<String>, String, CqlTimestamp)>()
            .map_err(|e| failed(&e))?
        {
            let (token, url, status, registered_at) = row.map_err(|e| failed(&e))?;
            let party = OcpiParty {
                token,
                url,
                status: parse_name(status)?,
                registered_at: time(registered_at)?,
            };
            self.put_partner(OcpiPartner::from(party)).await?;
            converted += 1;
        }
        self.session
            .query_unpaged("DROP TABLE IF EXISTS ocpi_parties", ())
            .await
            .map_err(|e| failed(&e))?;
        Ok(converted)
    }
}

#[async_trait]
impl OcpiPartnerStore for ScyllaStore {
    async fn put_partner(&self, partner: OcpiPartner) -> StoreResult<()> {
        let written = self.call("put_partner", self.write_partner(&partner)).await;
        self.partners.forget(&());
        written
    }

    async fn partner(&self, id: &str) -> StoreResult<Option<OcpiPartner>> {
        self.call("partner", self.find_partner(id)).await
    }

    async fn partner_by_token(&self, token_hash: &str) -> StoreResult<Option<OcpiPartner>> {
        self.call("partner_by_token", async {
            let Some((id,)) = self
                .row::<(String,)>(&self.statements.partner_token_get, (token_hash,))
                .await?
            else {
                return Ok(None);
            };
            let partner = self.find_partner(&id).await?;
            Ok(partner.filter(|p| p.token_hash.as_deref() == Some(token_hash)))
        })
        .await
    }

    async fn list_partners(&self) -> StoreResult<Vec<OcpiPartner>> {
        let read = async {
            self.rows::<(String,)>(&self.statements.partner_list, (SCOPE,))
                .await?
                .into_iter()
                .map(|(record,)| from_json(&record))
                .collect()
        };
        self.call("list_partners", read_through(&self.partners, (), read))
            .await
    }

    async fn delete_partner(&self, id: &str) -> StoreResult<bool> {
        let deleted = self.call("delete_partner", self.remove_partner(id)).await;
        self.partners.forget(&());
        deleted
    }
}

impl ScyllaStore {
    async fn write_partner(&self, partner: &OcpiPartner) -> StoreResult<()> {
        let old = self.find_partner(&partner.id).await?;
        if let Some(hash) = &partner.token_hash {
            self.execute(
                &self.statements.partner_token_put,
                (hash.as_str(), partner.id.as_str()),
            )
            .await?;
        }
        let record = to_json(&partner)?;
        self.execute(
            &self.statements.partner_put,
            (SCOPE, partner.id.as_str(), record),
        )
        .await?;
        if let Some(old_hash) = old.and_then(|o| o.token_hash) {
            if partner.token_hash.as_ref() != Some(&old_hash) {
                self.execute(&self.statements.partner_token_delete, (old_hash,))
                    .await?;
            }
        }
        Ok(())
    }

    async fn remove_partner(&self, id: &str) -> StoreResult<bool> {
        let Some(old) = self.find_partner(id).await? else {
            return Ok(false);
        };
        self.execute(&self.statements.partner_delete, (SCOPE, id))
            .await?;
        if let Some(hash) = old.token_hash {
            self.execute(&self.statements.partner_token_delete, (hash,))
                .await?;
        }
        Ok(true)
    }
}
