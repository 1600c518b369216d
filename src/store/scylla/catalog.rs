//! Tokens and uploaded certificates on ScyllaDB:
//! one partition per record, listed through the directory.

use async_trait::async_trait;
use scylla::value::CqlTimestamp;

use super::cache::read_through;
use super::directory::Kind;
use super::{from_json, time, timestamp, to_json, ScyllaStore};
use crate::store::{CertificateStore, Page, StoreResult, StoredCertificate, Token, TokenStore};

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
}

#[async_trait]
impl TokenStore for ScyllaStore {
    async fn put_token(&self, token: Token) -> StoreResult<()> {
        self.call("put_token", async {
            let record = to_json(&token)?;
            let written = self
                .batch(
                    &self.statements.token_put,
                    ((token.uid.as_str(), record), Kind::Token.row(&token.uid)),
                )
                .await;
            // Landed or maybe landed: either way the copy may be stale.
            self.tokens.forget(&token.uid);
            written
        })
        .await
    }

    async fn token(&self, uid: &str) -> StoreResult<Option<Token>> {
        self.call(
            "token",
            read_through(&self.tokens, uid.to_owned(), self.find_token(uid)),
        )
        .await
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
            let deleted = self
                .batch(
                    &self.statements.token_delete,
                    ((uid,), Kind::Token.row(uid)),
                )
                .await;
            self.tokens.forget(&uid.to_owned());
            deleted?;
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
