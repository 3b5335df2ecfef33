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
