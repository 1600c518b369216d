//! OCPI partners on redb: the records by registration id and an index from
//! the hash of the token each partner sends, kept in the record's
//! transaction. Parties of the older `ocpi_parties` table are converted
//! when the file is opened.

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{backend, decode, get_one, put_one, RedbStore, OCPI_PARTIES};
use crate::store::{OcpiPartner, OcpiPartnerStore, OcpiParty, StoreResult};

type Bytes = &'static [u8];
/// Registration id → partner record.
pub(crate) const OCPI_PARTNERS: TableDefinition<&str, Bytes> =
    TableDefinition::new("ocpi_partners");
/// Hash of the token a partner sends → its registration id.
pub(crate) const OCPI_PARTNER_TOKENS: TableDefinition<&str, &str> =
    TableDefinition::new("ocpi_partner_tokens");

/// Writes `partner` and moves its token index entry.
fn put(txn: &WriteTransaction, partner: &OcpiPartner) -> StoreResult<()> {
    let old: Option<OcpiPartner> = {
        let table = txn.open_table(OCPI_PARTNERS).map_err(backend)?;
        let value = table.get(partner.id.as_str()).map_err(backend)?;
        value.map(|v| decode(v.value())).transpose()?
    };
    let mut tokens = txn.open_table(OCPI_PARTNER_TOKENS).map_err(backend)?;
    if let Some(old_hash) = old.and_then(|o| o.token_hash) {
        if partner.token_hash.as_ref() != Some(&old_hash) {
            tokens.remove(old_hash.as_str()).map_err(backend)?;
        }
    }
    if let Some(hash) = &partner.token_hash {
        tokens
            .insert(hash.as_str(), partner.id.as_str())
            .map_err(backend)?;
    }
    put_one(txn, OCPI_PARTNERS, &partner.id, partner)
}

/// Converts the parties of the older table into partners (once: the old
/// table is emptied in the same transaction); how many.
pub(crate) fn convert_parties(txn: &WriteTransaction) -> StoreResult<usize> {
    let parties: Vec<OcpiParty> = {
        let table = txn.open_table(OCPI_PARTIES).map_err(backend)?;
        let mut parties = Vec::new();
        for entry in table.iter().map_err(backend)? {
            let (_, value) = entry.map_err(backend)?;
            parties.push(decode(value.value())?);
        }
        parties
    };
    let converted = parties.len();
    for party in parties {
        let token = party.token.clone();
        put(txn, &OcpiPartner::from(party))?;
        let mut table = txn.open_table(OCPI_PARTIES).map_err(backend)?;
        table.remove(token.as_str()).map_err(backend)?;
    }
    Ok(converted)
}

#[async_trait]
impl OcpiPartnerStore for RedbStore {
    async fn put_partner(&self, partner: OcpiPartner) -> StoreResult<()> {
        self.write("put_partner", move |txn| put(txn, &partner))
            .await
    }

    async fn partner(&self, id: &str) -> StoreResult<Option<OcpiPartner>> {
        let id = id.to_owned();
        self.read("partner", move |txn| get_one(txn, OCPI_PARTNERS, &id))
            .await
    }

    async fn partner_by_token(&self, token_hash: &str) -> StoreResult<Option<OcpiPartner>> {
        let hash = token_hash.to_owned();
        self.read("partner_by_token", move |txn| {
            let tokens = txn.open_table(OCPI_PARTNER_TOKENS).map_err(backend)?;
            let Some(id) = tokens.get(hash.as_str()).map_err(backend)? else {
                return Ok(None);
            };
            let partner: Option<OcpiPartner> = get_one(txn, OCPI_PARTNERS, id.value())?;
            Ok(partner.filter(|p| p.token_hash.as_deref() == Some(hash.as_str())))
        })
        .await
    }

    async fn list_partners(&self) -> StoreResult<Vec<OcpiPartner>> {
        self.read("list_partners", move |txn| {
            let table = txn.open_table(OCPI_PARTNERS).map_err(backend)?;
            let mut partners = Vec::new();
            for entry in table.iter().map_err(backend)? {
                let (_, value) = entry.map_err(backend)?;
                partners.push(decode(value.value())?);
            }
            Ok(partners)
        })
        .await
    }

    async fn delete_partner(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write("delete_partner", move |txn| {
            let mut table = txn.open_table(OCPI_PARTNERS).map_err(backend)?;
            let Some(old) = table.remove(id.as_str()).map_err(backend)? else {
                return Ok(false);
            };
            let old: OcpiPartner = decode(old.value())?;
            if let Some(hash) = old.token_hash {
                let mut tokens = txn.open_table(OCPI_PARTNER_TOKENS).map_err(backend)?;
                tokens.remove(hash.as_str()).map_err(backend)?;
            }
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::{partner_id_for, token_hash, OcpiRegistrationStatus};

    #[tokio::test]
    async fn parties_of_an_older_file_become_partners() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = redb::Database::create(dir.path().join(super::super::FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(OCPI_PARTIES).unwrap();
                let party = OcpiParty {
                    token: "tok-b".into(),
                    url: None,
                    status: OcpiRegistrationStatus::Registered,
                    registered_at: Utc::now(),
                };
                let bytes = serde_json::to_vec(&party).unwrap();
                table.insert("tok-b", bytes.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = RedbStore::open(dir.path()).unwrap();
        let partner = store
            .partner_by_token(&token_hash("tok-b"))
            .await
            .unwrap()
            .expect("converted and found by its token");
        assert_eq!(partner.id, partner_id_for("tok-b"));
        assert_eq!(partner.status, OcpiRegistrationStatus::Registered);
        assert_eq!(store.list_partners().await.unwrap().len(), 1);
        crate::store::Store::close(&store).await;
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(
            store.list_partners().await.unwrap().len(),
            1,
            "converted once"
        );
    }
}
