//! When to poll a running bulk mutation next.
//!
//! Shopify documents `objectCount` as a running count of the objects an operation has
//! processed, meant for tracking its progress; for a bulk mutation that is its lines done
//! (the fake counts them so, one per line). Knowing how many lines were submitted, the rate
//! seen since the first poll tells when the last one will be done, and the next poll is
//! timed just after that instead of up to a whole interval late: the slot the operation
//! frees would otherwise stay idle until then. A count that does not grow, or grows past the
//! lines submitted (objects that are not lines), tells nothing, and the interval stays.

use std::time::{Duration, Instant};

/// Fastest polling of one operation: four a second. A status poll costs 1 point (10
/// reserved); five operations near their ends spend at most 20 points a second, a fifth of
/// what a Standard plan restores, and only in their last moments.
pub(super) const MIN_POLL: Duration = Duration::from_millis(250);
/// How far past the estimated end a poll aims, so that it lands after it rather than just
/// before (which would cost a [`MIN_POLL`] more): a fixed part for the request's own time...
const MARGIN: Duration = Duration::from_millis(40);
/// ...and a share of the wait, for a rate that drifts.
const MARGIN_SHARE: f64 = 0.02;

/// The pace of one operation's polls.
pub(super) struct Pace {
    interval: Duration,
    /// Objects the operation will have processed when it ends; `None` when not known (a bulk
    /// query), which keeps the interval.
    objects: Option<u64>,
    /// The first poll: when, and the count it showed.
    first: Option<(Instant, u64)>,
    /// Objects a second, from the last poll that told.
    rate: Option<f64>,
}

impl Pace {
    pub(super) fn new(interval: Duration, objects: Option<u64>) -> Pace {
        Pace {
            interval,
            objects,
            first: None,
            rate: None,
        }
    }

    /// How long after the end the pace foretells a poll at `at` came; `None` without a pace.
    pub(super) fn late(&self, at: Instant) -> Option<Duration> {
        let ((since, from), rate, total) = (self.first?, self.rate?, self.objects?);
        let end = since + Duration::from_secs_f64(total.saturating_sub(from) as f64 / rate);
        Some(at.saturating_duration_since(end))
    }

    /// How long to wait after a poll at `at` that showed the operation running with
    /// `count` objects processed: never longer than the interval nor shorter than
    /// [`MIN_POLL`] (or the interval, if that is shorter). An end within reach is aimed at
    /// directly; one just beyond it is approached so that the poll before it comes at least
    /// [`MIN_POLL`] early, leaving room to aim at it rather than overshoot by the floor.
    pub(super) fn after(&mut self, at: Instant, count: u64) -> Duration {
        let floor = MIN_POLL.min(self.interval);
        let Some(total) = self.objects else {
            return self.interval;
        };
        let (since, from) = *self.first.get_or_insert((at, count));
        let elapsed = at.saturating_duration_since(since).as_secs_f64();
        if count <= from || count > total || elapsed <= 0.0 {
            return self.interval;
        }
        let rate = (count - from) as f64 / elapsed;
        self.rate = Some(rate);
        // Capped well past the interval: only whether it is beyond matters there.
        let left = ((total - count) as f64 / rate).min(2.0 * self.interval.as_secs_f64());
        let aim = Duration::from_secs_f64(left * (1.0 + MARGIN_SHARE)) + MARGIN;
        let wait = if aim > self.interval {
            self.interval.min(aim - floor)
        } else {
            aim
        };
        wait.clamp(floor, self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_poll_is_timed_just_after_the_estimated_end() {
        let start = Instant::now();
        let mut pace = Pace::new(SECOND, Some(1_000));
        assert_eq!(pace.after(start, 0), SECOND, "no rate from one poll");
        // 400 lines in a second: 600 left, 1.5 s; the interval is the longest wait.
        assert_eq!(pace.after(start + SECOND, 400), SECOND);
        // 800 in two: 200 left, half a second, and a little more.
        let wait = pace.after(start + 2 * SECOND, 800);
        assert!(
            wait > Duration::from_millis(500) && wait < Duration::from_millis(600),
            "{wait:?}"
        );
        // Seen ended 100 ms after the 2.5 s that pace foretells.
        let seen = start + Duration::from_millis(2_600);
        assert_eq!(pace.late(seen), Some(Duration::from_millis(100)));
    }

    #[test]
    fn an_end_just_past_the_interval_is_approached_to_leave_room_for_the_last_poll() {
        let start = Instant::now();
        let mut pace = Pace::new(SECOND, Some(1_000));
        pace.after(start, 0);
        // 480 a second, 520 left: the end is 1.08 s away. Polling in a second would find
        // 80 ms left and have to wait the floor; polling early lets the next one aim.
        let wait = pace.after(start + SECOND, 480);
        assert!(
            wait > Duration::from_millis(800) && wait < Duration::from_millis(950),
            "{wait:?}"
        );
        let next = pace.after(
            start + SECOND + wait,
            480 + (wait.as_secs_f64() * 480.0) as u64,
        );
        assert!(
            next >= MIN_POLL && next < Duration::from_millis(350),
            "{next:?}"
        );
    }

    #[test]
    fn near_the_end_it_polls_no_faster_than_four_times_a_second() {
        let start = Instant::now();
        let mut pace = Pace::new(SECOND, Some(1_000));
        pace.after(start, 0);
        assert_eq!(pace.after(start + 2 * SECOND, 999), MIN_POLL);
        assert_eq!(pace.after(start + 3 * SECOND, 1_000), MIN_POLL);
        // A shorter configured interval is kept.
        let mut fast = Pace::new(Duration::from_millis(50), Some(1_000));
        fast.after(start, 0);
        assert_eq!(fast.after(start + SECOND, 999), Duration::from_millis(50));
    }

    #[test]
    fn a_count_that_tells_nothing_keeps_the_interval() {
        let start = Instant::now();
        // Not counted (a query's objects are unknown ahead).
        let mut query = Pace::new(SECOND, None);
        query.after(start, 0);
        assert_eq!(query.after(start + SECOND, 900), SECOND);
        // Not growing.
        let mut still = Pace::new(SECOND, Some(1_000));
        still.after(start, 0);
        assert_eq!(still.after(start + 5 * SECOND, 0), SECOND);
        // Past the lines submitted: not lines.
        let mut other = Pace::new(SECOND, Some(1_000));
        other.after(start, 0);
        assert_eq!(other.after(start + SECOND, 1_200), SECOND);
    }
}
