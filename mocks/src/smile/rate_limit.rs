//! A fixed one-second window per API token, the way Smile.io (10/s) and LoyaltyLion (20/s)
//! describe their limits: once a token has used its allowance, every request answers 429
//! until a second has passed since the window's first request. Throttled requests do not
//! count, and no rate-limit headers are sent. Shared with the fake LoyaltyLion.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct PerSecond {
    limit: u32,
    /// Token → (window start, requests admitted in it).
    windows: HashMap<String, (Instant, u32)>,
}

impl PerSecond {
    pub(crate) fn new(limit: u32) -> Self {
        PerSecond {
            limit,
            windows: HashMap::new(),
        }
    }

    /// Counts one request for `token`; false when it must be answered with 429.
    pub(crate) fn take(&mut self, token: &str, now: Instant) -> bool {
        let window = self.windows.entry(token.to_owned()).or_insert((now, 0));
        if now >= window.0 + Duration::from_secs(1) {
            *window = (now, 0);
        }
        if window.1 >= self.limit {
            return false;
        }
        window.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_for_the_rest_of_the_second_then_resets() {
        let mut limiter = PerSecond::new(2);
        let t0 = Instant::now();
        assert!(limiter.take("a", t0));
        assert!(limiter.take("a", t0 + Duration::from_millis(10)));
        assert!(!limiter.take("a", t0 + Duration::from_millis(500)));
        assert!(!limiter.take("a", t0 + Duration::from_millis(999)));
        assert!(
            limiter.take("b", t0 + Duration::from_millis(999)),
            "per token"
        );
        assert!(limiter.take("a", t0 + Duration::from_millis(1000)));
    }
}
