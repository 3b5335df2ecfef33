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
//! - [`recorder`]: every request each fake received, with the status the client got and the
//!   fault injected into it, for assertions.
//! - [`faults`]: fault injection shared by all four fakes, in addition to their real rate
//!   limits. Each fake's options take a [`faults::FaultPlan`] (per-kind rates drawn from a
//!   seeded generator, a schedule of the next `n` requests, a revoked token) and each handle's
//!   `faults()` steers it at run time and counts what it injected. Kinds: 429 with or without
//!   `Retry-After`, Shopify's `THROTTLED`, 5xx, 401 (once, or until the token is restored),
//!   answers slower than the client's timeout, dropped connections, truncated JSON, pages
//!   repeating items already returned, and answers lost after the request took effect. Error
//!   answers come before the endpoint (nothing changes); slow, truncated, lost and
//!   dropped-after answers come after it ran (the change is made). The `tiersync-mocks` binary
//!   takes `--faults 429=0.1,5xx=0.05,timeout=0.02,malformed=0.01 --fault-seed N`.
//!
//! [`MockServers::start`] binds all four fakes on `127.0.0.1` (port 0 unless given) and returns
//! handles whose state tests can read and change ([`MockServers::shopify`],
//! [`MockServers::klaviyo`], [`MockServers::smile`], [`MockServers::loyaltylion`]);
//! [`MockOptions::with_faults`] gives every fake the same fault plan.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tiersync_mocks::faults::{Fault, FaultKind, FaultPlan};
//! use tiersync_mocks::{MockOptions, MockServers};
//!
//! let plan = FaultPlan::rates(7).with(Fault::ServerError(503), 0.05);
//! let servers = MockServers::start(MockOptions::default().with_faults(&plan)).await?;
//! servers.klaviyo.faults().inject_next(2, Fault::TooManyRequests { retry_after: None });
//! servers.shopify.faults().revoke_token();
//! // … run the daemon against servers.*.base_url() …
//! assert!(servers.klaviyo.faults().injected(FaultKind::TooManyRequests) <= 2);
//! # Ok(())
//! # }
//! ```

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

/// The four fakes, running on loopback until the handles are dropped or the process exits.
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
