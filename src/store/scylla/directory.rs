//! Ordered lists without scans: the keys of stations, tokens and locations
//! live in a `directory` table of 16 buckets per kind, each bucket a
//! partition sorted by key. A page merges the buckets, each read by the
//! driver's paging from the seek cursor on: a cursor page reads about one
//! short page per bucket; an offset costs reading the skipped keys.

use futures_util::future::try_join_all;
use scylla::client::pager::TypedRowStream;

use super::{next_row, ScyllaStore};
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
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Station => "station",
            Kind::Token => "token",
            Kind::Location => "location",
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
    rows: TypedRowStream<(String,)>,
    head: Option<String>,
}

impl Bucket {
    async fn advance(&mut self) -> StoreResult<()> {
        self.head = next_row(&mut self.rows).await?.map(|(key,)| key);
        Ok(())
    }
}

impl ScyllaStore {
    /// The keys of one page of `kind`, in key order: a k-way merge of the
    /// buckets, each read from the cursor on by the driver's paging.
    pub(super) async fn directory_page(&self, kind: Kind, page: &Page) -> StoreResult<Vec<String>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        // Rows per page of each bucket: enough that a page of the list is
        // usually served by the first read of every bucket.
        let page_size = page.offset.saturating_add(u64::from(page.limit));
        let start = page.after.as_deref().unwrap_or("");
        let streams = (0..BUCKETS).map(|bucket| {
            self.paged::<(String,)>(
                &self.statements.directory_after,
                page_size,
                (kind.name(), bucket, start),
            )
        });
        let mut buckets: Vec<Bucket> = try_join_all(streams)
            .await?
            .into_iter()
            .map(|rows| Bucket { rows, head: None })
            .collect();
        try_join_all(buckets.iter_mut().map(Bucket::advance)).await?;
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
            bucket.advance().await?;
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
