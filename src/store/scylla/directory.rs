//! Ordered lists without scans: the keys of stations, tokens and locations
//! live in a `directory` table of 16 buckets per kind, each bucket a
//! partition sorted by key. A page merges the buckets, each read from the
//! seek cursor on with the driver's paging state: a cursor page reads about
//! twice its size in keys; an offset costs reading the skipped keys.

use std::future::Future;

use futures_util::future::try_join_all;

use super::pages::Pages;
use super::ScyllaStore;
use crate::store::{Page, StoreResult};

/// Buckets per kind. Part of the data model: changing it needs a migration.
pub const BUCKETS: i16 = 16;

/// What the directory lists.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Station ids.
    Station,
    /// Token uids.
    Token,
    /// Location ids.
    Location,
    /// `{last_updated ms:013}{location id}`: locations in update order.
    LocationUpdated,
    /// The same entries for published locations only.
    LocationPublished,
    /// Hardware template ids.
    Template,
    /// `active_key`s of running transactions.
    ActiveTransaction,
}

impl Kind {
    /// Its `kind` column value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Station => "station",
            Kind::Token => "token",
            Kind::Location => "location",
            Kind::LocationUpdated => "location_updated",
            Kind::LocationPublished => "location_published",
            Kind::Template => "template",
            Kind::ActiveTransaction => "active_transaction",
        }
    }

    /// The directory row of `key`: (kind, bucket, entry).
    pub fn row(self, key: &str) -> (&'static str, i16, String) {
        (self.name(), bucket_of(key), key.to_owned())
    }
}

/// The bucket of a key: 32-bit FNV-1a, fixed so every node and version agrees.
pub fn bucket_of(key: &str) -> i16 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % BUCKETS as u32) as i16
}

/// One bucket's keys, read page by page, with the next key not yet merged.
struct Bucket {
    keys: Pages<(String,)>,
    head: Option<String>,
}

impl ScyllaStore {
    /// The keys of one page of `kind`, in key order: a k-way merge of the
    /// buckets, each read from the cursor on in pages of about its share of
    /// the page (keys spread evenly over the buckets).
    pub(super) async fn directory_page(&self, kind: Kind, page: &Page) -> StoreResult<Vec<String>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let wanted = page.offset.saturating_add(u64::from(page.limit));
        let share = wanted.div_ceil(BUCKETS as u64) * 2 + 4;
        let start = page.after.as_deref().unwrap_or("");
        let mut buckets = Vec::with_capacity(BUCKETS as usize);
        for bucket in 0..BUCKETS {
            let keys = Pages::new(
                &self.statements.directory_after,
                &(kind.name(), bucket, start),
                share,
            )?;
            buckets.push(Bucket { keys, head: None });
        }
        let firsts = buckets.iter_mut().map(|b| async {
            b.head = b.keys.next(self).await?.map(|(key,)| key);
            StoreResult::Ok(())
        });
        try_join_all(firsts).await?;
        let (mut skipped, mut keys) = (0u64, Vec::new());
        loop {
            let smallest = buckets
                .iter_mut()
                .filter(|b| b.head.is_some())
                .min_by(|a, b| a.head.cmp(&b.head));
            let Some(bucket) = smallest else {
                return Ok(keys);
            };
            let key = bucket.head.take().unwrap_or_default();
            if skipped < page.offset {
                skipped += 1;
            } else {
                keys.push(key);
                if keys.len() == page.limit as usize {
                    return Ok(keys);
                }
            }
            bucket.head = bucket.keys.next(self).await?.map(|(key,)| key);
        }
    }

    /// One page of records of `kind`, looked up by key. A key whose record
    /// is gone (deleted while listed) is passed over and the page filled
    /// from the keys after it, so a full page is never returned short.
    pub(super) async fn list_records<T, F, Fut>(
        &self,
        kind: Kind,
        page: Page,
        find: F,
    ) -> StoreResult<Vec<T>>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = StoreResult<Option<T>>>,
    {
        let mut records = Vec::new();
        let mut window = page;
        loop {
            let keys = self.directory_page(kind, &window).await?;
            let exhausted = keys.len() < window.limit as usize;
            let last = keys.last().cloned();
            let found = try_join_all(keys.into_iter().map(&find)).await?;
            let before = records.len();
            records.extend(found.into_iter().flatten());
            let missing = window.limit as usize - (records.len() - before);
            if exhausted || missing == 0 {
                return Ok(records);
            }
            // The offset was consumed by the first window.
            window = Page {
                offset: 0,
                limit: missing as u32,
                after: last,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_spread() {
        // Fixed values: a change here would strand every listed key.
        assert_eq!(bucket_of(""), (0x811c_9dc5u32 % 16) as i16);
        assert_eq!(bucket_of("CS-0001"), bucket_of("CS-0001"));
        let mut counts = [0u32; BUCKETS as usize];
        for i in 0..1600 {
            counts[bucket_of(&format!("CS-{i:05}")) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&n| (50..=150).contains(&n)),
            "uneven buckets: {counts:?}"
        );
    }
}
