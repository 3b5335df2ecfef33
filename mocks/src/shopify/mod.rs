//! A fake Shopify Admin GraphQL API that behaves like the real one where tiersync depends on
//! it: every document is validated against Shopify's published schema, answered by
//! projecting stored records onto the selection, costed and paid for from a leaky bucket
//! (`THROTTLED` / `MAX_COST_EXCEEDED` as Shopify answers them), paged with opaque cursors,
//! filtered with Shopify's search syntax, and backfilled through bulk operations. Each request
//! is validated against the schema of the API version in its path (2025-01 or 2026-10).
//!
//! Apps authenticate with a static token (an app created in the Shopify admin before 2026) or
//! with expiring tokens from the client credentials grant (an app from the Dev Dashboard), and
//! see and change only what their access scopes allow (see `access`).
//!
//! Tests drive it through [`FakeShopify`]: load a store, change records, force throttling,
//! inject faults ([`FakeShopify::faults`]) and read back every request it received.

mod access;
mod bucket;
mod bulk;
mod bulk_export;
mod bulk_list;
mod bulk_mutation;
mod connection;
mod cost;
mod graphql;
mod mutations;
mod oauth;
mod objects;
mod paced;
mod projection;
mod query_filter;
mod request;
mod root;
mod selection;
mod server;
mod staged;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::data::{Customer, Order, StoreData};
use crate::faults::{Fault, FaultPlan};
use crate::harness;
pub use bulk::BulkQuery;
pub use paced::DownloadPace;
use state::Shared;

/// How the fake shop is set up.
#[derive(Debug, Clone)]
pub struct ShopifyOptions {
    /// The static token of an admin-created app, accepted in `X-Shopify-Access-Token`.
    pub access_token: String,
    /// The Dev Dashboard app's client ID, for the client credentials grant.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// How long a token from the grant lasts (`expires_in`); Shopify's are reported to last
    /// 24 hours, tests set a few seconds.
    pub token_lifetime: Duration,
    /// The access scopes granted to the app (either way of authenticating). Without
    /// `read_all_orders` only the last 60 days of orders are visible; without
    /// `write_customers` tag and metafield writes are denied.
    pub scopes: Vec<String>,
    /// The shop's plan as `shop { plan { displayName publicDisplayName } }` names it.
    pub plan: String,
    /// `throttleStatus.maximumAvailable` (points).
    pub bucket_max: f64,
    /// `throttleStatus.restoreRate` (points per second).
    pub restore_rate: f64,
    /// Largest `requestedQueryCost` a single query may have.
    pub max_query_cost: f64,
    /// How long a bulk operation stays RUNNING before it completes.
    pub bulk_delay: Duration,
    /// How fast the bulk result URL sends the file (at once by default).
    pub bulk_download: DownloadPace,
    /// Lines of a bulk mutation applied per second, per operation. Shopify publishes no
    /// figure; the default (100/s) is deliberately conservative, and the benchmark sets what
    /// it assumes.
    pub bulk_mutation_rate: f64,
    /// Injected faults (none by default); see [`crate::faults`].
    pub faults: FaultPlan,
}

impl Default for ShopifyOptions {
    /// Shopify's Standard plan: 2,000-point bucket, 100 points/s, 1,000 points per query.
    fn default() -> Self {
        ShopifyOptions {
            access_token: "shpat_test_token".to_owned(),
            client_id: "tiersync-test-client-id".to_owned(),
            client_secret: "shpss_test_client_secret".to_owned(),
            token_lifetime: Duration::from_secs(86_400),
            scopes: access::default_scopes(),
            plan: "Basic".to_owned(),
            bucket_max: 2000.0,
            restore_rate: 100.0,
            max_query_cost: 1000.0,
            bulk_delay: Duration::from_millis(200),
            bulk_download: DownloadPace::default(),
            bulk_mutation_rate: 100.0,
            faults: FaultPlan::none(),
        }
    }
}

impl ShopifyOptions {
    /// A Shopify Plus shop: 1,000 points/s and a bucket of 20 times that (the ratio observed
    /// on Standard).
    pub fn plus() -> Self {
        ShopifyOptions {
            plan: "Plus".to_owned(),
            bucket_max: 20_000.0,
            restore_rate: 1_000.0,
            ..ShopifyOptions::default()
        }
    }
}

/// Handle on a running fake Shopify; clones share the same shop.
#[derive(Clone)]
pub struct FakeShopify {
    shared: Arc<Shared>,
}

impl FakeShopify {
    /// Binds `addr` (port 0 picks a free one) and serves until the process exits.
    pub async fn start(addr: SocketAddr, options: ShopifyOptions) -> std::io::Result<FakeShopify> {
        let state = |base_url| Shared::new(options, base_url);
        let shared = harness::serve(addr, "Shopify", server::router, state).await?;
        Ok(FakeShopify { shared })
    }

    /// `http://127.0.0.1:PORT`; the GraphQL endpoint is `{base_url}/admin/api/{version}/graphql.json`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The static access token (of an admin-created app) requests may send.
    pub fn access_token(&self) -> String {
        self.shared.options.access_token.clone()
    }

    /// The client ID the client credentials grant accepts.
    pub fn client_id(&self) -> String {
        self.shared.options.client_id.clone()
    }

    /// The client secret the client credentials grant accepts.
    pub fn client_secret(&self) -> String {
        self.shared.options.client_secret.clone()
    }

    /// How many access tokens the client credentials grant issued.
    pub fn tokens_issued(&self) -> usize {
        self.shared.tokens().issued()
    }

    /// Ends every token the grant issued, now (as if they had expired): the next request
    /// with one gets 401.
    pub fn expire_tokens(&self) {
        self.shared.tokens().expire_all();
    }

    /// Replaces the shop's customers and orders (and its currency and time zone).
    pub fn load(&self, store: StoreData) {
        self.shared.state().load(store);
    }

    /// Adds or replaces a customer, stored as given (the caller sets `updated_at`).
    pub fn upsert_customer(&self, customer: Customer) {
        self.shared.state().customers.insert(customer.id, customer);
    }

    /// Adds or replaces an order, stored as given (the caller sets `updated_at`).
    pub fn upsert_order(&self, order: Order) {
        self.shared.state().upsert_order(order);
    }

    /// Every order, by id.
    pub fn orders(&self) -> Vec<Order> {
        self.shared.state().orders.values().cloned().collect()
    }

    /// Every customer, by id (tags as changed by `tagsAdd` / `tagsRemove`).
    pub fn customers(&self) -> Vec<Customer> {
        self.shared.state().customers.values().cloned().collect()
    }

    /// Deletes a customer (their orders stay, as Shopify keeps orders of deleted customers);
    /// mutations on them answer "Customer does not exist".
    pub fn delete_customer(&self, id: u64) {
        let mut state = self.shared.state();
        state.customers.remove(&id);
        state.metafields.remove(&id);
    }

    pub fn customer(&self, id: u64) -> Option<Customer> {
        self.shared.state().customers.get(&id).cloned()
    }

    /// The value of a customer's metafield, if set.
    pub fn customer_metafield(&self, id: u64, namespace: &str, key: &str) -> Option<String> {
        let state = self.shared.state();
        state
            .metafields
            .get(&id)?
            .iter()
            .find(|m| m.namespace == namespace && m.key == key)
            .map(|m| m.value.clone())
    }

    /// How many `tagsAdd` / `tagsRemove` changed a customer (sent alone or in bulk).
    pub fn tag_mutations(&self, id: u64) -> u32 {
        self.shared
            .state()
            .tag_mutations
            .get(&id)
            .copied()
            .unwrap_or(0)
    }

    /// The next bulk mutation does `lines` lines, then ends FAILED (`INTERNAL_SERVER_ERROR`)
    /// with what it did at its `partialDataUrl`, as Shopify's do when they break down.
    pub fn fail_next_bulk_mutation_after(&self, lines: usize) {
        self.shared.state().fail_bulk_mutation_after = Some(lines);
    }

    /// The next `bulkOperationRunMutation` that starts an operation gets HTTP 503 instead of
    /// its answer, as when a gateway times out after Shopify accepted it: the operation runs,
    /// and the client never learns its id.
    pub fn lose_next_bulk_mutation_answer(&self) {
        self.shared.state().lose_bulk_mutation_answer = true;
    }

    /// Query-cost points spent from the bucket so far.
    pub fn points_spent(&self) -> f64 {
        self.shared.state().bucket.spent()
    }

    /// Every bulk query operation, oldest first.
    pub fn bulk_queries(&self) -> Vec<BulkQuery> {
        self.shared.state().bulk.of_kind(bulk::Kind::Query)
    }

    /// Every bulk mutation operation, oldest first.
    pub fn bulk_mutation_operations(&self) -> Vec<BulkQuery> {
        self.shared.state().bulk.of_kind(bulk::Kind::Mutation)
    }

    /// Every bulk mutation operation: its status and how many lines it has done.
    pub fn bulk_mutations(&self) -> Vec<(String, u64)> {
        self.shared.state().bulk.mutations()
    }

    harness::request_log!(shared, "(\"POST\", \"/admin/api/2026-10/graphql.json\")");

    /// Answers the next `n` GraphQL requests `THROTTLED` (whatever they cost), draining the
    /// bucket so the reported `throttleStatus` agrees: `faults().inject_next_on("/admin/api/",
    /// n, Fault::Throttled)`.
    pub fn throttle_next(&self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.faults()
            .inject_next_on("/admin/api/", n, Fault::Throttled);
    }

    /// Sets the bucket's `currentlyAvailable` points (it keeps refilling from there).
    pub fn set_available(&self, points: f64) {
        self.shared.state().bucket.set(points);
    }
}
