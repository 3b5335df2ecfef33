//! Retrying transient failures with exponential backoff and jitter (the `backoff` crate's
//! schedule), honouring a server-given `Retry-After`, and giving up at once when tiersync is
//! asked to stop: a stop must not wait out a back-off (a 100 s `Retry-After` outlasts
//! systemd's stop timeout), and an attempt already on the wire still gets its answer.

use std::future::Future;
use std::time::Duration;

use backoff::backoff::Backoff;
use tokio_util::sync::CancellationToken;

use super::{ApiError, ApiStats};

/// How long and how fast to retry one request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The first back-off; each next one doubles (with ±50% jitter).
    pub initial: Duration,
    /// The longest single back-off, however many attempts failed.
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
        let mut backoff = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(self.initial)
            .with_max_interval(self.max_interval)
            .with_randomization_factor(0.5)
            .with_multiplier(2.0)
            .with_max_elapsed_time(Some(self.max_elapsed))
            .build();
        backoff.reset();
        backoff
    }
}

/// Runs `op` until it succeeds, fails permanently, or transient failures outlast the policy.
/// A `RateLimited` error waits its `retry_after` (however long: the server said so). When
/// `stop` fires during a wait, the wait ends and the last error is returned; `op` is not
/// called again.
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    stats: &ApiStats,
    stop: &CancellationToken,
    mut op: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut backoff = policy.backoff();
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let wait = match &error {
            ApiError::Stopped { .. } => return Err(error),
            ApiError::RateLimited {
                retry_after: Some(after),
                ..
            } => *after,
            _ if error.is_transient() => match backoff.next_backoff() {
                Some(wait) => wait,
                None => return Err(error),
            },
            _ => return Err(error),
        };
        stats.retry();
        stats.waited(wait);
        tracing::debug!(%error, wait_ms = wait.as_millis() as u64, "retrying");
        if stop
            .run_until_cancelled(tokio::time::sleep(wait))
            .await
            .is_none()
        {
            tracing::debug!(%error, "stopping: not retrying");
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::time::Instant;

    fn rate_limited(after: Duration) -> ApiError {
        ApiError::RateLimited {
            endpoint: "test",
            retry_after: Some(after),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_is_waited_out_then_the_call_succeeds() {
        let calls = AtomicUsize::new(0);
        let policy = RetryPolicy::new(Duration::from_secs(60));
        let start = Instant::now();
        let result = with_retry(
            &policy,
            &ApiStats::default(),
            &CancellationToken::new(),
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => Err(rate_limited(Duration::from_secs(100))),
                        _ => Ok(n),
                    }
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 1);
        assert!(start.elapsed() >= Duration::from_secs(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_wait_at_once_without_another_attempt() {
        let calls = AtomicUsize::new(0);
        let stop = CancellationToken::new();
        let policy = RetryPolicy::new(Duration::from_secs(600));
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stopper.cancel();
        });
        let start = Instant::now();
        let result: Result<(), ApiError> = with_retry(&policy, &ApiStats::default(), &stop, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(rate_limited(Duration::from_secs(100))) }
        })
        .await;
        assert!(matches!(result, Err(ApiError::RateLimited { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no attempt after the stop");
        let waited = start.elapsed();
        assert!(
            waited < Duration::from_secs(2),
            "the stop ended the 100 s wait after {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_stopped_before_it_was_sent_is_not_retried() {
        let calls = AtomicUsize::new(0);
        let result: Result<(), ApiError> = with_retry(
            &RetryPolicy::new(Duration::from_secs(60)),
            &ApiStats::default(),
            &CancellationToken::new(),
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(ApiError::Stopped { endpoint: "test" }) }
            },
        )
        .await;
        assert!(matches!(result, Err(ApiError::Stopped { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
