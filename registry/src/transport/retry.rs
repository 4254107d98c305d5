//! Retry policy: which failures are retried and how long to wait (backoff with jitter from
//! `backon`, stretched to honour `Retry-After`).

use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};

/// Bounded retries with exponential backoff and jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` that is honoured; longer values are capped to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The backoff delays, one per allowed retry.
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }

    /// The wait before the next attempt: the backoff, or `Retry-After` if that is longer.
    pub(crate) fn wait(&self, backoff: Duration, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(after) => after.min(self.max_retry_after).max(backoff),
            None => backoff,
        }
    }
}

/// Parse `Retry-After` given in seconds (the HTTP-date form falls back to the backoff).
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let secs: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// Whether an HTTP status is worth retrying.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_bounded_and_retry_after_wins_when_longer() {
        let p = RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            max_retry_after: Duration::from_secs(2),
        };
        let delays: Vec<_> = p.delays().collect();
        assert_eq!(delays.len(), 3);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_millis(80)),
            "{delays:?}"
        );
        assert_eq!(
            p.wait(Duration::from_millis(10), Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.wait(Duration::from_millis(10), Some(Duration::from_secs(100))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.wait(Duration::from_millis(10), None),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn retry_after_seconds_and_retryable_statuses() {
        let v = reqwest::header::HeaderValue::from_static("3");
        assert_eq!(parse_retry_after(Some(&v)), Some(Duration::from_secs(3)));
        let date = reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(Some(&date)), None);
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 409, 416] {
            assert!(!retryable_status(s), "{s}");
        }
    }
}
