//! Store format migrations and the order entries' replay rules.

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use super::codec::encode;
use super::*;

fn order(n: u64, customer: u64, cents: i64) -> OrderRecord {
    OrderRecord {
        id: format!("gid://shopify/Order/{n}"),
        customer_id: Some(format!("gid://shopify/Customer/{customer}")),
        customer_email: Some(format!("c{customer}@example.com")),
        created_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        updated_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        cancelled_at: None,
        test: false,
        net_total: Decimal::new(cents, 2),
    }
}

/// How many orders the index holds for customer `c`.
fn orders_of(store: &Store, c: u64) -> usize {
    store
        .customer_orders(&format!("gid://shopify/Customer/{c}"))
        .unwrap()
        .len()
}

#[test]
fn a_replayed_page_changes_nothing_and_a_moved_order_leaves_its_old_customer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let page = [order(1, 10, 5_000), order(2, 10, 7_000), order(3, 11, 100)];
    assert_eq!(store.apply_orders(&page, None).unwrap(), 3);
    assert_eq!(store.apply_orders(&page, None).unwrap(), 0, "replay");

    let moved = order(2, 11, 7_000);
    assert_eq!(store.apply_orders(&[moved], None).unwrap(), 1);
    assert_eq!((orders_of(&store, 10), orders_of(&store, 11)), (1, 2));
}

#[test]
fn a_format_4_store_keeps_its_orders_through_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let page: Vec<OrderRecord> = (0..25_000u64).map(|n| order(n, n % 7, 1_000)).collect();
    {
        let store = Store::open(dir.path()).unwrap();
        store.apply_orders(&page, None).unwrap();
        // Format 4 kept each order whole under its GID.
        store.orders.clear().unwrap();
        for o in &page {
            store
                .orders
                .insert(o.id.as_bytes(), encode(o).unwrap())
                .unwrap();
        }
        store.set_schema_version(4).unwrap();
    }

    let store = Store::open(dir.path()).expect("format 4 is migrated");

    assert!(
        store.orders.is_empty(),
        "every entry moved to the order map"
    );
    let map = store.order_map.lock(&store.meta).unwrap();
    assert_eq!(map.orders.len(), page.len());
    assert!(map.orders.iter().keys().all(|k| k.unwrap()[0] <= 1));
    drop(map);
    assert_eq!(
        store.apply_orders(&page, None).unwrap(),
        0,
        "every order recognized"
    );
    let moved = order(0, 99, 1_000);
    assert_eq!(store.apply_orders(&[moved], None).unwrap(), 1);
    assert_eq!(orders_of(&store, 99), 1);
    assert_eq!(
        orders_of(&store, 0),
        25_000 / 7 + 1 - 1,
        "order 0 left customer 0"
    );
}

#[test]
fn settled_orders_are_recognized_from_the_order_map() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let page = [order(1, 10, 5_000), order(2, 10, 7_000), order(3, 11, 100)];
    store.apply_orders(&page, None).unwrap();
    store.release_order_map().unwrap();
    assert!(store.orders.is_empty(), "the overlay was settled");

    assert_eq!(store.apply_orders(&page, None).unwrap(), 0, "replay");
    assert_eq!(store.apply_orders(&[order(2, 11, 7_000)], None).unwrap(), 1);
    assert_eq!(
        (orders_of(&store, 10), orders_of(&store, 11)),
        (1, 2),
        "order 2 left customer 10"
    );
}

#[test]
fn unsettled_orders_survive_a_restart_in_the_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let page = [order(1, 10, 5_000), order(2, 10, 7_000)];
    {
        let store = Store::open(dir.path()).unwrap();
        store.apply_orders(&page, None).unwrap();
        store.flush().unwrap();
        // Killed before the ingest ended: never settled.
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.orders.len(), 2, "still in the overlay");
    assert_eq!(store.apply_orders(&page, None).unwrap(), 0, "replay");
    assert_eq!(store.apply_orders(&[order(1, 12, 5_000)], None).unwrap(), 1);
    store.release_order_map().unwrap();
    assert_eq!(store.apply_orders(&[order(1, 12, 5_000)], None).unwrap(), 0);
    assert_eq!((orders_of(&store, 10), orders_of(&store, 12)), (1, 1));
}

#[test]
fn a_lost_order_map_is_refused_naming_the_recovery() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.apply_orders(&[order(1, 10, 5_000)], None).unwrap();
        store.release_order_map().unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("order-map")).unwrap();

    let store = Store::open(dir.path()).expect("the main store opens");
    let error = store
        .apply_orders(&[order(2, 10, 5_000)], None)
        .expect_err("no map")
        .to_string();
    assert!(error.contains("order map is missing"), "{error}");
    assert!(error.contains("tiersync rebuild"), "{error}");
}

#[test]
fn an_ingest_without_orders_never_opens_the_order_map() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.apply_orders(&[], None).unwrap();
    store.release_order_map().unwrap();
    assert!(
        !dir.path().join("order-map").exists(),
        "no order map was created"
    );
}

/// Orders of 200 customers interleaved in id order, as a bulk result gives them: some
/// customers change email, some orders carry none, some are guest checkouts.
fn backfill_orders() -> Vec<OrderRecord> {
    (0..3_000u64)
        .map(|n| {
            let mut o = order(n, (n * 7919) % 200, 100 + (n as i64 % 97) * 13);
            match n % 11 {
                0 => o.customer_email = None,
                1 => o.customer_email = Some(format!("other{}@example.com", n % 3)),
                2 => o.customer_id = None,
                3 => o.cancelled_at = Some(o.created_at),
                _ => {}
            }
            o
        })
        .collect()
}

fn tree_entries(tree: &sled::Tree) -> Vec<(sled::IVec, sled::IVec)> {
    tree.iter().collect::<Result<_, _>>().unwrap()
}

fn map_entries(store: &Store) -> Vec<(sled::IVec, sled::IVec)> {
    store.settle_orders().unwrap();
    let map = store.order_map.lock(&store.meta).unwrap();
    tree_entries(&map.orders)
}

#[test]
fn a_fresh_backfill_stores_what_applying_it_page_by_page_stores() {
    let orders = backfill_orders();
    let until = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let (paged_dir, fresh_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let paged = Store::open(paged_dir.path()).unwrap();
    for page in orders.chunks(500) {
        paged.apply_orders(page, None).unwrap();
    }
    paged.apply_orders(&[], Some(until)).unwrap();
    let fresh = Store::open(fresh_dir.path()).unwrap();
    let mut backfill = fresh
        .begin_fresh_backfill()
        .unwrap()
        .expect("an empty store");
    for page in orders.chunks(500) {
        backfill.add(page).unwrap();
    }
    assert_eq!(backfill.finish(until).unwrap(), orders.len());

    for (name, a, b) in [
        ("index", &paged.customer_orders, &fresh.customer_orders),
        ("dirty", &paged.dirty, &fresh.dirty),
        ("emails", &paged.emails, &fresh.emails),
    ] {
        assert_eq!(tree_entries(a), tree_entries(b), "{name}");
    }
    assert!(!tree_entries(&fresh.customer_orders).is_empty());
    assert_eq!(fresh.orders_cursor().unwrap(), Some(until));
    assert_eq!(map_entries(&paged), map_entries(&fresh));
    // The map knows every order: a replayed page changes nothing, a moved order moves.
    assert_eq!(fresh.apply_orders(&orders[..500], None).unwrap(), 0);
    let mut moved = orders[4].clone();
    moved.customer_id = Some("gid://shopify/Customer/999".into());
    assert_eq!(fresh.apply_orders(&[moved], None).unwrap(), 1);
    assert_eq!(orders_of(&fresh, 999), 1);
    // A store with orders backfills page by page.
    assert!(fresh.begin_fresh_backfill().unwrap().is_none());
}

#[test]
fn a_fresh_backfill_cut_short_is_cleared_and_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let orders = backfill_orders();
    {
        let store = Store::open(dir.path()).unwrap();
        assert!(
            !store.abandon_unfinished_backfill().unwrap(),
            "nothing to clear"
        );
        let mut backfill = store.begin_fresh_backfill().unwrap().unwrap();
        backfill.add(&orders[..1_000]).unwrap();
        // The process dies here: the map holds 1,000 orders the store's index does not.
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(!map_entries(&store).is_empty());
    assert!(store.abandon_unfinished_backfill().unwrap());
    assert!(map_entries(&store).is_empty());
    assert!(store.customer_orders.is_empty() && store.dirty.is_empty());
    // Page by page, nothing is skipped as already seen.
    assert_eq!(store.apply_orders(&orders[..1_000], None).unwrap(), 1_000);
    assert!(!store.abandon_unfinished_backfill().unwrap());
}

fn storefront_bulk(operations: usize) -> StorefrontBulk {
    let entry = OutboxEntry {
        customer_id: "gid://shopify/Customer/1".into(),
        version: 3,
        state: crate::model::StorefrontState {
            tag: Some("vip:gold".into()),
            vip_tier: "Gold".into(),
            vip_state: "active".into(),
            vip_peak_tier: Some("Gold".into()),
            clv_blended: Decimal::new(120_050, 2),
        },
        enqueued_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        failed: None,
    };
    StorefrontBulk {
        entries: vec![entry],
        operations: (0..operations)
            .map(|n| BulkWriteOp::new(BulkWriteKind::TagsAdd, vec![(0, format!("{{\"n\":{n}}}"))]))
            .collect(),
    }
}

#[test]
fn a_bulk_write_resumes_from_each_operations_own_progress() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut bulk = storefront_bulk(2);
    store.set_storefront_bulk(&bulk).unwrap();
    bulk.operations[1].progress.operation_id = Some("gid://shopify/BulkOperation/7".into());
    bulk.operations[1].progress.attempts = 1;
    store
        .set_storefront_bulk_progress(1, &bulk.operations[1].progress)
        .unwrap();
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.storefront_bulk().unwrap(), Some(bulk.clone()));

    // A new batch does not inherit the last one's progress.
    let fresh = storefront_bulk(2);
    store.set_storefront_bulk(&fresh).unwrap();
    assert_eq!(store.storefront_bulk().unwrap(), Some(fresh.clone()));

    store
        .set_storefront_bulk_progress(0, &bulk.operations[1].progress)
        .unwrap();
    // Ids given to operations are claimed with their progress, and stay claimed after the
    // operation's results were read (its id cleared).
    let mut running = bulk.operations[1].progress.clone();
    running.operation_id = Some("gid://shopify/BulkOperation/8".into());
    store
        .claim_storefront_bulk_operation(1, &running, "gid://shopify/BulkOperation/8")
        .unwrap();
    running.operation_id = None;
    store.set_storefront_bulk_progress(1, &running).unwrap();
    assert_eq!(
        store.storefront_bulk().unwrap().unwrap().operations[1].progress,
        running
    );
    assert_eq!(
        store.storefront_bulk_claimed().unwrap(),
        ["gid://shopify/BulkOperation/8"]
    );
    let entry = &fresh.entries[0];
    store
        .settle_storefront_bulk(2, std::slice::from_ref(entry), &[])
        .unwrap();
    assert_eq!(store.storefront_bulk().unwrap(), None);
    assert_eq!(
        store.meta.scan_prefix("storefront/bulk").count(),
        0,
        "every progress key settled with the batch"
    );
}

#[test]
fn a_bulk_write_settled_in_many_transactions_settles_the_same_when_settled_again() {
    use crate::model::{Destination, StorefrontState};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let one = storefront_bulk(2).entries.remove(0);
    // More customers than one transaction takes, so the settle spans several.
    let entries: Vec<OutboxEntry<StorefrontState>> = (0..TX_CUSTOMERS * 2 + 10)
        .map(|n| OutboxEntry {
            customer_id: format!("gid://shopify/Customer/{n:05}"),
            ..one.clone()
        })
        .collect();
    let repairs: Vec<_> = entries.iter().map(|e| (e.clone(), None)).collect();
    store.enqueue_repairs(&repairs).unwrap();
    store.set_storefront_bulk(&storefront_bulk(2)).unwrap();
    let (refused, accepted) = entries.split_at(3);
    let refused: Vec<(&OutboxEntry<StorefrontState>, String)> = refused
        .iter()
        .map(|e| (e, "Tags is invalid".to_owned()))
        .collect();

    // A crash after the customers' transactions leaves the record: the resumed batch
    // settles again, and that changes nothing.
    for _ in 0..2 {
        store.settle_storefront_bulk(2, accepted, &refused).unwrap();
        assert_eq!(store.storefront_bulk().unwrap(), None);
        assert_eq!(store.pending::<StorefrontState>().unwrap(), []);
        let parked = store.parked::<StorefrontState>().unwrap();
        assert_eq!(parked.len(), 3);
        assert!(parked
            .iter()
            .all(|e| e.failed.as_deref() == Some("Tags is invalid")));
        assert_eq!(
            store.acknowledged_count(Destination::Storefront),
            accepted.len()
        );
        let ack = store
            .acknowledged::<StorefrontState>(&accepted[TX_CUSTOMERS + 1].customer_id)
            .unwrap()
            .expect("acknowledged");
        assert_eq!((ack.version, &ack.state), (one.version, &one.state));
    }
}

#[test]
fn a_bulk_write_recorded_in_one_value_by_an_earlier_version_resumes() {
    /// How the record's operations were stored before their progress had keys of its own.
    #[derive(serde::Serialize)]
    struct FlatOp {
        kind: BulkWriteKind,
        lines: Vec<(u32, String)>,
        outcomes: Vec<Option<Option<String>>>,
        submitted: Vec<u32>,
        staged_path: Option<String>,
        submitted_at: Option<chrono::DateTime<Utc>>,
        operation_id: Option<String>,
        attempts: u32,
    }
    #[derive(serde::Serialize)]
    struct FlatBulk {
        entries: Vec<OutboxEntry<crate::model::StorefrontState>>,
        operations: Vec<FlatOp>,
    }
    let mut expected = storefront_bulk(1);
    let progress = &mut expected.operations[0].progress;
    progress.submitted = vec![0];
    progress.staged_path = Some("tmp/bulk/1.jsonl".into());
    progress.submitted_at = Some(Utc.with_ymd_and_hms(2026, 3, 1, 12, 5, 0).unwrap());
    progress.operation_id = Some("gid://shopify/BulkOperation/3".into());
    progress.attempts = 1;
    let op = &expected.operations[0];
    let flat = FlatBulk {
        entries: expected.entries.clone(),
        operations: vec![FlatOp {
            kind: op.kind,
            lines: op.lines.clone(),
            outcomes: op.progress.outcomes.clone(),
            submitted: op.progress.submitted.clone(),
            staged_path: op.progress.staged_path.clone(),
            submitted_at: op.progress.submitted_at,
            operation_id: op.progress.operation_id.clone(),
            attempts: op.progress.attempts,
        }],
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .meta
        .insert("storefront/bulk", encode(&flat).unwrap())
        .unwrap();
    assert_eq!(store.storefront_bulk().unwrap(), Some(expected));
}

fn profile_entry(customer: &str) -> OutboxEntry {
    OutboxEntry {
        customer_id: customer.into(),
        version: 1,
        state: crate::model::ProfileState {
            email: Some(format!("{customer}@example.com")),
            external_id: customer.into(),
            vip_tier: "Gold".into(),
            vip_state: "active".into(),
            vip_tier_since: None,
            vip_peak_tier: Some("Gold".into()),
            clv_historic: Decimal::new(100, 0),
            clv_predicted: Decimal::ZERO,
            clv_blended: Decimal::new(100, 0),
            loyalty_points: 0,
            orders_count: 1,
            rfm_segment: None,
            vip_next_tier: None,
            vip_spend_to_next: None,
            suppress_discounts: false,
        },
        enqueued_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        failed: None,
    }
}

#[test]
fn pending_writes_are_read_a_job_at_a_time_in_key_order_without_parked_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let entries: Vec<_> = ["c1", "c2", "c3", "c4", "c5"]
        .iter()
        .map(|c| (profile_entry(c), None))
        .collect();
    store.enqueue_repairs(&entries).unwrap();
    store.park(&entries[2].0, "refused").unwrap();
    // The storefront's section follows Klaviyo's in the tree: a read must stop at its end.
    let mut storefront = storefront_bulk(0).entries;
    storefront[0].customer_id = "c0".into();
    let storefront: Vec<_> = storefront.into_iter().map(|e| (e, None)).collect();
    store.enqueue_repairs(&storefront).unwrap();

    let ids = |taken: Vec<OutboxEntry>| -> Vec<String> {
        taken.into_iter().map(|e| e.customer_id).collect()
    };
    let mut budget = 2;
    let first = store
        .pending_after::<crate::model::ProfileState>(None, |_| {
            budget -= 1;
            budget >= 0
        })
        .unwrap();
    assert_eq!(ids(first), ["c1", "c2"]);
    // c3 is parked; c4 was refused by the first read's budget and comes first now.
    let rest = store
        .pending_after::<crate::model::ProfileState>(Some("c2"), |_| true)
        .unwrap();
    assert_eq!(ids(rest), ["c4", "c5"]);
    let done = store
        .pending_after::<crate::model::ProfileState>(Some("c5"), |_| true)
        .unwrap();
    assert!(done.is_empty());
    let counts = store.outbox_counts::<crate::model::ProfileState>().unwrap();
    assert_eq!((counts.pending, counts.failed), (4, 1));
}
