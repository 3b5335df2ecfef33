//! A stateful fake of the Smile.io REST API (`https://api.smile.io/v1`) on loopback.
//!
//! It serves what tiersync reads and writes: customers (cursor-paged, newest id first, with
//! `updated_at_min`, `email`, `state` filters; the list takes `include=vip_status` and one
//! customer also `vip_status.vip_tier` and `vip_status.next_vip_tier`, as Smile documents;
//! cursors are padded standard base64 holding `+`, `/` and `=`),
//! points transactions (list and create; a transaction that would make the balance negative is
//! refused with 422) and the VIP tiers the merchant configured. Requests need
//! `Authorization: Bearer {token}` (401 otherwise); each token may make 10 requests per second
//! and then gets 429 for the rest of that second, without rate-limit headers — Smile documents
//! none. Smile has no endpoint that sets a VIP tier, so tests move tiers through
//! [`FakeSmile::set_tier`], as Smile's own VIP engine would. Faults are injected through
//! [`FakeSmile::faults`] (see [`crate::faults`]).

pub(crate) mod errors;
pub(crate) mod paging;
pub(crate) mod rate_limit;
mod server;
mod store;
pub(crate) mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::data::StoreData;
use crate::faults::{Fault, FaultPlan};
use crate::harness::{self, bearer};

/// A customer's state in the loyalty program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmileState {
    /// Has not joined the program (may or may not earn, depending on settings).
    #[default]
    Candidate,
    Member,
    /// Excluded from the program.
    Disabled,
}

impl SmileState {
    pub fn as_str(self) -> &'static str {
        match self {
            SmileState::Candidate => "candidate",
            SmileState::Member => "member",
            SmileState::Disabled => "disabled",
        }
    }

    fn parse(text: &str) -> Option<SmileState> {
        [
            SmileState::Candidate,
            SmileState::Member,
            SmileState::Disabled,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// A Smile customer as the fake stores it. Emails are stored lower-cased and are not unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmileCustomer {
    /// Smile's own id; 0 in [`FakeSmile::upsert_customer`] assigns the next one.
    pub id: u64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub state: SmileState,
    /// `YYYY-MM-DD`; year 1004 when only day and month are known.
    pub date_of_birth: Option<String>,
    pub points_balance: i64,
    /// Id of the customer's current VIP tier (one of [`FakeSmile::vip_tiers`]).
    pub vip_tier_id: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A VIP tier as the merchant configured it in Smile.
#[derive(Debug, Clone, PartialEq)]
pub struct SmileVipTier {
    pub id: u64,
    pub name: String,
    /// Points or spend needed to reach the tier, depending on the program.
    pub milestone: i64,
    pub image_url: String,
}

impl SmileVipTier {
    pub fn new(id: u64, name: &str, milestone: i64) -> Self {
        SmileVipTier {
            id,
            name: name.to_owned(),
            milestone,
            image_url: format!("https://platform.smile.io/v1/images/vip_tiers/{id}.svg"),
        }
    }
}

/// One entry of a customer's points ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct SmilePointsTransaction {
    pub id: u64,
    pub customer_id: u64,
    /// Signed: positive adds points, negative deducts.
    pub points_change: i64,
    pub description: Option<String>,
    pub internal_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How the fake Smile behaves.
#[derive(Debug, Clone)]
pub struct SmileOptions {
    /// The token requests must send as `Authorization: Bearer {token}`.
    pub api_token: String,
    /// Requests each token may make per second (Smile: 10).
    pub requests_per_second: u32,
    /// The merchant's VIP tiers (default Bronze 100, Silver 500, Gold 1000 points).
    pub vip_tiers: Vec<SmileVipTier>,
    /// Injected faults (none by default); see [`crate::faults`].
    pub faults: FaultPlan,
}

impl Default for SmileOptions {
    fn default() -> Self {
        SmileOptions {
            api_token: "smile_test_token".to_owned(),
            requests_per_second: 10,
            vip_tiers: vec![
                SmileVipTier::new(426_715_794, "Bronze", 100),
                SmileVipTier::new(426_715_799, "Silver", 500),
                SmileVipTier::new(426_715_803, "Gold", 1000),
            ],
            faults: FaultPlan::none(),
        }
    }
}

/// State shared by the handlers and the test's handle.
type Shared = bearer::Shared<store::Store, errors::ApiError>;

/// A running fake Smile.io; clones share its state.
#[derive(Clone)]
pub struct FakeSmile {
    shared: Arc<Shared>,
}

impl FakeSmile {
    /// Binds `addr` (port 0 picks one) and serves until the runtime stops.
    pub async fn start(addr: SocketAddr, options: SmileOptions) -> std::io::Result<FakeSmile> {
        let shared = Shared::serve(
            addr,
            "Smile",
            options.api_token,
            options.requests_per_second,
            &options.faults,
            store::Store::new(options.vip_tiers),
            server::router,
        )
        .await?;
        Ok(FakeSmile { shared })
    }

    /// `http://127.0.0.1:PORT`; the API is under `/v1`, as at `https://api.smile.io/v1`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn api_token(&self) -> String {
        self.shared.gate.token().to_owned()
    }

    /// Adds loyalty members drawn by [`crate::generator::loyalty_members`]: one `member` per
    /// entry, named and dated like the store's customer with that email, with the points
    /// balance and VIP tier given (tiers unknown to the program are left unset).
    pub fn load(&self, store: &StoreData, members: &[(String, i64, Option<String>)]) {
        self.shared.store().load(store, members);
    }

    /// Inserts the customer, or replaces the one with its id; id 0 assigns a new id. The email
    /// is lower-cased. Returns the customer as stored.
    pub fn upsert_customer(&self, customer: SmileCustomer) -> SmileCustomer {
        self.shared.store().upsert(customer)
    }

    /// Every customer, by id.
    pub fn customers(&self) -> Vec<SmileCustomer> {
        self.shared.store().customers()
    }

    /// Customers with this email (case-insensitive; Smile does not enforce uniqueness).
    pub fn customers_by_email(&self, email: &str) -> Vec<SmileCustomer> {
        self.shared.store().by_email(email)
    }

    /// Sets the balance of every customer with this email, recording the difference as a
    /// points transaction (as a manual adjustment in Smile's admin would) and moving
    /// `updated_at`. False when no customer has the email.
    pub fn set_points(&self, email: &str, points: i64) -> bool {
        self.shared.store().set_points(email, points, Utc::now())
    }

    /// Moves every customer with this email into the VIP tier named `tier_name` (one the
    /// merchant configured, see [`FakeSmile::vip_tiers`]), or out of any tier with `None`, and
    /// moves `updated_at`. False when no customer has the email or no tier has the name.
    pub fn set_tier(&self, email: &str, tier_name: Option<&str>) -> bool {
        self.shared.store().set_tier(email, tier_name, Utc::now())
    }

    /// The merchant's VIP tiers, by milestone.
    pub fn vip_tiers(&self) -> Vec<SmileVipTier> {
        self.shared.store().tiers().to_vec()
    }

    /// Every points transaction, oldest first.
    pub fn points_transactions(&self) -> Vec<SmilePointsTransaction> {
        self.shared.store().transactions()
    }

    harness::request_log!(shared.gate, "(\"GET\", \"/v1/customers\")");

    /// Answers the next `count` requests, whatever they are, with `status` and Smile's error
    /// body, after any injections already due: `faults().inject_next(count,
    /// Fault::for_status(status, None))`. Injected answers do not count against the rate limit.
    pub fn reject_next(&self, count: u32, status: u16) {
        self.faults()
            .inject_next(count, Fault::for_status(status, None));
    }
}
