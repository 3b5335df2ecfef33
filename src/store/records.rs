//! The values the checkpoint store keeps, as typed records.
//!
//! Every record is derivable from the vendors' APIs except the outbox and the destinations'
//! acknowledged state (which a reconcile can rebuild), so the encoding favours speed and
//! simplicity over long-term portability; the store's schema version guards changes.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{Inputs, OrderFacts, ProfileState, TierState, Transition};

/// A Shopify order as tiersync needs it, normalized at ingest.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
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
    /// The order's net spend in the shop currency: its total less every refund, each counted
    /// once (computed at ingest, see `sources::shopify::orders::net_spend`). Part of the
    /// fingerprint, so an order whose only change is a refund is applied again.
    pub net_total: Decimal,
}

impl OrderRecord {
    /// Cancelled and test orders count zero and are not purchases.
    pub fn counts(&self) -> bool {
        self.cancelled_at.is_none() && !self.test
    }

    /// What this order adds to the customer's net spend.
    pub fn net(&self) -> Decimal {
        if self.counts() {
            self.net_total
        } else {
            Decimal::ZERO
        }
    }

    /// A stable hash of everything the order carries: a replayed page whose orders hash the
    /// same changes nothing.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = fnv::FnvHasher::default();
        self.hash(&mut hasher);
        hasher.finish()
    }

    pub fn facts(&self) -> OrderFacts {
        OrderFacts {
            created_at: self.created_at,
            net: self.net(),
            counts: self.counts(),
        }
    }
}

/// A customer's inputs, placement and tier state, as of its last evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub id: String,
    pub email: Option<String>,
    pub inputs: Inputs,
    /// The rule that placed the customer (or why no level).
    pub placement: String,
    /// The level the inputs qualify for now (may differ from the level held during grace).
    pub qualified: Option<String>,
    pub tier: TierState,
    pub next_level: Option<String>,
    pub spend_to_next: Option<Decimal>,
    /// The loyalty app's tier for this customer, mapped to a level name where configured.
    pub loyalty_tier: Option<String>,
    /// When an evaluation last changed this record (an evaluation that derives exactly the
    /// stored values does not rewrite it).
    pub evaluated_at: DateTime<Utc>,
    /// The desired state's version: 1 for a new customer, one more each time the status the
    /// destinations show (level, state, peak level) changes. Every write carries it and every
    /// destination records the version it acknowledged, so `status` can tell which
    /// destinations show the current status.
    pub version: u64,
}

impl CustomerRecord {
    /// The version this record's status has, given the previous evaluation's checkpoint.
    pub fn next_version(previous: Option<&TierCheckpoint>, tier: &TierState) -> u64 {
        match previous {
            None => 1,
            Some(p)
                if p.tier.level == tier.level
                    && p.tier.state == tier.state
                    && p.tier.peak == tier.peak =>
            {
                p.version
            }
            Some(p) => p.version + 1,
        }
    }

    /// A stable hash of everything derived from the orders, loyalty points, the day's
    /// population and the date (inputs, placement, next level…): equal fingerprints mean
    /// nothing but `evaluated_at` would change, so the record is not rewritten. FNV-1a over
    /// `Hash`, which is stable across runs; should a new build hash differently, each record
    /// is rewritten once.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = fnv::FnvHasher::default();
        self.id.hash(&mut hasher);
        self.inputs.hash(&mut hasher);
        self.placement.hash(&mut hasher);
        self.qualified.hash(&mut hasher);
        self.next_level.hash(&mut hasher);
        self.spend_to_next.hash(&mut hasher);
        self.loyalty_tier.hash(&mut hasher);
        hasher.finish()
    }

    /// What the next evaluation needs from this one.
    pub fn checkpoint(&self) -> TierCheckpoint {
        TierCheckpoint {
            version: self.version,
            tier: self.tier.clone(),
            email: self.email.clone(),
            historic: self.inputs.historic,
            fingerprint: self.fingerprint(),
        }
    }
}

/// What deciding a customer's tier again needs from their last evaluation: the tier state
/// (grace and lapse clocks, peak), the version, the email, the net spend (a fall is named in
/// the placement) and the fingerprint of the derived values. Kept in its own tree beside the
/// full record and written with it, so the daily recalculation reads a few dozen bytes per
/// customer instead of decoding every record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierCheckpoint {
    pub version: u64,
    pub tier: TierState,
    pub email: Option<String>,
    pub historic: Decimal,
    /// [`CustomerRecord::fingerprint`] of the stored record.
    pub fingerprint: u64,
}

/// A loyalty-app member's balance and the app's own tier, keyed by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoyaltyRecord {
    pub points: i64,
    /// The app's tier name as the app reports it.
    pub tier: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// One recorded tier transition with what caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub transition: Transition,
    pub reason: String,
    pub inputs: Inputs,
}

/// A flow-triggering event for one tier transition, pending in the outbox until Klaviyo
/// accepts it. `unique_id` is derived from the transition, so a re-send is recorded once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEntry {
    pub customer_id: String,
    /// Position in the outbox (assigned when the transition commits); keeps a customer's
    /// events in order.
    pub seq: u64,
    pub unique_id: String,
    pub metric: String,
    pub email: Option<String>,
    pub external_id: String,
    pub from_tier: Option<String>,
    pub to_tier: Option<String>,
    pub from_state: String,
    pub to_state: String,
    pub clv_blended: Decimal,
    pub peak_tier: Option<String>,
    pub reason: String,
    pub time: DateTime<Utc>,
    /// Klaviyo's error detail when it refused the event for good.
    pub failed: Option<String>,
}

/// A durable pending write: the latest desired state of one customer at one destination
/// (`S` is that destination's state: [`ProfileState`] for Klaviyo,
/// [`StorefrontState`](crate::model::StorefrontState) for Shopify).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry<S = ProfileState> {
    pub customer_id: String,
    /// The customer's desired-state version this write carries.
    pub version: u64,
    pub state: S,
    pub enqueued_at: DateTime<Utc>,
    /// Set when the destination refused the write for good (a non-retryable 4xx): the API's
    /// error detail. Parked entries are retried only when the desired state changes.
    pub failed: Option<String>,
}

/// What a destination acknowledged holding for a customer, and the version it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged<S = ProfileState> {
    pub version: u64,
    pub state: S,
}
