//! Crash safety of the real binary: SIGKILL in the middle of delivery, then a restart, and a
//! clean stop on SIGTERM.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::{self, expected_profiles, generated, klaviyo_profiles, order, spawn};
use chrono::Utc;

/// Waits (polling) until `condition` holds or `limit` passes.
async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_delivery_a_restart_finishes_without_loss_or_needless_duplicates() {
    let _clock = common::timing_sensitive().await; // the kill must land mid-delivery
    let env = spawn(generated(300, 7)).await;
    let config = env.config_file();
    let config = config.to_str().unwrap();
    const CONCURRENCY: usize = 4;

    // Single profile imports (no bulk jobs), so the kill lands between individual writes.
    let mut daemon = env
        .binary(&["run", "--config", config], "first.log")
        .env("TIERSYNC__KLAVIYO__BULK_THRESHOLD", "1000000")
        .env("TIERSYNC__KLAVIYO__CONCURRENCY", CONCURRENCY.to_string())
        .spawn()
        .expect("daemon starts");
    let klaviyo = env.servers.klaviyo.clone();
    let reached = wait_until(Duration::from_secs(60), || {
        klaviyo.count("POST", "/api/profile-import") >= 60
    })
    .await;
    daemon.kill().expect("SIGKILL");
    daemon.wait().expect("reaped");
    assert!(reached, "delivery never started: {}", env.log("first.log"));
    let before_restart = env.servers.klaviyo.count("POST", "/api/profile-import");
    let customers_total = expected_profiles(&env.servers.shopify.orders(), Utc::now()).len();
    assert!(
        before_restart < customers_total,
        "the kill must land mid-delivery ({before_restart} of {customers_total} written)"
    );

    // While the daemon is down, a customer places an order: the restart must not skip it.
    let buyer = env.servers.shopify.customers()[0].clone();
    let email = buyer.email.clone().unwrap_or_default();
    env.servers
        .shopify
        .upsert_order(order(9_000_001, Some((buyer.id, &email)), 0, "7777.00").build());

    let status = env
        .binary(&["once", "--config", config], "second.log")
        .env("TIERSYNC__KLAVIYO__BULK_THRESHOLD", "1000000")
        .status()
        .expect("restart runs");
    assert!(
        status.success(),
        "restart failed: {}",
        env.log("second.log")
    );

    let expected = expected_profiles(&env.servers.shopify.orders(), Utc::now());
    let actual = klaviyo_profiles(&env);
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(id, want)| actual.get(*id) != Some(want))
        .map(|(id, want)| format!("{id}: want {want:?}, have {:?}", actual.get(id)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} profiles wrong, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(
        expected[&buyer.id.to_string()].0,
        "Platinum",
        "the order placed during the outage counts"
    );

    // Each customer is written once, plus at most once more if its write was in flight at
    // the kill (and once more for the customer whose order arrived during the outage).
    let mut writes: HashMap<String, usize> = HashMap::new();
    for request in env.servers.klaviyo.requests() {
        if request.path == "/api/profile-import" && request.status < 300 {
            let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
            let id = body["data"]["attributes"]["external_id"]
                .as_str()
                .unwrap()
                .to_string();
            *writes.entry(id).or_default() += 1;
        }
    }
    let total: usize = writes.values().sum();
    assert!(
        total <= expected.len() + CONCURRENCY + 1,
        "{total} writes for {} customers: too many duplicates",
        expected.len()
    );
    let most = writes.values().max().copied().unwrap_or(0);
    assert!(most <= 2, "a customer was written {most} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_cleanly_after_the_writes_in_flight() {
    let _clock = common::timing_sensitive().await; // a daemon of its own, stopped by a deadline
    let env = spawn(generated(200, 11)).await;
    let config = env.config_file();
    let mut daemon = env
        .binary(&["run", "--config", config.to_str().unwrap()], "run.log")
        .env("TIERSYNC__KLAVIYO__BULK_THRESHOLD", "1000000")
        .spawn()
        .expect("daemon starts");
    let klaviyo = env.servers.klaviyo.clone();
    assert!(
        wait_until(Duration::from_secs(60), || klaviyo
            .count("POST", "/api/profile-import")
            >= 20)
        .await,
        "delivery never started"
    );
    let pid = daemon.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let stopped = wait_until(Duration::from_secs(30), || {
        matches!(daemon.try_wait(), Ok(Some(_)))
    })
    .await;
    assert!(stopped, "the daemon did not stop on SIGTERM");
    let status = daemon.wait().unwrap();
    let log = env.log("run.log");
    assert!(status.success(), "exit status {status:?}: {log}");
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("tiersync daemon stopped"), "{log}");

    // Everything Klaviyo acknowledged was recorded: a restart re-sends nothing already sent.
    let sent = env.servers.klaviyo.count("POST", "/api/profile-import");
    env.servers.klaviyo.clear_requests();
    let report = env.pass().await;
    assert_eq!(
        report.delivery.written + sent,
        expected_profiles(&env.servers.shopify.orders(), Utc::now()).len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_nowhere_in_trace_logs() {
    let env = spawn(generated(30, 5)).await;
    let config = env.config_file();
    let status = env
        .binary(&["once", "--config", config.to_str().unwrap()], "trace.log")
        .env("RUST_LOG", "trace")
        .status()
        .expect("runs");
    let log = env.log("trace.log");
    assert!(status.success(), "{log}");
    assert!(
        log.len() > 10_000,
        "trace logging was on: {} bytes",
        log.len()
    );
    for secret in [
        env.servers.shopify.access_token(),
        env.servers.klaviyo.api_key(),
    ] {
        assert!(!log.contains(&secret), "a secret leaked into the logs");
    }
}
