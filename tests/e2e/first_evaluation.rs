//! The first evaluation of a store, written without transactions (`store/fresh_evaluation.rs`):
//! what it stores, and what a run cut short leaves for the next one.

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use tiersync::config::Settings;
use tiersync::store::{OrderRecord, Store};

/// 3,000 orders of 200 customers, some with changing or missing emails, some cancelled.
fn orders() -> Vec<OrderRecord> {
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    (0..3_000u64)
        .map(|n| {
            let customer = (n * 7919) % 200;
            OrderRecord {
                id: format!("gid://shopify/Order/{n}"),
                customer_id: Some(format!("gid://shopify/Customer/{customer}")),
                customer_email: match n % 11 {
                    0 => None,
                    1 => Some(format!("other{}@example.com", n % 3)),
                    _ => Some(format!("c{customer}@example.com")),
                },
                created_at: at,
                updated_at: at,
                cancelled_at: (n % 11 == 3).then_some(at),
                test: false,
                net_total: Decimal::new(100 + (n as i64 % 97) * 13, 2),
            }
        })
        .collect()
}

/// A store at `path` holding [`orders`], each customer dirty.
fn store_with_orders(path: &std::path::Path) {
    let store = Store::open(path).unwrap();
    for page in orders().chunks(500) {
        store.apply_orders(page, None).unwrap();
    }
}

/// The first evaluation, with a level low enough that about half the customers reach it.
fn evaluate(path: &std::path::Path) -> tiersync::sync::EvaluationReport {
    let config =
        "[shopify]\nshop = \"tiersync-test\"\naccess_token = \"t\"\n[klaviyo]\napi_key = \"k\"";
    let mut settings = Settings::from_toml(config).unwrap();
    settings.tiers.levels[0].min_clv = Some(Decimal::new(110, 0));
    let now = Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap();
    let store = Store::open(path).unwrap();
    tiersync::sync::evaluate(&store, &settings, chrono_tz::UTC, now).unwrap()
}

type Entries = Vec<(sled::IVec, sled::IVec)>;

fn entries(db: &sled::Db, tree: &str) -> Entries {
    let tree = db.open_tree(tree).unwrap();
    tree.iter().collect::<Result<_, _>>().unwrap()
}

/// Every tree an evaluation writes, and the population. Audit keys end in a number from
/// sled's id generator, which a second run continues: they are compared without it.
fn evaluated_state(path: &std::path::Path) -> Vec<Entries> {
    let db = sled::open(path).unwrap();
    let mut state: Vec<Entries> = ["customers", "checkpoints", "outbox", "dirty"]
        .iter()
        .map(|tree| entries(&db, tree))
        .collect();
    let audit = entries(&db, "audit")
        .into_iter()
        .map(|(key, value)| (sled::IVec::from(&key[..key.len() - 8]), value));
    state.push(audit.collect());
    let meta = db.open_tree("meta").unwrap();
    let marks = ["model/population", "evaluation/fresh"]
        .iter()
        .filter_map(|key| Some((sled::IVec::from(*key), meta.get(key).unwrap()?)));
    state.push(marks.collect());
    state
}

/// Opens the store's database raw to change what a test needs.
fn with_db(path: &std::path::Path, change: impl FnOnce(&sled::Db)) {
    let db = sled::open(path).unwrap();
    change(&db);
    db.flush().unwrap();
}

/// A store evaluated in one go, the reference the others must equal.
fn reference() -> (tempfile::TempDir, Vec<Entries>) {
    let dir = tempfile::tempdir().unwrap();
    store_with_orders(dir.path());
    let report = evaluate(dir.path());
    assert!(report.transitions > 20, "{report:?}");
    let state = evaluated_state(dir.path());
    (dir, state)
}

#[test]
fn a_first_evaluation_without_transactions_stores_what_the_transactions_store() {
    let (_dir, fresh) = reference();
    assert!(fresh
        .last()
        .unwrap()
        .iter()
        .all(|(k, _)| &**k != b"evaluation/fresh"));

    // Something evaluated already stored: the ordinary, transactional commit.
    let dir = tempfile::tempdir().unwrap();
    store_with_orders(dir.path());
    with_db(dir.path(), |db| {
        db.open_tree("audit").unwrap().insert("~", "").unwrap();
    });
    evaluate(dir.path());
    with_db(dir.path(), |db| {
        db.open_tree("audit").unwrap().remove("~").unwrap();
    });
    assert_eq!(evaluated_state(dir.path()), fresh);
}

#[test]
fn a_first_evaluation_cut_short_while_writing_starts_over_and_records_each_transition_once() {
    let (_reference, expected) = reference();
    let dir = tempfile::tempdir().unwrap();
    store_with_orders(dir.path());
    let dirty = entries(&sled::open(dir.path()).unwrap(), "dirty");
    evaluate(dir.path());
    // As a kill mid-write leaves it: the mark, no population, every dirty mark, and only some
    // records beside all the audit and outbox entries.
    with_db(dir.path(), |db| {
        let meta = db.open_tree("meta").unwrap();
        meta.insert("evaluation/fresh", &[0]).unwrap();
        meta.remove("model/population").unwrap();
        let marks = db.open_tree("dirty").unwrap();
        for (key, value) in dirty {
            marks.insert(key, value).unwrap();
        }
        let (customers, checkpoints) = (
            db.open_tree("customers").unwrap(),
            db.open_tree("checkpoints").unwrap(),
        );
        for key in customers.iter().keys().step_by(2) {
            let key = key.unwrap();
            customers.remove(&key).unwrap();
            checkpoints.remove(&key).unwrap();
        }
    });
    evaluate(dir.path());
    assert_eq!(evaluated_state(dir.path()), expected);
}

#[test]
fn a_first_evaluation_cut_short_after_writing_keeps_its_records() {
    let (_reference, expected) = reference();
    let dir = tempfile::tempdir().unwrap();
    store_with_orders(dir.path());
    let dirty = entries(&sled::open(dir.path()).unwrap(), "dirty");
    evaluate(dir.path());
    // Killed while clearing the dirty marks: everything written, half the marks left.
    with_db(dir.path(), |db| {
        let meta = db.open_tree("meta").unwrap();
        meta.insert("evaluation/fresh", &[1]).unwrap();
        meta.remove("model/population").unwrap();
        let marks = db.open_tree("dirty").unwrap();
        for (key, value) in dirty.into_iter().step_by(2) {
            marks.insert(key, value).unwrap();
        }
    });
    evaluate(dir.path());
    assert_eq!(evaluated_state(dir.path()), expected);
}
