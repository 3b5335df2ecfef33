//! Shopify's leaky bucket of query-cost points: `maximumAvailable` points, refilled at
//! `restoreRate` points per second, never above the maximum.

use std::time::Instant;

use serde_json::{json, Value};

/// The per-shop bucket.
#[derive(Debug)]
pub(crate) struct LeakyBucket {
    maximum: f64,
    restore_rate: f64,
    available: f64,
    refilled_at: Instant,
    /// Points spent so far (taken and not refunded): what a client's work cost.
    spent: f64,
}

impl LeakyBucket {
    /// A full bucket.
    pub(crate) fn new(maximum: f64, restore_rate: f64) -> LeakyBucket {
        LeakyBucket {
            maximum,
            restore_rate,
            available: maximum,
            refilled_at: Instant::now(),
            spent: 0.0,
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.available = (self.available + elapsed * self.restore_rate).min(self.maximum);
        self.refilled_at = now;
    }

    /// Takes `points` if the bucket holds them; false (and nothing taken) otherwise.
    pub(crate) fn try_take(&mut self, points: f64) -> bool {
        self.refill();
        if self.available < points {
            return false;
        }
        self.available -= points;
        self.spent += points;
        true
    }

    /// Gives back points reserved but not spent.
    pub(crate) fn refund(&mut self, points: f64) {
        self.refill();
        self.available = (self.available + points).min(self.maximum);
        self.spent -= points;
    }

    /// Points spent so far.
    pub(crate) fn spent(&self) -> f64 {
        self.spent
    }

    /// Sets the current level (clamped to `0..=maximum`).
    pub(crate) fn set(&mut self, points: f64) {
        self.refill();
        self.available = points.clamp(0.0, self.maximum);
    }

    /// `throttleStatus` as of now.
    pub(crate) fn status(&mut self) -> Value {
        self.refill();
        json!({
            "maximumAvailable": self.maximum,
            "currentlyAvailable": self.available.floor() as u64,
            "restoreRate": self.restore_rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_refunds_and_refuses() {
        let mut bucket = LeakyBucket::new(100.0, 0.0);
        assert!(bucket.try_take(60.0));
        assert!(!bucket.try_take(60.0));
        bucket.refund(20.0);
        assert!(bucket.try_take(60.0));
        assert_eq!(bucket.status()["currentlyAvailable"], 0);
    }

    #[test]
    fn refills_at_the_restore_rate_up_to_the_maximum() {
        let mut bucket = LeakyBucket::new(100.0, 1000.0);
        bucket.set(0.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(bucket.try_take(10.0));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(bucket.status()["currentlyAvailable"], 100);
    }
}
