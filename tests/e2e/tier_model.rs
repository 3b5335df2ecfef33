//! The tier model end to end: refunds demote through grace (never silently), lapse and
//! re-activation reach Klaviyo, properties a new tier no longer has are removed from the
//! profile (bulk jobs included), and `explain` / `calibrate` work on a real store.

use crate::common::{self, customer, order, spawn, store};
use chrono::Utc;
use serde_json::json;
use tiersync::store::Store;
use tiersync_mocks::data::Order;

const ANN: (u64, &str) = (1, "ann@example.com");

fn one_customer(orders: Vec<Order>) -> tiersync_mocks::data::StoreData {
    store(vec![customer(ANN.0, ANN.1)], orders)
}

/// A later update of an order (a refund), as Shopify would stamp it.
fn refunded_now(mut o: Order, amount: &str) -> Order {
    o.shop_refunded = amount.parse().unwrap();
    o.presentment_refunded = o.shop_refunded;
    o.updated_at = Utc::now();
    o
}

fn property(env: &common::TestEnv, key: &str) -> serde_json::Value {
    let profile = env
        .servers
        .klaviyo
        .profile_by_email(ANN.1)
        .expect("profile");
    profile
        .properties
        .get(key)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn a_refund_below_the_level_starts_grace_and_keeps_the_perks() {
    let big = order(1, Some(ANN), 10, "600.00").build();
    let env = spawn(one_customer(vec![big.clone()])).await;
    env.pass().await;
    assert_eq!(property(&env, "vip_tier"), json!("Silver"));
    assert_eq!(property(&env, "suppress_discounts"), json!(true));

    env.servers
        .shopify
        .upsert_order(refunded_now(big, "500.00"));
    let report = env.pass().await;

    assert_eq!(
        property(&env, "vip_tier"),
        json!("Silver"),
        "grace keeps the level"
    );
    assert_eq!(property(&env, "vip_state"), json!("grace"));
    assert_eq!(property(&env, "suppress_discounts"), json!(true));
    assert_eq!(property(&env, "clv_historic"), json!(100.0));
    assert_eq!(report.evaluation.transitions, 1);
}

#[tokio::test]
async fn a_refund_with_no_grace_demotes_and_the_audit_says_why() {
    let big = order(1, Some(ANN), 10, "600.00").build();
    let mut env = spawn(one_customer(vec![big.clone()])).await;
    env.settings.tiers.grace_days = 0;
    env.pass().await;

    env.servers
        .shopify
        .upsert_order(refunded_now(big, "500.00"));
    env.pass().await;

    assert_eq!(property(&env, "vip_tier"), json!("None"));
    assert_eq!(property(&env, "vip_state"), json!("none"));
    assert_eq!(
        property(&env, "vip_peak_tier"),
        json!("Silver"),
        "the peak is remembered"
    );
    assert_eq!(property(&env, "suppress_discounts"), json!(false));
    let store = Store::open(&env.settings.store.path).unwrap();
    let audit = store.audit("gid://shopify/Customer/1").unwrap();
    let last = audit.last().expect("transitions recorded");
    assert_eq!(last.transition.from_level.as_deref(), Some("Silver"));
    assert_eq!(last.transition.to_level, None);
    assert!(
        last.reason.contains("net spend fell from 600.00 to 100.00"),
        "{}",
        last.reason
    );
}

#[tokio::test]
async fn a_long_silent_customer_is_lapsed_and_an_order_brings_them_back() {
    // $600 spent 400 days ago: Silver by lifetime CLV, but no order within lapse_after_days.
    let mut env = spawn(one_customer(vec![
        order(1, Some(ANN), 400, "600.00").build()
    ]))
    .await;
    env.settings.tiers.levels[0].min_clv = Some("500".parse().unwrap());
    env.settings.tiers.lapse_after_days = 180;
    env.pass().await;
    assert_eq!(property(&env, "vip_tier"), json!("Silver"));
    assert_eq!(property(&env, "vip_state"), json!("lapsed"));
    assert_eq!(
        property(&env, "suppress_discounts"),
        json!(false),
        "perks are off while lapsed"
    );

    env.servers
        .shopify
        .upsert_order(order(2, Some(ANN), 0, "20.00").build());
    env.pass().await;

    assert_eq!(property(&env, "vip_state"), json!("active"), "welcome back");
    let store = Store::open(&env.settings.store.path).unwrap();
    let kinds: Vec<_> = store
        .audit("gid://shopify/Customer/1")
        .unwrap()
        .iter()
        .map(|a| a.transition.kind)
        .collect();
    use tiersync::model::TransitionKind::*;
    assert_eq!(kinds, [Entered, Reactivated]);
}

#[tokio::test]
async fn every_property_reaches_klaviyo() {
    let env = spawn(one_customer(vec![
        order(1, Some(ANN), 40, "300.00").build(),
        order(2, Some(ANN), 5, "250.00").build(),
    ]))
    .await;
    env.pass().await;
    for key in [
        "vip_tier",
        "vip_state",
        "vip_tier_since",
        "vip_peak_tier",
        "clv_historic",
        "clv_predicted",
        "clv_blended",
        "loyalty_points",
        "orders_count",
        "rfm_segment",
        "vip_next_tier",
        "vip_spend_to_next",
        "suppress_discounts",
    ] {
        assert_ne!(
            property(&env, key),
            serde_json::Value::Null,
            "{key} missing"
        );
    }
    assert_eq!(property(&env, "vip_next_tier"), json!("Gold"));
    // Gold needs 1,500 in window spend: 950 more.
    assert_eq!(property(&env, "vip_spend_to_next"), json!(950.0));
    assert_eq!(
        property(&env, "clv_predicted"),
        json!(0.0),
        "one customer is too few to fit"
    );
}

/// Ann's Klaviyo properties.
fn properties(env: &common::TestEnv) -> serde_json::Map<String, serde_json::Value> {
    env.servers
        .klaviyo
        .profile_by_email(ANN.1)
        .expect("profile")
        .properties
}

async fn reconcile(env: &common::TestEnv) -> tiersync::sync::ReconcileReport {
    reconcile_with(env, false).await
}

async fn reconcile_with(env: &common::TestEnv, repair: bool) -> tiersync::sync::ReconcileReport {
    tiersync::Pipeline::open(env.settings.clone())
        .expect("store opens")
        .reconcile(&tokio_util::sync::CancellationToken::new(), repair)
        .await
        .expect("reconcile succeeds")
}

#[tokio::test]
async fn a_promotion_to_the_top_level_through_a_bulk_job_removes_the_next_level() {
    let mut env = spawn(one_customer(vec![
        order(1, Some(ANN), 10, "2000.00").build()
    ]))
    .await;
    // Every write goes as a bulk import job, where Klaviyo ignores a `null`.
    env.settings.klaviyo.bulk_threshold = 1;
    let gold = env.pass().await;
    assert_eq!(gold.delivery.bulk_jobs, 1);
    assert_eq!(properties(&env)["vip_next_tier"], json!("Platinum"));
    assert_eq!(properties(&env)["vip_spend_to_next"], json!(3000.0));

    env.servers
        .shopify
        .upsert_order(order(2, Some(ANN), 0, "3500.00").build());
    let platinum = env.pass().await;
    assert_eq!(platinum.delivery.bulk_jobs, 1);

    let now = properties(&env);
    assert_eq!(now["vip_tier"], json!("Platinum"));
    for gone in ["vip_next_tier", "vip_spend_to_next"] {
        assert!(
            !now.contains_key(gone),
            "{gone} is still on the profile: {:?}",
            now.get(gone)
        );
    }
    let check = reconcile(&env).await;
    assert_eq!(check.drift(), 0, "{check}");
}

#[tokio::test]
async fn reconcile_repair_through_a_bulk_job_removes_a_leftover_property() {
    let mut env = spawn(one_customer(vec![
        order(1, Some(ANN), 10, "6000.00").build()
    ]))
    .await;
    env.settings.klaviyo.bulk_threshold = 1;
    env.pass().await;
    assert!(!properties(&env).contains_key("vip_next_tier"));
    // What a bulk job that sent `null` left behind.
    env.servers
        .klaviyo
        .set_property(ANN.1, "vip_next_tier", json!("Platinum"));
    assert_eq!(reconcile(&env).await.klaviyo.total(), 1);

    let repaired = reconcile_with(&env, true).await;
    let (klaviyo, _) = repaired.delivered.expect("repairs delivered");
    assert_eq!((klaviyo.written, klaviyo.bulk_jobs), (1, 1));
    assert!(!properties(&env).contains_key("vip_next_tier"));
    let check = reconcile(&env).await;
    assert_eq!(check.drift(), 0, "{check}");
}

#[tokio::test]
async fn a_customer_who_loses_their_level_through_a_bulk_job_has_no_tier_since() {
    let big = order(1, Some(ANN), 10, "600.00").build();
    let mut env = spawn(one_customer(vec![big.clone()])).await;
    env.settings.tiers.grace_days = 0;
    env.settings.klaviyo.bulk_threshold = 1;
    env.pass().await;
    assert!(properties(&env)["vip_tier_since"].is_string());

    env.servers
        .shopify
        .upsert_order(refunded_now(big, "500.00"));
    let demoted = env.pass().await;
    assert_eq!(demoted.delivery.bulk_jobs, 1);

    let now = properties(&env);
    assert_eq!(now["vip_tier"], json!("None"));
    assert!(
        !now.contains_key("vip_tier_since"),
        "vip_tier_since is still on the profile: {:?}",
        now.get("vip_tier_since")
    );
    let check = reconcile(&env).await;
    assert_eq!(check.drift(), 0, "{check}");
}

#[tokio::test]
async fn explain_shows_the_rule_state_transitions_and_acknowledgement() {
    let env = spawn(one_customer(
        vec![order(1, Some(ANN), 10, "600.00").build()],
    ))
    .await;
    env.pass().await;
    let store = Store::open(&env.settings.store.path).unwrap();

    let text = tiersync::ops::explain::explain(&store, &env.settings, "ANN@example.com").unwrap();

    assert!(
        text.contains("tier          Silver, active since"),
        "{text}"
    );
    assert!(
        text.contains("net spend in the window 600.00 ≥ 500.00 for Silver"),
        "{text}"
    );
    assert!(text.contains("next level    Gold: 900.00 more"), "{text}");
    assert!(
        text.contains("entered       None (none) → Silver (active)"),
        "{text}"
    );
    assert!(
        text.contains("no prediction"),
        "the CLV model status is shown: {text}"
    );
    assert!(
        text.contains("klaviyo       up to date (v1: vip_tier Silver"),
        "{text}"
    );
    assert!(
        text.contains("storefront    up to date (v1: tag vip:silver, vip_tier Silver"),
        "{text}"
    );
    let missing =
        tiersync::ops::explain::explain(&store, &env.settings, "nobody@example.com").unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no customer `nobody@example.com`"),
        "{missing}"
    );
}

#[tokio::test]
async fn calibrate_proposes_thresholds_for_the_target_share() {
    let data = tiersync_mocks::generator::generate(&tiersync_mocks::generator::GenConfig {
        customers: 1500,
        seed: 3,
        now: Utc::now(),
        ..Default::default()
    });
    let env = spawn(data).await;
    env.pass().await;
    let store = Store::open(&env.settings.store.path).unwrap();

    let text = tiersync::ops::calibrate::calibrate(&store, &env.settings, 20.0).unwrap();

    let proposal = text.split("proposal:").nth(1).expect(&text);
    let vip_line = proposal
        .lines()
        .find(|l| l.contains("VIP in all"))
        .expect(&text);
    let share: f64 = vip_line
        .split_whitespace()
        .next_back()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(
        (15.0..=25.0).contains(&share),
        "proposal puts {share}% in VIP levels:\n{text}"
    );
    assert!(
        proposal.contains("[[tiers.levels]]\nname = \"Silver\"\nmin_clv = "),
        "{text}"
    );
    assert!(text.contains("predicted CLV: fitted on"), "{text}");
}
