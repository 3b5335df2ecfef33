//! A storefront bulk mutation whose start answer is lost after Shopify accepted it, while the
//! batch's other operations (up to five at once from API 2026-01) start after it: the next pass
//! finds the lost one among them and reads its result, so every customer is written exactly
//! once and no operation's result is taken for another's lines.

use tiersync::model::StorefrontState;
use tiersync::store::Store;
use tiersync::vendors::shopify::concurrent_operations;
use tiersync_mocks::shopify::ShopifyOptions;
use tiersync_mocks::MockOptions;

use crate::common::{self, generated, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_start_answer_is_found_among_concurrent_mutations_and_no_result_is_taken_twice() {
    let options = MockOptions {
        shopify: ShopifyOptions {
            bulk_mutation_rate: 2_000.0,
            ..ShopifyOptions::default()
        },
        ..MockOptions::default()
    };
    let mut env = spawn_with(generated(4_000, 31), options).await;
    env.settings.storefront.bulk_threshold = 10;
    assert!(concurrent_operations(&env.settings.shopify.api_version) > 1);
    let shop = env.servers.shopify.clone();
    // The first bulk mutation started runs 40 lines and fails, and its answer is lost: the
    // daemon never learns its id.
    shop.lose_next_bulk_mutation_answer();
    shop.fail_next_bulk_mutation_after(40);

    let first = env.pass().await;
    let store = Store::open(&env.settings.store.path).unwrap();
    let bulk = store
        .storefront_bulk()
        .unwrap()
        .unwrap_or_else(|| panic!("the batch is left for the next pass: {first}"));
    drop(store);
    let lost: Vec<_> = bulk
        .operations
        .iter()
        .filter(|o| o.progress.submitted_at.is_some() && o.progress.operation_id.is_none())
        .collect();
    assert_eq!(lost.len(), 1, "one send without an answer: {first}");
    let planned: usize = bulk.operations.iter().map(|o| o.lines.len()).sum();
    // The case at issue: operations of the same mutation were started after the lost one, so
    // the most recent bulk mutation is not it.
    let started = shop.bulk_mutation_operations();
    assert_eq!(started[0].status, "FAILED", "{started:?}");
    let later_same = started[1..]
        .iter()
        .filter(|o| o.query == started[0].query)
        .count();
    assert!(
        later_same >= 1,
        "kinds: {:?}",
        bulk.operations
            .iter()
            .map(|o| (o.kind, o.lines.len()))
            .collect::<Vec<_>>()
    );

    let second = env.pass().await;
    common::storefront_all_written(&second);
    let store = Store::open(&env.settings.store.path).unwrap();
    assert!(store.storefront_bulk().unwrap().is_none(), "settled");
    // Each line was done once over every operation: the lost one's 40, what it missed run
    // again, and the others' own.
    let done: u64 = shop.bulk_mutations().iter().map(|(_, lines)| lines).sum();
    assert_eq!(done, planned as u64, "{:?}", shop.bulk_mutations());
    assert_eq!(
        shop.bulk_mutations().len(),
        bulk.operations.len() + 1,
        "one more operation, for the lines the lost one missed"
    );
    // And every customer shows exactly what was acknowledged for them, written once.
    let acks = store.acknowledgements::<StorefrontState>().unwrap();
    assert_eq!(acks.len(), bulk.entries.len());
    let mut tagged = 0;
    for customer in shop.customers() {
        let gid = format!("gid://shopify/Customer/{}", customer.id);
        let field = |key| shop.customer_metafield(customer.id, "tiersync", key);
        let Some(ack) = acks.get(&gid) else {
            // Not a VIP and never one: nothing to write.
            assert_eq!(
                (field("vip_tier"), shop.tag_mutations(customer.id)),
                (None, 0)
            );
            continue;
        };
        assert_eq!(
            field("vip_tier").as_deref(),
            Some(ack.state.vip_tier.as_str()),
            "{gid}"
        );
        assert_eq!(
            field("vip_state").as_deref(),
            Some(ack.state.vip_state.as_str()),
            "{gid}"
        );
        if let Some(tag) = &ack.state.tag {
            tagged += 1;
            assert!(customer.tags.contains(tag), "{gid}: {:?}", customer.tags);
            assert_eq!(shop.tag_mutations(customer.id), 1, "{gid}: tagged once");
        }
    }
    assert!(tagged > 500, "{tagged} tagged");
}
