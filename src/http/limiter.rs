//! A limiter that keeps a client under a vendor's fixed-window limits (a per-second burst
//! window and a per-minute steady window, the shape Klaviyo publishes), shared by every task
//! of that client, and that pauses everyone when the server says `Retry-After`.
//!
//! Both windows are enforced with GCRA (`governor`) tuned so that no sliding window of the
//! same length can hold more than the limit: with a burst of `b` and a refill of
//! `(limit - b)` per window, any window sees at most `limit` requests, so a server counting
//! fixed windows never sees more either. The refill is spread over the window plus a margin
//! (5%, at most 200 ms) so that requests bunched up on the way (scheduling, the network)
//! still arrive within the limit.
//!
//! A vendor that counts only a per-second window (the loyalty apps) gets a sliding log
//! instead: the send times of the last `limit` requests, the next one going once the oldest
//! is a window plus margin old. GCRA's refill keeps such a window to `limit - burst` per
//! second in a long run (76% of Smile's 10/s with a burst of two); the log keeps `limit` per
//! window plus margin (95%), and no window of the vendor's, fixed or sliding, sees more.
//!
//! A wait here can be long (a `Retry-After` pause, a minute window spent), so it ends as soon
//! as tiersync is asked to stop: nothing is sent after the stop, and the caller records the
//! write as still pending.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub struct WindowLimiter {
    per_second: PerSecond,
    /// `None` for a vendor without a steady window.
    per_minute: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

enum PerSecond {
    /// Next to a steady window, which binds a long run anyway.
    Gcra(DefaultDirectRateLimiter),
    /// The only window: see the module doc.
    Log(SlidingLog),
}

/// The scheduled send times of the last `limit` requests.
struct SlidingLog {
    limit: usize,
    window: Duration,
    sent: Mutex<VecDeque<Instant>>,
}

impl SlidingLog {
    /// Reserves the earliest send time that keeps any window (plus margin) to `limit`.
    fn slot(&self) -> Instant {
        let mut sent = self.sent.lock().expect("limiter lock");
        let now = Instant::now();
        let at = if sent.len() < self.limit {
            now
        } else {
            let oldest = sent.pop_front().expect("the log is full");
            now.max(oldest + self.window + margin(self.window))
        };
        sent.push_back(at);
        at
    }
}

impl WindowLimiter {
    pub fn new(per_second: u32, per_minute: u32) -> WindowLimiter {
        WindowLimiter {
            per_second: PerSecond::Gcra(governor::RateLimiter::direct(window_quota(
                per_second,
                Duration::from_secs(1),
                per_second / 4,
            ))),
            per_minute: Some(governor::RateLimiter::direct(window_quota(
                per_minute,
                Duration::from_secs(60),
                steady_burst(per_second, per_minute),
            ))),
            paused_until: Mutex::new(None),
        }
    }

    /// A vendor that publishes a per-second limit only (Smile.io, LoyaltyLion).
    pub fn per_second_only(per_second: u32) -> WindowLimiter {
        WindowLimiter {
            per_second: PerSecond::Log(SlidingLog {
                limit: per_second.max(1) as usize,
                window: Duration::from_secs(1),
                sent: Mutex::new(VecDeque::new()),
            }),
            per_minute: None,
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until one more request fits every window; returns how long it waited, or `None`
    /// when `stop` fired first (then the request must not be sent).
    pub async fn acquire(&self, stop: &CancellationToken) -> Option<Duration> {
        let start = Instant::now();
        let paused = *self.paused_until.lock().expect("limiter lock");
        stop.run_until_cancelled(async {
            if let Some(until) = paused {
                tokio::time::sleep_until(until).await;
            }
            if let Some(per_minute) = &self.per_minute {
                per_minute.until_ready().await;
            }
            match &self.per_second {
                PerSecond::Gcra(limiter) => limiter.until_ready().await,
                PerSecond::Log(log) => tokio::time::sleep_until(log.slot()).await,
            }
        })
        .await?;
        Some(start.elapsed())
    }

    /// Holds every caller for `duration` (a server-given `Retry-After`).
    pub fn pause(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut paused = self.paused_until.lock().expect("limiter lock");
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }
}

/// How much longer than the vendor's window the limiter spreads a window's requests over.
fn margin(window: Duration) -> Duration {
    (window / 20).min(Duration::from_millis(200))
}

/// The steady window's burst. Whatever the steady window lets through at once, it takes back
/// from its rate for as long as the limiter runs (any window of it may hold only `burst +
/// refill`), so a large burst there costs throughput on every long run: a quarter of 150/min
/// kept a long run of bulk jobs at 75% of the ceiling. A quarter of the per-second limit still
/// starts a run at once, and leaves about 97% of the steady limit for the rest of it.
fn steady_burst(per_second: u32, per_minute: u32) -> u32 {
    (per_second / 4).clamp(1, per_minute / 4)
}

/// A GCRA quota that never lets more than `limit` requests into any `window` (plus margin):
/// `burst` at once, then the rest of the limit spread over the window.
fn window_quota(limit: u32, window: Duration, burst: u32) -> Quota {
    let limit = limit.max(2);
    let burst = burst.clamp(1, limit - 1);
    let refill = limit - burst;
    let period = (window + margin(window)) / refill;
    Quota::with_period(period)
        .expect("period is positive")
        .allow_burst(NonZeroU32::new(burst).expect("burst is positive"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    /// Drives the quota as fast as it allows on a fake clock and checks every window.
    fn stamps(limit: u32, window: Duration, count: usize) -> Vec<Duration> {
        stamps_with(window_quota(limit, window, limit / 4), count)
    }

    fn stamps_with(quota: Quota, count: usize) -> Vec<Duration> {
        let clock = FakeRelativeClock::default();
        let limiter = governor::RateLimiter::direct_with_clock(quota, clock.clone());
        let mut now = Duration::ZERO;
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            if limiter.check().is_ok() {
                out.push(now);
            } else {
                clock.advance(Duration::from_millis(1));
                now += Duration::from_millis(1);
            }
        }
        out
    }

    fn max_in_window(stamps: &[Duration], window: Duration) -> usize {
        (0..stamps.len())
            .map(|i| {
                stamps[i..]
                    .iter()
                    .take_while(|s| **s < stamps[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn per_second_quota_never_exceeds_the_limit_in_any_second() {
        let s = stamps(75, Duration::from_secs(1), 400);
        let padded = Duration::from_secs(1) + margin(Duration::from_secs(1));
        assert!(
            max_in_window(&s, padded) <= 75,
            "not even in the window plus margin"
        );
        assert!(
            max_in_window(&s, Duration::from_secs(1)) >= 70,
            "the limiter should not waste the budget"
        );
    }

    #[test]
    fn per_minute_quota_never_exceeds_the_limit_in_any_minute() {
        let s = stamps(750, Duration::from_secs(60), 2000);
        let padded = Duration::from_secs(60) + margin(Duration::from_secs(60));
        assert!(max_in_window(&s, padded) <= 750);
        assert!(max_in_window(&s, Duration::from_secs(60)) >= 740);
    }

    /// Klaviyo's published pairs (profiles, events, bulk jobs): no minute ever over the
    /// steady limit, and a long run keeps 95% of it, minute after minute.
    #[test]
    fn a_long_run_keeps_the_steady_window_nearly_full() {
        let minute = Duration::from_secs(60);
        for (per_second, per_minute) in [(75, 750), (350, 3_500), (10, 150)] {
            let quota = window_quota(per_minute, minute, steady_burst(per_second, per_minute));
            let s = stamps_with(quota, per_minute as usize * 4);
            assert!(
                max_in_window(&s, minute + margin(minute)) <= per_minute as usize,
                "{per_minute}/min exceeded"
            );
            let third_minute = s
                .iter()
                .filter(|t| **t >= 2 * minute && **t < 3 * minute)
                .count();
            assert!(
                third_minute * 100 >= per_minute as usize * 95,
                "{third_minute} of {per_minute} in the third minute"
            );
        }
    }

    /// Smile's 10/s: never more than 10 in any second, and 95% of it over a long read.
    #[tokio::test(start_paused = true)]
    async fn a_per_second_only_limit_is_kept_and_nearly_used() {
        let limiter = WindowLimiter::per_second_only(10);
        let never = CancellationToken::new();
        let start = Instant::now();
        let mut s = Vec::new();
        for _ in 0..200 {
            limiter.acquire(&never).await.unwrap();
            s.push(start.elapsed());
        }
        assert!(max_in_window(&s, Duration::from_secs(1)) <= 10);
        let rate = 199.0 / s[199].as_secs_f64();
        assert!((9.4..=10.0).contains(&rate), "{rate}/s");
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_callers_for_the_retry_after() {
        let limiter = WindowLimiter::new(75, 750);
        limiter.pause(Duration::from_secs(3));
        let waited = limiter.acquire(&CancellationToken::new()).await.unwrap();
        assert!(waited >= Duration::from_secs(3), "waited only {waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_a_pause_at_once() {
        let limiter = WindowLimiter::new(75, 750);
        limiter.pause(Duration::from_secs(100));
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stopper.cancel();
        });
        let start = Instant::now();
        assert_eq!(
            limiter.acquire(&stop).await,
            None,
            "no request after a stop"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}
