//! Stateful fake vendor servers for tiersync's tests and demo.
//!
//! The fakes speak the vendors' real wire protocols on loopback so the daemon under test runs
//! its production HTTP code unchanged:
//!
//! - [`shopify`]: the Admin GraphQL API (orders, customers, bulk operations, tags, metafields),
//!   with every document validated against Shopify's published schema and cost-based
//!   throttling (`THROTTLED`) computed from the document.
//! - [`klaviyo`]: the JSON:API endpoints tiersync uses (profile import, profile read-back,
//!   bulk profile import jobs, events), with bodies validated against Klaviyo's OpenAPI spec
//!   and per-endpoint burst/steady rate limits answering 429 + `Retry-After`.
//! - [`smile`] and [`loyaltylion`]: the loyalty platforms' REST APIs (customers with points
//!   and VIP tiers, cursor paging, Bearer auth, per-second rate limits answering 429).
//! - [`generator`]: a deterministic, seeded store history (heavy-tailed spend, refunds,
//!   cancellations, test and guest orders, several presentment currencies).
//! - [`recorder`]: every request each fake received, for assertions.
//!
//! [`MockServers::start`] binds both fakes on `127.0.0.1` (port 0 unless given) and returns
//! handles whose state tests can read and change. It also starts the fake Smile.io and
//! LoyaltyLion ([`MockServers::smile`], [`MockServers::loyaltylion`]) the same way.

pub mod data;
pub mod generator;
mod harness;
pub use harness::faults;
pub mod klaviyo;
pub mod loyaltylion;
pub mod recorder;
pub mod shopify;
pub mod smile;

use std::net::SocketAddr;

/// Where and how to start the fakes.
#[derive(Debug, Clone, Default)]
pub struct MockOptions {
    /// Shopify listen port; 0 picks a free one.
    pub shopify_port: u16,
    /// Klaviyo listen port; 0 picks a free one.
    pub klaviyo_port: u16,
    pub shopify: shopify::ShopifyOptions,
    pub klaviyo: klaviyo::KlaviyoOptions,
    /// Smile.io listen port; 0 picks a free one.
    pub smile_port: u16,
    /// LoyaltyLion listen port; 0 picks a free one.
    pub loyaltylion_port: u16,
    pub smile: smile::SmileOptions,
    pub loyaltylion: loyaltylion::LoyaltyLionOptions,
}

impl MockOptions {
    /// Every fake with the faults of `plan`, each drawing from its own seed (the plan's seed
    /// plus 0 for Shopify, 1 for Klaviyo, 2 for Smile.io, 3 for LoyaltyLion), so the same
    /// requests get the same faults on every run.
    pub fn with_faults(mut self, plan: &faults::FaultPlan) -> MockOptions {
        let seeded = |offset: u64| plan.clone().with_seed(plan.seed().wrapping_add(offset));
        self.shopify.faults = seeded(0);
        self.klaviyo.faults = seeded(1);
        self.smile.faults = seeded(2);
        self.loyaltylion.faults = seeded(3);
        self
    }
}

/// Both fakes, running on loopback until the handles are dropped or the process exits.
#[derive(Clone)]
pub struct MockServers {
    pub shopify: shopify::FakeShopify,
    pub klaviyo: klaviyo::FakeKlaviyo,
    pub smile: smile::FakeSmile,
    pub loyaltylion: loyaltylion::FakeLoyaltyLion,
}

impl MockServers {
    pub async fn start(options: MockOptions) -> std::io::Result<MockServers> {
        let shopify = shopify::FakeShopify::start(
            SocketAddr::from(([127, 0, 0, 1], options.shopify_port)),
            options.shopify,
        )
        .await?;
        let klaviyo = klaviyo::FakeKlaviyo::start(
            SocketAddr::from(([127, 0, 0, 1], options.klaviyo_port)),
            options.klaviyo,
        )
        .await?;
        let smile = smile::FakeSmile::start(
            SocketAddr::from(([127, 0, 0, 1], options.smile_port)),
            options.smile,
        )
        .await?;
        let loyaltylion = loyaltylion::FakeLoyaltyLion::start(
            SocketAddr::from(([127, 0, 0, 1], options.loyaltylion_port)),
            options.loyaltylion,
        )
        .await?;
        Ok(MockServers {
            shopify,
            klaviyo,
            smile,
            loyaltylion,
        })
    }
}
