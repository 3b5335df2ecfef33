//! How hard a destination was driven: the wall time during which it had work in flight
//! ("busy"), and for each of its rate-limited windows the requests sent and the time spent
//! waiting on the limiter, next to the published ceiling. The pass report prints the
//! difference of two snapshots; a progress display can take snapshots at any moment (a busy
//! period still open counts up to now).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A vendor's published limits for one group of endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceiling {
    /// For the report, e.g. `bulk jobs`.
    pub name: &'static str,
    /// The published burst window: requests per second.
    pub per_second: u32,
    /// The published steady window: requests per minute.
    pub per_minute: u32,
}

/// Counters shared by every task of one client.
#[derive(Debug)]
pub struct Throughput {
    busy: Mutex<BusyClock>,
    windows: Vec<Window>,
}

#[derive(Debug, Default)]
struct BusyClock {
    in_flight: usize,
    since: Option<Instant>,
    total: Duration,
}

#[derive(Debug)]
struct Window {
    ceiling: Ceiling,
    requests: AtomicU64,
    waited_micros: AtomicU64,
}

/// Holds the destination busy until dropped; any number may be held at once.
#[must_use = "the destination is busy only while the guard lives"]
pub struct Busy<'a>(&'a Throughput);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut clock = self.0.busy.lock().expect("busy clock lock");
        clock.in_flight -= 1;
        if clock.in_flight == 0 {
            if let Some(since) = clock.since.take() {
                clock.total += since.elapsed();
            }
        }
    }
}

impl Throughput {
    /// One window per ceiling, in this order ([`Throughput::sent`] takes the index).
    pub fn new(ceilings: impl IntoIterator<Item = Ceiling>) -> Throughput {
        Throughput {
            busy: Mutex::new(BusyClock::default()),
            windows: ceilings
                .into_iter()
                .map(|ceiling| Window {
                    ceiling,
                    requests: AtomicU64::new(0),
                    waited_micros: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Marks the destination busy while the guard lives.
    pub fn busy(&self) -> Busy<'_> {
        let mut clock = self.busy.lock().expect("busy clock lock");
        if clock.in_flight == 0 {
            clock.since = Some(Instant::now());
        }
        clock.in_flight += 1;
        Busy(self)
    }

    /// Records one request sent in window `window`, after `waited` on its limiter.
    pub fn sent(&self, window: usize, waited: Duration) {
        let window = &self.windows[window];
        window.requests.fetch_add(1, Ordering::Relaxed);
        window
            .waited_micros
            .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ThroughputSnapshot {
        let busy = {
            let clock = self.busy.lock().expect("busy clock lock");
            clock.total + clock.since.map_or(Duration::ZERO, |s| s.elapsed())
        };
        ThroughputSnapshot {
            busy,
            windows: self
                .windows
                .iter()
                .map(|w| WindowUse {
                    ceiling: w.ceiling,
                    requests: w.requests.load(Ordering::Relaxed),
                    waited: Duration::from_micros(w.waited_micros.load(Ordering::Relaxed)),
                })
                .collect(),
        }
    }
}

/// The counters at one moment, or (subtracted) over a span such as a pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThroughputSnapshot {
    /// Wall time with work in flight.
    pub busy: Duration,
    /// One entry per published limit, in the client's order.
    pub windows: Vec<WindowUse>,
}

/// One window's use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowUse {
    /// The limit these requests count against.
    pub ceiling: Ceiling,
    /// Requests sent under it, to compare with the ceiling over the busy time.
    pub requests: u64,
    /// Summed over requests: concurrent waits add up, so this can exceed the busy time.
    pub waited: Duration,
}

impl WindowUse {
    /// Requests per second over `busy`.
    pub fn per_second(&self, busy: Duration) -> f64 {
        if busy.is_zero() {
            0.0
        } else {
            self.requests as f64 / busy.as_secs_f64()
        }
    }
}

impl std::ops::Sub for ThroughputSnapshot {
    type Output = ThroughputSnapshot;

    /// The activity between two snapshots of the same client.
    fn sub(self, earlier: ThroughputSnapshot) -> ThroughputSnapshot {
        let windows = self
            .windows
            .iter()
            .zip(
                earlier
                    .windows
                    .iter()
                    .map(Some)
                    .chain(std::iter::repeat(None)),
            )
            .map(|(now, then)| WindowUse {
                ceiling: now.ceiling,
                requests: now.requests - then.map_or(0, |t| t.requests),
                waited: now
                    .waited
                    .saturating_sub(then.map_or(Duration::ZERO, |t| t.waited)),
            })
            .collect();
        ThroughputSnapshot {
            busy: self.busy.saturating_sub(earlier.busy),
            windows,
        }
    }
}

impl fmt::Display for ThroughputSnapshot {
    /// `busy 96.1 s; bulk jobs: 221 requests = 2.3/s of 10/s burst, 138/min of 150/min
    /// steady, 3.1 s waiting on the limiter; …`, windows without requests left out. Busy for
    /// less than a minute, the steady part counts the requests against one minute's budget
    /// instead: a rate scaled up from a few seconds would read as more than the ceiling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "busy {:.1} s", self.busy.as_secs_f64())?;
        for w in self.windows.iter().filter(|w| w.requests > 0) {
            let rate = w.per_second(self.busy);
            let steady = if self.busy >= Duration::from_secs(60) {
                format!(
                    "{:.0}/min of {}/min steady",
                    rate * 60.0,
                    w.ceiling.per_minute
                )
            } else {
                format!(
                    "{} of the {}/min steady window",
                    w.requests, w.ceiling.per_minute
                )
            };
            write!(
                f,
                "; {}: {} requests = {rate:.1}/s of {}/s burst, {steady}, {:.1} s waiting on the limiter",
                w.ceiling.name,
                w.requests,
                w.ceiling.per_second,
                w.waited.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOBS: Ceiling = Ceiling {
        name: "bulk jobs",
        per_second: 10,
        per_minute: 150,
    };

    #[test]
    fn overlapping_work_counts_once_and_an_open_period_counts_up_to_now() {
        let t = Throughput::new([JOBS]);
        {
            let _a = t.busy();
            let _b = t.busy();
            std::thread::sleep(Duration::from_millis(30));
        }
        let closed = t.snapshot().busy;
        assert!(closed >= Duration::from_millis(30) && closed < Duration::from_millis(60));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(t.snapshot().busy, closed, "idle time is not busy");
        let _c = t.busy();
        std::thread::sleep(Duration::from_millis(20));
        assert!(t.snapshot().busy >= closed + Duration::from_millis(20));
    }

    #[test]
    fn a_span_reports_requests_rate_and_waits_against_the_ceiling() {
        let before = ThroughputSnapshot {
            busy: Duration::from_secs(1),
            windows: vec![WindowUse {
                ceiling: JOBS,
                requests: 6,
                waited: Duration::from_secs(1),
            }],
        };
        let after = ThroughputSnapshot {
            busy: Duration::from_secs(11),
            windows: vec![WindowUse {
                ceiling: JOBS,
                requests: 26,
                waited: Duration::from_millis(4500),
            }],
        };
        let span = after - before;
        assert_eq!(span.windows[0].requests, 20);
        assert_eq!(
            span.to_string(),
            "busy 10.0 s; bulk jobs: 20 requests = 2.0/s of 10/s burst, 20 of the 150/min steady window, 3.5 s waiting on the limiter"
        );
        let long = ThroughputSnapshot {
            busy: Duration::from_secs(120),
            ..span
        };
        assert!(
            long.to_string().contains("10/min of 150/min steady"),
            "{long}"
        );
    }
}
