//! Retrying a lightweight transaction that lost a race: a bounded number of
//! attempts with jittered, growing pauses, so contenders spread out instead
//! of colliding again at once.

use std::future::Future;
use std::time::Duration;

use crate::store::{StoreError, StoreResult};

/// Attempts before a contended write fails (500 / InternalError).
pub const MOST_ATTEMPTS: u32 = 12;
/// First pause; it doubles per attempt up to `LONGEST_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Runs `attempt` until it gives `Some` (done) or `MOST_ATTEMPTS` are used;
/// `None` means "lost a race, read again and retry".
pub async fn until_won<T, F, Fut>(what: &str, mut attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<Option<T>>>,
{
    let mut pause = FIRST_PAUSE;
    for tried in 1..=MOST_ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
        if tried < MOST_ATTEMPTS {
            tokio::time::sleep(jittered(pause)).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
    Err(StoreError::Backend(format!(
        "{what}: lost {MOST_ATTEMPTS} races in a row"
    )))
}

/// A pause between half and all of `pause`, varied per call.
fn jittered(pause: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let fraction = 0.5 + f64::from(nanos % 1_000) / 2_000.0;
    pause.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_at_the_first_win_or_after_the_bound() {
        let mut calls = 0;
        let won = until_won("test", || {
            calls += 1;
            let done = (calls == 3).then_some(calls);
            async move { Ok(done) }
        })
        .await;
        assert_eq!(won.unwrap(), 3);

        let mut calls = 0u32;
        let lost = until_won::<(), _, _>("contended thing", || {
            calls += 1;
            async { Ok(None) }
        })
        .await;
        assert_eq!(calls, MOST_ATTEMPTS);
        assert!(lost.unwrap_err().to_string().contains("contended thing"));
    }

    #[test]
    fn jitter_stays_within_the_pause() {
        let pause = Duration::from_millis(100);
        let j = jittered(pause);
        assert!(j >= pause / 2 && j <= pause, "{j:?}");
    }
}
