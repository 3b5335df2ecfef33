//! The plan: the state each destination should show for a customer (from their record), and
//! what must be sent to get there — desired minus what the destination acknowledged, against
//! what is already pending.

use chrono::{DateTime, Utc};

use crate::config::StorefrontSettings;
use crate::model::{DestinationState, ProfileState, StorefrontState, VipState};
use crate::store::{Acknowledged, CustomerRecord, OutboxChange, OutboxEntry, Store, StoreError};

/// What one destination acknowledged and has pending for a customer.
pub(crate) struct Held<'a, S> {
    /// The last state the destination confirmed, with its version; `None` if it never confirmed
    /// one. Nothing is sent when it already shows the desired state at the current version.
    pub(crate) acknowledged: Option<&'a Acknowledged<S>>,
    /// The write already in the outbox, if any: kept when it carries the desired state (a parked
    /// one stays parked), replaced when it does not, dropped when nothing needs sending.
    pub(crate) pending: Option<&'a OutboxEntry<S>>,
}

// Derived Clone/Copy would demand `S: Copy`; the fields are references.
impl<S> Clone for Held<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Held<'_, S> {}

/// One destination's acknowledgements and pending writes for a batch of customers (the
/// evaluation's plan, and `status`'s consistency walk).
pub(crate) struct Reads<S> {
    acknowledged: Vec<Option<Acknowledged<S>>>,
    pending: Vec<Option<OutboxEntry<S>>>,
}

impl<S: DestinationState> Reads<S> {
    /// Reads them for `ids` (sorted: one range scan per tree), or nothing when the
    /// destination is off.
    pub(crate) fn load(store: &Store, ids: &[&str], enabled: bool) -> Result<Reads<S>, StoreError> {
        if !enabled {
            return Ok(Reads {
                acknowledged: Vec::new(),
                pending: Vec::new(),
            });
        }
        Ok(Reads {
            acknowledged: store.acknowledged_sorted(ids)?,
            pending: store.pending_entries_sorted(ids)?,
        })
    }

    pub(crate) fn at(&self, i: usize) -> Held<'_, S> {
        Held {
            acknowledged: self.acknowledged.get(i).and_then(Option::as_ref),
            pending: self.pending.get(i).and_then(Option::as_ref),
        }
    }
}

/// The Klaviyo profile state a customer record calls for.
pub fn desired_profile(record: &CustomerRecord) -> ProfileState {
    let state = record.tier.state;
    ProfileState {
        email: record.email.clone(),
        external_id: record
            .id
            .rsplit('/')
            .next()
            .unwrap_or(&record.id)
            .to_string(),
        vip_tier: record
            .tier
            .level
            .clone()
            .unwrap_or_else(|| "None".to_string()),
        vip_state: state.as_str().to_string(),
        vip_tier_since: record.tier.level.as_ref().map(|_| record.tier.since),
        vip_peak_tier: record.tier.peak.clone(),
        clv_historic: record.inputs.historic,
        clv_predicted: record.inputs.predicted,
        clv_blended: record.inputs.blended,
        loyalty_points: record.inputs.loyalty_points,
        orders_count: record.inputs.lifetime_orders,
        rfm_segment: record.inputs.rfm_segment.clone(),
        vip_next_tier: record.next_level.clone(),
        vip_spend_to_next: record.spend_to_next,
        // Customers holding a level with its perks (grace keeps them) get no discount offers.
        suppress_discounts: matches!(state, VipState::Active | VipState::Grace),
    }
}

/// The storefront state a customer record calls for: `None` for customers who never held a
/// level (nothing of tiersync's belongs on them).
pub fn desired_storefront(
    record: &CustomerRecord,
    settings: &StorefrontSettings,
) -> Option<StorefrontState> {
    record.tier.peak.as_ref()?;
    let level = record.tier.level.as_deref();
    Some(StorefrontState {
        tag: level.map(|l| settings.tag(l)),
        vip_tier: level.unwrap_or("None").to_string(),
        vip_state: record.tier.state.as_str().to_string(),
        vip_peak_tier: record.tier.peak.clone(),
        clv_blended: record.inputs.blended,
    })
}

/// Desired minus acknowledged: what, if anything, one destination must be sent. A destination
/// that shows the desired state but acknowledged an older version is written again (the
/// status went away and came back): every destination acknowledges the current version.
pub(super) fn plan<S: DestinationState>(
    record: &CustomerRecord,
    desired: Option<S>,
    held: Held<'_, S>,
    now: DateTime<Utc>,
) -> OutboxChange<S> {
    // Nothing to send: drop a pending write, if any.
    let settled = if held.pending.is_some() {
        OutboxChange::Remove
    } else {
        OutboxChange::Keep
    };
    let Some(desired) = desired else {
        return settled;
    };
    if held
        .acknowledged
        .is_some_and(|ack| ack.version >= record.version && desired.matches(&ack.state))
    {
        return settled;
    }
    // Already pending with this state (a parked write stays parked until the state changes).
    if held
        .pending
        .is_some_and(|p| p.version == record.version && desired.matches(&p.state))
    {
        return OutboxChange::Keep;
    }
    OutboxChange::Put(Box::new(OutboxEntry {
        customer_id: record.id.clone(),
        version: record.version,
        state: desired,
        enqueued_at: now,
        failed: None,
    }))
}
