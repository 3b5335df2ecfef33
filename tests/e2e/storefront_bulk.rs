//! Storefront writes as Shopify bulk mutations: above `storefront.bulk_threshold` they leave
//! as staged JSONL run by the fake's `bulkOperationRunMutation`, land exactly as the documents
//! would, cost a few points, park a refused line's customer, survive a SIGKILL mid-operation
//! and wait out another bulk mutation instead of failing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tiersync::model::StorefrontState;
use tiersync::store::Store;
use tiersync::vendors::shopify::{bulk_mutation, ShopifyClient};
use tiersync_mocks::data::StoreData;
use tiersync_mocks::shopify::{FakeShopify, ShopifyOptions};
use tiersync_mocks::MockOptions;
use tokio_util::sync::CancellationToken;

use crate::common::{self, generated, spawn_with, TestEnv};

/// A fake shop applying `rate` bulk mutation lines a second.
async fn env(store: StoreData, rate: f64, bulk_threshold: usize) -> TestEnv {
    let options = MockOptions {
        shopify: ShopifyOptions {
            bulk_mutation_rate: rate,
            ..ShopifyOptions::default()
        },
        ..MockOptions::default()
    };
    let mut env = spawn_with(store, options).await;
    env.settings.storefront.bulk_threshold = bulk_threshold;
    env
}

/// Every customer's tags and tiersync metafields in the fake, by customer id.
fn storefront(shop: &FakeShopify) -> Vec<(u64, Vec<String>, Vec<Option<String>>)> {
    let mut all: Vec<_> = shop
        .customers()
        .into_iter()
        .map(|c| {
            let fields = ["vip_tier", "vip_state", "vip_peak_tier", "clv_blended"]
                .iter()
                .map(|k| shop.customer_metafield(c.id, "tiersync", k))
                .collect();
            let mut tags = c.tags.clone();
            tags.sort();
            (c.id, tags, fields)
        })
        .collect();
    all.sort();
    all
}

fn sent_documents(shop: &FakeShopify) -> usize {
    shop.requests()
        .iter()
        .filter(|r| r.body.contains("mutation TiersyncStorefront"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_above_the_threshold_writes_the_storefront_in_bulk_like_the_documents_would() {
    let bulk = env(generated(400, 21), 2_000.0, 10).await;
    let report = bulk.pass().await;
    let (delivery, outbox) = report.storefront.expect("storefront on");
    assert!(delivery.written > 40, "{report}");
    assert_eq!(delivery.bulk_written, delivery.written, "{report}");
    assert!(
        delivery.bulk_operations >= 2,
        "tags and metafields: {report}"
    );
    assert_eq!(
        (delivery.parked, outbox.pending, outbox.failed),
        (0, 0, 0),
        "{report}"
    );
    assert!(report.to_string().contains("storefront bulk"), "{report}");
    assert_eq!(
        sent_documents(&bulk.servers.shopify),
        0,
        "no per-call documents"
    );
    let ops = bulk.servers.shopify.bulk_mutations();
    assert!(
        ops.iter().all(|(status, _)| status == "COMPLETED"),
        "{ops:?}"
    );

    // The same shop written by documents ends up identical, and costs far more points.
    let documents = env(generated(400, 21), 2_000.0, usize::MAX).await;
    let by_documents = documents.pass().await;
    assert_eq!(by_documents.storefront.unwrap().0.written, delivery.written);
    assert!(sent_documents(&documents.servers.shopify) > 0);
    assert_eq!(
        storefront(&bulk.servers.shopify),
        storefront(&documents.servers.shopify)
    );
    let (spent_bulk, spent_documents) = (
        bulk.servers.shopify.points_spent(),
        documents.servers.shopify.points_spent(),
    );
    assert!(
        spent_bulk * 4.0 < spent_documents,
        "bulk spent {spent_bulk} points, documents {spent_documents}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_batches_write_every_customer_once_as_one_batch_would() {
    // About 85 VIPs in batches of 15: six batches, each planned while the one before runs.
    let mut batched = env(generated(400, 21), 2_000.0, 10).await;
    batched.settings.storefront.bulk_batch_customers = 15;
    let report = batched.pass().await;
    let delivery = common::storefront_all_written(&report);
    assert_eq!(delivery.bulk_written, delivery.written, "{report}");
    assert_eq!(delivery.deferred, 0, "{report}");
    let batches = delivery.written.div_ceil(15);
    assert!(batches >= 5, "{} writes", delivery.written);
    assert!(
        delivery.bulk_operations >= 2 * batches,
        "tags and metafields in every batch: {report}"
    );
    let shop = &batched.servers.shopify;
    let vips: Vec<_> = shop
        .customers()
        .into_iter()
        .filter(|c| c.tags.iter().any(|t| t.starts_with("vip:")))
        .collect();
    assert_eq!(vips.len(), delivery.written, "{report}");
    for customer in &vips {
        assert_eq!(
            shop.tag_mutations(customer.id),
            1,
            "customer {}",
            customer.id
        );
    }
    let store = Store::open(&batched.settings.store.path).unwrap();
    assert!(store.storefront_bulk().unwrap().is_none());

    let whole = env(generated(400, 21), 2_000.0, 10).await;
    whole.pass().await;
    assert_eq!(storefront(shop), storefront(&whole.servers.shopify));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_shopify_refuses_parks_only_that_customers_write_with_its_error_in_status() {
    let store = generated(300, 5);
    // The VIP whose line comes last (lines follow the outbox: customer GIDs in string order)
    // is deleted from the shop while the operation runs: that line is refused.
    let expected = common::expected_profiles(&store.orders, Utc::now());
    let gone_gid = expected
        .iter()
        .filter(|(_, p)| p.0 != "None")
        .map(|(id, _)| format!("gid://shopify/Customer/{id}"))
        .max()
        .expect("a VIP");
    let gone_id: u64 = gone_gid.rsplit('/').next().unwrap().parse().unwrap();
    let env = env(store, 20.0, 10).await;
    let shop = env.servers.shopify.clone();
    let delete = async {
        let running = wait_until(Duration::from_secs(60), || {
            shop.bulk_mutations().iter().any(|(s, _)| s == "RUNNING")
        })
        .await;
        shop.delete_customer(gone_id);
        running
    };
    let (report, running) = tokio::join!(env.pass(), delete);
    assert!(running, "{report}");
    let (delivery, outbox) = report.storefront.expect("storefront on");
    assert_eq!(
        (delivery.parked, outbox.failed, outbox.pending),
        (1, 1, 0),
        "{report}"
    );
    assert!(delivery.written > 10, "{report}");
    let store = Store::open(&env.settings.store.path).unwrap();
    let parked = store.parked::<StorefrontState>().unwrap();
    assert_eq!(parked[0].customer_id, gone_gid);
    assert!(
        parked[0]
            .failed
            .as_deref()
            .unwrap()
            .contains("Customer does not exist"),
        "{parked:?}"
    );
    let status = tiersync::ops::status::status(&store, &env.settings).unwrap();
    assert!(status.contains("Customer does not exist"), "{status}");
}

/// Waits (polling) until `condition` holds or `limit` passes.
async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_a_bulk_mutation_a_restart_finds_it_and_writes_everyone_exactly_once() {
    let _clock = common::timing_sensitive().await; // the kill must land mid-operation
    let env = env(generated(400, 9), 25.0, 10).await;
    let config = env.config_file();
    let config = config.to_str().unwrap();
    let mut daemon = env
        .binary(&["run", "--config", config], "first.log")
        .env("TIERSYNC__STOREFRONT__BULK_THRESHOLD", "10")
        .spawn()
        .expect("daemon starts");
    let shop = env.servers.shopify.clone();
    let reached = wait_until(Duration::from_secs(90), || {
        shop.bulk_mutations()
            .iter()
            .any(|(status, done)| status == "RUNNING" && *done >= 5)
    })
    .await;
    daemon.kill().expect("SIGKILL");
    daemon.wait().expect("reaped");
    assert!(reached, "no bulk mutation ran: {}", env.log("first.log"));

    let status = env
        .binary(&["once", "--config", config], "second.log")
        .env("TIERSYNC__STOREFRONT__BULK_THRESHOLD", "10")
        .status()
        .expect("restart runs");
    let log = env.log("second.log");
    assert!(status.success(), "restart failed: {log}");
    assert!(log.contains("resuming the storefront bulk write"), "{log}");
    let store = Store::open(&env.settings.store.path).unwrap();
    let counts = store.outbox_counts::<StorefrontState>().unwrap();
    assert_eq!((counts.pending, counts.failed), (0, 0));
    assert!(store.storefront_bulk().unwrap().is_none());
    let acks = store.acknowledgements::<StorefrontState>().unwrap();
    let mut tagged = 0;
    for customer in shop.customers() {
        let gid = format!("gid://shopify/Customer/{}", customer.id);
        let Some(ack) = acks.get(&gid).filter(|a| a.state.tag.is_some()) else {
            continue;
        };
        tagged += 1;
        assert_eq!(
            shop.tag_mutations(customer.id),
            1,
            "{gid}: tags written once"
        );
        assert!(
            customer.tags.contains(ack.state.tag.as_ref().unwrap()),
            "{gid}"
        );
        assert_eq!(
            shop.customer_metafield(customer.id, "tiersync", "vip_tier")
                .as_deref(),
            Some(ack.state.vip_tier.as_str())
        );
    }
    assert!(tagged > 10, "{tagged} VIPs");
    // Each VIP's two lines (tags, metafields) were done once over every operation: the
    // restart resumed the operations it found instead of submitting their lines again.
    let lines_done: u64 = shop.bulk_mutations().iter().map(|(_, done)| done).sum();
    assert_eq!(
        lines_done,
        2 * tagged,
        "lines done over all operations: {:?}",
        shop.bulk_mutations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_mutation_already_running_is_waited_for_not_failed() {
    let mut env = env(generated(300, 3), 100.0, 10).await;
    // Before 2026-01 one bulk mutation runs per shop: another client's slow one holds it.
    env.settings.shopify.api_version = "2025-01".into();
    let client = ShopifyClient::new(&env.settings, Arc::default(), CancellationToken::new());
    let some_customer = env.servers.shopify.customers()[0].id;
    let lines: String = (0..300)
        .map(|_| {
            format!(
                "{{\"id\":\"gid://shopify/Customer/{some_customer}\",\"tags\":[\"other-app\"]}}\n"
            )
        })
        .collect();
    let path = bulk_mutation::stage(&client, "other.jsonl", lines.into_bytes())
        .await
        .expect("staged");
    // 300 lines at 100/s: it runs for 3 s.
    let started = bulk_mutation::start(
        &client,
        tiersync::vendors::shopify::queries::BULK_TAGS_ADD,
        &path,
    )
    .await
    .expect("started");
    assert!(
        matches!(started, bulk_mutation::Started::Running(_)),
        "{started:?}"
    );
    let report = env.pass().await;
    let delivery = common::storefront_all_written(&report);
    assert!(delivery.bulk_written > 10, "{report}");
    let ops = env.servers.shopify.bulk_mutations();
    assert!(
        ops.len() >= 3 && ops.iter().all(|(s, _)| s == "COMPLETED"),
        "{ops:?}"
    );
    let runs = env
        .servers
        .shopify
        .requests()
        .iter()
        .filter(|r| r.body.contains("bulkOperationRunMutation"))
        .count();
    assert!(
        runs > ops.len(),
        "the daemon was refused at least once: {runs} runs sent, {} started",
        ops.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bulk_mutation_runs_again_only_for_the_lines_it_missed() {
    let mut env = env(generated(400, 13), 2_000.0, 10).await;
    // One operation at a time (before 2026-01): the tagsAdd operation runs first and fails.
    env.settings.shopify.api_version = "2025-01".into();
    env.servers.shopify.fail_next_bulk_mutation_after(5);
    let report = env.pass().await;
    let delivery = common::storefront_all_written(&report);
    let ops = env.servers.shopify.bulk_mutations();
    assert_eq!(ops[0], ("FAILED".to_owned(), 5), "{ops:?}");
    assert!(ops[1..].iter().all(|(s, _)| s == "COMPLETED"), "{ops:?}");
    let shop = &env.servers.shopify;
    let store = Store::open(&env.settings.store.path).unwrap();
    let acks = store.acknowledgements::<StorefrontState>().unwrap();
    let mut tagged = 0;
    for customer in shop.customers() {
        let gid = format!("gid://shopify/Customer/{}", customer.id);
        if let Some(tag) = acks.get(&gid).and_then(|a| a.state.tag.clone()) {
            tagged += 1;
            assert!(customer.tags.contains(&tag), "{gid}");
            assert_eq!(shop.tag_mutations(customer.id), 1, "{gid}: tagged once");
        }
    }
    assert_eq!(tagged, delivery.written, "{report}");
}
