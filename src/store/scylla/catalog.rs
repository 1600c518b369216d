//! Tokens, uploaded certificates and OCPI parties on ScyllaDB:
//! one partition per record, listed through the directory.

use async_trait::async_trait;
use scylla::value::CqlTimestamp;

use super::directory::Kind;
use super::{from_json, name_of, parse_name, time, timestamp, to_json, ScyllaStore};
use crate::store::{
    CertificateStore, OcpiParty, OcpiPartyStore, Page, StoreResult, StoredCertificate, Token,
    TokenStore,
};

impl ScyllaStore {
    async fn find_token(&self, uid: &str) -> StoreResult<Option<Token>> {
        self.row::<(String,)>(&self.statements.token_get, (uid,))
            .await?
            .map(|(record,)| from_json(&record))
            .transpose()
    }

    async fn find_certificate(&self, hash: &str) -> StoreResult<Option<StoredCertificate>> {
        let row = self
            .row::<(String, CqlTimestamp)>(&self.statements.certificate_get, (hash,))
            .await?;
        row.map(|(pem, uploaded_at)| {
            Ok(StoredCertificate {
                hash: hash.to_owned(),
                pem,
                uploaded_at: time(uploaded_at)?,
            })
        })
        .transpose()
    }

    async fn find_party(&self, token: &str) -> StoreResult<Option<OcpiParty>> {
        let row = self
            .row::<(Option<String>, String, CqlTimestamp)>(&self.statements.party_get, (token,))
            .await?;
        row.map(|(url, status, registered_at)| {
            Ok(OcpiParty {
                token: token.to_owned(),
                url,
                status: parse_name(status)?,
                registered_at: time(registered_at)?,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl TokenStore for ScyllaStore {
    async fn put_token(&self, token: Token) -> StoreResult<()> {
        self.call("put_token", async {
            let record = to_json(&token)?;
            self.batch(
                &self.statements.token_put,
                ((token.uid.as_str(), record), Kind::Token.row(&token.uid)),
            )
            .await
        })
        .await
    }

    async fn token(&self, uid: &str) -> StoreResult<Option<Token>> {
        self.call("token", self.find_token(uid)).await
    }

    async fn list_tokens(&self, page: Page) -> StoreResult<Vec<Token>> {
        self.call("list_tokens", async {
            self.list_records(Kind::Token, page, |key| async move {
                self.find_token(&key).await
            })
            .await
        })
        .await
    }

    async fn delete_token(&self, uid: &str) -> StoreResult<bool> {
        self.call("delete_token", async {
            let existed = self.find_token(uid).await?.is_some();
            self.batch(
                &self.statements.token_delete,
                ((uid,), Kind::Token.row(uid)),
            )
            .await?;
            Ok(existed)
        })
        .await
    }
}

#[async_trait]
impl CertificateStore for ScyllaStore {
    async fn put_certificate(&self, certificate: StoredCertificate) -> StoreResult<()> {
        self.call("put_certificate", async {
            self.execute(
                &self.statements.certificate_put,
                (
                    certificate.hash.as_str(),
                    certificate.pem.as_str(),
                    timestamp(certificate.uploaded_at),
                ),
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn certificate(&self, hash: &str) -> StoreResult<Option<StoredCertificate>> {
        self.call("certificate", self.find_certificate(hash)).await
    }

    async fn delete_certificate(&self, hash: &str) -> StoreResult<bool> {
        self.call("delete_certificate", async {
            let existed = self.find_certificate(hash).await?.is_some();
            self.execute(&self.statements.certificate_delete, (hash,))
                .await?;
            Ok(existed)
        })
        .await
    }
}

#[async_trait]
impl OcpiPartyStore for ScyllaStore {
    async fn put_party(&self, party: OcpiParty) -> StoreResult<()> {
        self.call("put_party", async {
            let status = name_of(&party.status)?;
            self.execute(
                &self.statements.party_put,
                (
                    party.token.as_str(),
                    party.url.as_deref(),
                    status.as_str(),
                    timestamp(party.registered_at),
                ),
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn party(&self, token: &str) -> StoreResult<Option<OcpiParty>> {
        self.call("party", self.find_party(token)).await
    }

    async fn delete_party(&self, token: &str) -> StoreResult<bool> {
        self.call("delete_party", async {
            let existed = self.find_party(token).await?.is_some();
            self.execute(&self.statements.party_delete, (token,))
                .await?;
            Ok(existed)
        })
        .await
    }
}
