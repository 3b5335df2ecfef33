//! Shopify's cost-based leaky bucket, mirrored on our side so we never send a query the
//! bucket cannot afford.
//!
//! No crate models Shopify's calculated-cost limit, so this is hand-written: the bucket's
//! size, level and restore rate come from the `throttleStatus` of every response; between
//! responses the level refills at the restore rate. Before a query we wait until the level
//! covers the query's cost, then reserve it; a stop ends that wait at once.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The `throttleStatus` Shopify returns in `extensions.cost`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    /// The bucket's size in cost points (2,000 on the Standard plan): a query costing more is
    /// sent once the bucket is full instead of waiting forever.
    pub maximum_available: f64,
    /// Points left in the bucket when Shopify answered; our estimate refills from it.
    pub currently_available: f64,
    /// Points the bucket regains per second (100 on the Standard plan).
    pub restore_rate: f64,
}

#[derive(Debug)]
struct Level {
    status: ThrottleStatus,
    at: Instant,
}

/// Our estimate of the shop's bucket, shared by every query of one client.
#[derive(Debug)]
pub struct CostBucket {
    level: Mutex<Level>,
}

impl CostBucket {
    /// Starts from the documented Standard plan bucket until the first response says more.
    pub fn new() -> CostBucket {
        CostBucket {
            level: Mutex::new(Level {
                status: ThrottleStatus {
                    maximum_available: 2000.0,
                    currently_available: 2000.0,
                    restore_rate: 100.0,
                },
                at: Instant::now(),
            }),
        }
    }

    /// Waits until `cost` points are available, reserves them, and returns the wait; `None`
    /// (nothing reserved) when `stop` fired first.
    pub async fn reserve(&self, cost: f64, stop: &CancellationToken) -> Option<Duration> {
        let start = Instant::now();
        loop {
            let wait = {
                let mut level = self.level.lock().expect("bucket lock");
                let now = Instant::now();
                let available = level.available_at(now);
                if available >= cost.min(level.status.maximum_available) {
                    level.status.currently_available = available - cost;
                    level.at = now;
                    None
                } else {
                    let missing = cost - available;
                    Some(Duration::from_secs_f64(
                        missing / level.status.restore_rate.max(1.0),
                    ))
                }
            };
            match wait {
                None => return Some(start.elapsed()),
                Some(wait) => stop.run_until_cancelled(tokio::time::sleep(wait)).await?,
            }
        }
    }

    /// The bucket as estimated now: the last answer's state, refilled since (`/metrics`).
    pub fn estimate(&self) -> ThrottleStatus {
        let level = self.level.lock().expect("bucket lock");
        ThrottleStatus {
            currently_available: level.available_at(Instant::now()),
            ..level.status
        }
    }

    /// Takes the server's word for the bucket's state.
    pub fn observe(&self, status: ThrottleStatus) {
        let mut level = self.level.lock().expect("bucket lock");
        level.status = status;
        level.at = Instant::now();
    }
}

/// What the bucket holds at the start of a busy period is part of that period's ceiling
/// (see [`crate::http::Throughput`]).
impl crate::http::Reservoir for CostBucket {
    fn available(&self) -> f64 {
        self.estimate().currently_available
    }

    fn capacity(&self) -> f64 {
        self.estimate().maximum_available
    }
}

impl Default for CostBucket {
    fn default() -> Self {
        Self::new()
    }
}

impl Level {
    fn available_at(&self, now: Instant) -> f64 {
        let refill = now.duration_since(self.at).as_secs_f64() * self.status.restore_rate;
        (self.status.currently_available + refill).min(self.status.maximum_available)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_bucket_to_refill() {
        let bucket = CostBucket::new();
        bucket.observe(ThrottleStatus {
            maximum_available: 1000.0,
            currently_available: 100.0,
            restore_rate: 50.0,
        });
        let never = CancellationToken::new();
        let waited = bucket.reserve(602.0, &never).await.unwrap();
        // 502 points missing at 50 points/s is a little over 10 s.
        assert!(waited >= Duration::from_secs(10), "waited {waited:?}");
        assert!(waited < Duration::from_secs(11), "waited {waited:?}");
        assert_eq!(bucket.reserve(0.0, &never).await, Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn an_affordable_query_does_not_wait() {
        let bucket = CostBucket::new();
        let never = CancellationToken::new();
        assert_eq!(bucket.reserve(802.0, &never).await, Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_wait_and_reserves_nothing() {
        let bucket = CostBucket::new();
        bucket.observe(ThrottleStatus {
            maximum_available: 1000.0,
            currently_available: 0.0,
            restore_rate: 50.0,
        });
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stopper.cancel();
        });
        let start = Instant::now();
        assert_eq!(bucket.reserve(1000.0, &stop).await, None);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        // Nothing was taken: the refill since is all there.
        let level = bucket.level.lock().unwrap().available_at(Instant::now());
        assert!((level - 50.0).abs() < 1.0, "{level}");
    }
}
