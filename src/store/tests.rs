//! Store format migrations and the order entries' replay rules.

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

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
        current_total: Decimal::new(cents, 2),
    }
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
    assert_eq!(
        store
            .customer_orders("gid://shopify/Customer/10")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .customer_orders("gid://shopify/Customer/11")
            .unwrap()
            .len(),
        2
    );
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

    assert_eq!(store.orders.len(), page.len());
    assert!(store.orders.iter().keys().all(|k| k.unwrap()[0] <= 1));
    assert_eq!(
        store.apply_orders(&page, None).unwrap(),
        0,
        "every order recognized"
    );
    let moved = order(0, 99, 1_000);
    assert_eq!(store.apply_orders(&[moved], None).unwrap(), 1);
    let facts = |c: u64| {
        store
            .customer_orders(&format!("gid://shopify/Customer/{c}"))
            .unwrap()
            .len()
    };
    assert_eq!(facts(99), 1);
    assert_eq!(facts(0), 25_000 / 7 + 1 - 1, "order 0 left customer 0");
}
