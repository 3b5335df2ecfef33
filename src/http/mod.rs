//! What every vendor client shares: the HTTP client, the typed API error, retries with
//! backoff, window rate limiters and per-destination call accounting (calls, and throughput
//! against the published ceilings).

mod error;
mod limiter;
mod reply;
mod retry;
mod stats;
mod throughput;

pub use error::{body_excerpt, causes, said_once, ApiError};
pub use limiter::WindowLimiter;
pub use reply::{send, Reply};
pub use retry::{with_retry, RetryPolicy};
pub use stats::{ApiStats, ApiStatsSnapshot};
pub use throughput::{Busy, Ceiling, Reservoir, Throughput, ThroughputSnapshot, Unit, WindowUse};

use std::time::Duration;

/// One HTTP client per vendor, with the request timeout from `sync.request_timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("tiersync/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
}

/// A client for downloads that may take minutes: no limit on the request as a whole, but
/// each read fails after `read_timeout` without data (and connecting after at most 10 s).
pub fn streaming_client(read_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .read_timeout(read_timeout)
        .connect_timeout(read_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("tiersync/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
}

/// Parses a `Retry-After` header given in whole seconds (the form Klaviyo and Shopify use).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}
