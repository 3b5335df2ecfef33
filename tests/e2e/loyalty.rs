//! Loyalty apps as a source: points feed the blended CLV, the app's tier is compared with
//! ours (or, with `authority = "loyalty"`, becomes the status), and an unreachable app does
//! not stop the pass. The vendors' paging quirks — LoyaltyLion reads only `limit` beside a
//! cursor, Smile's cursors are base64 and its list names tiers by id — are read correctly.

use crate::common::{self, customer, order, spawn, store};
use serde_json::json;
use tiersync::config::{Authority, LoyaltyPlatform};
use tiersync::Pipeline;
use tiersync_mocks::data::StoreData;
use tokio_util::sync::CancellationToken;

const BEA: (u64, &str) = (1, "bea@example.com");
const CAL: (u64, &str) = (2, "cal@example.com");

/// Bea spent $400 (below Silver's $500 blended CLV on spend alone); Cal spent $50.
fn two_customers() -> StoreData {
    store(
        vec![customer(BEA.0, BEA.1), customer(CAL.0, CAL.1)],
        vec![
            order(1, Some(BEA), 20, "400.00").build(),
            order(2, Some(CAL), 20, "50.00").build(),
        ],
    )
}

fn property(env: &common::TestEnv, email: &str, key: &str) -> serde_json::Value {
    let profile = env
        .servers
        .klaviyo
        .profile_by_email(email)
        .expect("profile");
    profile
        .properties
        .get(key)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

async fn env_with(
    platform: LoyaltyPlatform,
    authority: Authority,
    members: &[(String, i64, Option<String>)],
) -> common::TestEnv {
    let data = two_customers();
    let mut env = spawn(data.clone()).await;
    match platform {
        LoyaltyPlatform::Smile => env.servers.smile.load(&data, members),
        LoyaltyPlatform::LoyaltyLion => env.servers.loyaltylion.load(&data, members),
        LoyaltyPlatform::None => {}
    }
    env.use_loyalty(platform, authority);
    // Silver by blended CLV (spend + points at 0.01 each), so points can lift a customer.
    env.settings.tiers.levels[0].min_clv = Some("500".parse().unwrap());
    env
}

#[tokio::test]
async fn smile_points_lift_the_blended_clv_over_a_threshold() {
    let env = env_with(
        LoyaltyPlatform::Smile,
        Authority::Tiersync,
        &[(BEA.1.to_string(), 20_000, None)],
    )
    .await;

    let report = env.pass().await;

    assert_eq!(property(&env, BEA.1, "loyalty_points"), json!(20_000));
    assert_eq!(
        property(&env, BEA.1, "clv_blended"),
        json!(600.0),
        "400 spent + 20,000 points × 0.01"
    );
    assert_eq!(property(&env, BEA.1, "vip_tier"), json!("Silver"));
    assert_eq!(property(&env, CAL.1, "vip_tier"), json!("None"));
    assert_eq!(report.loyalty_members, Some(1));
    assert!(env.servers.smile.count("GET", "/v1/customers") >= 1);
}

#[tokio::test]
async fn a_points_change_in_the_app_re_evaluates_the_customer() {
    let env = env_with(
        LoyaltyPlatform::Smile,
        Authority::Tiersync,
        &[(BEA.1.to_string(), 0, None)],
    )
    .await;
    env.pass().await;
    assert_eq!(property(&env, BEA.1, "vip_tier"), json!("None"));

    assert!(env.servers.smile.set_points(BEA.1, 15_000));
    env.servers.klaviyo.clear_requests();
    let report = env.pass().await;

    assert_eq!(property(&env, BEA.1, "vip_tier"), json!("Silver"));
    assert_eq!(
        report.evaluation.evaluated, 1,
        "only the customer whose points changed"
    );
    assert_eq!(env.servers.klaviyo.count("POST", "/api/profile-import"), 1);
}

#[tokio::test]
async fn with_loyalty_authority_the_apps_tier_reaches_klaviyo() {
    let members = [
        (CAL.1.to_string(), 10, Some("Gold".to_string())),
        (BEA.1.to_string(), 10, None),
    ];
    let env = env_with(LoyaltyPlatform::LoyaltyLion, Authority::Loyalty, &members).await;

    env.pass().await;

    assert_eq!(
        property(&env, CAL.1, "vip_tier"),
        json!("Gold"),
        "the app says Gold, whatever the spend"
    );
    assert_eq!(property(&env, CAL.1, "vip_state"), json!("active"));
    assert_eq!(
        property(&env, BEA.1, "vip_tier"),
        json!("None"),
        "no tier in the app, no level"
    );
}

#[tokio::test]
async fn with_tiersync_authority_disagreeing_app_tiers_are_reported() {
    let members = [(CAL.1.to_string(), 10, Some("Gold".to_string()))];
    let env = env_with(LoyaltyPlatform::LoyaltyLion, Authority::Tiersync, &members).await;

    let report = env.pass().await;

    assert_eq!(
        property(&env, CAL.1, "vip_tier"),
        json!("None"),
        "our computation wins"
    );
    assert_eq!(report.loyalty_disagreements, 1);
    assert!(
        report
            .to_string()
            .contains("1 customers' loyalty-app tier differs from ours"),
        "{report}"
    );
}

#[tokio::test]
async fn a_refused_loyalty_key_does_not_stop_the_pass() {
    let mut env = env_with(LoyaltyPlatform::Smile, Authority::Tiersync, &[]).await;
    env.settings.loyalty.api_key = secrecy::SecretString::from("wrong".to_string());

    let report = env.pass().await;

    assert_eq!(
        report.delivery.written, 2,
        "Klaviyo still gets every profile"
    );
    assert_eq!(report.loyalty_members, Some(0));
}

/// `n` members the shop does not know (no orders), so only the loyalty read is exercised.
fn strangers(n: usize) -> Vec<(String, i64, Option<String>)> {
    (0..n)
        .map(|i| (format!("member{i}@example.com"), 10, None))
        .collect()
}

#[tokio::test]
async fn loyaltylion_gets_limit_on_every_cursor_page() {
    let env = env_with(
        LoyaltyPlatform::LoyaltyLion,
        Authority::Tiersync,
        &strangers(1_200),
    )
    .await;

    let report = env.pass().await;

    assert_eq!(report.loyalty_members, Some(1_200));
    let pages: Vec<_> = env
        .servers
        .loyaltylion
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2/customers")
        .collect();
    for page in &pages {
        assert!(
            page.query.split('&').any(|p| p == "limit=500"),
            "without it a cursor page has 100 members: {}",
            page.query
        );
    }
    assert_eq!(pages.len(), 3, "ceil(1,200 / 500) pages");
}

#[tokio::test]
async fn smile_cursors_are_url_encoded() {
    let env = env_with(LoyaltyPlatform::Smile, Authority::Tiersync, &strangers(600)).await;

    let report = env.pass().await;

    assert_eq!(report.loyalty_members, Some(600), "every page read");
    let pages: Vec<_> = env
        .servers
        .smile
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/customers")
        .collect();
    assert_eq!(pages.len(), 3, "ceil(600 / 250) pages");
    assert!(pages.iter().all(|r| r.status == 200), "{pages:?}");
    // The fake's cursors hold `+`, `/` and `=`; sent as is, `+` would read as a space.
    assert!(
        pages[1..].iter().all(|r| r.query.contains("cursor=%2B%2F")),
        "{pages:?}"
    );
}

#[tokio::test]
async fn with_loyalty_authority_smiles_tiers_are_read_by_id() {
    let members = [
        (CAL.1.to_string(), 10, Some("Gold".to_string())),
        (BEA.1.to_string(), 10, None),
    ];
    let env = env_with(LoyaltyPlatform::Smile, Authority::Loyalty, &members).await;

    env.pass().await;

    assert_eq!(property(&env, CAL.1, "vip_tier"), json!("Gold"));
    assert_eq!(property(&env, BEA.1, "vip_tier"), json!("None"));
    assert_eq!(env.servers.smile.count("GET", "/v1/vip_tiers"), 1);
}

#[tokio::test]
async fn the_pass_status_and_reconcile_count_the_same_disagreements() {
    // Fifteen customers, each Silver by spend. Of the members, five are Gold in the app and
    // seven have no tier there (both disagree), two are Silver (agree); one is no member.
    let customers: Vec<_> = (1..=15u64)
        .map(|id| customer(id, &format!("c{id}@example.com")))
        .collect();
    let orders = customers
        .iter()
        .map(|c| {
            let who = (c.id, c.email.as_deref().expect("email"));
            order(c.id, Some(who), 20, "600.00").build()
        })
        .collect();
    let data = store(customers, orders);
    let members: Vec<(String, i64, Option<String>)> = (1..=14u64)
        .map(|id| {
            let tier = match id {
                1..=5 => Some("Gold".to_string()),
                6..=12 => None,
                _ => Some("Silver".to_string()),
            };
            (format!("c{id}@example.com"), 0, tier)
        })
        .collect();
    let mut env = spawn(data.clone()).await;
    env.servers.smile.load(&data, &members);
    env.use_loyalty(LoyaltyPlatform::Smile, Authority::Tiersync);
    env.settings.tiers.levels[0].min_clv = Some("500".parse().unwrap());

    let report = env.pass().await;
    assert_eq!(report.loyalty_disagreements, 12, "{report}");

    let pipeline = Pipeline::open(env.settings.clone()).expect("store opens");
    let status = tiersync::ops::status::status(pipeline.store(), &env.settings).unwrap();
    assert!(
        status.contains("loyalty app        14 members; 12 show another tier than tiersync"),
        "{status}"
    );
    assert!(
        status.contains("    c1@example.com: loyalty app Gold, tiersync Silver"),
        "{status}"
    );
    assert!(
        status.contains("    c6@example.com: loyalty app no tier, tiersync Silver"),
        "{status}"
    );
    assert!(status.contains("    … and 2 more"), "{status}");
    assert!(!status.contains("c13@example.com"), "agrees: {status}");

    let reconciled = pipeline
        .reconcile(&CancellationToken::new(), false)
        .await
        .expect("reconcile succeeds");
    let loyalty = reconciled.loyalty.as_ref().expect("loyalty compared");
    assert_eq!(
        (loyalty.members, loyalty.differing.count),
        (14, 12),
        "{reconciled}"
    );
}
