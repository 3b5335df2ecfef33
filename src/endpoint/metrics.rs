//! `/metrics`: the daemon's numbers in the Prometheus text format (0.0.4).
//!
//! Two sources. What a pass settles (its duration, orders read, writes and their outcomes,
//! outbox depths, customers per level and state, the fitted model) is recorded from the
//! pass's report when it ends. What changes during a pass (each vendor client's rate-limit
//! waits, Shopify's cost bucket) is read from the clients at each scrape ([`Live`]).
//!
//! Every label takes one of a few known values — a destination, an outcome, a configured
//! level, a state — so a series is never created per customer; label sets are types, and no
//! type here holds a customer id or an email.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::{ClvModel, Population};
use crate::sinks::DeliveryReport;
use crate::store::OutboxCounts;
use crate::sync::{PassReport, Pipeline, ReconcileReport};

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where a write goes: the label `destination`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum Destination {
    /// Klaviyo profile properties.
    Klaviyo,
    /// Klaviyo's flow-triggering events.
    KlaviyoEvents,
    /// Shopify customer tags and metafields.
    Storefront,
}

/// What became of a write: the label `outcome`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum Outcome {
    /// Acknowledged by the destination.
    Written,
    /// Refused for good (parked with the API's error).
    Refused,
    /// Kept failing transiently; pending for the next pass.
    Deferred,
}

/// How a pass ended: the label `outcome` of the pass metrics.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PassOutcome {
    Success,
    Failure,
}

/// What became of a Shopify webhook delivery: the label `outcome` of `tiersync_webhooks`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Signed, new and recent: the next pass starts now.
    Accepted,
    /// Unsigned, altered or signed with another secret (401), or without an id (400).
    Refused,
    /// An id received before.
    Replayed,
    /// A change polling had read already.
    Late,
    /// Another shop's or a topic tiersync does not use.
    Ignored,
    /// The store could not record the id (503; Shopify retries).
    Failed,
}

/// An outbox entry waits to be sent (`pending`) or was refused (`parked`): the label `state`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum OutboxState {
    Pending,
    Parked,
}

impl Destination {
    fn name(self) -> &'static str {
        match self {
            Destination::Klaviyo => "klaviyo",
            Destination::KlaviyoEvents => "klaviyo_events",
            Destination::Storefront => "storefront",
        }
    }
}

/// Label values written in lower case, as Prometheus label values usually are.
macro_rules! label_value {
    ($type:ty, $name:expr) => {
        impl EncodeLabelValue for $type {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
                let name: fn(&$type) -> &'static str = $name;
                EncodeLabelValue::encode(&name(self), encoder)
            }
        }
    };
}
label_value!(Destination, |d| d.name());
label_value!(Outcome, |o| match o {
    Outcome::Written => "written",
    Outcome::Refused => "refused",
    Outcome::Deferred => "deferred",
});
label_value!(PassOutcome, |o| match o {
    PassOutcome::Success => "success",
    PassOutcome::Failure => "failure",
});
label_value!(WebhookOutcome, |o| match o {
    WebhookOutcome::Accepted => "accepted",
    WebhookOutcome::Refused => "refused",
    WebhookOutcome::Replayed => "replayed",
    WebhookOutcome::Late => "late",
    WebhookOutcome::Ignored => "ignored",
    WebhookOutcome::Failed => "failed",
});
label_value!(OutboxState, |s| match s {
    OutboxState::Pending => "pending",
    OutboxState::Parked => "parked",
});

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PassLabels {
    outcome: PassOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    destination: Destination,
    outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    destination: Destination,
    state: OutboxState,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    outcome: WebhookOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoppedLabels {
    destination: Destination,
}

/// A configured level (or `None`) and a VIP state: both bounded by the configuration.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CustomerLabels {
    level: String,
    state: &'static str,
}

type GaugeF64 = Gauge<f64, AtomicU64>;

/// The daemon's metrics: one registry per daemon.
pub struct Metrics {
    registry: Registry,
    pass_duration: Family<PassLabels, Histogram>,
    passes: Family<PassLabels, Counter>,
    last_success: GaugeF64,
    orders_ingested: Counter,
    writes: Family<WriteLabels, Counter>,
    outbox: Family<OutboxLabels, Gauge>,
    stopped: Family<StoppedLabels, Gauge>,
    customers: Family<CustomerLabels, Gauge>,
    webhooks: Family<WebhookLabels, Counter>,
    model: ModelGauges,
}

/// The fitted CLV model's parameters and fit time.
#[derive(Default)]
struct ModelGauges {
    fitted: Gauge,
    fit_seconds: GaugeF64,
    /// BG/NBD r, alpha, a, b.
    bgnbd: [GaugeF64; 4],
    /// Gamma-Gamma p, q, v.
    gamma_gamma: [GaugeF64; 3],
}

impl Metrics {
    /// The registry, with the live values read from `pipeline`'s clients at each scrape.
    pub fn new(pipeline: Arc<Pipeline>) -> Metrics {
        let mut registry = Registry::default();
        let pass_duration = Family::<PassLabels, Histogram>::new_with_constructor(|| {
            // 0.25 s to about 68 minutes: a quiet poll to a first backfill of a big store.
            Histogram::new(exponential_buckets(0.25, 2.0, 15))
        });
        registry.register(
            "tiersync_pass_duration_seconds",
            "Wall time of a pass, by how it ended",
            pass_duration.clone(),
        );
        let passes = Family::<PassLabels, Counter>::default();
        registry.register(
            "tiersync_passes",
            "Passes run, by how they ended",
            passes.clone(),
        );
        let last_success = GaugeF64::default();
        registry.register(
            "tiersync_last_success_timestamp_seconds",
            "Unix time at which the last successful pass ended (0: none since the start)",
            last_success.clone(),
        );
        let orders_ingested = Counter::default();
        registry.register(
            "tiersync_orders_ingested",
            "Shopify orders read (the backfill's and each poll's)",
            orders_ingested.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "tiersync_writes",
            "Writes sent, by destination and outcome (written, refused for good, deferred to the next pass)",
            writes.clone(),
        );
        let outbox = Family::<OutboxLabels, Gauge>::default();
        registry.register(
            "tiersync_outbox_depth",
            "Writes and events in the outbox after the last pass, by destination and state (pending, parked)",
            outbox.clone(),
        );
        let stopped = Family::<StoppedLabels, Gauge>::default();
        registry.register(
            "tiersync_destination_stopped",
            "1 while a destination is stopped because its credential was refused",
            stopped.clone(),
        );
        let customers = Family::<CustomerLabels, Gauge>::default();
        registry.register(
            "tiersync_customers",
            "Customers per level and VIP state after the last pass",
            customers.clone(),
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "tiersync_webhooks",
            "Shopify webhook deliveries, by what became of them (accepted, refused, replayed, late, ignored, failed)",
            webhooks.clone(),
        );
        let model = ModelGauges::default();
        model.register(&mut registry);
        registry.register_collector(Box::new(Live(pipeline)));
        Metrics {
            registry,
            pass_duration,
            passes,
            last_success,
            orders_ingested,
            writes,
            outbox,
            stopped,
            customers,
            webhooks,
            model,
        }
    }

    /// Counts a webhook delivery.
    pub fn webhook(&self, outcome: WebhookOutcome) {
        self.webhooks
            .get_or_create(&WebhookLabels { outcome })
            .inc();
    }

    /// Records a pass: its duration and outcome, and with a report what it settled.
    /// `population` is the store's model after the pass.
    pub fn pass(
        &self,
        elapsed: Duration,
        report: Option<&PassReport>,
        population: Option<&Population>,
    ) {
        let outcome = PassLabels {
            outcome: if report.is_some() {
                PassOutcome::Success
            } else {
                PassOutcome::Failure
            },
        };
        self.pass_duration
            .get_or_create(&outcome)
            .observe(elapsed.as_secs_f64());
        self.passes.get_or_create(&outcome).inc();
        let Some(report) = report else {
            return;
        };
        self.last_success.set(unix_now());
        self.orders_ingested
            .inc_by(report.ingest.orders_read as u64);
        self.delivered(Destination::Klaviyo, &report.delivery);
        self.count(
            Destination::KlaviyoEvents,
            Outcome::Written,
            report.events.sent,
        );
        self.count(
            Destination::KlaviyoEvents,
            Outcome::Refused,
            report.events.parked,
        );
        self.depth(Destination::Klaviyo, report.klaviyo_outbox);
        self.depth(Destination::KlaviyoEvents, report.event_outbox);
        if let Some((delivery, outbox)) = &report.storefront {
            self.delivered(Destination::Storefront, delivery);
            self.depth(Destination::Storefront, *outbox);
        }
        for destination in [Destination::Klaviyo, Destination::Storefront] {
            let prefix = format!("{}:", destination.name());
            let stopped = report.stopped.iter().any(|s| s.starts_with(&prefix));
            self.stopped
                .get_or_create(&StoppedLabels { destination })
                .set(i64::from(stopped));
        }
        self.customers.clear();
        for tier in &report.tiers {
            let active = tier.customers - tier.grace - tier.lapsed;
            let states: &[(&'static str, usize)] = if tier.name == "None" {
                &[("none", tier.customers)]
            } else {
                &[
                    ("active", active),
                    ("grace", tier.grace),
                    ("lapsed", tier.lapsed),
                ]
            };
            for &(state, count) in states {
                self.customers
                    .get_or_create(&CustomerLabels {
                        level: tier.name.clone(),
                        state,
                    })
                    .set(count as i64);
            }
        }
        if report.evaluation.recalculated {
            self.model
                .fit_seconds
                .set(report.evaluation.timings.population.as_secs_f64());
        }
        if let Some(population) = population {
            self.model.set(&population.clv);
        }
    }

    /// Records what a scheduled reconcile's repairs wrote.
    pub fn reconcile(&self, report: &ReconcileReport) {
        if let Some((klaviyo, storefront)) = &report.delivered {
            self.delivered(Destination::Klaviyo, klaviyo);
            self.delivered(Destination::Storefront, storefront);
        }
    }

    /// The text `/metrics` answers.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    fn delivered(&self, destination: Destination, report: &DeliveryReport) {
        self.count(destination, Outcome::Written, report.written);
        self.count(destination, Outcome::Refused, report.parked);
        self.count(destination, Outcome::Deferred, report.deferred);
    }

    fn count(&self, destination: Destination, outcome: Outcome, n: usize) {
        self.writes
            .get_or_create(&WriteLabels {
                destination,
                outcome,
            })
            .inc_by(n as u64);
    }

    fn depth(&self, destination: Destination, counts: OutboxCounts) {
        for (state, n) in [
            (OutboxState::Pending, counts.pending),
            (OutboxState::Parked, counts.failed),
        ] {
            self.outbox
                .get_or_create(&OutboxLabels { destination, state })
                .set(n as i64);
        }
    }
}

impl ModelGauges {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "tiersync_model_fitted",
            "1 when the daily recalculation fitted the CLV model; 0 when it had too little history (predicted CLV is then 0)",
            self.fitted.clone(),
        );
        registry.register(
            "tiersync_model_fit_duration_seconds",
            "Wall time of the last daily recalculation's model fit and population parameters in this process",
            self.fit_seconds.clone(),
        );
        for (gauge, name) in self.bgnbd.iter().zip(["r", "alpha", "a", "b"]) {
            registry.register(
                format!("tiersync_model_bgnbd_{name}"),
                format!("BG/NBD parameter {name} of the fitted model"),
                gauge.clone(),
            );
        }
        for (gauge, name) in self.gamma_gamma.iter().zip(["p", "q", "v"]) {
            registry.register(
                format!("tiersync_model_gamma_gamma_{name}"),
                format!("Gamma-Gamma parameter {name} of the fitted model"),
                gauge.clone(),
            );
        }
    }

    fn set(&self, model: &ClvModel) {
        match model {
            ClvModel::Fitted(fit) => {
                self.fitted.set(1);
                for (gauge, value) in self.bgnbd.iter().zip(fit.bgnbd) {
                    gauge.set(value);
                }
                for (gauge, value) in self.gamma_gamma.iter().zip(fit.gamma_gamma) {
                    gauge.set(value);
                }
            }
            ClvModel::Unavailable { .. } => {
                self.fitted.set(0);
            }
        }
    }
}

/// Values read from the vendor clients at each scrape.
struct Live(Arc<Pipeline>);

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Live")
    }
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct ApiLabels {
    destination: &'static str,
}

impl Collector for Live {
    /// Help texts here end with a full stop: the registry adds one to those it writes itself.
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats: Vec<_> = self
            .0
            .api_stats()
            .into_iter()
            .map(|(name, stats)| (ApiLabels { destination: name }, stats.snapshot()))
            .collect();
        let waits = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "tiersync_rate_limit_waits",
            "Times a request waited for a rate limiter, the cost bucket or a server-given delay, per API.",
            None,
            waits.metric_type(),
        )?;
        for (labels, snapshot) in &stats {
            ConstCounter::new(snapshot.waits).encode(family.encode_family(labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "tiersync_rate_limit_wait_seconds",
            "Time those waits took, summed over requests (concurrent waits add up), per API.",
            None,
            waits.metric_type(),
        )?;
        for (labels, snapshot) in &stats {
            ConstCounter::new(snapshot.waited.as_secs_f64())
                .encode(family.encode_family(labels)?)?;
        }
        let bucket = self.0.shopify_bucket();
        for (name, help, value) in [
            (
                "tiersync_shopify_bucket_available",
                "Cost points in Shopify's bucket now, as estimated from the last answer and the restore rate.",
                bucket.currently_available,
            ),
            (
                "tiersync_shopify_bucket_maximum",
                "The size of Shopify's cost bucket (the plan's limit).",
                bucket.maximum_available,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
