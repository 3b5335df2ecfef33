//! `tiersync status`: per destination, what is acknowledged, pending and refused (with the
//! API's own error), which customers the destinations do not yet show consistently, the
//! loyalty members whose app tier is not ours, and the cursors — the page the engineer on
//! call opens first. Reads the store only.

use std::collections::HashMap;
use std::fmt::Write;

use crate::config::Settings;
use crate::model::{DestinationState, ProfileState, StorefrontState};
use crate::store::{Acknowledged, CustomerRecord, OutboxEntry, Store};
use crate::sync::{desired_storefront, loyalty_disagreements};

/// Refused writes (and inconsistent customers) listed in full before the rest are counted.
const LISTED: usize = 20;

pub fn status(store: &Store, settings: &Settings) -> anyhow::Result<String> {
    let mut out = String::new();
    let cursor = |c: Option<chrono::DateTime<chrono::Utc>>| {
        c.map_or("none yet".to_string(), |c| c.to_rfc3339())
    };
    writeln!(out, "store {}", store.path().display())?;
    writeln!(out, "  orders cursor    {}", cursor(store.orders_cursor()?))?;
    if let Some(since) = store.partial_history_since()? {
        writeln!(
            out,
            "  order history    PARTIAL: orders since {} only (the Shopify app lacked read_all_orders at the first backfill; once it is granted, run `tiersync rebuild`)",
            since.format("%Y-%m-%d")
        )?;
    }
    writeln!(
        out,
        "  loyalty cursor   {}",
        cursor(store.loyalty_cursor()?)
    )?;
    match store.population()? {
        Some(p) => writeln!(
            out,
            "  recalculated     {} ({} customers with orders)",
            p.as_of, p.customers
        )?,
        None => writeln!(out, "  recalculated     never (no pass has run)")?,
    }
    destination::<ProfileState>(&mut out, store, "klaviyo profiles ", |p| p.email.clone())?;
    if settings.storefront.enabled {
        destination::<StorefrontState>(&mut out, store, "storefront       ", |_| None)?;
    } else {
        writeln!(
            out,
            "storefront         not written (storefront.enabled = false)"
        )?;
    }
    let events = store.event_counts()?;
    writeln!(
        out,
        "klaviyo events     {} pending, {} refused",
        events.pending, events.failed
    )?;
    for event in store.parked_events()?.iter().take(LISTED) {
        writeln!(
            out,
            "    {} {}: {}",
            event.metric,
            event.external_id,
            event.failed.as_deref().unwrap_or_default()
        )?;
    }
    consistency(&mut out, store, settings)?;
    if let Some(loyalty) = loyalty_disagreements(store, settings)? {
        writeln!(
            out,
            "loyalty app        {} members; {} show another tier than tiersync",
            loyalty.members, loyalty.count
        )?;
        for example in &loyalty.examples {
            writeln!(out, "    {example}")?;
        }
        if loyalty.unnamed() > 0 {
            writeln!(out, "    … and {} more", loyalty.unnamed())?;
        }
    }
    Ok(out)
}

/// One destination's line and its refused writes.
fn destination<S: DestinationState>(
    out: &mut String,
    store: &Store,
    label: &str,
    who: impl Fn(&S) -> Option<String>,
) -> anyhow::Result<()> {
    let counts = store.outbox_counts::<S>()?;
    writeln!(
        out,
        "{label}  {} acknowledged, {} pending, {} refused",
        store.acknowledged_count(S::DESTINATION),
        counts.pending,
        counts.failed
    )?;
    if let Some(why) = store.destination_stopped(S::DESTINATION)? {
        writeln!(
            out,
            "    STOPPED: {why} (writes wait in the outbox; restart tiersync after fixing it)"
        )?;
    }
    let parked = store.parked::<S>()?;
    for entry in parked.iter().take(LISTED) {
        let name = who(&entry.state).unwrap_or_else(|| entry.customer_id.clone());
        writeln!(
            out,
            "    {name}: {}",
            entry.failed.as_deref().unwrap_or_default()
        )?;
    }
    if parked.len() > LISTED {
        writeln!(out, "    … and {} more", parked.len() - LISTED)?;
    }
    Ok(())
}

/// Where one destination stands for one customer against the desired version.
fn standing<S: DestinationState>(
    desired: bool,
    version: u64,
    ack: Option<&Acknowledged<S>>,
    pending: Option<&OutboxEntry<S>>,
    tier: impl Fn(&S) -> String,
) -> Option<String> {
    let pending_note = match pending {
        Some(p) if p.failed.is_some() => ", write refused",
        Some(_) => ", write pending",
        None => "",
    };
    match ack {
        Some(ack) if desired && ack.version == version => None,
        None if !desired => None,
        Some(ack) if !desired && ack.state.shows_nothing() => None,
        Some(ack) => Some(format!(
            "v{} {}{pending_note}",
            ack.version,
            tier(&ack.state)
        )),
        None => Some(format!("nothing yet{pending_note}")),
    }
}

/// Customers whose destinations do not all acknowledge their current desired version.
fn consistency(out: &mut String, store: &Store, settings: &Settings) -> anyhow::Result<()> {
    let klaviyo_acks = store.acknowledgements::<ProfileState>()?;
    let klaviyo_pending = by_customer(store.pending::<ProfileState>()?, store.parked()?);
    let storefront_acks = store.acknowledgements::<StorefrontState>()?;
    let storefront_pending = by_customer(store.pending::<StorefrontState>()?, store.parked()?);
    let mut customers = 0usize;
    let mut inconsistent: Vec<String> = Vec::new();
    for record in store.customers() {
        let record: CustomerRecord = record?;
        customers += 1;
        let mut behind = Vec::new();
        if let Some(k) = standing(
            true,
            record.version,
            klaviyo_acks.get(&record.id),
            klaviyo_pending.get(&record.id),
            |s| format!("{} ({})", s.vip_tier, s.vip_state),
        ) {
            behind.push(format!("klaviyo {k}"));
        }
        if settings.storefront.enabled {
            if let Some(s) = standing(
                desired_storefront(&record, &settings.storefront).is_some(),
                record.version,
                storefront_acks.get(&record.id),
                storefront_pending.get(&record.id),
                |s| format!("{} ({})", s.vip_tier, s.vip_state),
            ) {
                behind.push(format!("storefront {s}"));
            }
        }
        if !behind.is_empty() {
            inconsistent.push(format!(
                "    {}: desired v{} {} ({}); {}",
                record.email.as_deref().unwrap_or(&record.id),
                record.version,
                record.tier.level.as_deref().unwrap_or("None"),
                record.tier.state.as_str(),
                behind.join("; ")
            ));
        }
    }
    writeln!(
        out,
        "consistency        {} of {customers} customers shown at their current version everywhere, {} not yet",
        customers - inconsistent.len(),
        inconsistent.len()
    )?;
    for line in inconsistent.iter().take(LISTED) {
        writeln!(out, "{line}")?;
    }
    if inconsistent.len() > LISTED {
        writeln!(out, "    … and {} more", inconsistent.len() - LISTED)?;
    }
    Ok(())
}

fn by_customer<S>(
    pending: Vec<OutboxEntry<S>>,
    parked: Vec<OutboxEntry<S>>,
) -> HashMap<String, OutboxEntry<S>> {
    pending
        .into_iter()
        .chain(parked)
        .map(|e| (e.customer_id.clone(), e))
        .collect()
}

/// The writes waiting in the outbox, as `--dry-run` prints them.
pub fn planned(store: &Store) -> anyhow::Result<String> {
    let mut out = String::new();
    let pending = store.pending::<ProfileState>()?;
    writeln!(out, "planned klaviyo profile writes: {}", pending.len())?;
    for entry in pending.iter().take(LISTED) {
        let p = &entry.state;
        writeln!(
            out,
            "    {}: vip_tier {}, vip_state {}, clv_blended {}, orders {}",
            p.email.as_deref().unwrap_or(&entry.customer_id),
            p.vip_tier,
            p.vip_state,
            p.clv_blended,
            p.orders_count
        )?;
    }
    if pending.len() > LISTED {
        writeln!(out, "    … and {} more", pending.len() - LISTED)?;
    }
    let storefront = store.pending::<StorefrontState>()?;
    writeln!(out, "planned shopify customer writes: {}", storefront.len())?;
    for entry in storefront.iter().take(LISTED) {
        let s = &entry.state;
        writeln!(
            out,
            "    {}: tag {}, vip_tier {}, vip_state {}, clv_blended {}",
            entry.customer_id,
            s.tag.as_deref().unwrap_or("(none)"),
            s.vip_tier,
            s.vip_state,
            s.clv_blended
        )?;
    }
    if storefront.len() > LISTED {
        writeln!(out, "    … and {} more", storefront.len() - LISTED)?;
    }
    let events = store.pending_events()?;
    writeln!(out, "planned klaviyo events: {}", events.len())?;
    for event in events.iter().take(LISTED) {
        writeln!(
            out,
            "    {} for {} ({})",
            event.metric,
            event.email.as_deref().unwrap_or(&event.external_id),
            event.unique_id
        )?;
    }
    Ok(out)
}
