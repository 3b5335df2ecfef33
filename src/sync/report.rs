//! What a pass did, in the numbers an operator checks: what was read, the tier distribution,
//! what was written, and how hard each API was used.

use std::fmt;
use std::time::Duration;

use crate::http::{ApiStatsSnapshot, ThroughputSnapshot};
use crate::sinks::klaviyo::EventReport;
use crate::sinks::DeliveryReport;
use crate::sources::shopify::IngestReport;
use crate::store::OutboxCounts;

use super::EvaluationReport;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierCount {
    /// The level's name as configured, or "None" for customers below every level.
    pub name: String,
    /// Customers holding the level (grace and lapsed included), for the distribution table.
    pub customers: usize,
    /// Of which in grace (below the level, not yet demoted).
    pub grace: usize,
    /// Of which lapsed (no recent order; level kept, perks off).
    pub lapsed: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PassReport {
    /// What reading Shopify's orders did (backfill or pages, orders read, changed, skipped).
    pub ingest: IngestReport,
    /// Loyalty members read this pass (`None` without a loyalty app).
    pub loyalty_members: Option<usize>,
    /// Customers whose loyalty-app tier differs from the tier held (align the app's rules).
    pub loyalty_disagreements: usize,
    /// The loyalty app's requests, throttles and waits this pass (`None` without an app).
    pub loyalty_calls: Option<ApiStatsSnapshot>,
    /// What the model did: customers evaluated, transitions, events enqueued, whether this
    /// was the daily recalculation.
    pub evaluation: EvaluationReport,
    /// The Klaviyo profile writes: written, bulk jobs, refused (parked), deferred.
    pub delivery: DeliveryReport,
    /// Customers known to the store, and how many sit in each level (`None` first).
    pub customers: usize,
    /// One row per level, `None` first, for the distribution table.
    pub tiers: Vec<TierCount>,
    /// Profile writes still pending or parked after the pass (non-zero exit when pending).
    pub klaviyo_outbox: OutboxCounts,
    /// Shopify tags and metafields (`None` when `storefront.enabled = false`).
    pub storefront: Option<(DeliveryReport, OutboxCounts)>,
    /// What the storefront showed when it was read before tiersync's first write to it
    /// (`None`: read on an earlier pass).
    pub storefront_seeding: Option<super::Drift>,
    /// The tier events sent to Klaviyo this pass (sent, refused).
    pub events: EventReport,
    /// Events still pending or parked after the pass.
    pub event_outbox: OutboxCounts,
    /// Shopify requests, throttles and waits this pass, for the rate-limit lines.
    pub shopify_calls: ApiStatsSnapshot,
    /// Klaviyo requests, throttles and waits this pass.
    pub klaviyo_calls: ApiStatsSnapshot,
    /// How long Shopify had work (the orders read, the storefront's reads and writes), the
    /// points spent against the plan's restore rate meanwhile, and its bulk operations.
    pub shopify_throughput: ThroughputSnapshot,
    /// How long Klaviyo had work in flight, and each limit's use against its ceiling then.
    pub klaviyo_throughput: ThroughputSnapshot,
    /// The loyalty app's read against its per-second limit (`None` without an app).
    pub loyalty_throughput: Option<ThroughputSnapshot>,
    /// Destinations stopped because their credential was refused, with the error.
    pub stopped: Vec<String>,
    /// Where the order history starts when the first backfill ran without `read_all_orders`
    /// (`shopify.accept_partial_history`): only orders from then on are known.
    pub partial_history_since: Option<chrono::DateTime<chrono::Utc>>,
    /// A stop (SIGTERM, SIGINT) arrived during the pass: it started nothing new after it.
    pub interrupted: bool,
    /// How long reading the sources took (the order backfill or pages, loyalty).
    pub reading: Duration,
    /// How long the evaluation (the daily recalculation) took.
    pub evaluating: Duration,
    /// Wall time of the pass; what reading and evaluating leave of it went to the writes.
    pub elapsed: Duration,
}

impl PassReport {
    /// Writes and events still waiting in an outbox after the pass (not those parked after a
    /// refusal: they wait for `tiersync retry`).
    pub fn undelivered(&self) -> usize {
        self.klaviyo_outbox.pending
            + self.storefront.as_ref().map_or(0, |(_, o)| o.pending)
            + self.event_outbox.pending
    }
}

impl fmt::Display for PassReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.ingest.backfill {
            " (bulk backfill)"
        } else {
            ""
        };
        writeln!(
            f,
            "  orders read          {}{mode}, new or changed {}",
            self.ingest.orders_read, self.ingest.orders_changed
        )?;
        if let Some(since) = self.partial_history_since {
            writeln!(
                f,
                "  order history        PARTIAL: orders since {} only (the last {} days; the app lacked read_all_orders at the first backfill — once granted, run `tiersync rebuild`)",
                since.format("%Y-%m-%d"),
                crate::sources::shopify::ORDER_WINDOW_DAYS
            )?;
        }
        if self.ingest.orders_skipped > 0 {
            writeln!(
                f,
                "  orders skipped       {} (negative or absurd totals; see the warnings)",
                self.ingest.orders_skipped
            )?;
        }
        if let Some(members) = self.loyalty_members {
            writeln!(
                f,
                "  loyalty members      {members} read; {} customers' loyalty-app tier differs from ours",
                self.loyalty_disagreements
            )?;
        }
        writeln!(
            f,
            "  customers            {} known, {} evaluated{}, {} transitions, {} changed level",
            self.customers,
            self.evaluation.evaluated,
            if self.evaluation.recalculated {
                " (daily recalculation)"
            } else {
                ""
            },
            self.evaluation.transitions,
            self.evaluation.level_changes
        )?;
        writeln!(f, "  tiers")?;
        for tier in &self.tiers {
            let share = if self.customers == 0 {
                0.0
            } else {
                tier.customers as f64 * 100.0 / self.customers as f64
            };
            write!(
                f,
                "    {:<18} {:>8}  {:>5.1}%",
                tier.name, tier.customers, share
            )?;
            if tier.grace + tier.lapsed > 0 {
                write!(f, "  ({} in grace, {} lapsed)", tier.grace, tier.lapsed)?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "  klaviyo profiles     {} written ({} bulk jobs), {} refused, {} deferred; outbox: {} pending, {} parked",
            self.delivery.written,
            self.delivery.bulk_jobs,
            self.delivery.parked,
            self.delivery.deferred,
            self.klaviyo_outbox.pending,
            self.klaviyo_outbox.failed
        )?;
        if let Some(seen) = &self.storefront_seeding {
            writeln!(
                f,
                "  storefront read     {} customers read before the first write: {} already right, {} to write, {} showing other tiers or tags to correct",
                seen.checked, seen.consistent, seen.missing, seen.stale + seen.foreign
            )?;
        }
        if let Some((delivery, outbox)) = &self.storefront {
            writeln!(
                f,
                "  storefront           {} written (tags, metafields), {} refused, {} deferred; outbox: {} pending, {} parked",
                delivery.written, delivery.parked, delivery.deferred, outbox.pending, outbox.failed
            )?;
            if delivery.bulk_operations > 0 {
                writeln!(
                    f,
                    "  storefront bulk      {} of them by {} bulk mutation operations in {:.1}s (a few points each instead of about 12 per write)",
                    delivery.bulk_written,
                    delivery.bulk_operations,
                    delivery.bulk_elapsed.as_secs_f64()
                )?;
            }
        }
        writeln!(
            f,
            "  klaviyo events       {} enqueued, {} sent, {} refused; outbox: {} pending, {} parked",
            self.evaluation.events, self.events.sent, self.events.parked, self.event_outbox.pending, self.event_outbox.failed
        )?;
        for stopped in &self.stopped {
            writeln!(f, "  STOPPED              {stopped}")?;
        }
        if self.interrupted {
            writeln!(
                f,
                "  INTERRUPTED          asked to stop: nothing new was started; what was not sent waits in the outbox"
            )?;
        }
        let apis = [
            ("shopify", Some(&self.shopify_calls)),
            ("klaviyo", Some(&self.klaviyo_calls)),
            ("loyalty", self.loyalty_calls.as_ref()),
        ];
        for (name, calls) in apis.into_iter().filter_map(|(n, c)| Some((n, c?))) {
            writeln!(
                f,
                "  {name:<8} API calls    {} requests, {} rate-limited answers, {} retries, {} waits ({:.1} s waiting)",
                calls.requests,
                calls.rate_limited,
                calls.retries,
                calls.waits,
                calls.waited.as_secs_f64()
            )?;
        }
        let throughputs = [
            ("shopify", Some(&self.shopify_throughput)),
            ("klaviyo", Some(&self.klaviyo_throughput)),
            ("loyalty", self.loyalty_throughput.as_ref()),
        ];
        for (name, throughput) in throughputs
            .into_iter()
            .filter_map(|(n, t)| Some((n, t.filter(|t| !t.busy.is_zero())?)))
        {
            writeln!(f, "  {name:<8} throughput  {throughput}")?;
        }
        write!(
            f,
            "  wall time            {:.2} s: reading {:.1} s, evaluating {:.1} s, writing {:.1} s",
            self.elapsed.as_secs_f64(),
            self.reading.as_secs_f64(),
            self.evaluating.as_secs_f64(),
            self.elapsed
                .saturating_sub(self.reading + self.evaluating)
                .as_secs_f64()
        )
    }
}
