//! The one retry policy of strata: how many times, and how long apart, a
//! transient failure (a dropped connection, a timeout, a 5xx, a 429) is
//! tried again, for registry requests and engine pushes alike. Which
//! failures are transient is decided by each adapter, on its error kinds.

use std::time::Duration;

/// Attempts and backoff for transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each later one.
    pub initial_delay: Duration,
    /// Upper bound of a delay (also caps `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before the attempt after `attempt` (1-based): the server's
    /// `Retry-After` when it gave one, else exponential backoff; capped.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or(exp).min(self.max_delay)
    }

    /// Whether another attempt follows a failed `attempt` (1-based).
    pub fn tries_again(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_honours_retry_after_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None), Duration::from_millis(250));
        assert_eq!(p.delay(2, None), Duration::from_millis(500));
        assert_eq!(p.delay(3, None), Duration::from_secs(1));
        assert_eq!(p.delay(30, None), Duration::from_secs(5));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
        assert!(p.tries_again(3) && !p.tries_again(4));
    }
}
