//! The sync spine end to end over HTTP: Shopify orders in, tiers out to Klaviyo profiles.

use crate::common::{hand_built_store, order, spawn, ALICE};
use serde_json::json;

/// A dozen customers whose tiers are worked out by hand against `common::TIERS`
/// (Silver ≥ $500 or 5 orders, Gold ≥ $1,500 or 10, Platinum ≥ $5,000 or 20, in 365 days).
#[tokio::test]
async fn a_hand_built_store_gets_exactly_the_tiers_worked_out_by_hand() {
    let (data, expected) = hand_built_store();
    let env = spawn(data).await;
    let report = env.pass().await;

    for (email, tier) in &expected {
        assert_eq!(
            env.klaviyo_tier(email).as_deref(),
            Some(*tier),
            "vip_tier of {email}"
        );
    }
    assert_eq!(
        env.servers.klaviyo.profiles().len(),
        12,
        "the guest order makes no profile"
    );
    assert_eq!(report.delivery.written, 12);

    let frank = env
        .servers
        .klaviyo
        .profile_by_email("frank@example.com")
        .unwrap();
    assert_eq!(frank.external_id.as_deref(), Some("6"));
    assert_eq!(
        frank.properties["clv_historic"],
        json!(2100.0),
        "lifetime net spend"
    );
    assert_eq!(frank.properties["orders_count"], json!(2));
    assert!(
        !frank.properties.contains_key("vip_tier_since"),
        "no level, no since (null clears it)"
    );
    let heidi = env
        .servers
        .klaviyo
        .profile_by_email("heidi@example.com")
        .unwrap();
    assert_eq!(
        heidi.properties["clv_historic"],
        json!(1400.0),
        "net of the partial refund"
    );
    // Calendar dates are the shop's (the fake shop is in New York).
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(heidi.properties["vip_tier_since"], json!(today));
    let ivan = env
        .servers
        .klaviyo
        .profile_by_email("ivan@example.com")
        .unwrap();
    assert_eq!(
        ivan.properties["orders_count"],
        json!(1),
        "a cancelled order is no order"
    );
}

#[tokio::test]
async fn a_second_pass_with_no_new_orders_writes_nothing() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.pass().await;
    env.servers.klaviyo.clear_requests();

    let report = env.pass().await;

    assert_eq!(
        env.servers.klaviyo.requests().len(),
        0,
        "no Klaviyo request at all"
    );
    assert_eq!(report.delivery.written, 0);
    assert_eq!(report.evaluation.level_changes, 0);
}

#[tokio::test]
async fn one_new_order_over_a_threshold_writes_exactly_that_customer() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.pass().await;
    env.servers.klaviyo.clear_requests();

    env.servers
        .shopify
        .upsert_order(order(500, Some(ALICE), 0, "450.00").build());
    let report = env.pass().await;

    let writes: Vec<_> = env
        .servers
        .klaviyo
        .requests()
        .into_iter()
        .filter(|r| r.path != "/api/events")
        .collect();
    assert_eq!(writes.len(), 1, "exactly one profile write: {writes:?}");
    assert_eq!(
        env.servers.klaviyo.count("POST", "/api/events"),
        1,
        "and Alice's VIP Tier Entered event"
    );
    assert_eq!(writes[0].path, "/api/profile-import");
    assert!(
        writes[0].body.contains("alice@example.com"),
        "the write is Alice's: {}",
        writes[0].body
    );
    assert_eq!(
        env.klaviyo_tier("alice@example.com").as_deref(),
        Some("Silver")
    );
    assert_eq!(report.evaluation.level_changes, 1);
}

#[tokio::test]
async fn rate_limits_at_klaviyo_and_shopify_slow_the_pass_but_lose_nothing() {
    let (data, expected) = hand_built_store();
    let env = spawn(data).await;
    env.servers.shopify.throttle_next(2);
    env.servers.klaviyo.reject_next(3, 429, Some(1));

    let report = env.pass().await;

    for (email, tier) in &expected {
        assert_eq!(
            env.klaviyo_tier(email).as_deref(),
            Some(*tier),
            "vip_tier of {email}"
        );
    }
    let throttled = env
        .servers
        .shopify
        .requests()
        .iter()
        .filter(|r| r.throttled)
        .count();
    assert_eq!(throttled, 2, "Shopify answered THROTTLED twice");
    let refused = env
        .servers
        .klaviyo
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(refused, 3, "Klaviyo answered 429 three times");
    assert_eq!(report.shopify_calls.rate_limited, 2);
    assert_eq!(report.klaviyo_calls.rate_limited, 3);
    assert_eq!(report.klaviyo_outbox.pending, 0, "every write delivered");
    assert!(
        report.klaviyo_calls.waited >= std::time::Duration::from_secs(1),
        "honoured Retry-After"
    );
}

#[tokio::test]
async fn a_profile_klaviyo_refuses_is_parked_with_its_error_and_not_retried() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    env.servers.klaviyo.reject_email(
        "bob@example.com",
        400,
        "This email is on a suppression list.",
    );

    let report = env.pass().await;

    assert_eq!(report.delivery.parked, 1);
    assert_eq!(report.klaviyo_outbox.failed, 1);
    assert_eq!(
        env.servers.klaviyo.profiles().len(),
        11,
        "everyone else is written"
    );
    let store = tiersync::store::Store::open(&env.settings.store.path).unwrap();
    let parked = store
        .pending_entry::<tiersync::model::ProfileState>("gid://shopify/Customer/2")
        .unwrap()
        .expect("the write is kept");
    let detail = parked.failed.expect("parked with the error");
    assert!(
        detail.contains("HTTP 400") && detail.contains("suppression list"),
        "{detail}"
    );
    let status = tiersync::ops::status::status(&store, &env.settings).unwrap();
    assert!(
        status.contains("klaviyo profiles   11 acknowledged, 0 pending, 1 refused"),
        "{status}"
    );
    assert!(
        status.contains("bob@example.com: HTTP 400"),
        "the refusal and its cause: {status}"
    );
    drop(store);

    env.servers.klaviyo.clear_requests();
    let report = env.pass().await;
    assert_eq!(
        env.servers.klaviyo.requests().len(),
        0,
        "a parked write is not retried"
    );
    assert_eq!(report.klaviyo_outbox.failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_and_prints_the_writes_and_sends_nothing() {
    let (data, _) = hand_built_store();
    let env = spawn(data).await;
    let config = env.config_file();
    let config = config.to_str().unwrap();

    let status = env
        .binary(&["once", "--config", config, "--dry-run"], "dry.log")
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    let out = env.log("dry.log");
    assert!(status.success(), "{out}");
    assert_eq!(
        env.servers.klaviyo.requests().len(),
        0,
        "a dry run sends nothing"
    );
    assert!(out.contains("planned klaviyo profile writes: 12"), "{out}");
    assert!(out.contains("erin@example.com: vip_tier Platinum"), "{out}");

    let status = env
        .binary(&["once", "--config", config], "real.log")
        .status()
        .unwrap();
    assert!(status.success(), "{}", env.log("real.log"));
    assert_eq!(
        env.servers.klaviyo.profiles().len(),
        12,
        "the next pass delivers the plan"
    );
}

#[tokio::test]
async fn a_bulk_import_job_acknowledges_the_written_profiles_and_parks_the_refused_one() {
    let (data, expected) = hand_built_store();
    let mut env = spawn(data).await;
    env.settings.klaviyo.bulk_threshold = 1; // everything through a bulk import job
    env.servers.klaviyo.reject_email(
        "bob@example.com",
        400,
        "This email is on a suppression list.",
    );

    let report = env.pass().await;

    assert_eq!(report.delivery.bulk_jobs, 1);
    assert_eq!((report.delivery.written, report.delivery.parked), (11, 1));
    for (email, tier) in expected.iter().filter(|(e, _)| *e != "bob@example.com") {
        assert_eq!(
            env.klaviyo_tier(email).as_deref(),
            Some(*tier),
            "vip_tier of {email}"
        );
    }
    let store = tiersync::store::Store::open(&env.settings.store.path).unwrap();
    let status = tiersync::ops::status::status(&store, &env.settings).unwrap();
    assert!(status.contains("bob@example.com: invalid"), "{status}");
}
