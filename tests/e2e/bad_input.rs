//! The bad-input matrix beyond configuration (the `config` module holds those cases): odd API
//! bodies, refused credentials and unusable stores. Each case gets a clear error or a
//! documented skip; nothing panics and the store stays usable.

use crate::common::{self, customer, order, spawn, store};
use tiersync::store::Store;
use tiersync_mocks::data::StoreData;
use tiersync_mocks::faults::{Fault, FaultKind};

const NEG: (u64, &str) = (21, "neg@example.com");
const ABSURD: (u64, &str) = (22, "absurd@example.com");
const XYZ: (u64, &str) = (23, "xyz@example.com");
const ZOE: (u64, &str) = (24, "zoë@exämple.com");
const BROKEN: (u64, &str) = (25, "not-an-email");
const GONE: (u64, &str) = (26, "gone@example.com");

fn odd_store() -> StoreData {
    let mut xyz = order(5, Some(XYZ), 10, "600.00").build();
    xyz.presentment_currency = "XYZ".into();
    store(
        [NEG, ABSURD, XYZ, ZOE, BROKEN, GONE]
            .iter()
            .map(|(id, email)| customer(*id, email))
            .collect(),
        vec![
            // A negative total cannot be a sale: skipped, the rest of the customer counts.
            order(1, Some(NEG), 10, "-50.00").build(),
            order(2, Some(NEG), 11, "600.00").build(),
            // Nor can a trillion: skipped.
            order(3, Some(ABSURD), 10, "5000000000000.00").build(),
            order(4, Some(ABSURD), 11, "100.00").build(),
            // Paid in a currency nobody knows: the shop-currency amount is what counts.
            xyz,
            order(6, Some(ZOE), 10, "600.00").build(),
            order(7, Some(BROKEN), 10, "600.00").build(),
            order(8, Some(GONE), 10, "600.00").build(),
            // A guest checkout: no customer, no profile.
            order(9, None, 10, "10000.00").build(),
        ],
    )
}

#[tokio::test]
async fn odd_orders_are_skipped_or_read_as_documented() {
    let data = odd_store();
    let env = spawn(data.clone()).await;

    let report = env.pass().await;

    assert_eq!(report.ingest.orders_skipped, 2, "{report}");
    assert!(
        report.to_string().contains("orders skipped       2"),
        "{report}"
    );
    assert_eq!(report.customers, 6, "the guest order makes no customer");
    assert_eq!(env.klaviyo_tier(NEG.1).as_deref(), Some("Silver"));
    assert_eq!(env.klaviyo_tier(ABSURD.1).as_deref(), Some("None"));
    assert_eq!(env.klaviyo_tier(XYZ.1).as_deref(), Some("Silver"));
    assert_eq!(
        env.klaviyo_tier(ZOE.1).as_deref(),
        Some("Silver"),
        "a non-ASCII address is an address"
    );
    // An email that is not an address: the profile is keyed by the Shopify id alone.
    let broken = env
        .servers
        .klaviyo
        .profiles()
        .into_iter()
        .find(|p| p.external_id.as_deref() == Some("25"))
        .expect("profile by external id");
    assert_eq!(broken.email, None);
    assert_eq!(
        broken.properties.get("vip_tier").and_then(|v| v.as_str()),
        Some("Silver")
    );
    assert_eq!(report.klaviyo_outbox.failed, 0, "nothing refused");
}

#[tokio::test]
async fn a_customer_deleted_in_shopify_is_skipped_by_reconcile() {
    let data = odd_store();
    let env = spawn(data.clone()).await;
    env.pass().await;
    // Delete the customer in the shop (as it stands now, tags and all).
    let mut without = data.clone();
    without.customers = env.servers.shopify.customers();
    without.customers.retain(|c| c.id != GONE.0);
    without.orders = env.servers.shopify.orders();
    env.servers.shopify.load(without);

    let report = tiersync::Pipeline::open(env.settings.clone())
        .unwrap()
        .reconcile(&tokio_util::sync::CancellationToken::new(), true)
        .await
        .expect("reconcile copes");

    let shop = report.storefront.as_ref().unwrap();
    assert_eq!(shop.gone, 1, "{report}");
    assert!(
        report
            .to_string()
            .contains("1 customers no longer in Shopify (skipped)"),
        "{report}"
    );
    assert_eq!(report.drift(), 0, "{report}");
}

#[tokio::test]
async fn a_klaviyo_key_without_the_scope_stops_klaviyo_with_a_403() {
    let env = spawn(odd_store()).await;
    env.servers.klaviyo.reject_next(1_000, 403, None);

    let report = env.pass().await;

    assert!(
        report.stopped.iter().any(|s| s.contains("HTTP 403")
            && s.contains("klaviyo.api_key")
            && s.contains("scopes")),
        "{:?}",
        report.stopped
    );
    assert_eq!(report.klaviyo_outbox.pending, 6, "kept for later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_shopify_token_fails_the_pass_naming_the_setting() {
    let env = spawn(odd_store()).await;
    let config = env.config_file();

    let status = env
        .binary(&["once", "--config", config.to_str().unwrap()], "once.log")
        .env("TIERSYNC__SHOPIFY__ACCESS_TOKEN", "shpat_revoked")
        .status()
        .unwrap();

    let log = env.log("once.log");
    assert!(!status.success());
    assert!(
        log.contains("credential was refused (HTTP 401)") && log.contains("shopify.access_token"),
        "{log}"
    );
    assert!(
        !log.contains("shpat_revoked"),
        "the token never prints: {log}"
    );
    let store = Store::open(&env.settings.store.path).unwrap();
    assert_eq!(
        store.orders_cursor().unwrap(),
        None,
        "the cursor did not move"
    );
}

#[tokio::test]
async fn a_refused_loyalty_key_keeps_the_pass_going_on_stored_balances() {
    let data = odd_store();
    let mut env = spawn(data.clone()).await;
    env.servers
        .smile
        .load(&data, &[(NEG.1.to_string(), 100, None)]);
    env.use_loyalty(
        tiersync::config::LoyaltyPlatform::Smile,
        tiersync::config::Authority::Tiersync,
    );
    env.settings.loyalty.api_key = secrecy::SecretString::from("wrong");

    let report = env.pass().await;

    assert_eq!(report.loyalty_members, Some(0));
    assert_eq!(report.delivery.written, 6, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_names_the_recovery() {
    let env = spawn(odd_store()).await;
    env.pass().await;
    {
        let db = sled::open(&env.settings.store.path).unwrap();
        db.open_tree("customers")
            .unwrap()
            .insert("gid://shopify/Customer/21", &b"\xff\xfe garbage"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let config = env.config_file();

    let status = env
        .binary(
            &["status", "--config", config.to_str().unwrap()],
            "status.log",
        )
        .status()
        .unwrap();

    let log = env.log("status.log");
    assert!(!status.success());
    assert!(
        log.contains("cannot be decoded") && log.contains("tiersync rebuild"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn a_garbled_orders_page_fails_the_pass_without_moving_the_cursor() {
    let (data, _) = common::hand_built_store();
    let mut env = spawn(data).await;
    env.settings.sync.max_retry_time = std::time::Duration::from_secs(1);
    // One process: its first pass has read the app's scopes, so the garbled answer is the
    // orders page's.
    let pipeline = tiersync::Pipeline::open(env.settings.clone()).unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    pipeline.pass(&cancel).await.expect("first pass");
    let cursor = pipeline.store().orders_cursor().unwrap();
    env.servers
        .shopify
        .faults()
        .set_rates(1, [(Fault::MalformedJson, 1.0)]);
    env.servers
        .shopify
        .upsert_order(order(700, Some(common::ALICE), 0, "9000.00").build());

    let error = pipeline
        .pass(&cancel)
        .await
        .expect_err("the pass cannot read the page")
        .to_string();

    assert!(
        error.contains("shopify orders: unexpected response"),
        "{error}"
    );
    assert_eq!(
        pipeline.store().orders_cursor().unwrap(),
        cursor,
        "the cursor stayed"
    );
    env.servers.shopify.faults().clear();
    pipeline.pass(&cancel).await.expect("the page reads again");
    assert_eq!(
        env.klaviyo_tier(common::ALICE.1).as_deref(),
        Some("Platinum"),
        "the order is read once the page reads"
    );
}

#[tokio::test]
async fn pages_that_repeat_orders_count_each_order_once() {
    let (data, _) = common::hand_built_store();
    let mut env = spawn(data).await;
    env.settings.shopify.backfill = tiersync::config::Backfill::Pages;
    env.settings.shopify.page_size = 3;
    env.servers
        .shopify
        .faults()
        .inject_next_on("/admin/api/", 10, Fault::RepeatPage);

    env.pass().await;

    assert!(env.servers.shopify.faults().injected(FaultKind::RepeatPage) >= 5);
    let expected = common::expected_profiles(&env.servers.shopify.orders(), chrono::Utc::now());
    let actual = common::klaviyo_profiles(&env);
    for (id, want) in &expected {
        assert_eq!(
            actual.get(id),
            Some(want),
            "customer {id}: tier, orders, net spend"
        );
    }
}
