//! A stateful fake of the LoyaltyLion Admin API v2 (`https://api.loyaltylion.com/v2`) on
//! loopback.
//!
//! It serves `GET /v2/customers` (newest id first, `cursor: {prev, next}` paging where the
//! cursor carries the first request's filters, `updated_at_min|max`, `created_at_min|max`,
//! `since_id`, `email`, `limit` ≤ 500) and `PATCH /v2/customers/{merchant_id}`, which accepts
//! only `birthday` and `blocked` — anything else (a tier, points) is a 400, as LoyaltyLion has
//! no endpoint that sets a tier. Requests need `Authorization: Bearer {api key}` (401
//! otherwise; the deprecated token/secret Basic auth is refused); each key may make 20
//! requests per second and then gets 429 for the rest of that second. Tests move points and
//! tiers through [`FakeLoyaltyLion::set_points`] and [`FakeLoyaltyLion::set_tier`], as
//! LoyaltyLion's own rules would. Faults are injected through [`FakeLoyaltyLion::faults`]
//! (see [`crate::faults`]).

mod errors;
mod server;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::data::StoreData;
use crate::faults::{Fault, FaultPlan};
use crate::harness::{self, bearer};

/// A LoyaltyLion customer as the fake stores it (email lower-cased).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoyaltyLionCustomer {
    /// LoyaltyLion's own id; 0 in [`FakeLoyaltyLion::upsert_customer`] assigns the next one.
    pub id: u64,
    /// The customer's id in the shop (for Shopify, the numeric customer id).
    pub merchant_id: String,
    pub email: String,
    pub points_approved: i64,
    pub points_pending: i64,
    pub points_spent: i64,
    pub properties: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub enrolled: bool,
    pub enrolled_at: Option<DateTime<Utc>>,
    pub guest: bool,
    pub blocked: bool,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub tier_membership: Option<LoyaltyLionTierMembership>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A customer's current tier (`loyalty_tier_membership`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoyaltyLionTierMembership {
    /// Id of one of [`FakeLoyaltyLion::tiers`].
    pub tier_id: u64,
    pub started_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// True when the merchant placed the customer in the tier by hand.
    pub manual: bool,
}

/// A loyalty tier as the merchant configured it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoyaltyLionTier {
    pub id: u64,
    pub name: String,
    /// 1 for the lowest tier.
    pub number: u32,
    /// 0 for the lowest tier.
    pub position: u32,
    pub default: bool,
    pub hidden: bool,
    /// Spend or points bounds as decimal strings (`"500.00"`); no upper bound for the top tier.
    pub lower_bound: String,
    pub upper_bound: Option<String>,
}

impl LoyaltyLionTier {
    pub fn new(id: u64, name: &str, index: u32, lower: &str, upper: Option<&str>) -> Self {
        LoyaltyLionTier {
            id,
            name: name.to_owned(),
            number: index + 1,
            position: index,
            default: index == 0,
            hidden: false,
            lower_bound: lower.to_owned(),
            upper_bound: upper.map(str::to_owned),
        }
    }
}

/// How the fake LoyaltyLion behaves.
#[derive(Debug, Clone)]
pub struct LoyaltyLionOptions {
    /// The API key requests must send as `Authorization: Bearer {key}`.
    pub api_key: String,
    /// Requests each key may make per second (LoyaltyLion: 20).
    pub requests_per_second: u32,
    /// The program's tiers, lowest first (default Bronze 150+, Silver 500+, Gold 1000+ spend).
    pub tiers: Vec<LoyaltyLionTier>,
    /// Injected faults (none by default); see [`crate::faults`].
    pub faults: FaultPlan,
}

impl Default for LoyaltyLionOptions {
    fn default() -> Self {
        LoyaltyLionOptions {
            api_key: "loyaltylion_test_key".to_owned(),
            requests_per_second: 20,
            tiers: vec![
                LoyaltyLionTier::new(2001, "Bronze", 0, "150.00", Some("499.99")),
                LoyaltyLionTier::new(2002, "Silver", 1, "500.00", Some("999.99")),
                LoyaltyLionTier::new(2003, "Gold", 2, "1000.00", None),
            ],
            faults: FaultPlan::none(),
        }
    }
}

/// State shared by the handlers and the test's handle.
type Shared = bearer::Shared<store::Store, errors::ApiError>;

/// A running fake LoyaltyLion; clones share its state.
#[derive(Clone)]
pub struct FakeLoyaltyLion {
    shared: Arc<Shared>,
}

impl FakeLoyaltyLion {
    /// Binds `addr` (port 0 picks one) and serves until the runtime stops.
    pub async fn start(
        addr: SocketAddr,
        options: LoyaltyLionOptions,
    ) -> std::io::Result<FakeLoyaltyLion> {
        let shared = Shared::serve(
            addr,
            "LoyaltyLion",
            options.api_key,
            options.requests_per_second,
            &options.faults,
            store::Store::new(options.tiers),
            server::router,
        )
        .await?;
        Ok(FakeLoyaltyLion { shared })
    }

    /// `http://127.0.0.1:PORT`; the API is under `/v2`, as at `https://api.loyaltylion.com/v2`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn api_key(&self) -> String {
        self.shared.gate.token().to_owned()
    }

    /// Adds loyalty members drawn by [`crate::generator::loyalty_members`]: one enrolled
    /// customer per entry, with the store's customer id as `merchant_id`, its name in
    /// `properties` and its dates, the points as `points_approved` and the tier given (tiers
    /// unknown to the program are left unset).
    pub fn load(&self, store: &StoreData, members: &[(String, i64, Option<String>)]) {
        self.shared.store().load(store, members);
    }

    /// Inserts the customer, or replaces the one with its id; id 0 assigns a new id. The email
    /// is lower-cased. Returns the customer as stored.
    pub fn upsert_customer(&self, customer: LoyaltyLionCustomer) -> LoyaltyLionCustomer {
        self.shared.store().upsert(customer)
    }

    /// Every customer, by id.
    pub fn customers(&self) -> Vec<LoyaltyLionCustomer> {
        self.shared.store().customers()
    }

    /// The customer with this `merchant_id`.
    pub fn customer(&self, merchant_id: &str) -> Option<LoyaltyLionCustomer> {
        self.shared.store().by_merchant_id(merchant_id).cloned()
    }

    /// Sets `points_approved` of every customer with this email (case-insensitive) and moves
    /// `updated_at`. False when no customer has the email.
    pub fn set_points(&self, email: &str, points: i64) -> bool {
        self.shared.store().set_points(email, points, Utc::now())
    }

    /// Moves every customer with this email into the tier named `tier_name` (one of
    /// [`FakeLoyaltyLion::tiers`]; a fresh, non-manual membership for a year), or out of any
    /// tier with `None`, and moves `updated_at`. False when no customer has the email or no
    /// tier has the name.
    pub fn set_tier(&self, email: &str, tier_name: Option<&str>) -> bool {
        self.shared.store().set_tier(email, tier_name, Utc::now())
    }

    /// The program's tiers, lowest first.
    pub fn tiers(&self) -> Vec<LoyaltyLionTier> {
        self.shared.store().tiers().to_vec()
    }

    harness::request_log!(shared.gate, "(\"GET\", \"/v2/customers\")");

    /// Answers the next `count` requests, whatever they are, with `status` and LoyaltyLion's error
    /// body, after any injections already due: `faults().inject_next(count,
    /// Fault::for_status(status, None))`. Injected answers do not count against the rate limit.
    pub fn reject_next(&self, count: u32, status: u16) {
        self.faults()
            .inject_next(count, Fault::for_status(status, None));
    }
}
