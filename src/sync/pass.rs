//! The pipeline: the store and one client per vendor, and the pass that runs them in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::future::Either;
use tokio_util::sync::CancellationToken;

use super::loyalty::LoyaltyComparison;
use super::{evaluate, PassReport, TierCount};
use crate::config::Settings;
use crate::http::{ApiStats, ApiStatsSnapshot};
use crate::model::VipState;
use crate::model::{Destination, ProfileState, StorefrontState};
use crate::progress::Progress;
use crate::sinks::klaviyo::{self, KlaviyoClient};
use crate::sinks::shopify::{self as storefront, StorefrontReadback};
use crate::sinks::{DeliveryError, DeliveryReport};
use crate::sources::loyalty::LoyaltyClient;
use crate::sources::shopify::{
    check_access, granted_scopes, ingest_orders, shop_timezone, AccessError, IngestError,
    ORDER_WINDOW_DAYS,
};
use crate::store::{LoyaltyRecord, Store, StoreError};
use crate::vendors::shopify::{concurrent_operations, ShopifyClient};

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("reading Shopify orders: {0}")]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Access(#[from] AccessError),
    #[error("writing Klaviyo: {0}")]
    Deliver(#[from] DeliveryError),
    #[error("writing Shopify customer tags and metafields: {0}")]
    Storefront(DeliveryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PassError {
    /// Store failures (disk full, corruption) should stop the daemon; API trouble should not.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            PassError::Store(_)
                | PassError::Ingest(IngestError::Store(_))
                | PassError::Deliver(DeliveryError::Store(_))
                | PassError::Storefront(DeliveryError::Store(_))
        )
    }
}

pub struct Pipeline {
    /// The validated configuration every step reads.
    pub(super) settings: Settings,
    /// The checkpoint store: cursors, orders, tier state, the outbox and acknowledgements.
    pub(super) store: Store,
    /// The Admin API client: orders, scopes and time zone in; storefront writes and read-back.
    pub(super) shopify: ShopifyClient,
    /// The Klaviyo client: profile writes, events, and the profiles' read-back.
    pub(super) klaviyo: KlaviyoClient,
    /// The loyalty app's client; `None` when `loyalty.platform` is `none`.
    pub(super) loyalty: Option<LoyaltyClient>,
    /// Plan but send nothing to destinations (`--dry-run`).
    pub(super) dry_run: bool,
    /// Destinations whose credential was refused in this process, with the error.
    stopped: std::sync::Mutex<std::collections::HashMap<Destination, String>>,
    /// The Shopify app's access scopes, read by the first pass of this process and kept once
    /// they pass the check (scopes change only with a new app version; while one is missing
    /// they are read again each pass, so granting it needs no restart).
    scopes: std::sync::Mutex<Option<Vec<String>>>,
    /// Shared by the clients: fired (for good) by the first cancelled pass or reconcile, it
    /// ends every back-off, rate-limiter and cost-bucket wait at once, so a stop never waits
    /// out a `Retry-After`. Requests already sent still get their answers.
    stop: CancellationToken,
    /// How far the long phases have got, counted by the clients (see [`crate::progress`]).
    pub(super) progress: Arc<Progress>,
}

/// What the first half of a pass did: the sources read and the model applied.
pub(super) struct Refresh {
    /// What reading Shopify orders did: read, changed, skipped, and whether it was the backfill.
    pub ingest: crate::sources::shopify::IngestReport,
    /// `None` without a loyalty app.
    pub loyalty: Option<LoyaltyRead>,
    /// What evaluating the dirty customers (everyone, at the daily recalculation) did.
    pub evaluation: super::EvaluationReport,
    /// How long reading the sources took (orders, the order map's settling, loyalty).
    pub reading: std::time::Duration,
    /// How long the evaluation took.
    pub evaluating: std::time::Duration,
}

/// The storefront as read before tiersync's first write to it, taken beside the refresh;
/// `Ok(None)` when `cancel` fired first or the storefront destination is stopped.
type EarlyRead = Result<Option<StorefrontReadback>, PassError>;

/// What ran beside the refresh ([`Pipeline::refresh_beside`]): its output, or the future
/// itself when the refresh ended first.
enum Beside<F: std::future::Future> {
    Done(F::Output),
    Running(F),
}

impl<F: std::future::Future> Beside<F> {
    /// The output, waiting for it if it is still running.
    async fn finish(self) -> F::Output {
        match self {
            Beside::Done(output) => output,
            Beside::Running(running) => running.await,
        }
    }
}

/// Which loyalty members a refresh reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoyaltyScope {
    /// Those changed since the cursor (minus the overlap window): a pass.
    Changed,
    /// All of them: reconcile, which also catches changes an incremental read missed.
    All,
}

/// How reading the loyalty app went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoyaltyRead {
    /// This many members read and stored.
    Read(usize),
    /// The app failed (logged); the stored members stand.
    Failed,
}

impl LoyaltyRead {
    pub fn members(self) -> usize {
        match self {
            LoyaltyRead::Read(n) => n,
            LoyaltyRead::Failed => 0,
        }
    }
}

impl Pipeline {
    pub fn open(settings: Settings) -> Result<Pipeline, StoreError> {
        let store = Store::open_with_cache(&settings.store.path, settings.store.cache_mb)?;
        let stop = CancellationToken::new();
        let progress = Arc::new(Progress::default());
        Ok(Pipeline {
            shopify: ShopifyClient::new(&settings, Arc::new(ApiStats::default()), stop.clone())
                .with_progress(Arc::clone(&progress)),
            klaviyo: KlaviyoClient::new(&settings, Arc::new(ApiStats::default()), stop.clone())
                .with_progress(Arc::clone(&progress)),
            progress,
            loyalty: LoyaltyClient::new(&settings, Arc::new(ApiStats::default()), stop.clone()),
            stop,
            settings,
            store,
            dry_run: false,
            stopped: Default::default(),
            scopes: Default::default(),
        })
    }

    /// A pipeline that reads the sources and plans every write into the outbox, but sends
    /// nothing; a later pass without it delivers what was planned.
    pub fn dry_run(mut self) -> Pipeline {
        self.dry_run = true;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The progress counters of this pipeline's long phases, to show or serve.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }

    /// Shows this pipeline's progress while the returned renderer lives: bars on a terminal,
    /// else a log line at most every `log.progress_interval`.
    pub fn show_progress(&self) -> crate::progress::render::Renderer {
        crate::progress::render::spawn(self.progress(), self.settings.log.progress_interval)
    }

    /// Each vendor client's call accounting since the pipeline opened, by vendor name
    /// (`shopify`, `klaviyo`, and `loyalty` with a loyalty app): the daemon's metrics read it.
    pub fn api_stats(&self) -> Vec<(&'static str, &ApiStats)> {
        let mut stats = vec![
            ("shopify", self.shopify.stats()),
            ("klaviyo", self.klaviyo.stats()),
        ];
        if let Some(loyalty) = &self.loyalty {
            stats.push(("loyalty", loyalty.stats()));
        }
        stats
    }

    /// Shopify's cost bucket as the client estimates it now.
    pub fn shopify_bucket(&self) -> crate::vendors::shopify::ThrottleStatus {
        self.shopify.bucket()
    }

    /// One pass. When `cancel` fires, the pass stops starting new work, lets the writes in
    /// flight finish and records them; nothing is left half-recorded.
    pub async fn pass(&self, cancel: &CancellationToken) -> Result<PassReport, PassError> {
        self.pass_at(cancel, Utc::now()).await
    }

    /// A pass that evaluates the model as of `now` (windows, grace and lapse clocks, the daily
    /// recalculation). Tests use it to let days pass.
    pub async fn pass_at(
        &self,
        cancel: &CancellationToken,
        now: DateTime<Utc>,
    ) -> Result<PassReport, PassError> {
        self.stopping_on(cancel, self.run_pass(cancel, now)).await
    }

    /// Runs `work` (a pass or a reconcile); once `cancel` fires, the clients stop waiting
    /// (see [`Pipeline::stop`]) while `work` winds down and records what was done.
    pub(super) async fn stopping_on<T>(
        &self,
        cancel: &CancellationToken,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        tokio::select! {
            biased;
            done = &mut work => return done,
            () = cancel.cancelled() => self.stop.cancel(),
        }
        work.await
    }

    async fn run_pass(
        &self,
        cancel: &CancellationToken,
        now: DateTime<Utc>,
    ) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let shopify_before = self.shopify.stats().snapshot();
        let klaviyo_before = self.klaviyo.stats().snapshot();
        let shopify_throughput_before = self.shopify.throughput().snapshot();
        let klaviyo_throughput_before = self.klaviyo.throughput().snapshot();
        let loyalty_throughput_before = self.loyalty.as_ref().map(|l| l.throughput().snapshot());
        let loyalty_before = self.loyalty_stats();
        let read_ahead = self.reads_storefront_ahead()?;
        let early_read = std::pin::pin!(async {
            if read_ahead {
                let read = self.read_storefront_first(cancel);
                Some(self.guarded(Destination::Storefront, read).await)
            } else {
                None
            }
        });
        let (
            Refresh {
                ingest,
                loyalty,
                evaluation,
                reading,
                evaluating,
            },
            early_read,
        ) = self
            .refresh_beside(cancel, now, LoyaltyScope::Changed, early_read)
            .await?;
        let (delivery, events, storefront, storefront_seeding) = if self.dry_run {
            // A dry run reads what a first write would read, so its plan is the real one.
            let early_read = early_read.finish().await;
            let seeding = self.seed_storefront_if_new(cancel, now, early_read).await?;
            (
                Default::default(),
                Default::default(),
                Default::default(),
                seeding,
            )
        } else {
            // Klaviyo and the storefront answer to separate limits: written side by side, a
            // pass takes as long as the slower destination, not both one after the other.
            let klaviyo = async {
                let delivery = self
                    .guarded(Destination::Klaviyo, self.deliver_profiles(cancel))
                    .await?;
                // After the profiles: a flow triggered by an event reads the new properties.
                let events = self
                    .guarded(
                        Destination::Klaviyo,
                        klaviyo::deliver_events(&self.klaviyo, &self.store, cancel),
                    )
                    .await?;
                self.prove_klaviyo_key(klaviyo_before.requests, cancel)
                    .await?;
                Ok::<_, PassError>((delivery, events))
            };
            // A read-back still running when the refresh ended is finished here: Klaviyo's
            // writes do not wait for it, nor for the seeding after it.
            let storefront = async {
                let early_read = early_read.finish().await;
                let seeding = self.seed_storefront_if_new(cancel, now, early_read).await?;
                let storefront = self
                    .guarded(Destination::Storefront, self.deliver_storefront(cancel))
                    .await?;
                Ok::<_, PassError>((storefront, seeding))
            };
            // Both run to the end even when one fails, so neither leaves a write half-recorded.
            let (klaviyo, storefront) = tokio::join!(klaviyo, storefront);
            let ((delivery, events), (storefront, seeding)) = (klaviyo?, storefront?);
            (delivery, events, storefront, seeding)
        };
        self.store.flush()?;
        let (customers, tiers, loyalty_disagreements) = self.tier_distribution()?;
        Ok(PassReport {
            ingest,
            loyalty_members: loyalty.map(LoyaltyRead::members),
            loyalty_disagreements,
            loyalty_calls: self
                .loyalty_stats()
                .map(|now| now - loyalty_before.unwrap_or_default()),
            evaluation,
            delivery,
            customers,
            tiers,
            klaviyo_outbox: self.store.outbox_counts::<ProfileState>()?,
            storefront: if self.settings.storefront.enabled {
                Some((storefront, self.store.outbox_counts::<StorefrontState>()?))
            } else {
                None
            },
            storefront_seeding,
            events,
            event_outbox: self.store.event_counts()?,
            shopify_calls: self.shopify.stats().snapshot() - shopify_before,
            klaviyo_calls: self.klaviyo.stats().snapshot() - klaviyo_before,
            shopify_throughput: self.shopify.throughput().snapshot() - shopify_throughput_before,
            klaviyo_throughput: self.klaviyo.throughput().snapshot() - klaviyo_throughput_before,
            loyalty_throughput: self
                .loyalty
                .as_ref()
                .map(|l| l.throughput().snapshot() - loyalty_throughput_before.unwrap_or_default()),
            stopped: self.stopped_destinations(),
            partial_history_since: self.store.partial_history_since()?,
            interrupted: cancel.is_cancelled(),
            reading,
            evaluating,
            elapsed: started.elapsed(),
        })
    }

    /// Runs one destination's delivery unless that destination is stopped. A refused
    /// credential stops the destination for the life of this process (credentials only
    /// change with the configuration, which needs a restart): one clear error, no retry
    /// storm, and the other destinations carry on. The stop is recorded in the store for
    /// `status`, and cleared by the next delivery that works.
    pub(super) async fn guarded<T: Default>(
        &self,
        destination: Destination,
        delivery: impl std::future::Future<Output = Result<T, DeliveryError>>,
    ) -> Result<T, PassError> {
        if self.is_stopped(destination) {
            return Ok(T::default());
        }
        match delivery.await {
            Ok(report) => {
                if self.store.destination_stopped(destination)?.is_some() {
                    self.store.set_destination_stopped(destination, None)?;
                }
                Ok(report)
            }
            Err(DeliveryError::Api(error)) if error.is_credential() => {
                let message = error.to_string();
                tracing::error!(destination = destination.name(), %message, "destination stopped: its credential was refused; fix it and restart tiersync (writes wait in the outbox)");
                self.store
                    .set_destination_stopped(destination, Some(&message))?;
                self.stopped
                    .lock()
                    .expect("stopped lock")
                    .insert(destination, message);
                Ok(T::default())
            }
            Err(DeliveryError::Api(error)) => Err(match destination {
                Destination::Klaviyo => PassError::Deliver(DeliveryError::Api(error)),
                Destination::Storefront => PassError::Storefront(DeliveryError::Api(error)),
            }),
            Err(DeliveryError::Store(error)) => Err(PassError::Store(error)),
        }
    }

    /// Notices a wrong or revoked Klaviyo key while nothing needs writing: when this pass
    /// sent Klaviyo nothing (`requests_before` is the client's count at its start) and the key
    /// was last proven more than `klaviyo.key_check_interval` ago, one read of one profile
    /// proves it, or stops the destination as a refused write would. A pass whose requests
    /// Klaviyo answered proves the key by itself (a refusal would have stopped it).
    async fn prove_klaviyo_key(
        &self,
        requests_before: u64,
        cancel: &CancellationToken,
    ) -> Result<(), PassError> {
        if cancel.is_cancelled() || self.is_stopped(Destination::Klaviyo) {
            return Ok(());
        }
        let now = Utc::now();
        if self.klaviyo.stats().snapshot().requests == requests_before {
            let interval = chrono::Duration::from_std(self.settings.klaviyo.key_check_interval)
                .unwrap_or(chrono::Duration::MAX);
            let due = self
                .store
                .klaviyo_key_proven()?
                .is_none_or(|at| now - at >= interval);
            if !due {
                return Ok(());
            }
            let probe = async { Ok(klaviyo::probe_key(&self.klaviyo).await?) };
            self.guarded(Destination::Klaviyo, probe).await?;
            if self.is_stopped(Destination::Klaviyo) {
                return Ok(());
            }
        }
        self.store.set_klaviyo_key_proven(now)?;
        Ok(())
    }

    fn is_stopped(&self, destination: Destination) -> bool {
        self.stopped
            .lock()
            .expect("stopped lock")
            .contains_key(&destination)
    }

    /// The destinations stopped in this process, with why.
    fn stopped_destinations(&self) -> Vec<String> {
        let stopped = self.stopped.lock().expect("stopped lock");
        let mut out: Vec<String> = stopped
            .iter()
            .map(|(d, why)| format!("{}: {why}", d.name()))
            .collect();
        out.sort();
        out
    }

    async fn deliver_profiles(
        &self,
        cancel: &CancellationToken,
    ) -> Result<DeliveryReport, DeliveryError> {
        klaviyo::deliver(
            &self.klaviyo,
            &self.store,
            self.settings.klaviyo.bulk_threshold,
            self.settings.klaviyo.concurrency,
            cancel,
        )
        .await
    }

    /// Reads the sources and evaluates: the desired state, planned into the outbox.
    pub(super) async fn refresh(
        &self,
        cancel: &CancellationToken,
        now: DateTime<Utc>,
        loyalty_scope: LoyaltyScope,
    ) -> Result<Refresh, PassError> {
        let beside = std::future::ready(());
        let (refresh, _) = self
            .refresh_beside(cancel, now, loyalty_scope, beside)
            .await?;
        Ok(refresh)
    }

    /// [`Pipeline::refresh`], with `beside` running alongside from the moment the access
    /// check passes (nothing is read before it). When the refresh ends first, `beside` is
    /// handed back still running, for the caller to finish beside its next steps; when the
    /// refresh fails, `beside` is dropped unfinished: it must be a read that records nothing.
    async fn refresh_beside<F: std::future::Future + Unpin>(
        &self,
        cancel: &CancellationToken,
        now: DateTime<Utc>,
        loyalty_scope: LoyaltyScope,
        beside: F,
    ) -> Result<(Refresh, Beside<F>), PassError> {
        let started = Instant::now();
        self.check_access().await?;
        let refresh = async {
            let tz = self.timezone().await?;
            let ingest =
                ingest_orders(&self.shopify, &self.store, &self.settings.shopify, cancel).await;
            // The order map is needed only while orders are applied: settled and closed here,
            // so the evaluation (the daily recalculation above all) runs without its memory.
            let released = self.store.release_order_map();
            let ingest = ingest?;
            released?;
            let loyalty = self.ingest_loyalty(loyalty_scope).await?;
            let reading = started.elapsed();
            let evaluation = evaluate(&self.store, &self.settings, tz, now)?;
            Ok::<_, PassError>(Refresh {
                ingest,
                loyalty,
                evaluation,
                reading,
                evaluating: started.elapsed() - reading,
            })
        };
        let refresh = std::pin::pin!(refresh);
        let both = match futures::future::select(refresh, beside).await {
            Either::Left((refresh, beside)) => (refresh?, Beside::Running(beside)),
            Either::Right((done, refresh)) => (refresh.await?, Beside::Done(done)),
        };
        Ok(both)
    }

    /// Whether this pass reads the storefront for its first write beside the refresh
    /// (the order backfill and evaluation) rather than after it: when the storefront is on and
    /// not yet seeded, and the API version lets the read-back's bulk query run next to the
    /// backfill's (from 2026-01). Reading before the evaluation is safe because tiersync has
    /// never written to this storefront: nothing this pass writes can be missing from it.
    fn reads_storefront_ahead(&self) -> Result<bool, StoreError> {
        Ok(self.settings.storefront.enabled
            && self.store.storefront_seeded()?.is_none()
            && concurrent_operations(&self.settings.shopify.api_version) > 1)
    }

    /// The storefront read before tiersync's first write to it (see
    /// [`Pipeline::seed_storefront`]), from `early_read` when it was taken beside the refresh,
    /// else read now; `None` when it was read before, is off or stopped, or `cancel` fired
    /// before the read ended. A failed read fails the storefront side of the pass only.
    async fn seed_storefront_if_new(
        &self,
        cancel: &CancellationToken,
        now: DateTime<Utc>,
        early_read: Option<EarlyRead>,
    ) -> Result<Option<super::Drift>, PassError> {
        if !self.settings.storefront.enabled || self.store.storefront_seeded()?.is_some() {
            return Ok(None);
        }
        let shop = match early_read {
            Some(read) => read?,
            None => {
                let read = self.read_storefront_first(cancel);
                self.guarded(Destination::Storefront, read).await?
            }
        };
        match shop {
            Some(shop) => Ok(Some(self.seed_storefront(shop, now).await?)),
            None => Ok(None),
        }
    }

    /// Writes the pending storefront tags and metafields (when the storefront is on, and has
    /// been read before the first write: a cancelled read writes nothing).
    async fn deliver_storefront(
        &self,
        cancel: &CancellationToken,
    ) -> Result<DeliveryReport, DeliveryError> {
        if !self.settings.storefront.enabled || self.store.storefront_seeded()?.is_none() {
            return Ok(DeliveryReport::default());
        }
        storefront::deliver(
            &self.shopify,
            &self.store,
            &self.settings.storefront,
            &self.settings.shopify,
            self.settings.sync.max_retry_time,
            cancel,
        )
        .await
    }

    /// Delivers whatever is pending at every destination (reconcile's repairs).
    pub(super) async fn deliver_all(
        &self,
        cancel: &CancellationToken,
    ) -> Result<(DeliveryReport, DeliveryReport), PassError> {
        let profiles = self
            .guarded(Destination::Klaviyo, self.deliver_profiles(cancel))
            .await?;
        let storefront = self
            .guarded(Destination::Storefront, self.deliver_storefront(cancel))
            .await?;
        self.store.flush()?;
        Ok((profiles, storefront))
    }

    fn loyalty_stats(&self) -> Option<ApiStatsSnapshot> {
        self.loyalty.as_ref().map(|l| l.stats().snapshot())
    }

    /// Reads the loyalty members in `scope` into the store (a changed member dirties their
    /// customer). A loyalty app that is down or refuses the key does not stop the pass: the
    /// stored members are used and the error is logged.
    async fn ingest_loyalty(&self, scope: LoyaltyScope) -> Result<Option<LoyaltyRead>, PassError> {
        let Some(client) = &self.loyalty else {
            return Ok(None);
        };
        let overlap = chrono::Duration::from_std(self.settings.shopify.overlap).unwrap_or_default();
        let stored_cursor = self.store.loyalty_cursor()?;
        let since = match scope {
            LoyaltyScope::Changed => stored_cursor.map(|c| c - overlap),
            LoyaltyScope::All => None,
        };
        let members = match client.members_updated_since(since).await {
            Ok(members) => members,
            Err(error) => {
                tracing::error!(%error, "reading the loyalty app failed; using the stored members");
                return Ok(Some(LoyaltyRead::Failed));
            }
        };
        let cursor = members.iter().map(|m| m.updated_at).max().or(stored_cursor);
        let records: Vec<(String, LoyaltyRecord)> = members
            .iter()
            .map(|m| {
                (
                    m.email.clone(),
                    LoyaltyRecord {
                        points: m.points,
                        tier: m.tier.clone(),
                        updated_at: m.updated_at,
                    },
                )
            })
            .collect();
        let changed = self.store.apply_loyalty(&records, cursor)?;
        tracing::debug!(members = records.len(), changed, "loyalty members stored");
        Ok(Some(LoyaltyRead::Read(records.len())))
    }

    /// Refuses the pass, before anything is read or written, when the app lacks a scope
    /// tiersync needs (see [`check_access`]). A first backfill that runs without
    /// `read_all_orders` (accepted in the settings) is recorded in the store as partial
    /// history, for the reports and `status`.
    async fn check_access(&self) -> Result<(), PassError> {
        let cached = self.scopes.lock().expect("scopes lock").clone();
        let first = cached.is_none();
        let granted = match cached {
            Some(granted) => granted,
            None => granted_scopes(&self.shopify)
                .await
                .map_err(IngestError::from)?,
        };
        let backfill_due = self.store.orders_cursor()?.is_none();
        let access = check_access(&granted, &self.settings, backfill_due)?;
        if access.partial_history {
            if backfill_due && self.store.partial_history_since()?.is_none() {
                let since = Utc::now() - chrono::Duration::days(ORDER_WINDOW_DAYS);
                self.store.set_partial_history_since(since)?;
            }
            if first {
                tracing::warn!(
                    days = ORDER_WINDOW_DAYS,
                    "the Shopify app lacks read_all_orders: only the orders of the last 60 days are visible"
                );
            }
        }
        *self.scopes.lock().expect("scopes lock") = Some(granted);
        Ok(())
    }

    /// The shop's time zone: configured, remembered, or asked of Shopify once.
    pub async fn timezone(&self) -> Result<Tz, PassError> {
        if let Some(tz) = self.settings.shopify.timezone {
            return Ok(tz);
        }
        if let Some(tz) = self
            .store
            .shop_timezone()?
            .and_then(|name| name.parse().ok())
        {
            return Ok(tz);
        }
        let tz = shop_timezone(&self.shopify)
            .await
            .map_err(IngestError::from)?;
        self.store.set_shop_timezone(tz.name())?;
        tracing::info!(timezone = tz.name(), "shop time zone learned from Shopify");
        Ok(tz)
    }

    /// Customers per level (with how many are in grace or lapsed), `None` first, and how
    /// many customers' loyalty-app tier disagrees with the tier held (the comparison
    /// `status` and `reconcile` make, fed by this same scan).
    fn tier_distribution(&self) -> Result<(usize, Vec<TierCount>, usize), StoreError> {
        let mut counts: BTreeMap<Option<String>, TierCount> = BTreeMap::new();
        let mut total = 0;
        let mut loyalty = LoyaltyComparison::new(&self.store, &self.settings)?;
        for record in self.store.customers() {
            let record = record?;
            if let Some(loyalty) = &mut loyalty {
                loyalty.customer(&record);
            }
            let entry = counts.entry(record.tier.level.clone()).or_default();
            entry.customers += 1;
            match record.tier.state {
                VipState::Grace => entry.grace += 1,
                VipState::Lapsed => entry.lapsed += 1,
                VipState::None | VipState::Active => {}
            }
            total += 1;
        }
        let names = std::iter::once(None).chain(
            self.settings
                .tiers
                .levels
                .iter()
                .map(|l| Some(l.name.clone())),
        );
        let tiers = names
            .map(|name| TierCount {
                name: name.clone().unwrap_or_else(|| "None".to_string()),
                ..counts.get(&name).cloned().unwrap_or_default()
            })
            .collect();
        let disagreements = loyalty.map_or(0, |l| l.finish().count);
        Ok((total, tiers, disagreements))
    }
}
