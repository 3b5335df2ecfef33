//! The pass report's per-destination accounting: how long Shopify and the loyalty app had
//! work, the share of their published ceiling used meanwhile, and the waits, checked against
//! what the fakes themselves counted.

use std::sync::Arc;

use tiersync::config::{Authority, LoyaltyPlatform};
use tiersync::http::{ApiStats, ThroughputSnapshot};
use tiersync::sources::loyalty::LoyaltyClient;
use tiersync_mocks::generator::loyalty_members;
use tiersync_mocks::shopify::ShopifyOptions;
use tiersync_mocks::MockOptions;
use tokio_util::sync::CancellationToken;

use crate::common::{self, generated, spawn_with};

/// GraphQL requests the fake Shopify received.
fn graphql_requests(shop: &tiersync_mocks::shopify::FakeShopify) -> usize {
    shop.requests()
        .iter()
        .filter(|r| r.path.ends_with("/graphql.json"))
        .count()
}

/// A first pass on a slow plan (50 points/s, a 1,000-point bucket: an orders page asks for
/// more than 200 points, so a smaller bucket could never run it), storefront writes sent as
/// documents: the cost bucket is what bounds it, and the daemon keeps it drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_document_storefront_writes_drive_a_slow_plan_at_its_restore_rate() {
    let _timing = common::timing_sensitive().await;
    let options = MockOptions {
        shopify: ShopifyOptions {
            bucket_max: 1_000.0,
            restore_rate: 50.0,
            ..ShopifyOptions::default()
        },
        ..MockOptions::default()
    };
    let mut env = spawn_with(generated(1_000, 7), options).await;
    env.settings.storefront.bulk_threshold = usize::MAX;
    let report = env.pass().await;
    let (delivery, _) = report.storefront.as_ref().expect("storefront on");
    assert!(
        delivery.written >= 20,
        "enough writes to drain the bucket: {report}"
    );

    let shopify: &ThroughputSnapshot = &report.shopify_throughput;
    let points = shopify.window("cost points").expect("a cost points window");
    let fake = &env.servers.shopify;
    assert!(
        (points.units - fake.points_spent()).abs() <= fake.points_spent() * 0.01,
        "the points counted agree with the fake's bucket: {} vs {}",
        points.units,
        fake.points_spent()
    );
    assert_eq!(points.requests as usize, graphql_requests(fake));
    assert_eq!(
        points.ceiling.per_second, 50,
        "the plan's restore rate, as answered"
    );
    assert_eq!(
        points.refused, 0,
        "never sent what the bucket could not afford"
    );
    // The points beyond the bucket's 1,000 had to be waited for at 50 points/s.
    let must_wait = (fake.points_spent() - 1_000.0) / 50.0;
    assert!(
        points.waited.as_secs_f64() >= must_wait * 0.8,
        "waited {:?} for {must_wait:.1} s of refill",
        points.waited
    );
    assert!(shopify.bound <= shopify.busy && shopify.busy <= report.elapsed);
    assert!(
        shopify.operations >= 2,
        "the backfill and the storefront's first read are bulk operations: {report}"
    );
    let share = shopify.share().expect("bound time");
    assert!(
        (0.90..=1.05).contains(&share),
        "share {share:.3} of the ceiling while bound: {report}"
    );
    let text = report.to_string();
    assert!(
        text.contains("shopify  throughput  busy") && text.contains("of the 50/s restore rate"),
        "{text}"
    );
}

/// A read of about 11,000 members from the fake Smile.io, which refuses an eleventh request in a
/// second: the client stays under the limit and uses most of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smile_read_reports_its_share_of_the_per_second_limit() {
    let _timing = common::timing_sensitive().await;
    let data = generated(20_000, 11);
    let mut env = spawn_with(common::hand_built_store().0, MockOptions::default()).await;
    env.servers.smile.load(&data, &loyalty_members(&data, 11));
    env.use_loyalty(LoyaltyPlatform::Smile, Authority::Tiersync);
    let client = LoyaltyClient::new(
        &env.settings,
        Arc::new(ApiStats::default()),
        CancellationToken::new(),
    )
    .expect("a loyalty app is configured");
    let members = client.members_updated_since(None).await.expect("the read");
    assert!(members.len() > 10_000, "{}", members.len());

    let read = client.throughput().snapshot();
    let requests = read.window("requests").expect("one window");
    let smile = &env.servers.smile;
    let answered = smile.count("GET", "/v1/customers") + smile.count("GET", "/v1/vip_tiers");
    assert_eq!(requests.requests as usize, answered);
    assert_eq!(requests.refused, 0, "no 429: {read}");
    assert_eq!(requests.ceiling.per_second, 10);
    let share = read.share().expect("bound time");
    assert!(
        (0.90..=1.05).contains(&share),
        "share {share:.3} of 10/s: {read}"
    );

    // In a pass, the report names the loyalty app's line.
    let report = env.pass().await;
    let loyalty = report.loyalty_throughput.as_ref().expect("a loyalty app");
    assert!(
        loyalty.window("requests").unwrap().requests >= 2,
        "{report}"
    );
    assert!(
        report.to_string().contains("loyalty  throughput  busy"),
        "{report}"
    );
}
