//! The orders changed around a first-run bulk backfill are read as pages while the backfill
//! downloads (on a Standard shop a few hundred of them spend the whole cost bucket, so
//! reading them afterwards made the pass wait), and an order placed during the download is
//! still stored by the same pass.

use std::time::Duration;

use crate::common::{self, customer, order, spawn_with, store};
use tiersync_mocks::shopify::{DownloadPace, ShopifyOptions};
use tiersync_mocks::MockOptions;

const CUSTOMERS: u64 = 200;
/// Customers whose order was updated a minute before the pass: inside the overlap window
/// (`shopify.overlap`, 10 minutes), so the pages after the backfill read them again.
const RECENT: u64 = 30;

fn is_orders_page(body: &str) -> bool {
    body.contains("TiersyncOrdersPage")
}

#[tokio::test]
async fn orders_changed_around_the_backfill_are_read_while_it_downloads_and_none_is_missed() {
    let customers: Vec<_> = (1..=CUSTOMERS + 1)
        .map(|id| customer(id, &format!("c{id}@example.com")))
        .collect();
    let orders = customers
        .iter()
        .take(CUSTOMERS as usize)
        .map(|c| {
            let who = (c.id, c.email.as_deref().expect("email"));
            let mut built = order(c.id, Some(who), 30, "120.00").build();
            if c.id <= RECENT {
                built.updated_at = common::now() - chrono::Duration::minutes(1);
            }
            built
        })
        .collect();
    // About 2 KiB every 50 ms: the orders' file takes a few seconds to arrive.
    let options = MockOptions {
        shopify: ShopifyOptions {
            bulk_download: DownloadPace {
                chunk_bytes: 2048,
                chunk_delay: Duration::from_millis(50),
            },
            ..ShopifyOptions::default()
        },
        ..MockOptions::default()
    };
    let mut env = spawn_with(store(customers, orders), options).await;
    env.settings.storefront.enabled = false;
    let shopify = env.servers.shopify.clone();
    let late = CUSTOMERS + 1;

    // Once the backfill's file is downloading, the last customer places a VIP-sized order.
    let place_late_order = async {
        while !shopify
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.starts_with("/bulk/"))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let who = (late, "c201@example.com");
        shopify.upsert_order(order(late, Some(who), 0, "900.00").build());
    };
    let (report, ()) = tokio::join!(env.pass(), place_late_order);

    assert!(report.ingest.backfill, "{report}");
    let requests = shopify.requests();
    let download = requests
        .iter()
        .find(|r| r.method == "GET" && r.path.starts_with("/bulk/"))
        .expect("the backfill's file was downloaded");
    let pages: Vec<_> = requests
        .iter()
        .filter(|r| is_orders_page(&r.body))
        .collect();
    assert!(
        pages[0].at < download.at,
        "the pages after the backfill are read while it runs: first page at {}, download at {}",
        pages[0].at,
        download.at
    );
    assert!(
        pages.len() <= 3,
        "the recent orders once and one look after them, not the overlap again: {} pages",
        pages.len()
    );
    // Every order once from the backfill, the recent ones again from the overlap's pages, and
    // the order placed during the download.
    assert_eq!(
        report.ingest.orders_read,
        (CUSTOMERS + RECENT + 1) as usize,
        "{report}"
    );
    assert_eq!(
        env.klaviyo_tier("c201@example.com").as_deref(),
        Some("Silver"),
        "the order placed during the download counts in this pass"
    );
    assert_ne!(
        env.klaviyo_tier("c1@example.com").as_deref(),
        Some("Silver")
    );
}
