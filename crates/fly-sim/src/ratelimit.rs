//! Fly's documented Machines API rate limits as token buckets (REFERENCE §2).

use std::collections::HashMap;
use std::time::Instant;

/// Rate (tokens/s) and burst of one action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub rate: f64,
    pub burst: f64,
}

/// Every action: 1/s, burst 3.
pub const DEFAULT: Quota = Quota {
    rate: 1.0,
    burst: 3.0,
};
/// Get Machine: 5/s, burst 10.
pub const GET_MACHINE: Quota = Quota {
    rate: 5.0,
    burst: 10.0,
};
/// App deletions: 100 per minute.
pub const DELETE_APP: Quota = Quota {
    rate: 100.0 / 60.0,
    burst: 100.0,
};

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug, Default)]
pub struct Limiter {
    buckets: HashMap<(&'static str, String), Bucket>,
}

impl Limiter {
    /// Takes a token for `(action, key)`; false when the bucket is empty.
    pub fn allow(&mut self, action: &'static str, key: &str, quota: Quota) -> bool {
        let now = Instant::now();
        let bucket = self
            .buckets
            .entry((action, key.to_string()))
            .or_insert(Bucket {
                tokens: quota.burst,
                last: now,
            });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * quota.rate).min(quota.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_per_key() {
        let mut l = Limiter::default();
        assert!((0..3).all(|_| l.allow("start", "m1", DEFAULT)));
        assert!(!l.allow("start", "m1", DEFAULT));
        assert!(
            l.allow("start", "m2", DEFAULT),
            "another machine has its own bucket"
        );
        assert!(
            l.allow("stop", "m1", DEFAULT),
            "another action has its own bucket"
        );
        assert!((0..10).all(|_| l.allow("get", "m1", GET_MACHINE)));
        assert!(!l.allow("get", "m1", GET_MACHINE));
    }
}
