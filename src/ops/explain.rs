//! `tiersync explain <email or customer id>`: why a customer has the tier they have — their
//! inputs, the rule that placed them, their state and clocks, every transition, and what each
//! destination last acknowledged. Reads the store only.

use std::fmt::Write;

use anyhow::bail;
use chrono::Utc;

use crate::config::Settings;
use crate::model::DestinationState;
use crate::model::{ClvModel, StateRules, VipState};
use crate::store::{CustomerRecord, Store};
use crate::sync::{desired_profile, desired_storefront, transition_name};

/// Finds a customer by email, numeric Shopify id or GID.
pub fn find(store: &Store, who: &str) -> anyhow::Result<CustomerRecord> {
    let who = who.trim();
    let gid = if who.starts_with("gid://") {
        who.to_string()
    } else {
        format!("gid://shopify/Customer/{who}")
    };
    if let Some(record) = store.customer(&gid)? {
        return Ok(record);
    }
    let email = who.to_lowercase();
    for record in store.customers() {
        let record = record?;
        if record.email.as_deref() == Some(email.as_str()) {
            return Ok(record);
        }
    }
    bail!("no customer `{who}` in the store at {} (give an email, a numeric Shopify customer id or a GID; customers appear after their first order is read)", store.path().display())
}

/// The explanation, as printed.
pub fn explain(store: &Store, settings: &Settings, who: &str) -> anyhow::Result<String> {
    let record = find(store, who)?;
    let tz = store
        .shop_timezone()?
        .and_then(|name| name.parse::<chrono_tz::Tz>().ok())
        .or(settings.shopify.timezone)
        .unwrap_or(chrono_tz::UTC);
    let today = Utc::now().with_timezone(&tz).date_naive();
    let i = &record.inputs;
    let t = &record.tier;
    let mut out = String::new();
    let email = record.email.as_deref().unwrap_or("no email");
    writeln!(out, "customer {} ({email})", record.id)?;
    let level = t.level.as_deref().unwrap_or("None");
    writeln!(
        out,
        "  tier          {level}, {} since {} (peak {})",
        t.state.as_str(),
        t.since,
        t.peak.as_deref().unwrap_or("none")
    )?;
    writeln!(out, "  placed by     {}", record.placement)?;
    if record.qualified.as_deref() != t.level.as_deref() {
        writeln!(
            out,
            "  qualifies for {}",
            record.qualified.as_deref().unwrap_or("no level")
        )?;
    }
    match (&record.next_level, record.spend_to_next) {
        (Some(next), Some(spend)) => writeln!(
            out,
            "  next level    {next}: {spend} more (blended CLV or window spend)"
        )?,
        (Some(next), None) => writeln!(out, "  next level    {next}: reached by orders only")?,
        _ => writeln!(out, "  next level    none (top level)")?,
    }
    writeln!(
        out,
        "  inputs        lifetime {} orders, net spend {}; last {} days: {} orders, net spend {}",
        i.lifetime_orders, i.historic, settings.tiers.window_days, i.window_orders, i.window_net
    )?;
    writeln!(
        out,
        "                predicted {} over {} months, loyalty {} points ({}), blended CLV {}",
        i.predicted, settings.clv.horizon_months, i.loyalty_points, i.points_value, i.blended
    )?;
    if let (Some(first), Some(last)) = (i.first_order, i.last_order) {
        writeln!(
            out,
            "                first order {first}, last order {last} ({} days ago)",
            (today - last).num_days()
        )?;
    }
    if let Some(app_tier) = &record.loyalty_tier {
        let verdict = if record.tier.level.as_deref() == Some(app_tier.as_str()) {
            "agrees"
        } else {
            "differs from ours"
        };
        writeln!(
            out,
            "                loyalty app tier {app_tier} ({verdict})"
        )?;
    }
    match (&i.rfm_segment, i.rfm_scores) {
        (Some(segment), Some((r, f, m))) => {
            writeln!(out, "                RFM R{r} F{f} M{m}: {segment}")?
        }
        _ => writeln!(out, "                RFM: not scored")?,
    }
    let rules = StateRules::of(&settings.tiers);
    let grace = match (t.state, t.below_since) {
        (VipState::Grace, Some(since)) => format!(
            "in grace since {since}: demoted on {} unless they requalify",
            rules.demoted_on(since)
        ),
        _ => "not in grace".to_string(),
    };
    let lapse = match (t.state, i.last_order) {
        (VipState::Lapsed, _) => "lapsed: an order that requalifies re-activates them".to_string(),
        (VipState::None, _) | (_, None) => "no level to lapse".to_string(),
        (_, Some(last)) => format!("lapses on {} without another order", rules.lapses_on(last)),
    };
    writeln!(out, "  clocks        {grace}; {lapse}")?;
    if let Some(population) = store.population()? {
        match &population.clv {
            ClvModel::Fitted(fit) => writeln!(
                out,
                "  CLV model     fitted {} on {} customers ({} repeat buyers): BG/NBD r={:.4} alpha={:.3} a={:.4} b={:.4} (LL {:.2}); Gamma-Gamma p={:.3} q={:.3} v={:.3}",
                fit.fitted_on, fit.customers, fit.repeat_buyers, fit.bgnbd[0], fit.bgnbd[1], fit.bgnbd[2], fit.bgnbd[3],
                fit.bgnbd_log_likelihood, fit.gamma_gamma[0], fit.gamma_gamma[1], fit.gamma_gamma[2]
            )?,
            ClvModel::Unavailable { on, reason } => writeln!(out, "  CLV model     no prediction since {on}: {reason}")?,
        }
    }
    writeln!(out, "  transitions")?;
    let audit = store.audit(&record.id)?;
    if audit.is_empty() {
        writeln!(out, "    none")?;
    }
    for entry in audit {
        let tr = &entry.transition;
        writeln!(
            out,
            "    {} {:<13} {} ({}) → {} ({}); {}; blended CLV {}, {} orders in window",
            tr.on,
            transition_name(tr.kind),
            tr.from_level.as_deref().unwrap_or("None"),
            tr.from_state.as_str(),
            tr.to_level.as_deref().unwrap_or("None"),
            tr.to_state.as_str(),
            entry.reason,
            entry.inputs.blended,
            entry.inputs.window_orders
        )?;
    }
    let klaviyo = acknowledgement(store, &record.id, Some(desired_profile(&record)), |p| {
        format!(
            "vip_tier {}, vip_state {}, clv_blended {}",
            p.vip_tier, p.vip_state, p.clv_blended
        )
    })?;
    writeln!(out, "  klaviyo       {klaviyo}")?;
    if settings.storefront.enabled {
        let storefront = acknowledgement(
            store,
            &record.id,
            desired_storefront(&record, &settings.storefront),
            |s| {
                format!(
                    "tag {}, vip_tier {}, vip_state {}",
                    s.tag.as_deref().unwrap_or("(none)"),
                    s.vip_tier,
                    s.vip_state
                )
            },
        )?;
        writeln!(out, "  storefront    {storefront}")?;
    }
    Ok(out)
}

/// What a destination last acknowledged for the customer, against what is desired.
fn acknowledgement<S: DestinationState>(
    store: &Store,
    id: &str,
    desired: Option<S>,
    describe: impl Fn(&S) -> String,
) -> anyhow::Result<String> {
    let acked = store.acknowledged::<S>(id)?;
    let pending = store.pending_entry::<S>(id)?;
    Ok(match (&acked, &pending, &desired) {
        (_, Some(entry), _) if entry.failed.is_some() => format!(
            "refused: {} (parked until the customer's state changes)",
            entry.failed.as_deref().unwrap_or("")
        ),
        (_, Some(entry), _) => format!(
            "write of v{} pending since {}",
            entry.version, entry.enqueued_at
        ),
        (Some(ack), None, Some(want)) if want.matches(&ack.state) => {
            format!("up to date (v{}: {})", ack.version, describe(&ack.state))
        }
        (Some(ack), None, _) => format!(
            "acknowledged v{} ({}); differs from desired until the next pass",
            ack.version,
            describe(&ack.state)
        ),
        (None, None, None) => "nothing to write (never held a level)".to_string(),
        (None, None, Some(_)) => "never written".to_string(),
    })
}

/// Opens the store for a command that only reads it: nothing is created, migrated or
/// written, and a store the daemon holds is said so in one line.
pub fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Ok(Store::open_to_read(
        &settings.store.path,
        settings.store.cache_mb,
    )?)
}
