//! The single-key aggregates on redb: tokens and uploaded certificates.
//! Each is a table of JSON records keyed by id.

use async_trait::async_trait;

use super::{get_one, list_page, put_one, remove_one, RedbStore, CERTIFICATES, TOKENS};
use crate::store::{CertificateStore, Page, StoreResult, StoredCertificate, Token, TokenStore};

#[async_trait]
impl TokenStore for RedbStore {
    async fn put_token(&self, token: Token) -> StoreResult<()> {
        self.write("put_token", move |txn| {
            put_one(txn, TOKENS, &token.uid, &token)
        })
        .await
    }

    async fn token(&self, uid: &str) -> StoreResult<Option<Token>> {
        let uid = uid.to_owned();
        self.read_point("token", move |txn| get_one(txn, TOKENS, &uid))
            .await
    }

    async fn list_tokens(&self, page: Page) -> StoreResult<Vec<Token>> {
        self.read("list_tokens", move |txn| list_page(txn, TOKENS, page))
            .await
    }

    async fn delete_token(&self, uid: &str) -> StoreResult<bool> {
        let uid = uid.to_owned();
        self.write("delete_token", move |txn| remove_one(txn, TOKENS, &uid))
            .await
    }
}

#[async_trait]
impl CertificateStore for RedbStore {
    async fn put_certificate(&self, certificate: StoredCertificate) -> StoreResult<()> {
        self.write("put_certificate", move |txn| {
            put_one(txn, CERTIFICATES, &certificate.hash, &certificate)
        })
        .await
    }

    async fn certificate(&self, hash: &str) -> StoreResult<Option<StoredCertificate>> {
        let hash = hash.to_owned();
        self.read("certificate", move |txn| get_one(txn, CERTIFICATES, &hash))
            .await
    }

    async fn delete_certificate(&self, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.write("delete_certificate", move |txn| {
            remove_one(txn, CERTIFICATES, &hash)
        })
        .await
    }
}
