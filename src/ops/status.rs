//! `tiersync status`: per destination, what is acknowledged, pending and refused (with the
//! API's own error), which customers the destinations do not yet show consistently, the
//! loyalty members whose app tier is not ours, and the cursors — the page the engineer on
//! call opens first. Reads the store only.
//!
//! [`Status`] is read once and rendered twice: as the command's text ([`fmt::Display`]) and as
//! the daemon's `/status` JSON (serde), which `tiersync status` turns back into the same text
//! when the running daemon holds the store.

use std::fmt::{self, Write};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::model::{DestinationState, ProfileState, StorefrontState};
use crate::store::{Acknowledged, CustomerRecord, OutboxEntry, Store, StoreError};
use crate::sync::{desired_storefront, loyalty_disagreements, Reads};

/// Refused writes (and inconsistent customers) listed in full before the rest are counted.
const LISTED: usize = 20;

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The store's directory.
    pub store: String,
    /// Orders are read from here on at the next pass (`None`: no pass has read any).
    pub orders_cursor: Option<DateTime<Utc>>,
    /// Set when the first backfill ran without `read_all_orders`: only orders since then.
    pub partial_history_since: Option<DateTime<Utc>>,
    /// Loyalty members are read from here on.
    pub loyalty_cursor: Option<DateTime<Utc>>,
    /// The last daily recalculation (`None`: no pass has run).
    pub recalculated: Option<Recalculation>,
    /// Klaviyo profile writes.
    pub klaviyo_profiles: DestinationStatus,
    /// Shopify tags and metafields; `None` when `storefront.enabled = false`.
    pub storefront: Option<DestinationStatus>,
    /// The flow-triggering events.
    pub klaviyo_events: EventsStatus,
    /// Customers whose destinations do not all show their current version.
    pub consistency: Consistency,
    /// The loyalty app's tiers against ours; `None` without a loyalty app.
    pub loyalty: Option<LoyaltyStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recalculation {
    /// Shop-local day it ran.
    pub as_of: NaiveDate,
    /// Customers with orders then.
    pub customers: usize,
}

/// One destination's writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationStatus {
    pub acknowledged: usize,
    pub pending: usize,
    pub refused: usize,
    /// Why the destination is stopped (its credential was refused), if it is.
    pub stopped: Option<String>,
    /// The first refused writes: the customer (email, or id) and the API's error.
    pub refused_writes: Vec<Refusal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// An email where the write carries one, else the customer id; for events, the metric
    /// and the event's external id.
    pub what: String,
    /// The API's error.
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsStatus {
    pub pending: usize,
    pub refused: usize,
    /// The first refused events.
    pub refused_events: Vec<Refusal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    /// Customers in the store.
    pub customers: usize,
    /// How many are not shown at their current version everywhere.
    pub inconsistent: usize,
    /// The first of them, as printed.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoyaltyStatus {
    pub members: usize,
    /// Members whose app tier is not the level tiersync holds.
    pub disagreeing: usize,
    /// The first of them, `email: loyalty app X, tiersync Y`.
    pub examples: Vec<String>,
}

impl Status {
    /// Reads the status from the store.
    pub fn read(store: &Store, settings: &Settings) -> anyhow::Result<Status> {
        let events = store.event_counts()?;
        Ok(Status {
            store: store.path().display().to_string(),
            orders_cursor: store.orders_cursor()?,
            partial_history_since: store.partial_history_since()?,
            loyalty_cursor: store.loyalty_cursor()?,
            recalculated: store.population()?.map(|p| Recalculation {
                as_of: p.as_of,
                customers: p.customers,
            }),
            klaviyo_profiles: destination::<ProfileState>(store, |p| p.email.clone())?,
            storefront: if settings.storefront.enabled {
                Some(destination::<StorefrontState>(store, |_| None)?)
            } else {
                None
            },
            klaviyo_events: EventsStatus {
                pending: events.pending,
                refused: events.failed,
                refused_events: store
                    .parked_events()?
                    .into_iter()
                    .take(LISTED)
                    .map(|event| Refusal {
                        what: format!("{} {}", event.metric, event.external_id),
                        error: event.failed.unwrap_or_default(),
                    })
                    .collect(),
            },
            consistency: consistency(store, settings)?,
            loyalty: loyalty_disagreements(store, settings)?.map(|l| LoyaltyStatus {
                members: l.members,
                disagreeing: l.count,
                examples: l.examples,
            }),
        })
    }

    /// The stopped destinations, as `name: why`: `status` exits non-zero when there is one.
    pub fn stopped(&self) -> Vec<String> {
        [
            ("klaviyo", Some(&self.klaviyo_profiles)),
            ("storefront", self.storefront.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, d)| Some(format!("{name}: {}", d?.stopped.as_ref()?)))
        .collect()
    }
}

/// The status as `tiersync status` prints it.
pub fn status(store: &Store, settings: &Settings) -> anyhow::Result<String> {
    Ok(Status::read(store, settings)?.to_string())
}

/// The status now: read from the store, or, while the daemon holds the store, asked of the
/// daemon's endpoint. Changes nothing in the store.
pub async fn current(settings: &Settings) -> anyhow::Result<Status> {
    match Store::open_to_read(&settings.store.path, settings.store.cache_mb) {
        Ok(store) => Status::read(&store, settings),
        Err(StoreError::Locked { .. }) => Ok(super::daemon_status::ask_daemon(settings).await?),
        Err(error) => Err(error.into()),
    }
}

impl fmt::Display for Status {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cursor =
            |c: Option<DateTime<Utc>>| c.map_or("none yet".to_string(), |c| c.to_rfc3339());
        writeln!(out, "store {}", self.store)?;
        writeln!(out, "  orders cursor    {}", cursor(self.orders_cursor))?;
        if let Some(since) = self.partial_history_since {
            writeln!(
                out,
                "  order history    PARTIAL: orders since {} only (the Shopify app lacked read_all_orders at the first backfill; once it is granted, run `tiersync rebuild`)",
                since.format("%Y-%m-%d")
            )?;
        }
        writeln!(out, "  loyalty cursor   {}", cursor(self.loyalty_cursor))?;
        match &self.recalculated {
            Some(p) => writeln!(
                out,
                "  recalculated     {} ({} customers with orders)",
                p.as_of, p.customers
            )?,
            None => writeln!(out, "  recalculated     never (no pass has run)")?,
        }
        self.klaviyo_profiles.render(out, "klaviyo profiles ")?;
        match &self.storefront {
            Some(storefront) => storefront.render(out, "storefront       ")?,
            None => writeln!(
                out,
                "storefront         not written (storefront.enabled = false)"
            )?,
        }
        writeln!(
            out,
            "klaviyo events     {} pending, {} refused",
            self.klaviyo_events.pending, self.klaviyo_events.refused
        )?;
        for event in &self.klaviyo_events.refused_events {
            writeln!(out, "    {}: {}", event.what, event.error)?;
        }
        let c = &self.consistency;
        writeln!(
            out,
            "consistency        {} of {} customers shown at their current version everywhere, {} not yet",
            c.customers - c.inconsistent,
            c.customers,
            c.inconsistent
        )?;
        for line in &c.examples {
            writeln!(out, "{line}")?;
        }
        if c.inconsistent > c.examples.len() {
            writeln!(out, "    … and {} more", c.inconsistent - c.examples.len())?;
        }
        if let Some(loyalty) = &self.loyalty {
            writeln!(
                out,
                "loyalty app        {} members; {} show another tier than tiersync",
                loyalty.members, loyalty.disagreeing
            )?;
            for example in &loyalty.examples {
                writeln!(out, "    {example}")?;
            }
            if loyalty.disagreeing > loyalty.examples.len() {
                writeln!(
                    out,
                    "    … and {} more",
                    loyalty.disagreeing - loyalty.examples.len()
                )?;
            }
        }
        Ok(())
    }
}

impl DestinationStatus {
    /// The destination's line and its refused writes.
    fn render(&self, out: &mut fmt::Formatter<'_>, label: &str) -> fmt::Result {
        writeln!(
            out,
            "{label}  {} acknowledged, {} pending, {} refused",
            self.acknowledged, self.pending, self.refused
        )?;
        if let Some(why) = &self.stopped {
            writeln!(
                out,
                "    STOPPED: {why} (writes wait in the outbox; restart tiersync after fixing it)"
            )?;
        }
        for refusal in &self.refused_writes {
            writeln!(out, "    {}: {}", refusal.what, refusal.error)?;
        }
        if self.refused > self.refused_writes.len() {
            writeln!(
                out,
                "    … and {} more",
                self.refused - self.refused_writes.len()
            )?;
        }
        Ok(())
    }
}

/// One destination's counts, stop and first refused writes.
fn destination<S: DestinationState>(
    store: &Store,
    who: impl Fn(&S) -> Option<String>,
) -> anyhow::Result<DestinationStatus> {
    let counts = store.outbox_counts::<S>()?;
    let parked = store.parked::<S>()?;
    Ok(DestinationStatus {
        acknowledged: store.acknowledged_count(S::DESTINATION),
        pending: counts.pending,
        refused: counts.failed,
        stopped: store.destination_stopped(S::DESTINATION)?,
        refused_writes: parked
            .into_iter()
            .take(LISTED)
            .map(|entry| Refusal {
                what: who(&entry.state).unwrap_or_else(|| entry.customer_id.clone()),
                error: entry.failed.unwrap_or_default(),
            })
            .collect(),
    })
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
///
/// The records are walked in key order, [`CHUNK`] at a time, each chunk's acknowledgements
/// and outbox entries read with one range scan per tree: the memory is a chunk's, whatever
/// the store's size (a million customers' acknowledgements and pending writes held in maps
/// took hundreds of MiB).
fn consistency(store: &Store, settings: &Settings) -> anyhow::Result<Consistency> {
    consistency_in_chunks(store, settings, CHUNK)
}

fn consistency_in_chunks(
    store: &Store,
    settings: &Settings,
    chunk_customers: usize,
) -> anyhow::Result<Consistency> {
    let mut customers = 0usize;
    let mut inconsistent = 0usize;
    let mut examples: Vec<String> = Vec::new();
    let mut records = store.customers();
    loop {
        let chunk = records
            .by_ref()
            .take(chunk_customers)
            .collect::<Result<Vec<CustomerRecord>, StoreError>>()?;
        if chunk.is_empty() {
            break;
        }
        customers += chunk.len();
        let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
        let klaviyo = Reads::<ProfileState>::load(store, &ids, true)?;
        let storefront = Reads::<StorefrontState>::load(store, &ids, settings.storefront.enabled)?;
        for (i, record) in chunk.iter().enumerate() {
            let mut behind = Vec::new();
            if let Some(k) = standing(
                true,
                record.version,
                klaviyo.at(i).acknowledged,
                klaviyo.at(i).pending,
                |s| format!("{} ({})", s.vip_tier, s.vip_state),
            ) {
                behind.push(format!("klaviyo {k}"));
            }
            if settings.storefront.enabled {
                if let Some(s) = standing(
                    desired_storefront(record, &settings.storefront).is_some(),
                    record.version,
                    storefront.at(i).acknowledged,
                    storefront.at(i).pending,
                    |s| format!("{} ({})", s.vip_tier, s.vip_state),
                ) {
                    behind.push(format!("storefront {s}"));
                }
            }
            if behind.is_empty() {
                continue;
            }
            inconsistent += 1;
            if examples.len() < LISTED {
                examples.push(format!(
                    "    {}: desired v{} {} ({}); {}",
                    record.email.as_deref().unwrap_or(&record.id),
                    record.version,
                    record.tier.level.as_deref().unwrap_or("None"),
                    record.tier.state.as_str(),
                    behind.join("; ")
                ));
            }
        }
    }
    Ok(Consistency {
        customers,
        inconsistent,
        examples,
    })
}

/// Customers read per chunk by [`consistency`].
const CHUNK: usize = 4_096;

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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::store::{Evaluation, OutboxChange, RecordChange};
    use crate::sync::{desired_profile, test_record};

    #[test]
    fn consistency_is_the_same_read_in_chunks_of_any_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::from_toml(
            "[shopify]\nshop = \"acme\"\naccess_token = \"x\"\n[klaviyo]\napi_key = \"k\"\n[storefront]\nenabled = false",
        )
        .unwrap();
        settings.store.path = dir.path().to_path_buf();
        let store = Store::open(dir.path()).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 0).unwrap();
        let entries: Vec<OutboxEntry<ProfileState>> = (0..10)
            .map(|n| {
                let record = test_record(n, now.date_naive());
                OutboxEntry {
                    customer_id: record.id.clone(),
                    version: record.version,
                    state: desired_profile(&record),
                    enqueued_at: now,
                    failed: None,
                }
            })
            .collect();
        let evaluations: Vec<Evaluation> = entries
            .iter()
            .enumerate()
            .map(|(n, entry)| Evaluation {
                record: test_record(n, now.date_naive()),
                klaviyo: OutboxChange::Put(Box::new(entry.clone())),
                storefront: OutboxChange::Keep,
                audit: Vec::new(),
                events: Vec::new(),
                dirty: false,
                change: RecordChange::State,
            })
            .collect();
        store.commit_evaluations(&evaluations).unwrap();
        // Seven written, one refused, customers 3 and 6 still pending.
        let written: Vec<_> = entries
            .iter()
            .enumerate()
            .filter(|(n, _)| ![3, 6, 8].contains(n))
            .map(|(_, e)| e.clone())
            .collect();
        store.acknowledge(&written).unwrap();
        store.park(&entries[8], "Invalid email").unwrap();

        for chunk in [1, 3, 4, CHUNK] {
            let seen = consistency_in_chunks(&store, &settings, chunk).unwrap();
            assert_eq!(
                (seen.customers, seen.inconsistent),
                (10, 3),
                "chunk {chunk}"
            );
            let behind: Vec<&str> = seen
                .examples
                .iter()
                .map(|e| e.rsplit("; ").next().unwrap())
                .collect();
            assert_eq!(
                behind,
                [
                    "klaviyo nothing yet, write pending",
                    "klaviyo nothing yet, write pending",
                    "klaviyo nothing yet, write refused"
                ],
                "chunk {chunk}"
            );
            assert!(seen.examples[0].starts_with("    c3@example.com: desired v1"));
        }
    }
}
