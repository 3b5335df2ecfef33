//! The values the checkpoint store keeps, as typed records.
//!
//! Every record is derivable from the vendors' APIs except the outbox and the destinations'
//! acknowledged state (which a reconcile can rebuild), so the encoding favours speed and
//! simplicity over long-term portability; the store's schema version guards changes.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A Shopify order as tiersync needs it, normalized at ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Shopify order GID.
    pub id: String,
    /// Shopify customer GID; `None` for guest checkouts (ignored for tiers).
    pub customer_id: Option<String>,
    pub customer_email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub test: bool,
    /// Current total after refunds, in the shop currency.
    pub current_total: Decimal,
}

impl OrderRecord {
    /// Cancelled and test orders count zero and are not purchases.
    pub fn counts(&self) -> bool {
        self.cancelled_at.is_none() && !self.test
    }

    /// What this order adds to the customer's net spend.
    pub fn net(&self) -> Decimal {
        if self.counts() {
            self.current_total
        } else {
            Decimal::ZERO
        }
    }

    pub fn facts(&self) -> OrderFacts {
        OrderFacts {
            created_at: self.created_at,
            net: self.net(),
            counts: self.counts(),
        }
    }
}

/// The part of an order the model reads, kept in the per-customer index so evaluating a
/// customer is one prefix scan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OrderFacts {
    pub created_at: DateTime<Utc>,
    pub net: Decimal,
    pub counts: bool,
}

/// A customer's aggregates and tier state, as of its last evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub id: String,
    pub email: Option<String>,
    /// Current level name; `None` when below every level.
    pub level: Option<String>,
    /// Day the current level (or no level) began.
    pub level_since: NaiveDate,
    pub lifetime_net: Decimal,
    pub lifetime_orders: u32,
    pub window_net: Decimal,
    pub window_orders: u32,
    pub evaluated_at: DateTime<Utc>,
}

/// The Klaviyo profile state tiersync wants (in the outbox) or Klaviyo acknowledged (in acks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    pub email: Option<String>,
    /// Numeric Shopify customer id.
    pub external_id: String,
    /// Level name or `"None"`.
    pub vip_tier: String,
    pub clv_historic: Decimal,
    pub orders_count: u32,
    /// `None` for customers without a level.
    pub vip_tier_since: Option<NaiveDate>,
}

/// A durable pending write: the latest desired state of one customer at one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub customer_id: String,
    pub profile: ProfileState,
    pub enqueued_at: DateTime<Utc>,
    /// Set when the destination refused the write for good (a non-retryable 4xx): the API's
    /// error detail. Parked entries are retried only when the desired state changes.
    pub failed: Option<String>,
}
