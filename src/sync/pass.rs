//! The pipeline: the store and one client per vendor, and the pass that runs them in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::{evaluate, PassReport, TierCount};
use crate::config::Settings;
use crate::http::ApiStats;
use crate::model::VipState;
use crate::sinks::klaviyo::{self, DeliveryError, KlaviyoClient};
use crate::sources::shopify::{ingest_orders, shop_timezone, IngestError, ShopifyClient};
use crate::store::{Destination, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("reading Shopify orders: {0}")]
    Ingest(#[from] IngestError),
    #[error("writing Klaviyo profiles: {0}")]
    Deliver(#[from] DeliveryError),
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
        )
    }
}

pub struct Pipeline {
    settings: Settings,
    store: Store,
    shopify: ShopifyClient,
    klaviyo: KlaviyoClient,
}

impl Pipeline {
    pub fn open(settings: Settings) -> Result<Pipeline, StoreError> {
        let store = Store::open(&settings.store.path)?;
        Ok(Pipeline {
            shopify: ShopifyClient::new(&settings, Arc::new(ApiStats::default())),
            klaviyo: KlaviyoClient::new(&settings, Arc::new(ApiStats::default())),
            settings,
            store,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// One pass. When `cancel` fires, the pass stops starting new work, lets the writes in
    /// flight finish and records them; nothing is left half-recorded.
    pub async fn pass(&self, cancel: &CancellationToken) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let shopify_before = self.shopify.stats().snapshot();
        let klaviyo_before = self.klaviyo.stats().snapshot();
        let tz = self.timezone().await?;
        let ingest =
            ingest_orders(&self.shopify, &self.store, &self.settings.shopify, cancel).await?;
        let evaluation = evaluate(&self.store, &self.settings, tz, Utc::now())?;
        let delivery = klaviyo::deliver(
            &self.klaviyo,
            &self.store,
            self.settings.klaviyo.bulk_threshold,
            self.settings.klaviyo.concurrency,
            cancel,
        )
        .await?;
        self.store.flush()?;
        let (customers, tiers) = self.tier_distribution()?;
        Ok(PassReport {
            ingest,
            evaluation,
            delivery,
            customers,
            tiers,
            klaviyo_outbox: self.store.outbox_counts(Destination::Klaviyo)?,
            shopify_calls: self.shopify.stats().snapshot() - shopify_before,
            klaviyo_calls: self.klaviyo.stats().snapshot() - klaviyo_before,
            elapsed: started.elapsed(),
        })
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

    /// Customers per level (with how many are in grace or lapsed), `None` first.
    fn tier_distribution(&self) -> Result<(usize, Vec<TierCount>), StoreError> {
        let mut counts: BTreeMap<Option<String>, TierCount> = BTreeMap::new();
        let mut total = 0;
        for record in self.store.customers() {
            let record = record?;
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
        Ok((total, tiers))
    }
}
