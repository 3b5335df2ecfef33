//! How far long work has got: one set of atomic counters per phase, updated by the pipeline
//! (the backfill's orders, bulk import jobs, storefront writes, reconcile's read-back) and
//! read by whoever shows it — progress bars on a terminal, a periodic log line elsewhere
//! ([`render`]), and anything else that takes a [`Progress::snapshot`]. Updating is a relaxed
//! atomic add, so counting costs the pipeline nothing measurable.

pub mod render;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A phase of work that can take minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Orders read by the first backfill's bulk operation (its total is unknown ahead).
    Backfill,
    /// Profiles sent in Klaviyo bulk import jobs, against the profiles pending.
    BulkJobs,
    /// Shopify customers written (tags and metafields), against those pending.
    Storefront,
    /// Objects read back from the destinations by reconcile.
    Reconcile,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Backfill,
        Phase::BulkJobs,
        Phase::Storefront,
        Phase::Reconcile,
    ];

    /// The name in log fields and bar labels.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Backfill => "backfill",
            Phase::BulkJobs => "bulk_jobs",
            Phase::Storefront => "storefront",
            Phase::Reconcile => "reconcile",
        }
    }

    /// What its count counts.
    pub fn unit(self) -> &'static str {
        match self {
            Phase::Backfill => "orders",
            Phase::BulkJobs => "profiles",
            Phase::Storefront => "customers",
            Phase::Reconcile => "objects read",
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    active: AtomicBool,
    done: AtomicU64,
    /// 0: not known ahead.
    total: AtomicU64,
}

/// The counters of every phase; shared (in an `Arc`) by the clients that count and the
/// renderers that show.
#[derive(Debug, Default)]
pub struct Progress {
    counters: [Counter; 4],
}

/// One phase as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseProgress {
    pub phase: Phase,
    /// Whether the phase is running now.
    pub active: bool,
    pub done: u64,
    /// `None` when not known ahead.
    pub total: Option<u64>,
}

impl Progress {
    fn counter(&self, phase: Phase) -> &Counter {
        &self.counters[phase as usize]
    }

    /// The phase starts (again) from zero, with `total` items when known.
    pub fn start(&self, phase: Phase, total: Option<u64>) {
        let c = self.counter(phase);
        c.done.store(0, Ordering::Relaxed);
        c.total.store(total.unwrap_or(0), Ordering::Relaxed);
        c.active.store(true, Ordering::Relaxed);
    }

    /// `n` more items done.
    pub fn add(&self, phase: Phase, n: u64) {
        self.counter(phase).done.fetch_add(n, Ordering::Relaxed);
    }

    /// The phase ended (its counts stay readable).
    pub fn finish(&self, phase: Phase) {
        self.counter(phase).active.store(false, Ordering::Relaxed);
    }

    /// Every phase as it stands.
    pub fn snapshot(&self) -> [PhaseProgress; 4] {
        Phase::ALL.map(|phase| {
            let c = self.counter(phase);
            let total = c.total.load(Ordering::Relaxed);
            PhaseProgress {
                phase,
                active: c.active.load(Ordering::Relaxed),
                done: c.done.load(Ordering::Relaxed),
                total: (total > 0).then_some(total),
            }
        })
    }
}

/// Marks `phase` finished when dropped, so an early return or an error ends it too.
pub struct Running<'a> {
    progress: &'a Progress,
    phase: Phase,
}

impl Progress {
    /// Starts `phase`; it finishes when the guard drops.
    pub fn run(&self, phase: Phase, total: Option<u64>) -> Running<'_> {
        self.start(phase, total);
        Running {
            progress: self,
            phase,
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.progress.finish(self.phase);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_counts_from_its_start_and_stays_readable_after_it_ends() {
        let progress = Progress::default();
        progress.add(Phase::Backfill, 5);
        {
            let _running = progress.run(Phase::Backfill, None);
            progress.add(Phase::Backfill, 2_000);
            progress.add(Phase::Backfill, 3);
            let now = progress.snapshot()[0];
            assert!(now.active);
            assert_eq!((now.done, now.total), (2_003, None));
        }
        let after = progress.snapshot()[0];
        assert!(!after.active);
        assert_eq!(after.done, 2_003);
        progress.start(Phase::Storefront, Some(40));
        assert_eq!(progress.snapshot()[2].total, Some(40));
    }
}
