//! Retry policy and the one place that decides whether a failed call is repeated.

use std::time::Duration;

use crate::Error;

/// Backoff for transient failures: exponential, capped, optionally jittered.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Upper bound for any computed delay.
    pub max_delay: Duration,
    /// Growth per retry.
    pub factor: f64,
    /// Randomise each delay within `[delay/2, delay]` so many clients do not retry in step.
    pub jitter: bool,
    /// Upper bound for a server's `Retry-After`, so a bad header cannot stall a caller.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Project defaults: 3 retries, 1 s doubling to at most 10 s, with jitter.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(1000),
            max_delay: Duration::from_millis(10_000),
            factor: 2.0,
            jitter: true,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// Same policy without jitter (exact delays; handy in tests).
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The delay before retry number `retry` (0-based), before jitter.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let exp = i32::try_from(retry).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * self.factor.max(1.0).powi(exp);
        let max = self.max_delay.as_secs_f64();
        Duration::from_secs_f64(if secs.is_finite() { secs.min(max) } else { max })
    }

    /// The delay before retry `retry`: `Retry-After` when the server sent one (capped by
    /// `max_retry_after`), else the (jittered) exponential delay.
    pub fn delay_for(&self, retry: u32, err: &Error) -> Duration {
        if let Some(after) = err.retry_after() {
            return after.min(self.max_retry_after);
        }
        let base = self.base_delay(retry);
        if self.jitter {
            let fraction: f64 = 0.5 + rand::random::<f64>() * 0.5;
            base.mul_f64(fraction)
        } else {
            base
        }
    }
}

/// Whether repeating a request could do harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Repeating it ends in the same state (reads, start, stop, delete, release, extend...).
    Safe,
    /// It creates something: repeat only when it certainly was not applied.
    Create,
    /// Never repeated by the pipeline (wait: its caller loops itself).
    Never,
}

/// smithy-style classification: may this error be retried for this kind of request?
pub(crate) fn should_retry(err: &Error, idempotency: Idempotency) -> bool {
    match idempotency {
        Idempotency::Never => false,
        Idempotency::Safe => err.is_retryable(),
        Idempotency::Create => match err {
            Error::Api(e) => e.status == 429,
            Error::Transport { sent, .. } => !sent,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;

    fn api(status: u16, retry_after: Option<Duration>) -> Error {
        Error::Api(ApiError {
            status,
            code: None,
            message: "x".into(),
            request_id: None,
            retry_after,
        })
    }

    #[test]
    fn default_policy_doubles_from_one_second_to_ten() {
        let p = RetryPolicy::default().without_jitter();
        let delays: Vec<_> = (0..6).map(|n| p.base_delay(n).as_millis()).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(p.max_retries, 3);
        assert_eq!(RetryPolicy::none().max_retries, 0);
    }

    #[test]
    fn jitter_stays_within_half_to_full_delay() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            let d = p.delay_for(1, &api(503, None));
            assert!(
                d >= Duration::from_millis(1000) && d <= Duration::from_millis(2000),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay_for(0, &api(429, Some(Duration::from_secs(7)))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay_for(0, &api(429, Some(Duration::from_secs(3600)))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn creates_retry_only_when_certainly_not_applied() {
        use Idempotency::*;
        let sent = Error::Transport {
            message: "reset".into(),
            sent: true,
        };
        let not_sent = Error::Transport {
            message: "refused".into(),
            sent: false,
        };
        assert!(should_retry(&api(429, None), Create));
        assert!(should_retry(&not_sent, Create));
        assert!(!should_retry(&api(503, None), Create));
        assert!(!should_retry(&api(408, None), Create));
        assert!(!should_retry(&sent, Create));
        assert!(!should_retry(&Error::Timeout, Create));
        for e in [
            api(408, None),
            api(429, None),
            api(500, None),
            sent,
            Error::Timeout,
        ] {
            assert!(should_retry(&e, Safe), "{e}");
            assert!(!should_retry(&e, Never), "{e}");
        }
        assert!(!should_retry(&api(404, None), Safe));
        assert!(!should_retry(&api(409, None), Safe));
    }
}
