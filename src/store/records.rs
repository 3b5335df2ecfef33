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
    /// The order's own `email` (normalized), the customer's latest address for Klaviyo.
    pub customer_email: Option<String>,
    /// When it was placed: window sums and purchase days count from it.
    pub created_at: DateTime<Utc>,
    /// What the orders cursor follows.
    pub updated_at: DateTime<Utc>,
    /// A cancelled order counts zero.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// A test order counts zero.
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
    /// Shopify customer GID.
    pub id: String,
    /// The latest email an order carried: what Klaviyo addresses.
    pub email: Option<String>,
    /// What the placement read, kept for `explain`.
    pub inputs: Inputs,
    /// The rule that placed the customer (or why no level).
    pub placement: String,
    /// The level the inputs qualify for now (may differ from the level held during grace).
    pub qualified: Option<String>,
    /// The standing the destinations show: level, state, clocks, peak.
    pub tier: TierState,
    /// The next level up, for `vip_next_tier`.
    pub next_level: Option<String>,
    /// What it takes to get there, for `vip_spend_to_next`.
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
    /// [`CustomerRecord::version`].
    pub version: u64,
    /// The standing the state machine steps from.
    pub tier: TierState,
    /// The email to keep when no changed order brings one.
    pub email: Option<String>,
    /// Net spend, so a fall (refund, cancellation) is named in the placement.
    pub historic: Decimal,
    /// [`CustomerRecord::fingerprint`] of the stored record.
    pub fingerprint: u64,
}

/// A loyalty-app member's balance and the app's own tier, keyed by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoyaltyRecord {
    /// The balance the blend values.
    pub points: i64,
    /// The app's tier name as the app reports it.
    pub tier: Option<String>,
    /// The app's own change time: the loyalty cursor follows it.
    pub updated_at: DateTime<Utc>,
}

/// One recorded tier transition with what caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the evaluation recorded it.
    pub at: DateTime<Utc>,
    /// From what to what, and of which kind.
    pub transition: Transition,
    /// The placement at the time (the rule that decided).
    pub reason: String,
    /// The inputs the decision read, so `explain` can show why later.
    pub inputs: Inputs,
}

/// A flow-triggering event for one tier transition, pending in the outbox until Klaviyo
/// accepts it. `unique_id` is derived from the transition, so a re-send is recorded once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEntry {
    /// Shopify customer GID: the event is sent after this customer's profile write.
    pub customer_id: String,
    /// Position in the outbox (assigned when the transition commits); keeps a customer's
    /// events in order.
    pub seq: u64,
    /// A pure function of the transition, so Klaviyo records a re-sent event once.
    pub unique_id: String,
    /// The metric name (`klaviyo.metrics`) flows trigger on.
    pub metric: String,
    /// The profile the event is attached to, as in [`ProfileState::email`].
    pub email: Option<String>,
    /// Numeric Shopify customer id, as in [`ProfileState::external_id`].
    pub external_id: String,
    /// The level before (`None`: no level), for the flow's message.
    pub from_tier: Option<String>,
    /// The level after.
    pub to_tier: Option<String>,
    /// `vip_state` before (`grace`, `lapsed`…).
    pub from_state: String,
    /// `vip_state` after.
    pub to_state: String,
    /// The blend at the transition, for personalised messages.
    pub clv_blended: Decimal,
    /// Highest level ever held, for win-back messages.
    pub peak_tier: Option<String>,
    /// The rule that placed the customer, as `explain` shows it.
    pub reason: String,
    /// When the transition was evaluated (the event's time in Klaviyo).
    pub time: DateTime<Utc>,
    /// Klaviyo's error detail when it refused the event for good.
    pub failed: Option<String>,
}

/// A durable pending write: the latest desired state of one customer at one destination
/// (`S` is that destination's state: [`ProfileState`] for Klaviyo,
/// [`StorefrontState`](crate::model::StorefrontState) for Shopify).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry<S = ProfileState> {
    /// Shopify customer GID.
    pub customer_id: String,
    /// The customer's desired-state version this write carries.
    pub version: u64,
    /// What the destination should show.
    pub state: S,
    /// When it was planned, for `status` and `explain`.
    pub enqueued_at: DateTime<Utc>,
    /// Set when the destination refused the write for good (a non-retryable 4xx): the API's
    /// error detail. Parked entries are retried only when the desired state changes.
    pub failed: Option<String>,
}

/// What a destination acknowledged holding for a customer, and the version it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged<S = ProfileState> {
    /// The version of the write it acknowledged: `status` compares it with the current one.
    pub version: u64,
    /// What the destination holds (or, after a repair, was read to hold).
    pub state: S,
}
