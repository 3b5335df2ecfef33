//! Evaluation: run the model over the customers whose facts changed (every customer once a
//! day, because the window moves with time) and plan each destination's write by comparing
//! the desired state with what the destination acknowledged.

use chrono::{DateTime, Utc};

use crate::config::TierSettings;
use crate::model::{aggregate, reached_level};
use crate::store::{
    CustomerRecord, Destination, Evaluation, OutboxChange, OutboxEntry, ProfileState, Store,
    StoreError,
};

/// Customers committed per store transaction.
const BATCH: usize = 1_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvaluationReport {
    pub evaluated: usize,
    /// True when every customer was re-evaluated (first pass of the day).
    pub full: bool,
    /// Customers whose level changed.
    pub level_changes: usize,
    /// Writes newly enqueued (or replaced with a newer state).
    pub enqueued: usize,
}

/// Evaluates the dirty customers, or all of them on the first pass of a (UTC) day.
pub fn evaluate(
    store: &Store,
    tiers: &TierSettings,
    now: DateTime<Utc>,
) -> Result<EvaluationReport, StoreError> {
    let today = now.date_naive();
    let full = store.last_full_evaluation()? != Some(today);
    let mut targets = store.dirty_customers()?;
    if full {
        let dirty: std::collections::HashSet<String> =
            targets.iter().map(|(id, _)| id.clone()).collect();
        targets.extend(
            store
                .known_customer_ids()?
                .into_iter()
                .filter(|id| !dirty.contains(id))
                .map(|id| (id, None)),
        );
    }
    let window_start = now - chrono::Duration::days(i64::from(tiers.window_days));
    let mut report = EvaluationReport {
        full,
        ..EvaluationReport::default()
    };
    for chunk in targets.chunks(BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        for (id, email) in chunk {
            let previous = store.customer(id)?;
            let sums = aggregate(&store.customer_orders(id)?, window_start);
            let level = reached_level(&tiers.levels, &sums).map(|l| l.name.clone());
            let level_since = match &previous {
                Some(p) if p.level == level => p.level_since,
                _ => today,
            };
            if previous.as_ref().is_some_and(|p| p.level != level) {
                report.level_changes += 1;
            }
            let record = CustomerRecord {
                id: id.clone(),
                email: email.clone().or_else(|| previous.and_then(|p| p.email)),
                level,
                level_since,
                lifetime_net: sums.lifetime_net,
                lifetime_orders: sums.lifetime_orders,
                window_net: sums.window_net,
                window_orders: sums.window_orders,
                evaluated_at: now,
            };
            let klaviyo = plan(store, &record, now)?;
            if matches!(klaviyo, OutboxChange::Put(_)) {
                report.enqueued += 1;
            }
            batch.push(Evaluation { record, klaviyo });
        }
        store.commit_evaluations(&batch)?;
        report.evaluated += batch.len();
    }
    if full {
        store.set_last_full_evaluation(today)?;
    }
    store.flush()?;
    Ok(report)
}

/// The Klaviyo profile state a customer record calls for.
pub fn desired_profile(record: &CustomerRecord) -> ProfileState {
    ProfileState {
        email: record.email.clone(),
        external_id: record
            .id
            .rsplit('/')
            .next()
            .unwrap_or(&record.id)
            .to_string(),
        vip_tier: record.level.clone().unwrap_or_else(|| "None".to_string()),
        clv_historic: record.lifetime_net,
        orders_count: record.lifetime_orders,
        vip_tier_since: record.level.as_ref().map(|_| record.level_since),
    }
}

/// Desired minus acknowledged: what, if anything, Klaviyo must be sent.
fn plan(
    store: &Store,
    record: &CustomerRecord,
    now: DateTime<Utc>,
) -> Result<OutboxChange, StoreError> {
    let desired = desired_profile(record);
    let pending = store.pending_entry(Destination::Klaviyo, &record.id)?;
    if store
        .acknowledged(Destination::Klaviyo, &record.id)?
        .as_ref()
        == Some(&desired)
    {
        return Ok(if pending.is_some() {
            OutboxChange::Remove
        } else {
            OutboxChange::Keep
        });
    }
    // Already pending with this state (a parked write stays parked until the state changes).
    if pending.is_some_and(|p| p.profile == desired) {
        return Ok(OutboxChange::Keep);
    }
    Ok(OutboxChange::Put(OutboxEntry {
        customer_id: record.id.clone(),
        profile: desired,
        enqueued_at: now,
        failed: None,
    }))
}
