//! What each destination shows of a customer's status, and when two showings count as the
//! same. The plan (`sync::plan`) decides the desired state, the store keeps what is pending and
//! what each destination acknowledged, and the sinks write and read these states; all of them
//! share the types here.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A place tiersync writes to. Each has its own acknowledged state and outbox entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Klaviyo profiles (and the transition events, which have no acknowledged state).
    Klaviyo,
    /// Shopify customer tags and metafields.
    Storefront,
}

impl Destination {
    /// The name in logs and reports, the same as the configuration's section (`[klaviyo]`,
    /// `[storefront]`). The store's keys keep their own, older spelling (`store::outbox`).
    pub fn name(self) -> &'static str {
        match self {
            Destination::Klaviyo => "klaviyo",
            Destination::Storefront => "storefront",
        }
    }
}

/// The state one destination holds for a customer: what the outbox carries and what an
/// acknowledgement records.
pub trait DestinationState:
    serde::Serialize + serde::de::DeserializeOwned + Clone + PartialEq + Send + Sync
{
    const DESTINATION: Destination;

    /// Whether a destination holding `other` already shows this state.
    fn matches(&self, other: &Self) -> bool;

    /// The state in a few words, for reports.
    fn summary(&self) -> String;

    /// Whether this state shows no tier at all (what a customer who never held a level may
    /// carry after a repair removed someone else's tag).
    fn shows_nothing(&self) -> bool {
        false
    }
}

impl DestinationState for ProfileState {
    const DESTINATION: Destination = Destination::Klaviyo;

    fn matches(&self, other: &Self) -> bool {
        ProfileState::matches(self, other)
    }

    fn summary(&self) -> String {
        format!(
            "vip_tier {:?}, vip_state {:?}, clv_blended {}",
            self.vip_tier, self.vip_state, self.clv_blended
        )
    }
}

impl DestinationState for StorefrontState {
    const DESTINATION: Destination = Destination::Storefront;

    fn matches(&self, other: &Self) -> bool {
        StorefrontState::matches(self, other)
    }

    fn summary(&self) -> String {
        format!(
            "tags {:?}, vip_tier {:?}, vip_state {:?}, clv_blended {}",
            self.tag.as_deref().unwrap_or(""),
            self.vip_tier,
            self.vip_state,
            self.clv_blended
        )
    }

    fn shows_nothing(&self) -> bool {
        self.tag.is_none() && matches!(self.vip_tier.as_str(), "" | "None")
    }
}

/// The Klaviyo profile state tiersync wants (in the outbox) or Klaviyo acknowledged (in acks).
/// Property names are the README's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    /// What Klaviyo identifies the profile by; `None` when no order carried one.
    pub email: Option<String>,
    /// Numeric Shopify customer id: ties the profile to the customer when the email changes.
    pub external_id: String,
    /// Level name or `"None"`.
    pub vip_tier: String,
    /// `active`, `grace`, `lapsed` or `none`: flows and segments tell perks from win-back.
    pub vip_state: String,
    /// `None` for customers without a level.
    pub vip_tier_since: Option<NaiveDate>,
    /// Highest level ever held, for win-back messages.
    pub vip_peak_tier: Option<String>,
    /// Lifetime net spend.
    pub clv_historic: Decimal,
    /// The model's expected spend over the horizon (drifts daily; compared with a tolerance).
    pub clv_predicted: Decimal,
    /// The blend the levels are placed by (drifts daily; compared with a tolerance).
    pub clv_blended: Decimal,
    /// The loyalty app's balance as last read.
    pub loyalty_points: i64,
    /// Counted orders ever.
    pub orders_count: u32,
    /// RFM segment name, for segmentation in Klaviyo; `None` until there is a population.
    pub rfm_segment: Option<String>,
    /// The next level up; `None` at the top (the property is then removed, not nulled).
    pub vip_next_tier: Option<String>,
    /// The spend still needed for it; `None` at the top or when only orders can get there.
    pub vip_spend_to_next: Option<Decimal>,
    /// True while the customer holds a level's perks (active or grace): no discount offers.
    pub suppress_discounts: bool,
}

impl ProfileState {
    /// Whether a destination holding `other` already shows this state. Estimates (predicted
    /// and blended CLV, the spend to the next level) drift a little every day as the model
    /// ages; a move smaller than 1.00 or 1% is not worth re-writing every profile for.
    pub fn matches(&self, other: &ProfileState) -> bool {
        let close_opt = |a: Option<Decimal>, b: Option<Decimal>| match (a, b) {
            (Some(a), Some(b)) => close(a, b),
            (a, b) => a == b,
        };
        self.email == other.email
            && self.external_id == other.external_id
            && self.vip_tier == other.vip_tier
            && self.vip_state == other.vip_state
            && self.vip_tier_since == other.vip_tier_since
            && self.vip_peak_tier == other.vip_peak_tier
            && self.clv_historic == other.clv_historic
            && close(self.clv_predicted, other.clv_predicted)
            && close(self.clv_blended, other.clv_blended)
            && self.loyalty_points == other.loyalty_points
            && self.orders_count == other.orders_count
            && self.rfm_segment == other.rfm_segment
            && self.vip_next_tier == other.vip_next_tier
            && close_opt(self.vip_spend_to_next, other.vip_spend_to_next)
            && self.suppress_discounts == other.suppress_discounts
    }
}

/// The storefront state tiersync wants on a Shopify customer (or Shopify acknowledged): the
/// one tag in tiersync's prefix and the metafields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorefrontState {
    /// `vip:gold`; `None` for customers without a level (any tiersync tag is removed).
    pub tag: Option<String>,
    /// Level name or `"None"` (metafield `vip_tier` in `storefront.namespace`, for themes and apps).
    pub vip_tier: String,
    /// `active`, `grace`, `lapsed` or `none` (metafield `vip_state`).
    pub vip_state: String,
    /// Highest level ever held (metafield `vip_peak_tier`).
    pub vip_peak_tier: Option<String>,
    /// The blend the level was placed by (metafield `clv_blended`; drifts daily).
    pub clv_blended: Decimal,
}

impl StorefrontState {
    /// Whether Shopify holding `other` already shows this state (the blended CLV within the
    /// same tolerance as Klaviyo's properties: it drifts daily).
    pub fn matches(&self, other: &StorefrontState) -> bool {
        self.tag.as_deref().map(str::to_lowercase) == other.tag.as_deref().map(str::to_lowercase)
            && self.vip_tier == other.vip_tier
            && self.vip_state == other.vip_state
            && self.vip_peak_tier == other.vip_peak_tier
            && close(self.clv_blended, other.clv_blended)
    }
}

/// Estimates closer than 1.00 or 1% are the same for the destinations.
fn close(a: Decimal, b: Decimal) -> bool {
    let tolerance = (a.abs().max(b.abs()) / Decimal::ONE_HUNDRED).max(Decimal::ONE);
    (a - b).abs() < tolerance
}
