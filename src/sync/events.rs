//! Which transitions become Klaviyo events, and the event each one is. The `unique_id` is a
//! pure function of the transition, so the same transition always yields the same id and
//! Klaviyo records it once however often it is sent.

use chrono::{DateTime, Utc};

use crate::config::MetricNames;
use crate::model::{Transition, TransitionKind};
use crate::store::{CustomerRecord, EventEntry};

/// The metric a transition triggers; grace starting or ending triggers none (the level and
/// its perks do not change).
pub fn metric(kind: TransitionKind, names: &MetricNames) -> Option<&str> {
    match kind {
        TransitionKind::Entered => Some(&names.entered),
        TransitionKind::Promoted | TransitionKind::Demoted | TransitionKind::Removed => {
            Some(&names.changed)
        }
        TransitionKind::Lapsed => Some(&names.lapsed),
        TransitionKind::Reactivated => Some(&names.welcome_back),
        TransitionKind::GraceStarted | TransitionKind::GraceCleared => None,
    }
}

/// The event for one transition of `record`'s customer, if the transition has a metric.
pub fn event(
    record: &CustomerRecord,
    transition: &Transition,
    reason: &str,
    names: &MetricNames,
    now: DateTime<Utc>,
) -> Option<EventEntry> {
    let metric = metric(transition.kind, names)?;
    let external_id = record
        .id
        .rsplit('/')
        .next()
        .unwrap_or(&record.id)
        .to_string();
    let unique_id = format!(
        "tiersync:{external_id}:{:?}:{}:{}:{}",
        transition.kind,
        transition.on,
        transition.from_level.as_deref().unwrap_or("None"),
        transition.to_level.as_deref().unwrap_or("None"),
    );
    Some(EventEntry {
        customer_id: record.id.clone(),
        seq: 0,
        unique_id,
        metric: metric.to_string(),
        email: record.email.clone(),
        external_id,
        from_tier: transition.from_level.clone(),
        to_tier: transition.to_level.clone(),
        from_state: transition.from_state.as_str().to_string(),
        to_state: transition.to_state.as_str().to_string(),
        clv_blended: record.inputs.blended,
        peak_tier: record.tier.peak.clone(),
        reason: reason.to_string(),
        time: now,
        failed: None,
    })
}
