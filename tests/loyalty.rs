//! Loyalty apps as a source: points feed the blended CLV, the app's tier is compared with
//! ours (or, with `authority = "loyalty"`, becomes the status), and an unreachable app does
//! not stop the pass.

mod common;

use common::{customer, order, spawn, store};
use serde_json::json;
use tiersync::config::{Authority, LoyaltyPlatform};
use tiersync_mocks::data::StoreData;

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
