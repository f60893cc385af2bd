//! Client-side rate limiting to Fly's published limits, so bulk use waits instead of
//! collecting 429s. Token buckets on `tokio::time::Instant`, so paused test time works.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A bucket's refill rate and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: how many calls may go at once after a quiet spell.
    pub burst: u32,
}

impl Quota {
    /// Fly: every action, per machine (or per app): 1 req/s, bursts of 3.
    pub const ACTION: Quota = Quota {
        per_second: 1.0,
        burst: 3,
    };
    /// Fly: Get Machine: 5 req/s, bursts of 10.
    pub const GET_MACHINE: Quota = Quota {
        per_second: 5.0,
        burst: 10,
    };
    /// Fly: app deletions: 100 per minute.
    pub const DELETE_APP: Quota = Quota {
        per_second: 100.0 / 60.0,
        burst: 100,
    };
}

/// Which limit a request counts against: the action and the machine or app it targets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ThrottleKey {
    pub action: &'static str,
    pub scope: String,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens available at `updated` (negative: already promised to waiting callers).
    tokens: f64,
    updated: Instant,
}

/// Keyed token buckets.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    buckets: Mutex<HashMap<ThrottleKey, Bucket>>,
}

/// Above this many keys, full (idle) buckets are dropped: they carry no state.
const PRUNE_ABOVE: usize = 4096;

impl Throttle {
    /// How long the caller must wait before its request may go; reserves the slot.
    pub(crate) fn reserve(&self, key: ThrottleKey, quota: Quota) -> Duration {
        let now = Instant::now();
        let burst = f64::from(quota.burst.max(1));
        let rate = quota.per_second.max(f64::MIN_POSITIVE);
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
                b.tokens + elapsed * rate < burst
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst) - 1.0;
        bucket.updated = now;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / rate)
        }
    }

    /// Waits for a slot.
    pub(crate) async fn acquire(&self, key: ThrottleKey, quota: Quota) {
        let wait = self.reserve(key.clone(), quota);
        if !wait.is_zero() {
            tracing::debug!(action = key.action, scope = %key.scope, wait_ms = wait.as_millis() as u64, "throttling to Fly's rate limit");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(action: &'static str, scope: &str) -> ThrottleKey {
        ThrottleKey {
            action,
            scope: scope.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_of_three_then_one_per_second() {
        let t = Throttle::default();
        let waits: Vec<u128> = (0..6)
            .map(|_| t.reserve(key("start", "m1"), Quota::ACTION).as_millis())
            .collect();
        assert_eq!(waits, [0, 0, 0, 1000, 2000, 3000]);
        // Another machine, or another action, has its own bucket.
        assert!(t.reserve(key("start", "m2"), Quota::ACTION).is_zero());
        assert!(t.reserve(key("stop", "m1"), Quota::ACTION).is_zero());
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_with_time() {
        let t = Throttle::default();
        for _ in 0..10 {
            assert!(t.reserve(key("get", "m"), Quota::GET_MACHINE).is_zero());
        }
        assert_eq!(
            t.reserve(key("get", "m"), Quota::GET_MACHINE),
            Duration::from_millis(200)
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..10 {
            assert!(t.reserve(key("get", "m"), Quota::GET_MACHINE).is_zero());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_sleeps_exactly_the_reserved_time() {
        let t = Throttle::default();
        let start = Instant::now();
        for _ in 0..5 {
            t.acquire(key("stop", "m"), Quota::ACTION).await;
        }
        // 3 free, then one per second.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
