//! Klaviyo's per-account rate limits: fixed windows, a 1-second burst and a 60-second steady
//! window per endpoint group; exhausting either answers 429 with `Retry-After`. The windows
//! start with the first request after the previous one ended, so tests can predict them.

use std::time::{Duration, Instant};

/// Burst and steady allowance of one endpoint group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst_per_second: u32,
    pub steady_per_minute: u32,
}

impl Limit {
    pub const fn new(burst_per_second: u32, steady_per_minute: u32) -> Self {
        Limit {
            burst_per_second,
            steady_per_minute,
        }
    }
}

/// The limits of each endpoint group this fake serves. `Default` = the published numbers
/// (revision 2026-07-15 of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlaviyoLimits {
    /// `POST /api/profile-import`, `GET|POST /api/profiles`, `GET|PATCH /api/profiles/{id}`.
    pub profiles: Limit,
    /// `POST /api/events`.
    pub events: Limit,
    /// `/api/profile-bulk-import-jobs` and everything under it.
    pub bulk_jobs: Limit,
    /// `POST /api/event-bulk-create-jobs` (the spec's `x-klaviyo-ratelimit` for
    /// `bulk_create_events`: 10/s burst, 150/m steady, its own bucket).
    pub event_bulk_jobs: Limit,
}

impl Default for KlaviyoLimits {
    fn default() -> Self {
        KlaviyoLimits {
            profiles: Limit::new(75, 750),
            events: Limit::new(350, 3_500),
            bulk_jobs: Limit::new(10, 150),
            event_bulk_jobs: Limit::new(10, 150),
        }
    }
}

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Profiles,
    Events,
    BulkJobs,
    EventBulkJobs,
}

impl Group {
    /// The group of an `/api/…` path, or `None` for paths this fake does not serve.
    pub fn of(path: &str) -> Option<Group> {
        let path = path.trim_end_matches('/');
        if path == "/api/profile-import"
            || path == "/api/profiles"
            || path.starts_with("/api/profiles/")
        {
            Some(Group::Profiles)
        } else if path == "/api/events" {
            Some(Group::Events)
        } else if path.starts_with("/api/profile-bulk-import-jobs") {
            Some(Group::BulkJobs)
        } else if path == "/api/event-bulk-create-jobs" {
            Some(Group::EventBulkJobs)
        } else {
            None
        }
    }
}

/// The steady window's state, sent as `RateLimit-*` headers on every counted answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the steady window resets.
    pub reset: u64,
}

#[derive(Debug)]
struct Window {
    length: Duration,
    limit: u32,
    started: Option<Instant>,
    used: u32,
}

impl Window {
    fn new(length: Duration, limit: u32) -> Self {
        Window {
            length,
            limit,
            started: None,
            used: 0,
        }
    }

    /// Starts a new window if the current one is over.
    fn roll(&mut self, now: Instant) {
        if self
            .started
            .is_none_or(|started| now >= started + self.length)
        {
            self.started = Some(now);
            self.used = 0;
        }
    }

    fn exhausted(&self) -> bool {
        self.used >= self.limit
    }

    /// Whole seconds until this window ends, at least 1.
    fn seconds_left(&self, now: Instant) -> u64 {
        let end = self.started.unwrap_or(now) + self.length;
        let left = end.saturating_duration_since(now);
        (left.as_millis().div_ceil(1000) as u64).max(1)
    }
}

#[derive(Debug)]
struct Windows {
    burst: Window,
    steady: Window,
}

impl Windows {
    fn new(limit: Limit) -> Self {
        Windows {
            burst: Window::new(Duration::from_secs(1), limit.burst_per_second),
            steady: Window::new(Duration::from_secs(60), limit.steady_per_minute),
        }
    }

    /// Counts one request, or says how many seconds to wait (a 429 does not count).
    fn take(&mut self, now: Instant) -> Result<Quota, u64> {
        self.burst.roll(now);
        self.steady.roll(now);
        let wait = [&self.burst, &self.steady]
            .into_iter()
            .filter(|w| w.exhausted())
            .map(|w| w.seconds_left(now))
            .max();
        if let Some(seconds) = wait {
            return Err(seconds);
        }
        self.burst.used += 1;
        self.steady.used += 1;
        Ok(Quota {
            limit: self.steady.limit,
            remaining: self.steady.limit - self.steady.used,
            reset: self.steady.seconds_left(now),
        })
    }
}

/// All groups' windows for the one account the fake serves.
#[derive(Debug)]
pub struct RateLimiter {
    profiles: Windows,
    events: Windows,
    bulk_jobs: Windows,
    event_bulk_jobs: Windows,
}

impl RateLimiter {
    pub fn new(limits: KlaviyoLimits) -> Self {
        RateLimiter {
            profiles: Windows::new(limits.profiles),
            events: Windows::new(limits.events),
            bulk_jobs: Windows::new(limits.bulk_jobs),
            event_bulk_jobs: Windows::new(limits.event_bulk_jobs),
        }
    }

    /// `Ok(quota)` when the request may proceed, `Err(retry_after_seconds)` when throttled.
    pub fn take(&mut self, group: Group, now: Instant) -> Result<Quota, u64> {
        match group {
            Group::Profiles => self.profiles.take(now),
            Group::Events => self.events.take(now),
            Group::BulkJobs => self.bulk_jobs.take(now),
            Group::EventBulkJobs => self.event_bulk_jobs.take(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, steady: u32) -> RateLimiter {
        RateLimiter::new(KlaviyoLimits {
            profiles: Limit::new(burst, steady),
            ..KlaviyoLimits::default()
        })
    }

    #[test]
    fn burst_window_throttles_then_resets() {
        let mut limiter = limiter(2, 100);
        let t0 = Instant::now();
        assert!(limiter.take(Group::Profiles, t0).is_ok());
        assert!(limiter.take(Group::Profiles, t0).is_ok());
        assert_eq!(
            limiter.take(Group::Profiles, t0 + Duration::from_millis(300)),
            Err(1)
        );
        let after = limiter.take(Group::Profiles, t0 + Duration::from_millis(1000));
        assert_eq!(after.map(|q| q.remaining), Ok(97));
    }

    #[test]
    fn steady_window_reports_seconds_until_its_reset() {
        let mut limiter = limiter(10, 3);
        let t0 = Instant::now();
        for i in 0..3 {
            limiter
                .take(Group::Profiles, t0 + Duration::from_secs(i * 2))
                .expect("within limits");
        }
        let throttled = limiter.take(Group::Profiles, t0 + Duration::from_millis(20_500));
        assert_eq!(throttled, Err(40));
    }

    #[test]
    fn throttled_requests_do_not_count() {
        let mut limiter = limiter(1, 2);
        let t0 = Instant::now();
        assert!(limiter.take(Group::Profiles, t0).is_ok());
        for _ in 0..5 {
            assert!(limiter.take(Group::Profiles, t0).is_err());
        }
        let next = limiter.take(Group::Profiles, t0 + Duration::from_secs(1));
        assert_eq!(next.map(|q| q.remaining), Ok(0));
    }

    #[test]
    fn groups_are_independent() {
        let mut limiter = limiter(1, 1);
        let t0 = Instant::now();
        assert!(limiter.take(Group::Profiles, t0).is_ok());
        assert!(limiter.take(Group::Events, t0).is_ok());
        assert!(limiter.take(Group::BulkJobs, t0).is_ok());
        assert!(limiter.take(Group::EventBulkJobs, t0).is_ok());
    }

    #[test]
    fn paths_map_to_groups() {
        assert_eq!(Group::of("/api/profile-import"), Some(Group::Profiles));
        assert_eq!(Group::of("/api/profiles/01ABC"), Some(Group::Profiles));
        assert_eq!(Group::of("/api/events/"), Some(Group::Events));
        assert_eq!(
            Group::of("/api/profile-bulk-import-jobs/x/import-errors"),
            Some(Group::BulkJobs)
        );
        assert_eq!(
            Group::of("/api/event-bulk-create-jobs/"),
            Some(Group::EventBulkJobs)
        );
        assert_eq!(Group::of("/api/lists"), None);
    }
}
