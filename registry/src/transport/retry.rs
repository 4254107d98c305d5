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

/// Parse `Retry-After`: delay-seconds, or an HTTP-date (the time until then; a date in the
/// past means no wait). Anything else falls back to the backoff.
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
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
        let past = reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(Some(&past)), Some(Duration::ZERO));
        let ahead = std::time::SystemTime::now() + Duration::from_secs(30);
        let future =
            reqwest::header::HeaderValue::from_str(&httpdate::fmt_http_date(ahead)).unwrap();
        let wait = parse_retry_after(Some(&future)).unwrap();
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let junk = reqwest::header::HeaderValue::from_static("soon");
        assert_eq!(parse_retry_after(Some(&junk)), None);
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 409, 416] {
            assert!(!retryable_status(s), "{s}");
        }
    }
}
