//! How hard a destination was driven, one type for every vendor: the wall time during which
//! it had work ("busy"), the part of it spent waiting on a server-side operation (a Shopify
//! bulk operation, its result's download: time no rate limit governs), and for each published
//! limit the requests sent, the units they cost (requests, or Shopify's query-cost points),
//! the waits on our limiter and the answers refused as too fast, next to the ceiling.
//!
//! The **share of the ceiling** is what a limit allowed over the busy time left when no
//! operation ran ("bound" time) that was used: the sustained rate (`min(per second, per
//! minute / 60)`) times the bound time, plus, for a bucket that starts a busy period with
//! points in hand (Shopify's cost bucket), the points it held at the start of each bound
//! period and no longer held at its end. A destination driven flat out uses 100%; one whose
//! bucket sat full, or whose requests trickled out slower than the limit, uses less, and
//! that is the daemon being the bottleneck. A vendor counting a per-second window only (the
//! loyalty apps) lets a whole window's requests go at once, so each bound period adds one
//! window's allowance the same way. A short span of a window without a bucket
//! (Klaviyo's limiter lets a small burst through at once) may read a little above 100%.
//!
//! The pass report prints the difference of two snapshots; a progress display can take
//! snapshots at any moment (a period still open counts up to now).

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Requests per window (Klaviyo, the loyalty apps).
    Requests,
    /// Query-cost points per second (Shopify's calculated cost).
    Points,
}

/// A vendor's published limit for one group of endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceiling {
    /// For the report, e.g. `bulk jobs`.
    pub name: &'static str,
    /// What `per_second` and `per_minute` count.
    pub unit: Unit,
    /// The published burst window (requests per second), or a bucket's restore rate (points
    /// per second).
    pub per_second: u32,
    /// The published steady window, requests per minute (`None`: the vendor has none).
    pub per_minute: Option<u32>,
}

impl Ceiling {
    /// What the limit sustains per second over a long run: the tighter of its windows.
    pub fn sustained(&self) -> f64 {
        let per_second = f64::from(self.per_second);
        self.per_minute
            .map_or(per_second, |m| per_second.min(f64::from(m) / 60.0))
    }
}

/// A bucket that can hold units in hand beyond its restore rate (Shopify's cost bucket):
/// what it holds at the start of a bound period is part of that period's ceiling.
pub trait Reservoir: Send + Sync {
    /// Units available now.
    fn available(&self) -> f64;
    /// Units it can hold (learned from the vendor's answers; an early estimate may be off).
    fn capacity(&self) -> f64;
}

/// Counters shared by every task of one client.
pub struct Throughput {
    clock: Mutex<Clock>,
    windows: Vec<Window>,
    /// The window that draws from a reservoir, and the reservoir.
    reservoir: Option<(usize, Arc<dyn Reservoir>)>,
}

impl fmt::Debug for Throughput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throughput")
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

/// Wall time while a condition holds, counted up to now while it still does.
#[derive(Debug, Default)]
struct Span {
    since: Option<Instant>,
    total: Duration,
}

impl Span {
    fn set(&mut self, on: bool, now: Instant) {
        match (on, self.since) {
            (true, None) => self.since = Some(now),
            (false, Some(since)) => {
                self.total += now - since;
                self.since = None;
            }
            _ => {}
        }
    }

    fn read(&self, now: Instant) -> Duration {
        self.total + self.since.map_or(Duration::ZERO, |s| now - s)
    }
}

#[derive(Debug, Default)]
struct Clock {
    /// Guards held: requests, phases, operations.
    in_flight: usize,
    /// Of which waiting on a server-side operation or download.
    unbound: usize,
    busy: Span,
    bound: Span,
    operations_running: Span,
    operations: u64,
    /// Bound periods opened.
    bound_periods: u64,
    /// The reservoir's level when the open bound period started.
    level_at_bound_start: Option<f64>,
    /// Units the reservoir gave up over closed bound periods.
    drained: f64,
}

#[derive(Debug)]
struct Window {
    ceiling: Ceiling,
    /// The ceiling's `per_second`, which a vendor's answers may correct (Shopify's plan).
    per_second: AtomicU32,
    requests: AtomicU64,
    /// Thousandths of a unit (Shopify's costs are fractional in principle).
    milli_units: AtomicU64,
    waited_micros: AtomicU64,
    refused: AtomicU64,
}

/// Holds the destination busy until dropped; any number may be held at once.
#[must_use = "the destination is busy only while the guard lives"]
pub struct Busy<'a> {
    throughput: &'a Throughput,
    unbound: bool,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let t = self.throughput;
        let mut clock = t.clock.lock().expect("throughput clock lock");
        clock.in_flight -= 1;
        if self.unbound {
            clock.unbound -= 1;
        }
        t.settle(&mut clock);
    }
}

impl Throughput {
    /// One window per ceiling, in this order ([`Throughput::sent`] takes the index).
    pub fn new(ceilings: impl IntoIterator<Item = Ceiling>) -> Throughput {
        Throughput {
            clock: Mutex::new(Clock::default()),
            windows: ceilings
                .into_iter()
                .map(|ceiling| Window {
                    per_second: AtomicU32::new(ceiling.per_second),
                    ceiling,
                    requests: AtomicU64::new(0),
                    milli_units: AtomicU64::new(0),
                    waited_micros: AtomicU64::new(0),
                    refused: AtomicU64::new(0),
                })
                .collect(),
            reservoir: None,
        }
    }

    /// Window `window` draws from `reservoir` (see the module doc).
    pub fn with_reservoir(mut self, window: usize, reservoir: Arc<dyn Reservoir>) -> Throughput {
        self.reservoir = Some((window, reservoir));
        self
    }

    /// Marks the destination busy while the guard lives: a request, or a whole phase of
    /// work (so the gaps between its requests count as the daemon's own time).
    pub fn busy(&self) -> Busy<'_> {
        self.hold(false, false)
    }

    /// Marks the destination busy waiting on one server-side operation (a bulk operation),
    /// counted, while the guard lives: time no rate limit governs.
    pub fn operation(&self) -> Busy<'_> {
        self.hold(true, true)
    }

    /// Marks the destination busy on work no rate limit governs (a bulk result's download,
    /// a staged upload) while the guard lives.
    pub fn unbound(&self) -> Busy<'_> {
        self.hold(true, false)
    }

    fn hold(&self, unbound: bool, operation: bool) -> Busy<'_> {
        let mut clock = self.clock.lock().expect("throughput clock lock");
        clock.in_flight += 1;
        if unbound {
            clock.unbound += 1;
        }
        if operation {
            clock.operations += 1;
        }
        self.settle(&mut clock);
        Busy {
            throughput: self,
            unbound,
        }
    }

    /// Opens or closes the spans after a guard came or went.
    fn settle(&self, clock: &mut Clock) {
        let now = Instant::now();
        clock.busy.set(clock.in_flight > 0, now);
        clock.operations_running.set(clock.unbound > 0, now);
        let bound = clock.in_flight > 0 && clock.unbound == 0;
        clock.bound.set(bound, now);
        match (bound, clock.level_at_bound_start) {
            (true, None) => {
                clock.bound_periods += 1;
                clock.level_at_bound_start = Some(self.level().0);
            }
            (false, Some(start)) => {
                clock.drained += self.drained_since(start);
                clock.level_at_bound_start = None;
            }
            _ => {}
        }
    }

    /// The reservoir's (available, capacity), zero without one.
    fn level(&self) -> (f64, f64) {
        self.reservoir
            .as_ref()
            .map_or((0.0, 0.0), |(_, r)| (r.available(), r.capacity()))
    }

    /// What the reservoir gave up since it held `start` (capped at its capacity as known
    /// now: before the vendor's first answer the estimate of its size may be too large).
    fn drained_since(&self, start: f64) -> f64 {
        let (available, capacity) = self.level();
        (start.min(capacity) - available).max(0.0)
    }

    /// Records one request sent in window `window`, after `waited` on its limiter.
    pub fn sent(&self, window: usize, waited: Duration) {
        let window = &self.windows[window];
        window.requests.fetch_add(1, Ordering::Relaxed);
        window
            .waited_micros
            .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
    }

    /// Records `units` (points) a request in window `window` cost, as the vendor counted them.
    pub fn spent(&self, window: usize, units: f64) {
        self.windows[window]
            .milli_units
            .fetch_add((units.max(0.0) * 1000.0).round() as u64, Ordering::Relaxed);
    }

    /// Records an answer in window `window` that refused a request as too fast (429,
    /// Shopify's `THROTTLED`).
    pub fn refused(&self, window: usize) {
        self.windows[window].refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Corrects window `window`'s per-second ceiling (Shopify's restore rate, as answered).
    pub fn set_per_second(&self, window: usize, per_second: u32) {
        self.windows[window]
            .per_second
            .store(per_second, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ThroughputSnapshot {
        let now = Instant::now();
        let clock = self.clock.lock().expect("throughput clock lock");
        let open_drain = clock
            .level_at_bound_start
            .map_or(0.0, |start| self.drained_since(start));
        let drained = clock.drained + open_drain;
        ThroughputSnapshot {
            busy: clock.busy.read(now),
            bound: clock.bound.read(now),
            bound_periods: clock.bound_periods,
            operations: clock.operations,
            operations_running: clock.operations_running.read(now),
            windows: self
                .windows
                .iter()
                .enumerate()
                .map(|(i, w)| WindowUse {
                    ceiling: Ceiling {
                        per_second: w.per_second.load(Ordering::Relaxed),
                        ..w.ceiling
                    },
                    requests: w.requests.load(Ordering::Relaxed),
                    units: w.milli_units.load(Ordering::Relaxed) as f64 / 1000.0,
                    waited: Duration::from_micros(w.waited_micros.load(Ordering::Relaxed)),
                    refused: w.refused.load(Ordering::Relaxed),
                    drained: match &self.reservoir {
                        Some((window, _)) if *window == i => drained,
                        _ => 0.0,
                    },
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
    /// Of it, the time no server-side operation or download ran: the time a rate limit
    /// governed, over which the share of the ceiling is taken.
    pub bound: Duration,
    /// How many bound periods began (each starts with a per-second window's allowance).
    pub bound_periods: u64,
    /// Server-side operations waited on (Shopify bulk operations).
    pub operations: u64,
    /// Wall time with an operation (or a download) running.
    pub operations_running: Duration,
    /// One entry per published limit, in the client's order.
    pub windows: Vec<WindowUse>,
}

/// One window's use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowUse {
    /// The limit these requests count against.
    pub ceiling: Ceiling,
    /// Requests sent under it.
    pub requests: u64,
    /// Points they cost, as the vendor counted them (windows counted in points).
    pub units: f64,
    /// Summed over requests: concurrent waits add up, so this can exceed the busy time.
    pub waited: Duration,
    /// Answers that refused a request as too fast.
    pub refused: u64,
    /// Units a reservoir held at the start of bound periods and gave up by their end.
    pub drained: f64,
}

impl WindowUse {
    /// What counts against the ceiling: requests, or points.
    pub fn used(&self) -> f64 {
        match self.ceiling.unit {
            Unit::Requests => self.requests as f64,
            Unit::Points => self.units,
        }
    }

    /// Used per second over `bound`.
    pub fn per_second(&self, bound: Duration) -> f64 {
        if bound.is_zero() {
            0.0
        } else {
            self.used() / bound.as_secs_f64()
        }
    }

    /// The share of what the limit allowed over `bound` that was used (`None` when it
    /// allowed nothing: no bound time).
    pub fn share(&self, bound: Duration, bound_periods: u64) -> Option<f64> {
        let window_start = match (self.ceiling.unit, self.ceiling.per_minute) {
            (Unit::Requests, None) => f64::from(self.ceiling.per_second) * bound_periods as f64,
            _ => 0.0,
        };
        let allowed = self.ceiling.sustained() * bound.as_secs_f64() + self.drained + window_start;
        (allowed > 0.0).then(|| self.used() / allowed)
    }
}

impl ThroughputSnapshot {
    /// The share of the ceiling of the window used most (the one that bound the
    /// destination); `None` when no window was used or no time was bound.
    pub fn share(&self) -> Option<f64> {
        self.windows
            .iter()
            .filter(|w| w.used() > 0.0)
            .filter_map(|w| w.share(self.bound, self.bound_periods))
            .max_by(f64::total_cmp)
    }

    /// The window named `name`.
    pub fn window(&self, name: &str) -> Option<&WindowUse> {
        self.windows.iter().find(|w| w.ceiling.name == name)
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
                units: (now.units - then.map_or(0.0, |t| t.units)).max(0.0),
                waited: now
                    .waited
                    .saturating_sub(then.map_or(Duration::ZERO, |t| t.waited)),
                refused: now.refused - then.map_or(0, |t| t.refused),
                drained: (now.drained - then.map_or(0.0, |t| t.drained)).max(0.0),
            })
            .collect();
        ThroughputSnapshot {
            busy: self.busy.saturating_sub(earlier.busy),
            bound: self.bound.saturating_sub(earlier.bound),
            bound_periods: self.bound_periods - earlier.bound_periods,
            operations: self.operations - earlier.operations,
            operations_running: self
                .operations_running
                .saturating_sub(earlier.operations_running),
            windows,
        }
    }
}

impl fmt::Display for ThroughputSnapshot {
    /// `busy 96.1 s; bulk jobs: 221 requests = 2.3/s of 10/s burst, 138/min of 150/min
    /// steady, 92.0% of the ceiling, 3.1 s waiting on the limiter; …`, windows without
    /// requests left out; rates are over the bound time (busy without an operation running).
    /// Bound for less than a minute, the steady part counts the requests against one
    /// minute's budget instead: a rate scaled up from a few seconds would read as more than
    /// the ceiling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "busy {:.1} s", self.busy.as_secs_f64())?;
        if self.operations > 0 {
            write!(
                f,
                ", {} bulk operations running {:.1} s of it",
                self.operations,
                self.operations_running.as_secs_f64()
            )?;
        }
        for w in self.windows.iter().filter(|w| w.requests > 0) {
            let rate = w.per_second(self.bound);
            let (what, waiting_on, refusals) = match w.ceiling.unit {
                Unit::Requests => (format!("{} requests", w.requests), "the limiter", "429"),
                Unit::Points => (
                    format!("{:.0} points in {} requests", w.units, w.requests),
                    "the cost bucket",
                    "THROTTLED",
                ),
            };
            write!(f, "; {}: {what}", w.ceiling.name)?;
            match (w.ceiling.unit, w.ceiling.per_minute) {
                (Unit::Points, _) => write!(
                    f,
                    " = {rate:.1}/s of the {}/s restore rate",
                    w.ceiling.per_second
                )?,
                (Unit::Requests, None) => {
                    write!(f, " = {rate:.1}/s of {}/s", w.ceiling.per_second)?
                }
                (Unit::Requests, Some(per_minute)) => {
                    let steady = if self.bound >= Duration::from_secs(60) {
                        format!("{:.0}/min of {per_minute}/min steady", rate * 60.0)
                    } else {
                        format!("{} of the {per_minute}/min steady window", w.requests)
                    };
                    write!(
                        f,
                        " = {rate:.1}/s of {}/s burst, {steady}",
                        w.ceiling.per_second
                    )?
                }
            }
            if w.drained >= 1.0 {
                write!(f, " (and {:.0} from the bucket's reserve)", w.drained)?;
            }
            match w.share(self.bound, self.bound_periods) {
                Some(share) => write!(f, ", {:.1}% of the ceiling", share * 100.0)?,
                None => write!(f, ", no time bound by the limit")?,
            }
            if w.refused > 0 {
                write!(f, ", {} {refusals} answers", w.refused)?;
            }
            write!(
                f,
                ", {:.1} s waiting on {waiting_on}",
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
        unit: Unit::Requests,
        per_second: 10,
        per_minute: Some(150),
    };

    const POINTS: Ceiling = Ceiling {
        name: "cost points",
        unit: Unit::Points,
        per_second: 50,
        per_minute: None,
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
    fn time_waiting_on_an_operation_is_busy_but_not_bound() {
        let t = Throughput::new([POINTS]);
        let _phase = t.busy();
        std::thread::sleep(Duration::from_millis(20));
        {
            let _op = t.operation();
            let _download = t.unbound();
            std::thread::sleep(Duration::from_millis(40));
        }
        std::thread::sleep(Duration::from_millis(20));
        let s = t.snapshot();
        assert_eq!(s.operations, 1, "the download is not an operation");
        assert!(s.operations_running >= Duration::from_millis(40), "{s:?}");
        assert!(s.busy >= Duration::from_millis(80), "{s:?}");
        assert!(
            s.bound >= Duration::from_millis(40) && s.bound < Duration::from_millis(60),
            "only the time around the operation is bound: {s:?}"
        );
        assert_eq!(s.busy, s.bound + s.operations_running);
    }

    /// A bucket whose level the test sets.
    struct Level(Mutex<f64>);

    impl Reservoir for Level {
        fn available(&self) -> f64 {
            *self.0.lock().unwrap()
        }
        fn capacity(&self) -> f64 {
            1000.0
        }
    }

    #[test]
    fn a_bucket_drained_during_bound_time_adds_to_the_ceiling() {
        let level = Arc::new(Level(Mutex::new(2000.0)));
        let t = Throughput::new([POINTS]).with_reservoir(0, level.clone());
        {
            let _busy = t.busy();
            *level.0.lock().unwrap() = 100.0;
        }
        // Started at 2,000 by an estimate, but the bucket holds 1,000 at most.
        assert!((t.snapshot().windows[0].drained - 900.0).abs() < 1e-9);
        {
            // A period that ends fuller than it began gave nothing up.
            let _busy = t.busy();
            *level.0.lock().unwrap() = 500.0;
        }
        let s = t.snapshot();
        assert!((s.windows[0].drained - 900.0).abs() < 1e-9, "{s:?}");
        let use_ = WindowUse {
            units: 1400.0,
            requests: 100,
            ..s.windows[0]
        };
        // 50/s for 10 s and 900 from the bucket: 1,400 points is exactly the ceiling.
        assert_eq!(use_.share(Duration::from_secs(10), 2), Some(1.0));
    }

    #[test]
    fn a_span_reports_requests_rate_share_and_waits_against_the_ceiling() {
        let before = ThroughputSnapshot {
            busy: Duration::from_secs(1),
            bound: Duration::from_secs(1),
            windows: vec![WindowUse {
                ceiling: JOBS,
                requests: 6,
                units: 0.0,
                waited: Duration::from_secs(1),
                refused: 0,
                drained: 0.0,
            }],
            ..Default::default()
        };
        let after = ThroughputSnapshot {
            busy: Duration::from_secs(11),
            bound: Duration::from_secs(11),
            windows: vec![WindowUse {
                requests: 26,
                waited: Duration::from_millis(4500),
                refused: 2,
                ..before.windows[0]
            }],
            ..Default::default()
        };
        let span = after - before;
        assert_eq!(span.windows[0].requests, 20);
        // 2.5/s sustained (150/min) over 10 s allows 25.
        assert_eq!(span.share(), Some(0.8));
        assert_eq!(
            span.to_string(),
            "busy 10.0 s; bulk jobs: 20 requests = 2.0/s of 10/s burst, 20 of the 150/min steady window, 80.0% of the ceiling, 2 429 answers, 3.5 s waiting on the limiter"
        );
        let long = ThroughputSnapshot {
            busy: Duration::from_secs(120),
            bound: Duration::from_secs(120),
            ..span
        };
        assert!(
            long.to_string().contains("10/min of 150/min steady"),
            "{long}"
        );
    }

    #[test]
    fn points_read_against_the_restore_rate_with_operations_named() {
        let span = ThroughputSnapshot {
            busy: Duration::from_secs(30),
            bound: Duration::from_secs(10),
            bound_periods: 1,
            operations: 2,
            operations_running: Duration::from_secs(20),
            windows: vec![WindowUse {
                ceiling: POINTS,
                requests: 40,
                units: 1440.0,
                waited: Duration::from_millis(8200),
                refused: 1,
                drained: 1000.0,
            }],
        };
        assert_eq!(
            span.to_string(),
            "busy 30.0 s, 2 bulk operations running 20.0 s of it; cost points: 1440 points in 40 requests = 144.0/s of the 50/s restore rate (and 1000 from the bucket's reserve), 96.0% of the ceiling, 1 THROTTLED answers, 8.2 s waiting on the cost bucket"
        );
    }
}
