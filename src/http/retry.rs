//! Retrying transient failures with exponential backoff and jitter (the `backoff` crate),
//! honouring a server-given `Retry-After`.

use std::future::Future;
use std::time::Duration;

use super::{ApiError, ApiStats};

/// How long and how fast to retry one request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max_interval: Duration,
    /// Give up (the write stays in the outbox) after this long.
    pub max_elapsed: Duration,
}

impl RetryPolicy {
    pub fn new(max_elapsed: Duration) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(250),
            max_interval: Duration::from_secs(30),
            max_elapsed,
        }
    }

    fn backoff(&self) -> backoff::ExponentialBackoff {
        backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(self.initial)
            .with_max_interval(self.max_interval)
            .with_randomization_factor(0.5)
            .with_multiplier(2.0)
            .with_max_elapsed_time(Some(self.max_elapsed))
            .build()
    }
}

/// Runs `op` until it succeeds, fails permanently, or transient failures outlast the policy.
/// A `RateLimited` error waits at least its `retry_after`.
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    stats: &ApiStats,
    op: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut op = op;
    backoff::future::retry_notify(
        policy.backoff(),
        || {
            let attempt = op();
            async move {
                attempt.await.map_err(|e| {
                    let server_delay = match &e {
                        ApiError::RateLimited { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    match server_delay {
                        Some(after) => backoff::Error::retry_after(e, after),
                        None if e.is_transient() => backoff::Error::transient(e),
                        None => backoff::Error::permanent(e),
                    }
                })
            }
        },
        |error: ApiError, wait: Duration| {
            stats.retry();
            stats.waited(wait);
            tracing::debug!(%error, wait_ms = wait.as_millis() as u64, "retrying");
        },
    )
    .await
}
