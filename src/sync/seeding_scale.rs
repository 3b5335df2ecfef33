//! The first write's seeding at scale, timed: `cargo test --release --lib seeding_at_scale --
//! --ignored --nocapture` (`TIERSYNC_SEED_CUSTOMERS`, default 100,000; BENCHMARKS.md quotes
//! 100,000 and 1,000,000). Ignored by default: building a million customers takes a minute.
//!
//! The store is what the first evaluation of a new shop leaves (every customer recorded, a
//! Klaviyo write planned for each, a storefront write for each one holding a level) and the read-back what a shop
//! shows before tiersync's first write: most customers nothing, a few the desired state
//! already (an earlier install), a few somebody else's tag. Only `seed_storefront` is timed.

use std::time::Instant;

use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use super::{desired_profile, desired_storefront, Pipeline};
use crate::config::Settings;
use crate::model::{Inputs, StorefrontState, TierState, VipState};
use crate::sinks::shopify::StorefrontReadback;
use crate::store::{CustomerRecord, Evaluation, OutboxChange, OutboxEntry, RecordChange};

/// Customers committed per `commit_evaluations` call while building.
const BUILD_CHUNK: usize = 10_000;

/// Which of every 1,000 customers hold a level (as in the 1M benchmark's first pass: 22%),
/// of those which the shop already shows as desired, and which carry somebody else's tag.
const LEVELLED: usize = 220;
const SHOWN_RIGHT: usize = 20;
const FOREIGN: usize = 5;

/// Customer `n` of a generated store (also the status tests' customers).
pub(crate) fn record(n: usize, today: NaiveDate) -> CustomerRecord {
    let level = (n % 1_000 < LEVELLED).then(|| ["Silver", "Gold", "Platinum"][n % 3].to_string());
    let blended = Decimal::new((n % 9_000) as i64 * 100 + 37, 2);
    CustomerRecord {
        id: format!("gid://shopify/Customer/{}", 7_000_000_000 + n),
        email: Some(format!("c{n}@example.com")),
        inputs: Inputs {
            historic: blended,
            predicted: Decimal::ZERO,
            loyalty_points: 0,
            points_value: Decimal::ZERO,
            blended,
            window_net: blended,
            window_orders: (n % 30) as u32,
            lifetime_orders: (n % 40) as u32,
            first_order: Some(today - chrono::Duration::days(400)),
            last_order: Some(today - chrono::Duration::days((n % 300) as i64)),
            rfm_segment: Some("Loyal".into()),
            rfm_scores: Some((3, 4, 2)),
        },
        placement: "min_clv and min_orders of the level".into(),
        qualified: level.clone(),
        tier: TierState {
            state: if level.is_some() {
                VipState::Active
            } else {
                VipState::None
            },
            peak: level.clone(),
            level,
            since: today,
            below_since: None,
        },
        next_level: None,
        spend_to_next: None,
        loyalty_tier: None,
        evaluated_at: Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 0).unwrap(),
        version: 1,
    }
}

#[tokio::test]
#[ignore = "a benchmark: run it in release with --ignored --nocapture"]
async fn seeding_at_scale() {
    // The daemon's allocator settings (the unit tests run on its allocator too).
    crate::allocator::configure();
    let customers: usize = std::env::var("TIERSYNC_SEED_CUSTOMERS")
        .ok()
        .map_or(100_000, |n| n.parse().expect("TIERSYNC_SEED_CUSTOMERS"));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::from_toml(
        "[shopify]\nshop = \"acme\"\naccess_token = \"x\"\n[klaviyo]\napi_key = \"k\"",
    )
    .unwrap();
    settings.store.path = dir.path().to_path_buf();
    let pipeline = Pipeline::open(settings).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 0).unwrap();
    let today = now.date_naive();
    let storefront = &pipeline.settings.storefront;

    let built = Instant::now();
    let mut shop = StorefrontReadback::default();
    for start in (0..customers).step_by(BUILD_CHUNK) {
        let batch: Vec<Evaluation> = (start..customers.min(start + BUILD_CHUNK))
            .map(|n| {
                let record = record(n, today);
                let desired = desired_storefront(&record, storefront);
                shop.known.insert(record.id.clone());
                let shown = match n % 1_000 {
                    k if k < SHOWN_RIGHT => desired.clone(),
                    k if (LEVELLED..LEVELLED + FOREIGN).contains(&k) => Some(StorefrontState {
                        tag: Some("vip:gold".into()),
                        vip_tier: "Gold".into(),
                        vip_state: "active".into(),
                        vip_peak_tier: Some("Gold".into()),
                        clv_blended: Decimal::ZERO,
                    }),
                    _ => None,
                };
                if let Some(shown) = shown {
                    shop.customers.insert(record.id.clone(), shown);
                }
                let profile = OutboxEntry {
                    customer_id: record.id.clone(),
                    version: record.version,
                    state: desired_profile(&record),
                    enqueued_at: now,
                    failed: None,
                };
                Evaluation {
                    klaviyo: OutboxChange::Put(Box::new(profile)),
                    storefront: desired.map_or(OutboxChange::Keep, |state| {
                        OutboxChange::Put(Box::new(OutboxEntry {
                            customer_id: record.id.clone(),
                            version: record.version,
                            state,
                            enqueued_at: now,
                            failed: None,
                        }))
                    }),
                    record,
                    audit: Vec::new(),
                    events: Vec::new(),
                    dirty: false,
                    change: RecordChange::State,
                }
            })
            .collect();
        pipeline.store.commit_evaluations(&batch).unwrap();
    }
    pipeline.store.flush().unwrap();
    eprintln!(
        "built {customers} customers in {:.2} s",
        built.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let drift = pipeline.seed_storefront(shop, now).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("seeding {customers} customers took {seconds:.2} s: {drift:?}");

    let per_thousand = |share: usize| customers / 1_000 * share;
    assert_eq!(drift.checked, customers);
    assert_eq!(drift.foreign, per_thousand(FOREIGN));
    assert_eq!(drift.adopted, per_thousand(SHOWN_RIGHT));
    assert_eq!(
        drift.missing,
        per_thousand(LEVELLED - SHOWN_RIGHT),
        "{drift:?}"
    );
    assert_eq!(drift.enqueued, drift.missing + drift.foreign);
    let pending = pipeline.store.outbox_counts::<StorefrontState>().unwrap();
    assert_eq!(pending.pending, drift.enqueued);
    assert!(pipeline.store.storefront_seeded().unwrap().is_some());
}
