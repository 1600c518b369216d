//! Short-lived, bounded copies of hot reads on the message path (DESIGN:
//! "hot reads may be cached in memory with a short bound; writes go
//! through"): a token looked up at Authorize is looked up again at the
//! transaction's start, and the partner list is read per transaction start.
//!
//! A copy lives at most its TTL, so a change made through another node is
//! seen within that time. A change made through this node is seen at once:
//! the write forgets the copy, and a read that raced the write does not put
//! its older answer back (see [`read_through`]).

use std::hash::Hash;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

/// A bounded map of answers younger than a TTL.
pub struct Fresh<K, V> {
    copies: Cache<K, (V, Instant)>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> Fresh<K, V> {
    /// Holds at most `capacity` answers, each for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Fresh {
            copies: Cache::new(capacity.max(1)),
            ttl,
        }
    }

    /// The copy of `key`'s answer, when it is young enough.
    #[cfg(test)]
    pub fn get(&self, key: &K) -> Option<V> {
        let (value, stored_at) = self.copies.get(key)?;
        if stored_at.elapsed() < self.ttl {
            Some(value)
        } else {
            self.copies.remove(key);
            None
        }
    }

    /// Drops `key`'s copy: called by every write of `key`, before it returns.
    pub fn forget(&self, key: &K) {
        self.copies.remove(key);
    }
}

/// A bounded set of facts that never become false again, such as "this
/// station is registered" (stations are never removed): once learnt, a fact
/// saves its read for good. When full, the least used are dropped and
/// learnt again by a read.
pub struct Known<K> {
    facts: Cache<K, ()>,
}

impl<K: Eq + Hash + Clone> Known<K> {
    /// Holds at most `capacity` facts.
    pub fn new(capacity: usize) -> Self {
        Known {
            facts: Cache::new(capacity.max(1)),
        }
    }

    /// Whether `key` is known.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + quick_cache::Equivalent<K> + ?Sized,
    {
        self.facts.contains_key(key)
    }

    /// Records `key` as known.
    pub fn learn(&self, key: K) {
        self.facts.insert(key, ());
    }

    /// Passes when `key` is known; else asks `exists` (a read) and learns
    /// `key` when it does exist, or fails with `missing`.
    pub async fn confirm<E>(
        &self,
        key: K,
        exists: impl std::future::Future<Output = Result<bool, E>>,
        missing: E,
    ) -> Result<(), E> {
        if self.contains(&key) {
            return Ok(());
        }
        if !exists.await? {
            return Err(missing);
        }
        self.learn(key);
        Ok(())
    }

    /// Drops `key`; whether it was known.
    pub fn forget<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + quick_cache::Equivalent<K> + ?Sized,
    {
        self.facts.remove(key).is_some()
    }
}

/// Longest wait for another caller's read of the same key; then this
/// caller reads for itself (without keeping the answer). A failed read
/// hands the wait to one waiter at a time, so with the store down the
/// waiters would otherwise fail in series.
const WAIT_FOR_READ: Duration = Duration::from_millis(500);

/// Reads through `cache`: the fresh copy, else `read` (whose answer is
/// kept). Concurrent callers missing the same key wait for one read: when
/// a copy expires under a burst (every station of a fleet presenting the
/// same token, say) the cluster gets one request, not one per station.
///
/// A write through this node (`forget`) removes the key's placeholder
/// too, so a read that raced it cannot put its older answer back: the
/// guard's insert then fails.
pub async fn read_through<K, V, E, F>(cache: &Fresh<K, V>, key: K, read: F) -> Result<V, E>
where
    K: Eq + Hash + Clone,
    V: Clone,
    F: std::future::Future<Output = Result<V, E>>,
{
    loop {
        let looked_up =
            tokio::time::timeout(WAIT_FOR_READ, cache.copies.get_value_or_guard_async(&key)).await;
        match looked_up {
            Ok(Ok((value, stored_at))) if stored_at.elapsed() < cache.ttl => return Ok(value),
            // Expired: dropped (unless replaced meanwhile), and the next
            // turn reads or waits for the one caller that does.
            Ok(Ok(_)) => {
                cache
                    .copies
                    .remove_if(&key, |(_, stored_at)| stored_at.elapsed() >= cache.ttl);
            }
            Ok(Err(guard)) => {
                // On an error the guard is dropped unfilled: a waiter reads.
                let value = read.await?;
                let _ = guard.insert((value.clone(), Instant::now()));
                return Ok(value);
            }
            Err(_waited_too_long) => return read.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn a_fact_is_known_once_learnt() {
        let known = Known::new(8);
        assert!(!known.contains("a"));
        known.learn("a".to_owned());
        assert!(known.contains("a"));
        assert!(!known.contains("b"));
        assert!(known.forget("a"));
        assert!(!known.contains("a"));
        assert!(!known.forget("a"));
    }

    #[tokio::test]
    async fn confirm_reads_only_what_it_does_not_know() {
        let known = Known::new(8);
        let missing = known.confirm("a".to_owned(), async { Ok(false) }, "gone");
        assert_eq!(missing.await, Err("gone"));
        assert!(!known.contains("a"), "a missing key is not learnt");
        assert_eq!(
            known
                .confirm("a".to_owned(), async { Ok(true) }, "gone")
                .await,
            Ok(())
        );
        assert!(known.contains("a"));
        let unread = known.confirm("a".to_owned(), async { panic!("read again") }, "gone");
        assert_eq!(unread.await, Ok::<(), &str>(()));
    }

    #[tokio::test]
    async fn a_read_that_raced_a_write_is_not_kept() {
        let cache = Fresh::new(8, Duration::from_secs(60));
        let raced: Result<&str, ()> = read_through(&cache, "a", async {
            // A write through this node lands while the read is out.
            cache.forget(&"a");
            Ok("old")
        })
        .await;
        assert_eq!(raced, Ok("old"), "the caller still gets its answer");
        assert_eq!(cache.get(&"a"), None, "the older answer was put back");
        let read: Result<&str, ()> = read_through(&cache, "a", async { Ok("new") }).await;
        assert_eq!(read, Ok("new"));
        assert_eq!(cache.get(&"a"), Some("new"));
        cache.forget(&"a");
        assert_eq!(cache.get(&"a"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_of_one_key_read_once() {
        let cache = std::sync::Arc::new(Fresh::new(8, Duration::from_secs(60)));
        let reads = std::sync::Arc::new(AtomicU64::new(0));
        let callers = (0..50).map(|_| {
            let (cache, reads) = (cache.clone(), reads.clone());
            tokio::spawn(async move {
                read_through(&cache, "token", async {
                    reads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, ()>(7)
                })
                .await
            })
        });
        for answer in futures_util::future::join_all(callers).await {
            assert_eq!(answer.unwrap(), Ok(7));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for 50 callers");
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_on_a_failing_read_do_not_fail_in_series() {
        let cache = Fresh::<&str, u32>::new(8, Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let callers = (0..10).map(|_| {
            read_through(&cache, "token", async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err::<u32, _>("down")
            })
        });
        let answers = futures_util::future::join_all(callers).await;
        assert!(answers.iter().all(|a| *a == Err("down")));
        // One after another, ten failing reads would take 2 s.
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept_and_the_next_caller_reads() {
        let cache = Fresh::new(8, Duration::from_secs(60));
        let failed: Result<u32, &str> = read_through(&cache, 1u8, async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        let read: Result<u32, &str> = read_through(&cache, 1u8, async { Ok(5) }).await;
        assert_eq!(read, Ok(5));
        assert_eq!(cache.get(&1u8), Some(5));
    }

    #[tokio::test]
    async fn an_expired_copy_is_read_again() {
        let cache = Fresh::new(8, Duration::from_millis(20));
        let first: Result<u32, ()> = read_through(&cache, 1u8, async { Ok(1) }).await;
        assert_eq!(first, Ok(1));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let second: Result<u32, ()> = read_through(&cache, 1u8, async { Ok(2) }).await;
        assert_eq!(second, Ok(2));
    }

    #[tokio::test]
    async fn reads_through_once_while_fresh() {
        let cache = Fresh::new(8, Duration::from_secs(60));
        let mut reads = 0;
        for _ in 0..3 {
            let got: Result<u32, ()> = read_through(&cache, 7u8, async {
                reads += 1;
                Ok(42)
            })
            .await;
            assert_eq!(got, Ok(42));
        }
        assert_eq!(reads, 1);
    }
}
