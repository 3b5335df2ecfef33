//! Bulk results are streamed: applied line by line as they arrive, limited by a read (idle)
//! timeout instead of the whole-request timeout, so a result that takes longer than
//! `sync.request_timeout` to arrive still loads, and one that stalls fails without moving
//! the cursor.

use std::time::{Duration, Instant};

use crate::common::{self, customer, order, spawn_with, store};
use tiersync::sources::shopify::shop_timezone;
use tiersync::vendors::shopify::ShopifyClient;
use tiersync::Pipeline;
use tiersync_mocks::shopify::{DownloadPace, ShopifyOptions};
use tiersync_mocks::MockOptions;
use tokio_util::sync::CancellationToken;

const CUSTOMERS: u64 = 300;

/// Customers with one order each — every fifth one Silver, so the storefront read-back has
/// metafields to stream too — over a link that sends bulk results `pace` at a time.
async fn env_at(pace: DownloadPace) -> common::TestEnv {
    let customers: Vec<_> = (1..=CUSTOMERS)
        .map(|id| customer(id, &format!("c{id}@example.com")))
        .collect();
    let orders = customers
        .iter()
        .map(|c| {
            let who = (c.id, c.email.as_deref().expect("email"));
            let total = if c.id % 5 == 0 { "600.00" } else { "120.00" };
            order(c.id, Some(who), 30, total).build()
        })
        .collect();
    let options = MockOptions {
        shopify: ShopifyOptions {
            bulk_download: pace,
            ..ShopifyOptions::default()
        },
        ..MockOptions::default()
    };
    let mut env = spawn_with(store(customers, orders), options).await;
    // The fake Shopify compiles its Admin schema on the first request that names the version
    // (seconds in a debug build), and meanwhile a test on one thread, client and fake alike,
    // stands still; a test on another thread that asks for it waits too. Pay for it before the
    // timeouts shrink, so that only the paced download races them.
    let client = ShopifyClient::new(&env.settings, Default::default(), Default::default());
    shop_timezone(&client)
        .await
        .expect("the fake Shopify answers");
    env.settings.sync.request_timeout = Duration::from_secs(1);
    env.settings.tiers.levels[0].min_clv = Some("500".parse().expect("decimal"));
    env
}

fn bulk_downloads(env: &common::TestEnv) -> usize {
    env.servers
        .shopify
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/bulk/"))
        .count()
}

#[tokio::test]
async fn a_result_slower_than_the_request_timeout_streams_in() {
    let _clock = common::timing_sensitive().await; // 1 s timeouts against a paced download
                                                   // 1 KiB every 40 ms: each read waits far less than the 1 s read timeout, but the files
                                                   // take several seconds in all.
    let mut env = env_at(DownloadPace {
        chunk_bytes: 1024,
        chunk_delay: Duration::from_millis(40),
    })
    .await;
    env.settings.shopify.bulk_read_timeout = Duration::from_secs(1);

    let started = Instant::now();
    let report = env.pass().await;
    let backfill = started.elapsed();

    assert!(report.ingest.backfill);
    assert_eq!(report.ingest.orders_read, CUSTOMERS as usize);
    assert_eq!(report.customers, CUSTOMERS as usize);
    // The orders backfill, and the storefront read before tiersync's first write to it.
    assert!(report.storefront_seeding.is_some(), "{report}");
    assert_eq!(bulk_downloads(&env), 2, "each downloaded once, not retried");
    assert!(
        backfill > 2 * env.settings.sync.request_timeout,
        "the download outlasts the request timeout: {backfill:?}"
    );

    // Reconcile reads the storefront back through a bulk query too.
    let started = Instant::now();
    let reconciled = Pipeline::open(env.settings.clone())
        .expect("store opens")
        .reconcile(&CancellationToken::new(), false)
        .await
        .expect("reconcile succeeds");
    let readback = started.elapsed();
    let storefront = reconciled
        .storefront
        .as_ref()
        .expect("storefront read back");
    assert_eq!(storefront.checked, CUSTOMERS as usize, "{reconciled}");
    assert_eq!(storefront.total(), 0, "{reconciled}");
    assert_eq!(bulk_downloads(&env), 3);
    assert!(
        readback > env.settings.sync.request_timeout,
        "the read-back outlasts the request timeout: {readback:?}"
    );
}

#[tokio::test]
async fn a_stalled_result_fails_on_the_read_timeout_and_the_cursor_stays() {
    let _clock = common::timing_sensitive().await; // a 150 ms read timeout
    let mut env = env_at(DownloadPace {
        chunk_bytes: 4096,
        chunk_delay: Duration::from_millis(600),
    })
    .await;
    env.settings.shopify.bulk_read_timeout = Duration::from_millis(150);
    env.settings.sync.max_retry_time = Duration::from_secs(1);
    // Only the download stalls: the other requests get time to spare on a loaded machine.
    env.settings.sync.request_timeout = Duration::from_secs(10);

    let pipeline = Pipeline::open(env.settings.clone()).expect("store opens");
    let error = pipeline
        .pass(&CancellationToken::new())
        .await
        .expect_err("the download stalls");

    let message = error.to_string();
    assert!(
        message.contains("shopify bulk result download"),
        "{message}"
    );
    assert!(bulk_downloads(&env) >= 2, "retried from the start");
    assert_eq!(
        pipeline.store().orders_cursor().unwrap(),
        None,
        "the cursor moves only after the last line"
    );
}

#[tokio::test]
async fn a_refused_result_link_fails_the_pass_without_blaming_a_credential() {
    let mut env = env_at(DownloadPace::default()).await;
    // Without the storefront's read-back (which runs beside the backfill from 2026-01) the one
    // result link is the backfill's.
    env.settings.storefront.enabled = false;
    // Storage refuses the signed link (expired, say): nothing of tiersync's was refused.
    env.servers.shopify.faults().inject_next_on(
        "/bulk/",
        1,
        tiersync_mocks::faults::Fault::for_status(403, None),
    );

    let pipeline = Pipeline::open(env.settings.clone()).expect("store opens");
    let error = pipeline
        .pass(&CancellationToken::new())
        .await
        .expect_err("the download is refused")
        .to_string();

    assert!(error.contains("bulk result link"), "{error}");
    assert!(!error.contains("credential"), "{error}");
    assert_eq!(pipeline.store().orders_cursor().unwrap(), None);
    drop(pipeline);
    let report = env.pass().await;
    assert_eq!(
        report.ingest.orders_read, CUSTOMERS as usize,
        "the next pass loads it"
    );
}
