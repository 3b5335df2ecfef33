//! The crash test: the daemon binary runs against fakes that answer 10% 429 (with and
//! without Retry-After), 5% 5xx, 2% slower than the client timeout, 1% dropped connections
//! and 1% malformed JSON, and is SIGKILLed at random moments while customers keep ordering.
//! At the end every destination holds exactly the expected state, and every promotion made
//! exactly one flow event at Klaviyo.
//!
//! `TIERSYNC_CHAOS_KILLS=200 cargo test --release --test e2e chaos -- --nocapture` is the long run.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::{self, expected_profiles, order, spawn_with};
use chrono::Utc;
use tiersync::store::Store;
use tiersync_mocks::faults::{Fault, FaultPlan, Phase};
use tiersync_mocks::generator::{generate, GenConfig};
use tiersync_mocks::MockOptions;

/// A small deterministic generator for kill times and buyers.
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn fault_plan(seed: u64) -> FaultPlan {
    FaultPlan::rates(seed)
        .with(
            Fault::TooManyRequests {
                retry_after: Some(1),
            },
            0.05,
        )
        .with(Fault::TooManyRequests { retry_after: None }, 0.05)
        .with(Fault::ServerError(503), 0.03)
        .with(Fault::ServerError(500), 0.02)
        .with(Fault::Slow(Duration::from_secs(3)), 0.02)
        .with(Fault::DropConnection(Phase::After), 0.01)
        .with(Fault::MalformedJson, 0.01)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_under_faults_lose_and_duplicate_nothing() {
    let _clock = common::timing_sensitive().await; // kills at random moments; a daemon of its own
    let kills: usize = std::env::var("TIERSYNC_CHAOS_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let data = generate(&GenConfig {
        customers: 150,
        seed: 11,
        now: Utc::now(),
        ..GenConfig::default()
    });
    let env = spawn_with(data, MockOptions::default().with_faults(&fault_plan(11))).await;
    let config = env.config_file();
    let config = config.to_str().unwrap();
    let mut dice = Dice(2026);
    let initially = expected_profiles(&env.servers.shopify.orders(), Utc::now());
    let mut candidates: Vec<u64> = initially
        .iter()
        .filter(|(_, (tier, _, _))| tier == "None")
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    candidates.sort_unstable();
    let mut promoted: Vec<u64> = Vec::new();

    for kill in 0..kills {
        // Once the first sync is recorded, a customer without a level sometimes buys big.
        let synced = Store::open(&env.settings.store.path)
            .ok()
            .and_then(|s| s.population().ok().flatten())
            .is_some();
        if synced && dice.next(3) == 0 && !candidates.is_empty() {
            let id = candidates.remove(dice.next(candidates.len() as u64) as usize);
            let email = env.servers.shopify.customer(id).unwrap().email.unwrap();
            env.servers.shopify.upsert_order(
                order(8_000_000 + kill as u64, Some((id, &email)), 0, "9000.00").build(),
            );
            promoted.push(id);
        }
        let mut daemon = daemon(&env, config, "run", &format!("run-{kill}.log"))
            .spawn()
            .expect("daemon starts");
        tokio::time::sleep(Duration::from_millis(150 + dice.next(1_500))).await;
        daemon.kill().expect("SIGKILL");
        daemon.wait().expect("reaped");
    }
    let injected: u64 = [
        env.servers.shopify.faults().total_injected(),
        env.servers.klaviyo.faults().total_injected(),
    ]
    .iter()
    .sum();
    assert!(injected > 20, "the fakes injected only {injected} faults");

    // The storm passes; the daemon runs to the end.
    for fake in [env.servers.shopify.faults(), env.servers.klaviyo.faults()] {
        fake.clear();
    }
    for round in 0..2 {
        let log = format!("final-{round}.log");
        let status = daemon(&env, config, "once", &log).status().unwrap();
        assert!(status.success(), "{}", env.log(&log));
    }

    let expected = expected_profiles(&env.servers.shopify.orders(), Utc::now());
    let profiles: HashMap<String, String> = env
        .servers
        .klaviyo
        .profiles()
        .into_iter()
        .filter_map(|p| {
            Some((
                p.external_id?,
                p.properties.get("vip_tier")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let mut wrong = Vec::new();
    for (id, (tier, _, _)) in &expected {
        if profiles.get(id) != Some(tier) {
            wrong.push(format!(
                "klaviyo {id}: want {tier}, have {:?}",
                profiles.get(id)
            ));
        }
        let tags: Vec<String> = env
            .servers
            .shopify
            .customer(id.parse().unwrap())
            .unwrap()
            .tags
            .into_iter()
            .filter(|t| t.starts_with("vip:"))
            .collect();
        let want: Vec<String> = match tier.as_str() {
            "None" => Vec::new(),
            level => vec![format!("vip:{}", level.to_lowercase())],
        };
        if tags != want {
            wrong.push(format!("shopify {id}: want {want:?}, have {tags:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(8)]
    );

    let events = env.servers.klaviyo.events();
    let mut per_customer: HashMap<String, Vec<String>> = HashMap::new();
    for event in &events {
        per_customer
            .entry(event.email.clone().unwrap_or_default())
            .or_default()
            .push(event.metric.clone());
    }
    let mut unique: Vec<&str> = events
        .iter()
        .filter_map(|e| e.unique_id.as_deref())
        .collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), events.len(), "an event was recorded twice");
    for id in &promoted {
        let email = env.servers.shopify.customer(*id).unwrap().email.unwrap();
        assert_eq!(
            per_customer.get(&email).map(Vec::as_slice),
            Some(&["VIP Tier Entered".to_string()][..]),
            "{email}: exactly one promotion event"
        );
    }
    assert_eq!(
        events.len(),
        promoted.len(),
        "no other events: {per_customer:?}"
    );
    println!(
        "{kills} kills, {injected} faults injected, {} promotions, {} events, {} Klaviyo requests",
        promoted.len(),
        events.len(),
        env.servers.klaviyo.requests().len()
    );
}

/// The binary with short timeouts, so faults cost seconds rather than minutes.
fn daemon(env: &common::TestEnv, config: &str, command: &str, log: &str) -> std::process::Command {
    let mut daemon = env.binary(&[command, "--config", config], log);
    daemon
        .env("TIERSYNC__SYNC__REQUEST_TIMEOUT", "1s")
        .env("TIERSYNC__SYNC__MAX_RETRY_TIME", "4s")
        .env("TIERSYNC__SYNC__POLL_INTERVAL", "1s")
        .env("TIERSYNC__SYNC__RECONCILE_EVERY", "never")
        .env("TIERSYNC__SHOPIFY__BULK_POLL_INTERVAL", "200ms")
        .env("TIERSYNC__KLAVIYO__BULK_THRESHOLD", "1000000")
        .env("TIERSYNC__KLAVIYO__CONCURRENCY", "4");
    daemon
}
