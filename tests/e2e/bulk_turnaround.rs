//! The turnaround between storefront bulk mutations: with more operations than Shopify's
//! slots, each next operation is staged while the slots are busy and starts as soon as one
//! frees — its end noticed from the pace its `objectCount` shows, not a poll interval later —
//! and every customer is still written exactly once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tiersync::model::StorefrontState;
use tiersync::store::Store;
use tiersync::vendors::shopify::concurrent_operations;
use tiersync_mocks::shopify::{BulkQuery, ShopifyOptions};
use tiersync_mocks::MockOptions;

use crate::common::{self, generated, spawn_with};

/// Longest a freed slot may stay idle before the next operation starts in it: the end seen
/// by a poll timed to it, the result read and recorded, and the starts of the round's other
/// operations (they end together here), each recorded and flushed before and after it.
/// Measured 120–290 ms; polling on the second instead, these operations' ends fell just after
/// a poll and their slots stayed idle 1.1–1.2 s.
const TURNAROUND: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_next_bulk_mutation_starts_as_soon_as_a_slot_frees_and_writes_everyone_once() {
    let _clock = common::timing_sensitive().await; // a turnaround bound in milliseconds
    let options = MockOptions {
        shopify: ShopifyOptions {
            // About 2.1 s an operation (ten of about 470 lines): polled every second from its
            // start, its end falls just after a poll.
            bulk_mutation_rate: 225.0,
            ..ShopifyOptions::default()
        },
        ..MockOptions::default()
    };
    let mut env = spawn_with(generated(16_000, 41), options).await;
    env.settings.storefront.bulk_threshold = 10;
    env.settings.shopify.bulk_poll_interval = Duration::from_secs(1);
    let slots = concurrent_operations(&env.settings.shopify.api_version);
    assert!(slots > 1, "{}", env.settings.shopify.api_version);
    let shop = env.servers.shopify.clone();
    // Klaviyo first, alone: its delivery runs beside the storefront's and, with the fakes in
    // this process, would load the two cores the turnaround is measured on.
    env.settings.storefront.enabled = false;
    env.pass().await;
    env.settings.storefront.enabled = true;

    let report = env.pass().await;
    let delivery = common::storefront_all_written(&report);

    let mut ops = shop.bulk_mutation_operations();
    ops.sort_by_key(|o| o.created_at);
    assert!(ops.len() > slots, "more operations than slots: {ops:?}");
    assert!(ops.iter().all(|o| o.status == "COMPLETED"), "{ops:?}");
    let runs = shop
        .requests()
        .iter()
        .filter(|r| r.body.contains("bulkOperationRunMutation"))
        .count();
    assert_eq!(runs, ops.len(), "no start was refused for want of a slot");
    let gaps = turnarounds(&ops, slots);
    let ms: Vec<i64> = gaps.iter().map(|g| g.num_milliseconds()).collect();
    assert!(
        gaps.iter().all(|g| *g >= chrono::Duration::zero()),
        "never more than {slots} at once: {ms:?} ms"
    );
    eprintln!("slot idle before the next start (ms): {ms:?}");
    let longest = gaps.iter().max().expect("a transition").to_std().unwrap();
    assert!(
        longest <= TURNAROUND,
        "a slot stayed idle {longest:?} before the next start (all, ms: {ms:?})"
    );

    // Every planned line was done once, and every VIP tagged once.
    let lines: u64 = shop.bulk_mutations().iter().map(|(_, done)| done).sum();
    let store = Store::open(&env.settings.store.path).unwrap();
    let acks = store.acknowledgements::<StorefrontState>().unwrap();
    let mut tagged = 0;
    for customer in shop.customers() {
        let gid = format!("gid://shopify/Customer/{}", customer.id);
        let Some(tag) = acks.get(&gid).and_then(|a| a.state.tag.clone()) else {
            assert_eq!(shop.tag_mutations(customer.id), 0, "{gid}");
            continue;
        };
        tagged += 1;
        assert!(customer.tags.contains(&tag), "{gid}: {:?}", customer.tags);
        assert_eq!(shop.tag_mutations(customer.id), 1, "{gid}: tagged once");
    }
    assert_eq!(tagged, delivery.written, "{report}");
    assert_eq!(lines, 2 * tagged as u64, "a tag and a metafields line each");
}

/// For each operation that had to wait for a slot (every one after the first `slots`, in
/// the order they started), how long after the slot it took freed it started: the n-th such
/// start took the slot of the n-th operation to end.
fn turnarounds(ops: &[BulkQuery], slots: usize) -> Vec<chrono::Duration> {
    let mut ends: Vec<DateTime<Utc>> = ops.iter().filter_map(|o| o.completed_at).collect();
    ends.sort();
    ops[slots..]
        .iter()
        .zip(&ends)
        .map(|(next, freed)| next.created_at - *freed)
        .collect()
}
