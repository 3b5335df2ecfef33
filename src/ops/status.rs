//! `tiersync status`: per destination, what is acknowledged, pending and refused (with the
//! API's own error), and the cursors — the page the engineer on call opens first. Reads the
//! store only.

use std::fmt::Write;

use crate::store::{Destination, Store};

/// Refused writes listed in full before the rest are only counted.
const LISTED: usize = 20;

pub fn status(store: &Store) -> anyhow::Result<String> {
    let mut out = String::new();
    let cursor = |c: Option<chrono::DateTime<chrono::Utc>>| {
        c.map_or("none yet".to_string(), |c| c.to_rfc3339())
    };
    writeln!(out, "store {}", store.path().display())?;
    writeln!(out, "  orders cursor    {}", cursor(store.orders_cursor()?))?;
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
    let profiles = store.outbox_counts(Destination::Klaviyo)?;
    writeln!(
        out,
        "klaviyo profiles   {} acknowledged, {} pending, {} refused",
        store.acknowledged_count(Destination::Klaviyo),
        profiles.pending,
        profiles.failed
    )?;
    let parked = store.parked(Destination::Klaviyo)?;
    for entry in parked.iter().take(LISTED) {
        let who = entry.profile.email.as_deref().unwrap_or(&entry.customer_id);
        writeln!(
            out,
            "    {who}: {}",
            entry.failed.as_deref().unwrap_or_default()
        )?;
    }
    if parked.len() > LISTED {
        writeln!(out, "    … and {} more", parked.len() - LISTED)?;
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
    Ok(out)
}

/// The writes waiting in the outbox, as `--dry-run` prints them.
pub fn planned(store: &Store) -> anyhow::Result<String> {
    let mut out = String::new();
    let pending = store.pending(Destination::Klaviyo)?;
    writeln!(out, "planned klaviyo profile writes: {}", pending.len())?;
    for entry in pending.iter().take(LISTED) {
        let p = &entry.profile;
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
