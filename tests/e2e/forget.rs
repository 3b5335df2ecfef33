//! `tiersync forget`: one customer's data leaves the store entirely (every tree of both sled
//! databases scanned afterwards), the others stay as they were, a second run finds nothing,
//! and the command refuses while another process holds the store.

use chrono::Utc;
use rust_decimal::Decimal;
use tiersync::ops::{explain, forget, report};
use tiersync::store::{Evaluation, EventEntry, OutboxChange, OutboxEntry, RecordChange, Store};

use crate::hand_store::{self, email, gid};

/// Gives customer 1002 what a running daemon leaves behind: an acknowledged Klaviyo write, a
/// newer one pending, a pending event, and orders settled into the order map.
fn add_destination_state(store: &Store) {
    let record = store.customer(&gid(1002)).unwrap().unwrap();
    let entry = OutboxEntry {
        customer_id: gid(1002),
        version: 1,
        state: tiersync::sync::desired_profile(&record),
        enqueued_at: Utc::now(),
        failed: None,
    };
    store.acknowledge(std::slice::from_ref(&entry)).unwrap();
    let event = EventEntry {
        customer_id: gid(1002),
        seq: 0,
        unique_id: "hand-built-1002".into(),
        metric: "VIP Tier Entered".into(),
        email: Some(email(1002)),
        external_id: "1002".into(),
        from_tier: None,
        to_tier: Some("Silver".into()),
        from_state: "none".into(),
        to_state: "active".into(),
        clv_blended: Decimal::ONE,
        peak_tier: None,
        reason: "hand-built".into(),
        time: Utc::now(),
        failed: None,
    };
    store
        .commit_evaluations(&[Evaluation {
            record,
            klaviyo: OutboxChange::Put(Box::new(OutboxEntry {
                version: 2,
                ..entry
            })),
            storefront: OutboxChange::Keep,
            audit: Vec::new(),
            events: vec![event],
            dirty: false,
            change: RecordChange::Unchanged,
        }])
        .unwrap();
    store.settle_orders().unwrap();
    store.flush().unwrap();
}

/// Every key and value of every tree of the sled database at `path` containing `needle`.
fn occurrences(path: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let db = sled::open(path).unwrap();
    let mut found = Vec::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).unwrap();
        for item in tree.iter() {
            let (key, value) = item.unwrap();
            for (what, bytes) in [("key", &key), ("value", &value)] {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(format!(
                        "{} {what} {}",
                        String::from_utf8_lossy(&name),
                        String::from_utf8_lossy(&key)
                    ));
                }
            }
        }
    }
    found
}

/// Entries of the order map (a second database inside the store's directory).
fn order_map_entries(store_path: &std::path::Path) -> usize {
    let db = sled::open(store_path.join("order-map")).unwrap();
    db.open_tree("orders").unwrap().len()
}

#[test]
fn forget_removes_every_trace_of_one_customer_and_only_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let settings = hand_store::settings(dir.path());
    {
        let store = Store::open(dir.path()).unwrap();
        hand_store::build(&store);
        add_destination_state(&store);
    }
    assert_eq!(order_map_entries(dir.path()), 9);
    let needles = [
        gid(1002).into_bytes(),
        email(1002).into_bytes(),
        b"hand-built-1002".to_vec(),
    ];
    assert!(
        !occurrences(dir.path(), &needles[0]).is_empty(),
        "the customer is in the store before"
    );
    let before_1001 = {
        let store = Store::open(dir.path()).unwrap();
        explain::explain(&store, &settings, &gid(1001)).unwrap()
    };

    let output = {
        let store = forget::open_store(&settings).unwrap();
        // The request names the email as the shopper typed it.
        forget::forget(&store, &settings, "  Customer-1002@Hand.Example ").unwrap()
    };

    for line in [
        "forgot gid://shopify/Customer/1002 (customer-1002@hand.example)",
        "2 order(s) with their amounts and dates",
        "2 order-map entry(ies) naming the customer",
        "4 recorded tier transition(s)",
        "1 loyalty-app member record(s)",
        "1 pending write(s) to Klaviyo or the storefront",
        "1 pending Klaviyo event(s)",
        "1 record(s) of what a destination acknowledged",
        "POST /api/data-privacy-deletion-jobs",
        "`tiersync rebuild` re-reads every order",
    ] {
        assert!(output.contains(line), "missing `{line}` in:\n{output}");
    }
    for needle in &needles {
        let left = occurrences(dir.path(), needle);
        assert!(
            left.is_empty(),
            "{} is still in the store: {left:?}",
            String::from_utf8_lossy(needle)
        );
    }
    assert_eq!(
        order_map_entries(dir.path()),
        7,
        "1002's two orders left the map"
    );

    let store = Store::open(dir.path()).unwrap();
    let unknown = explain::explain(&store, &settings, &gid(1002)).unwrap_err();
    assert!(unknown.to_string().contains("no customer"), "{unknown}");
    assert_eq!(
        explain::explain(&store, &settings, &gid(1001)).unwrap(),
        before_1001,
        "another customer is untouched"
    );
    assert_eq!(store.customer_orders(&gid(1001)).unwrap().len(), 3);
    assert!(store.loyalty_for_email(&email(1001)).unwrap().is_some());
    let after = report::compute(&store, &settings, hand_store::now()).unwrap();
    assert_eq!((after.customers(), after.unevaluated), (3, 1));

    let again = forget::forget(&store, &settings, &gid(1002)).unwrap();
    assert!(again.starts_with("nothing to remove"), "{again}");
    let by_number = forget::forget(&store, &settings, "1002").unwrap();
    assert!(by_number.starts_with("nothing to remove"), "{by_number}");
}

#[test]
fn forget_refuses_while_another_process_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let settings = hand_store::settings(dir.path());
    let _daemon = Store::open(dir.path()).unwrap();

    let error = forget::open_store(&settings).err().expect("refused");

    let message = format!("{error:#}");
    assert!(
        message.contains("in use by another tiersync process") && !message.contains('\n'),
        "{message}"
    );
}
