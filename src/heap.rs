//! Giving freed heap back to the operating system after many stations
//! left. glibc keeps what a reconnect storm freed in its arenas: measured
//! on two nodes, a node's RSS stayed at 1,085 MiB with its stations gone,
//! and `malloc_trim(0)` brought it to 296 MiB. This task trims once
//! [`SHRINK`] connections have closed since the last trim (a storm whose
//! stations are back, or a fleet that shrank), and every
//! [`AT_LEAST_EVERY`] anyway. Elsewhere (not glibc) it does nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Station connections closed since the process started.
static CLOSED: AtomicU64 = AtomicU64::new(0);

/// Notes that a station connection closed.
pub fn connection_closed() {
    CLOSED.fetch_add(1, Ordering::Relaxed);
}

/// How often the churn is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(15);
/// Connections closed since the last trim that make a trim worth it.
const SHRINK: u64 = 1_000;
/// The longest time between two trims.
const AT_LEAST_EVERY: Duration = Duration::from_secs(600);

/// Trims the heap after churn, until the task is dropped.
pub async fn trim_after_churn() {
    let mut closed_at_last = CLOSED.load(Ordering::Relaxed);
    let mut last_trim = Instant::now();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let closed = CLOSED.load(Ordering::Relaxed);
        if due(closed - closed_at_last, last_trim.elapsed()) {
            let started = Instant::now();
            let released = trim();
            tracing::debug!(released, took = ?started.elapsed(), "heap trimmed");
            closed_at_last = closed;
            last_trim = Instant::now();
        }
    }
}

/// Whether to trim: `closed` connections closed since the last trim, which
/// was `since_last` ago.
fn due(closed: u64, since_last: Duration) -> bool {
    closed >= SHRINK || since_last >= AT_LEAST_EVERY
}

/// Returns free heap pages to the OS; whether any was released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() -> bool {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks;
    // it takes no pointer from us and is safe to call from any thread.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Nothing to trim outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_follows_churn_or_time() {
        let soon = Duration::from_secs(15);
        assert!(!due(0, soon), "a steady fleet");
        assert!(!due(500, soon), "a few left");
        assert!(due(1_000, soon), "a thousand left (or came back)");
        assert!(due(19_000, soon), "a storm");
        assert!(due(0, AT_LEAST_EVERY), "and now and then anyway");
    }
}
