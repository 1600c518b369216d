//! Ordered lists without scans: the keys of stations, tokens and locations
//! live in a `directory` table of 16 buckets per kind, each bucket a
//! partition sorted by key. A page merges the buckets: with a seek cursor it
//! reads at most one short page per bucket; an offset costs reading the
//! skipped keys.

use std::collections::VecDeque;

use futures_util::future::try_join_all;

use super::ScyllaStore;
use crate::store::{Page, StoreResult};

/// Buckets per kind. Part of the data model: changing it needs a migration.
pub const BUCKETS: i16 = 16;
/// Most keys read from one bucket per request.
const MOST_PER_READ: u64 = 1_000;

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

/// One bucket's keys read so far but not yet merged.
struct Bucket {
    id: i16,
    buffered: VecDeque<String>,
    /// The last key read from it (the next read starts after it).
    last: String,
    exhausted: bool,
}

impl ScyllaStore {
    /// The keys of one page of `kind`, in key order.
    pub(super) async fn directory_page(&self, kind: Kind, page: &Page) -> StoreResult<Vec<String>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let wanted = page.offset.saturating_add(u64::from(page.limit));
        let per_read = wanted.min(MOST_PER_READ) as i32;
        let start = page.after.clone().unwrap_or_default();
        let mut buckets: Vec<Bucket> = (0..BUCKETS)
            .map(|id| Bucket {
                id,
                buffered: VecDeque::new(),
                last: start.clone(),
                exhausted: false,
            })
            .collect();
        let (mut skipped, mut keys) = (0u64, Vec::new());
        loop {
            self.refill(kind, &mut buckets, per_read).await?;
            let smallest = buckets
                .iter_mut()
                .filter(|b| !b.buffered.is_empty())
                .min_by(|a, b| a.buffered[0].cmp(&b.buffered[0]));
            let Some(bucket) = smallest else {
                return Ok(keys);
            };
            let key = bucket.buffered.pop_front().unwrap_or_default();
            if skipped < page.offset {
                skipped += 1;
                continue;
            }
            keys.push(key);
            if keys.len() == page.limit as usize {
                return Ok(keys);
            }
        }
    }

    /// Reads the next keys of every bucket that has none buffered, at once.
    async fn refill(&self, kind: Kind, buckets: &mut [Bucket], per_read: i32) -> StoreResult<()> {
        let empty: Vec<(usize, i16, String)> = buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.buffered.is_empty() && !b.exhausted)
            .map(|(i, b)| (i, b.id, b.last.clone()))
            .collect();
        if empty.is_empty() {
            return Ok(());
        }
        let reads = empty.iter().map(|(_, id, last)| {
            self.rows::<(String,)>(
                &self.statements.directory_page,
                (kind.name(), *id, last.as_str(), per_read),
            )
        });
        let pages = try_join_all(reads).await?;
        for ((index, _, _), keys) in empty.into_iter().zip(pages) {
            let bucket = &mut buckets[index];
            bucket.exhausted = keys.len() < per_read as usize;
            if let Some((last,)) = keys.last() {
                bucket.last = last.clone();
            }
            bucket.buffered.extend(keys.into_iter().map(|(key,)| key));
        }
        Ok(())
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
