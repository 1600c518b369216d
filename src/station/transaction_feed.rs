//! Those who follow transactions as stations report them (OCPI sessions):
//! the port through which the handlers tell of each transaction event once
//! it is stored for the first time. The follower decides what the event
//! means for it; the handlers only wait for it to have taken note.

use async_trait::async_trait;

use crate::store::TransactionEvent;

/// Told of every transaction event the store applied for the first time.
#[async_trait]
pub trait TransactionFeed: Send + Sync {
    /// `event` was stored (a retried event is not told again).
    async fn applied(&self, event: &TransactionEvent);
}
