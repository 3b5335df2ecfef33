//! The first pass reads the storefront back before writing to it. From API version 2026-01
//! Shopify runs several bulk queries at once, so that read-back runs beside the order
//! backfill instead of after it; before 2026-01 it waits its turn. Either way the pass ends
//! the same, and a read-back that fails or is slow costs the storefront side only.

use std::time::Duration;

use tiersync::config::Backfill;
use tiersync::{PassReport, Pipeline};
use tiersync_mocks::faults::Fault;
use tiersync_mocks::shopify::{BulkQuery, ShopifyOptions};
use tiersync_mocks::MockOptions;
use tokio_util::sync::CancellationToken;

use crate::common::{self, hand_built_store, spawn_with, TestEnv};

/// The hand-built store, at `version`, with tags an earlier program left: dave (Gold) shows
/// Platinum beside a tag of somebody else's, bob (Silver) shows the right tag but no
/// metafields. Bulk queries stay RUNNING for `bulk_delay`.
async fn env_at(
    version: &str,
    bulk_delay: Duration,
) -> (TestEnv, Vec<(&'static str, &'static str)>) {
    let (data, expected) = hand_built_store();
    let options = MockOptions {
        shopify: ShopifyOptions {
            bulk_delay,
            ..ShopifyOptions::default()
        },
        ..MockOptions::default()
    };
    let mut env = spawn_with(data, options).await;
    env.settings.shopify.api_version = version.to_owned();
    let shop = &env.servers.shopify;
    for (id, tags) in [
        (4, vec!["vip:platinum", "wholesale"]),
        (2, vec!["vip:silver"]),
    ] {
        let mut customer = shop.customer(id).expect("customer");
        customer.tags = tags.into_iter().map(String::from).collect();
        shop.upsert_customer(customer);
    }
    (env, expected)
}

/// The backfill's query and the read-back's, from the fake's log.
fn backfill_and_readback(env: &TestEnv) -> (BulkQuery, BulkQuery) {
    let queries = env.servers.shopify.bulk_queries();
    assert_eq!(queries.len(), 2, "one backfill, one read-back: {queries:?}");
    let find = |root: &str| {
        queries
            .iter()
            .find(|q| {
                q.query
                    .trim_start_matches(['{', ' ', '\n'])
                    .starts_with(root)
            })
            .cloned()
            .unwrap_or_else(|| panic!("a bulk query of {root}: {queries:?}"))
    };
    (find("orders"), find("customers"))
}

/// What a first pass must leave, whichever way it read: the seeding's verdicts, every
/// levelled customer written, every tag right and somebody else's tag kept.
fn assert_first_pass(env: &TestEnv, report: &PassReport, expected: &[(&str, &str)]) {
    let seen = report
        .storefront_seeding
        .as_ref()
        .expect("the first pass reads the storefront");
    // Already right: the four customers without a level who show nothing. To correct: dave
    // and bob. Missing: the six other levelled customers.
    assert_eq!(
        (
            seen.checked,
            seen.consistent,
            seen.stale + seen.foreign,
            seen.missing
        ),
        (12, 4, 2, 6),
        "{report}"
    );
    let (written, outbox) = report.storefront.as_ref().expect("storefront on");
    assert_eq!((written.written, outbox.pending), (8, 0), "{report}");
    let shop = &env.servers.shopify;
    for customer in shop.customers() {
        let email = customer.email.clone().expect("email");
        let tier = expected
            .iter()
            .find(|(e, _)| *e == email)
            .map(|(_, t)| *t)
            .expect("expected tier");
        let vip: Vec<String> = customer
            .tags
            .iter()
            .filter(|t| t.starts_with("vip:"))
            .cloned()
            .collect();
        let want: Vec<String> = match tier {
            "None" => vec![],
            tier => vec![format!("vip:{}", tier.to_lowercase())],
        };
        assert_eq!(vip, want, "{email}");
        assert_eq!(env.klaviyo_tier(&email).as_deref(), Some(tier), "{email}");
    }
    assert!(shop
        .customer(4)
        .expect("dave")
        .tags
        .contains(&"wholesale".to_string()));
    // Bob's tag was right: only his metafields were written, his tags were not touched.
    assert_eq!(shop.tag_mutations(2), 0);
    assert_eq!(
        shop.customer_metafield(2, "tiersync", "vip_tier")
            .as_deref(),
        Some("Silver")
    );
}

#[tokio::test]
async fn from_2026_01_the_storefront_readback_runs_beside_the_order_backfill() {
    // The read-back must start within the backfill query's second at the fake.
    let _clock = common::timing_sensitive().await;
    let (env, expected) = env_at("2026-10", Duration::from_secs(1)).await;

    let report = env.pass().await;

    let (backfill, readback) = backfill_and_readback(&env);
    let ended = |q: &BulkQuery| q.completed_at.expect("completed");
    assert!(
        readback.created_at < ended(&backfill) && backfill.created_at < ended(&readback),
        "both ran at once: {backfill:?} {readback:?}"
    );
    assert!(report.ingest.backfill);
    assert_first_pass(&env, &report, &expected);
    let idle = env.pass().await;
    assert!(idle.storefront_seeding.is_none(), "read once: {idle}");
    assert_eq!(env.servers.shopify.bulk_queries().len(), 2);
}

#[tokio::test]
async fn before_2026_01_the_storefront_readback_waits_for_the_order_backfill() {
    let (env, expected) = env_at("2025-01", Duration::from_millis(200)).await;

    let report = env.pass().await;

    let (backfill, readback) = backfill_and_readback(&env);
    assert!(
        backfill
            .completed_at
            .is_some_and(|ended| ended <= readback.created_at),
        "one after the other: {backfill:?} {readback:?}"
    );
    assert_first_pass(&env, &report, &expected);
}

#[tokio::test]
async fn a_readback_that_fails_beside_the_backfill_fails_only_the_storefront_side() {
    let (mut env, expected) = env_at("2026-10", Duration::from_millis(200)).await;
    // Orders by pages: the read-back is the one bulk query, so the one result link refused
    // (storage's signed URL expired, say) is its own.
    env.settings.shopify.backfill = Backfill::Pages;
    env.servers
        .shopify
        .faults()
        .inject_next_on("/bulk/", 1, Fault::for_status(403, None));

    let pipeline = Pipeline::open(env.settings.clone()).expect("store opens");
    let error = pipeline
        .pass(&CancellationToken::new())
        .await
        .expect_err("the read-back fails")
        .to_string();

    assert!(
        error.contains("Shopify customer tags and metafields"),
        "{error}"
    );
    assert!(error.contains("bulk result link"), "{error}");
    let store = pipeline.store();
    assert!(store.orders_cursor().unwrap().is_some(), "orders ingested");
    assert!(store.storefront_seeded().unwrap().is_none());
    drop(pipeline);
    // Klaviyo was written all the same; the storefront was not touched.
    assert_eq!(
        env.klaviyo_tier("dave@example.com").as_deref(),
        Some("Gold")
    );
    let shop = &env.servers.shopify;
    assert!(shop
        .customer(4)
        .unwrap()
        .tags
        .contains(&"vip:platinum".into()));
    assert_eq!(shop.customer_metafield(5, "tiersync", "vip_tier"), None);

    // The next pass reads it again and writes it, as a first pass would.
    let report = env.pass().await;
    assert!(!report.ingest.backfill, "{report}");
    assert_first_pass(&env, &report, &expected);
}

#[tokio::test]
async fn klaviyo_is_written_while_a_slow_storefront_readback_still_runs() {
    // Klaviyo's writes must land within the read-back's four seconds at the fake.
    let _clock = common::timing_sensitive().await;
    let (mut env, expected) = env_at("2026-10", Duration::from_secs(4)).await;
    // Orders by pages: the read-back is the one bulk query, and the pass's one slow step.
    env.settings.shopify.backfill = Backfill::Pages;

    let report = env.pass().await;

    let queries = env.servers.shopify.bulk_queries();
    assert_eq!(queries.len(), 1, "the read-back alone: {queries:?}");
    let read_ended = queries[0].completed_at.expect("the read-back completed");
    for (email, _) in &expected {
        let profile = env
            .servers
            .klaviyo
            .profile_by_email(email)
            .unwrap_or_else(|| panic!("{email} written to Klaviyo"));
        assert!(
            profile.created < read_ended,
            "{email} written at {}, after the read-back ended at {read_ended}",
            profile.created
        );
    }
    assert_first_pass(&env, &report, &expected);
}
