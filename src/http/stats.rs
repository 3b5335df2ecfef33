//! Call accounting per destination, for the pass report and the logs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters one client updates as it works. Shared by all its tasks.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    waits: AtomicU64,
    waited_micros: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiStatsSnapshot {
    /// HTTP requests sent.
    pub requests: u64,
    /// Answers that said "too fast" (429, Shopify THROTTLED).
    pub rate_limited: u64,
    /// Requests sent again after a transient failure.
    pub retries: u64,
    /// Times a request waited for the limiter or a server-given delay.
    pub waits: u64,
    /// Total time those waits took, for the pass report's per-vendor line.
    pub waited: Duration,
}

impl ApiStats {
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a wait.
    pub fn waited(&self, duration: Duration) {
        // Sub-millisecond "waits" are scheduling noise, not the limiter holding us back.
        if duration >= Duration::from_millis(1) {
            self.waits.fetch_add(1, Ordering::Relaxed);
            self.waited_micros
                .fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> ApiStatsSnapshot {
        ApiStatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            waited: Duration::from_micros(self.waited_micros.load(Ordering::Relaxed)),
        }
    }
}

impl std::ops::Sub for ApiStatsSnapshot {
    type Output = ApiStatsSnapshot;

    /// The activity between two snapshots.
    fn sub(self, earlier: ApiStatsSnapshot) -> ApiStatsSnapshot {
        ApiStatsSnapshot {
            requests: self.requests - earlier.requests,
            rate_limited: self.rate_limited - earlier.rate_limited,
            retries: self.retries - earlier.retries,
            waits: self.waits - earlier.waits,
            waited: self.waited.saturating_sub(earlier.waited),
        }
    }
}
