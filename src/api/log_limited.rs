//! Warnings that repeat in bursts (a store that is down fails every call)
//! logged at most once per kind per interval, with how many were held back,
//! so an outage is a few lines a minute, not thousands. Metrics still count
//! every failure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Least time between two lines of one kind.
const INTERVAL: Duration = Duration::from_secs(10);

/// Per kind: when it was last logged and how many were held back since.
static SEEN: Mutex<Option<HashMap<&'static str, (Instant, u64)>>> = Mutex::new(None);

/// Logs `message` as a warning of `kind` unless one was logged within the
/// interval (then it is counted, and the count goes with the next line).
pub fn warn(kind: &'static str, message: &str) {
    if let Some(held_back) = due(kind, Instant::now()) {
        tracing::warn!(kind, held_back, "{message}");
    }
}

/// Whether a line of `kind` is due at `now`: the number held back since the
/// last one, or None when this one is held back.
fn due(kind: &'static str, now: Instant) -> Option<u64> {
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seen = seen.get_or_insert_with(HashMap::new);
    match seen.get_mut(kind) {
        Some((last, held)) if now.duration_since(*last) < INTERVAL => {
            *held += 1;
            None
        }
        Some((last, held)) => {
            let count = *held;
            *last = now;
            *held = 0;
            Some(count)
        }
        None => {
            seen.insert(kind, (now, 0));
            Some(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let start = Instant::now();
        assert_eq!(due("test_kind", start), Some(0));
        assert_eq!(due("test_kind", start + Duration::from_secs(1)), None);
        assert_eq!(due("test_kind", start + Duration::from_secs(2)), None);
        assert_eq!(due("other_kind", start + Duration::from_secs(2)), Some(0));
        assert_eq!(due("test_kind", start + INTERVAL), Some(2));
        assert_eq!(due("test_kind", start + INTERVAL), None);
    }
}
