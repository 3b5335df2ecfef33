//! Reconcile: read every destination back, compare with the desired state, report drift per
//! destination and kind, and (with repair) put the fixes through the outbox like any write.
//!
//! The desired state is refreshed from the sources first, so a lost or fresh store works:
//! after a re-backfill every customer is planned, and reconcile adopts what the destinations
//! already show instead of writing it all again.
//!
//! Kinds of drift, from what the destination shows (R), what it last acknowledged (A) and
//! what is desired (D): **missing** — R shows nothing; **stale** — R is tiersync's last
//! acknowledged write and D moved on (the pending write will fix it); **foreign edit** — R is
//! neither (a hand edit, another app, a write lost after its acknowledgement).

use std::borrow::Borrow;
use std::fmt;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::loyalty::{loyalty_disagreements, LoyaltyDisagreements};
use super::pass::{LoyaltyRead, LoyaltyScope, PassError, Pipeline, Refresh};
use super::{desired_profile, desired_storefront};
use crate::config::{Authority, StorefrontSettings};
use crate::model::{DestinationState, ProfileState, StorefrontState};
use crate::progress::Phase;
use crate::sinks::shopify::{read_storefront, StorefrontReadback};
use crate::sinks::{klaviyo, DeliveryError, DeliveryReport};
use crate::store::{Acknowledged, CustomerRecord, OutboxEntry, Store, StoreError};

/// Drifted customers named in the report before the rest are only counted.
const EXAMPLES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    Missing,
    Stale,
    Foreign,
}

impl DriftKind {
    fn as_str(self) -> &'static str {
        match self {
            DriftKind::Missing => "missing",
            DriftKind::Stale => "stale",
            DriftKind::Foreign => "foreign edit",
        }
    }
}

/// What reconcile found at one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Customers compared at this destination (at the storefront, only those Shopify still has).
    pub checked: usize,
    /// Customers showing the desired state, or showing nothing where nothing is desired.
    pub consistent: usize,
    /// Customers the destination shows nothing for while a state is desired.
    pub missing: usize,
    /// Customers still showing tiersync's last acknowledged write while a newer state is
    /// desired: the pending write will fix them.
    pub stale: usize,
    /// Customers showing what tiersync neither wants nor last wrote: a hand edit, another app,
    /// or a write lost after its acknowledgement.
    pub foreign: usize,
    /// Customers the destination does not know (deleted there); not repaired.
    pub gone: usize,
    /// Consistent customers whose acknowledgement was missing or older, now recorded.
    pub adopted: usize,
    /// Repairs put in the outbox.
    pub enqueued: usize,
    /// The first ten drifted customers as `who: kind: detail`, printed under the counts.
    pub examples: Vec<String>,
}

impl Drift {
    pub fn total(&self) -> usize {
        self.missing + self.stale + self.foreign
    }

    /// Counts one drifted customer; `detail` is only worded for the first few, which are
    /// named (a first write finds hundreds of thousands missing).
    fn count(&mut self, kind: DriftKind, who: &str, detail: impl FnOnce() -> String) {
        match kind {
            DriftKind::Missing => self.missing += 1,
            DriftKind::Stale => self.stale += 1,
            DriftKind::Foreign => self.foreign += 1,
        }
        if self.examples.len() < EXAMPLES {
            self.examples
                .push(format!("{who}: {}: {}", kind.as_str(), detail()));
        }
    }
}

/// The loyalty app's tiers against the status tiersync propagates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoyaltyDrift {
    /// Members read from the app.
    pub members: usize,
    /// Members whose app tier is not the level tiersync holds, the first few named.
    pub differing: LoyaltyDisagreements,
    /// `loyalty.authority` as written (`tiersync` or `loyalty`): it picks the advice printed
    /// with the disagreements.
    pub authority: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Orders read while refreshing the desired state before the comparison.
    pub orders_read: usize,
    /// Customers in the store: those compared at each destination.
    pub customers: usize,
    /// What reading every Klaviyo profile back found; its total counts toward `drift()`.
    pub klaviyo: Drift,
    /// What reading Shopify customers back found; `None` when the storefront destination is off.
    pub storefront: Option<Drift>,
    /// The loyalty app's tiers against tiersync's; `None` without a loyalty app or when reading
    /// it failed. Reported only: neither app's API can set a tier.
    pub loyalty: Option<LoyaltyDrift>,
    /// Whether the fixes were enqueued and consistent customers' acknowledgements brought up to
    /// date (`--repair`, or the daemon's scheduled reconcile); without it drift is only reported.
    pub repair: bool,
    /// What delivering the repairs did (`None`: not delivered — no `--repair`, or dry run).
    pub delivered: Option<(DeliveryReport, DeliveryReport)>,
}

impl ReconcileReport {
    /// Drift found at the destinations tiersync writes.
    pub fn drift(&self) -> usize {
        self.klaviyo.total() + self.storefront.as_ref().map_or(0, Drift::total)
    }
}

/// One customer compared at one destination.
enum Verdict<S> {
    Consistent,
    Drifted(DriftKind, S),
}

fn compare<S: DestinationState>(
    desired: Option<&S>,
    seen: Option<&S>,
    ack: Option<&Acknowledged<S>>,
) -> Verdict<S> {
    let blank = |s: &S| s.shows_nothing();
    match (desired, seen) {
        (None, None) => Verdict::Consistent,
        (None, Some(seen)) if blank(seen) => Verdict::Consistent,
        (Some(want), Some(seen)) if want.matches(seen) => Verdict::Consistent,
        (_, None) => Verdict::Drifted(DriftKind::Missing, desired.cloned().expect("desired")),
        (want, Some(seen)) => {
            let kind = if ack.is_some_and(|a| a.state.matches(seen)) && want.is_some() {
                DriftKind::Stale
            } else {
                DriftKind::Foreign
            };
            Verdict::Drifted(kind, seen.clone())
        }
    }
}

/// Compares every customer at one destination and collects the fixes.
struct Comparison<S> {
    drift: Drift,
    repairs: Vec<(OutboxEntry<S>, Option<Acknowledged<S>>)>,
    adopt: Vec<(String, Acknowledged<S>)>,
}

impl<S: DestinationState> Comparison<S> {
    fn new() -> Comparison<S> {
        Comparison {
            drift: Drift::default(),
            repairs: Vec::new(),
            adopt: Vec::new(),
        }
    }

    /// `blank`: what to write when nothing is desired but the destination shows something
    /// (someone else's tag on a customer who never held a level).
    fn customer(
        &mut self,
        record: &CustomerRecord,
        desired: Option<S>,
        seen: Option<&S>,
        ack: Option<&Acknowledged<S>>,
        blank: impl FnOnce() -> S,
        now: DateTime<Utc>,
    ) {
        self.drift.checked += 1;
        let who = record.email.as_deref().unwrap_or(&record.id);
        match compare(desired.as_ref(), seen, ack) {
            Verdict::Consistent => {
                self.drift.consistent += 1;
                let stale_ack = |seen: &S| {
                    ack.is_none_or(|a| a.version < record.version || !a.state.matches(seen))
                };
                if let Some(seen) = seen.filter(|s| stale_ack(s)) {
                    self.adopt.push((
                        record.id.clone(),
                        Acknowledged {
                            version: record.version,
                            state: seen.clone(),
                        },
                    ));
                }
            }
            Verdict::Drifted(kind, shown) => {
                let want = desired.unwrap_or_else(blank);
                self.drift.count(kind, who, || {
                    if kind == DriftKind::Missing {
                        format!("shows nothing; desired {}", want.summary())
                    } else {
                        format!("shows {}; desired {}", shown.summary(), want.summary())
                    }
                });
                let seen_ack = seen.map(|s| Acknowledged {
                    version: ack.map_or(0, |a| a.version),
                    state: s.clone(),
                });
                self.repairs.push((
                    OutboxEntry {
                        customer_id: record.id.clone(),
                        version: record.version,
                        state: want,
                        enqueued_at: now,
                        failed: None,
                    },
                    seen_ack,
                ));
            }
        }
    }

    /// Records adoptions and (with `repair`) enqueues the fixes.
    fn apply(mut self, store: &Store, repair: bool) -> Result<Drift, StoreError> {
        if repair {
            store.adopt(&self.adopt)?;
            store.enqueue_repairs(&self.repairs)?;
            self.drift.adopted = self.adopt.len();
            self.drift.enqueued = self.repairs.len();
        }
        Ok(self.drift)
    }
}

/// Compares each customer's desired storefront state with what `shop` shows.
fn compare_storefront<R: Borrow<CustomerRecord>>(
    store: &Store,
    settings: &StorefrontSettings,
    shop: &StorefrontReadback,
    records: impl Iterator<Item = Result<R, StoreError>>,
    now: DateTime<Utc>,
) -> Result<Comparison<StorefrontState>, StoreError> {
    let acks = store.acknowledgements::<StorefrontState>()?;
    let mut comparison = Comparison::<StorefrontState>::new();
    for record in records {
        let record = record?;
        let record = record.borrow();
        if !shop.known.contains(&record.id) {
            comparison.drift.gone += 1;
            continue;
        }
        comparison.customer(
            record,
            desired_storefront(record, settings),
            shop.customers.get(&record.id),
            acks.get(&record.id),
            || StorefrontState {
                tag: None,
                vip_tier: "None".into(),
                vip_state: "none".into(),
                vip_peak_tier: None,
                clv_blended: record.inputs.blended,
            },
            now,
        );
    }
    Ok(comparison)
}

/// The store's part of seeding (see [`Pipeline::seed_storefront`]): compares every stored
/// customer with `shop`, adopts and enqueues, and only then records the storefront as
/// seeded. A crash before that mark leaves the storefront unseeded: nothing is written to it,
/// and the next pass reads it again and compares afresh, which finds what this one recorded
/// already in place (an adoption done is not done twice, a repair planned stays planned).
fn seed(
    store: &Store,
    settings: &StorefrontSettings,
    shop: &StorefrontReadback,
    now: DateTime<Utc>,
) -> Result<Drift, StoreError> {
    let comparison = compare_storefront(store, settings, shop, store.customers(), now)?;
    let drift = comparison.apply(store, true)?;
    store.set_storefront_seeded(now)?;
    Ok(drift)
}

impl Pipeline {
    /// Refreshes the desired state, reads every destination back and compares. With
    /// `repair`, consistent customers' acknowledgements are brought up to date and the
    /// fixes enqueued, then delivered (unless this is a dry run).
    pub async fn reconcile(
        &self,
        cancel: &CancellationToken,
        repair: bool,
    ) -> Result<ReconcileReport, PassError> {
        self.reconcile_at(cancel, repair, Utc::now()).await
    }

    pub async fn reconcile_at(
        &self,
        cancel: &CancellationToken,
        repair: bool,
        now: DateTime<Utc>,
    ) -> Result<ReconcileReport, PassError> {
        self.stopping_on(cancel, self.run_reconcile(cancel, repair, now))
            .await
    }

    async fn run_reconcile(
        &self,
        cancel: &CancellationToken,
        repair: bool,
        now: DateTime<Utc>,
    ) -> Result<ReconcileReport, PassError> {
        // Every loyalty member is read (not only those changed since the cursor) and stored
        // before the evaluation, so the comparison below sees what the app shows now.
        let Refresh {
            ingest, loyalty, ..
        } = self.refresh(cancel, now, LoyaltyScope::All).await?;
        let records: Vec<CustomerRecord> = self.store.customers().collect::<Result<_, _>>()?;
        tracing::info!(
            customers = records.len(),
            "reconcile: reading the destinations back"
        );

        let _running = self.progress.run(Phase::Reconcile, None);
        let profiles = klaviyo::read_profiles(&self.klaviyo)
            .await
            .map_err(|e| PassError::Deliver(DeliveryError::Api(e)))?;
        let klaviyo_acks = self.store.acknowledgements::<ProfileState>()?;
        let mut klaviyo = Comparison::<ProfileState>::new();
        for record in &records {
            let desired = desired_profile(record);
            let seen = profiles.get(&desired.external_id);
            klaviyo.customer(
                record,
                Some(desired.clone()),
                seen,
                klaviyo_acks.get(&record.id),
                || desired,
                now,
            );
        }
        let klaviyo = klaviyo.apply(&self.store, repair)?;

        let storefront = if self.settings.storefront.enabled {
            let shop = read_storefront(
                &self.shopify,
                &self.settings.shopify,
                &self.settings.storefront,
                cancel,
            )
            .await
            .map_err(|e| PassError::Storefront(DeliveryError::Api(e)))?
            .unwrap_or_default();
            let comparison = compare_storefront(
                &self.store,
                &self.settings.storefront,
                &shop,
                records.iter().map(Ok),
                now,
            )?;
            let drift = comparison.apply(&self.store, repair)?;
            if repair {
                self.store.set_storefront_seeded(now)?;
            }
            Some(drift)
        } else {
            None
        };

        let loyalty = match loyalty {
            Some(LoyaltyRead::Read(members)) => self.loyalty_drift(members)?,
            Some(LoyaltyRead::Failed) | None => None,
        };
        self.store.flush()?;
        let delivered = if repair && !self.dry_run {
            Some(self.deliver_all(cancel).await?)
        } else {
            None
        };
        Ok(ReconcileReport {
            orders_read: ingest.orders_read,
            customers: records.len(),
            klaviyo,
            storefront,
            loyalty,
            repair,
            delivered,
        })
    }

    /// Before tiersync's first write to a storefront (a new store, or after `rebuild`), reads
    /// what the storefront already shows (see [`Pipeline::seed_storefront`]); `None` when
    /// `cancel` fired first (then nothing is written to it this pass).
    pub(super) async fn read_storefront_first(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Option<StorefrontReadback>, DeliveryError> {
        tracing::info!("first write to the storefront: reading its tags and metafields first");
        Ok(read_storefront(
            &self.shopify,
            &self.settings.shopify,
            &self.settings.storefront,
            cancel,
        )
        .await?)
    }

    /// Takes what the storefront showed before tiersync's first write to it (`shop`, from
    /// [`Pipeline::read_storefront_first`]) as acknowledged: customers who already show their
    /// desired state are not written, and the first write removes tags in tiersync's prefix
    /// that someone else put there (a `vip:gold` from an earlier tool next to the new
    /// `vip:bronze`). Without it those stale tags would stay until the first reconcile — a
    /// day with the daemon, forever with `once`. Records the storefront as seeded.
    ///
    /// A scan of every customer (seconds at a million): it runs on a blocking thread, so
    /// Klaviyo's writes, driven by the same task, go on meanwhile.
    pub(super) async fn seed_storefront(
        &self,
        shop: StorefrontReadback,
        now: DateTime<Utc>,
    ) -> Result<Drift, StoreError> {
        let started = Instant::now();
        let settings = self.settings.storefront.clone();
        let drift = self
            .store
            .run_blocking(move |store| seed(store, &settings, &shop, now))
            .await?;
        tracing::info!(
            already_right = drift.consistent,
            to_write = drift.missing,
            to_correct = drift.stale + drift.foreign,
            seconds = started.elapsed().as_secs_f64(),
            "storefront read before the first write"
        );
        Ok(drift)
    }

    /// The daemon's scheduled reconcile (with repair), when `every` has passed since the
    /// last one (remembered in the store, so restarts do not repeat it).
    pub async fn reconcile_if_due(
        &self,
        cancel: &CancellationToken,
        every: std::time::Duration,
    ) -> Result<Option<ReconcileReport>, PassError> {
        let now = Utc::now();
        let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        match self.store.last_reconcile()? {
            Some(last) if now - last < every => return Ok(None),
            // A fresh store: its first passes plan everything anyway; start the clock.
            None if self.store.population()?.is_none() => {
                self.store.set_last_reconcile(now)?;
                return Ok(None);
            }
            _ => {}
        }
        let report = self.reconcile_at(cancel, true, now).await?;
        self.store.set_last_reconcile(now)?;
        Ok(Some(report))
    }

    /// The loyalty app's tiers (read in full and stored by the refresh) against the status
    /// tiersync holds: the same comparison as the pass report and `status`. The loyalty
    /// apps' APIs cannot set a tier, so this is reported, never repaired.
    fn loyalty_drift(&self, members: usize) -> Result<Option<LoyaltyDrift>, PassError> {
        let Some(found) = loyalty_disagreements(&self.store, &self.settings)? else {
            return Ok(None);
        };
        Ok(Some(LoyaltyDrift {
            members,
            authority: match self.settings.loyalty.authority {
                Authority::Tiersync => "tiersync",
                Authority::Loyalty => "loyalty",
            }
            .to_string(),
            differing: found,
        }))
    }
}

impl fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "reconcile: {} customers (desired state refreshed; {} orders read)",
            self.customers, self.orders_read
        )?;
        let destination = |f: &mut fmt::Formatter<'_>, name: &str, d: &Drift| -> fmt::Result {
            writeln!(
                f,
                "  {name:<9} {} checked, {} consistent; drift: {} missing, {} stale, {} foreign edit{}",
                d.checked,
                d.consistent,
                d.missing,
                d.stale,
                d.foreign,
                if d.gone > 0 {
                    format!("; {} customers no longer in Shopify (skipped)", d.gone)
                } else {
                    String::new()
                }
            )?;
            for example in &d.examples {
                writeln!(f, "      {example}")?;
            }
            if d.total() > d.examples.len() {
                writeln!(f, "      … and {} more", d.total() - d.examples.len())?;
            }
            if self.repair {
                writeln!(
                    f,
                    "      repair: {} fixes enqueued, {} acknowledgements recorded from what it shows",
                    d.enqueued, d.adopted
                )?;
            }
            Ok(())
        };
        destination(f, "klaviyo", &self.klaviyo)?;
        if let Some(storefront) = &self.storefront {
            destination(f, "storefront", storefront)?;
        }
        if let Some(loyalty) = &self.loyalty {
            let advice = if loyalty.authority == "tiersync" {
                "its API cannot set tiers: align the app's tier rules with tiersync's levels"
            } else {
                "loyalty.authority = \"loyalty\": these follow at the next pass"
            };
            writeln!(
                f,
                "  loyalty   {} members; {} show another tier than tiersync ({advice})",
                loyalty.members, loyalty.differing.count
            )?;
            for example in &loyalty.differing.examples {
                writeln!(f, "      {example}")?;
            }
            if loyalty.differing.unnamed() > 0 {
                writeln!(f, "      … and {} more", loyalty.differing.unnamed())?;
            }
        }
        match (&self.delivered, self.repair) {
            (Some((profiles, storefront)), _) => write!(
                f,
                "  repaired  klaviyo {} written, {} refused, {} deferred; shopify {} written, {} refused, {} deferred",
                profiles.written,
                profiles.parked,
                profiles.deferred,
                storefront.written,
                storefront.parked,
                storefront.deferred
            ),
            (None, true) => write!(f, "  dry run: repairs planned in the outbox, nothing sent"),
            (None, false) => write!(
                f,
                "  nothing changed (run `tiersync reconcile --repair` to fix the drift)"
            ),
        }
    }
}
