//! Flow-triggering events: one per transition, after the profile write, never twice.

use crate::common::{self, customer, order, spawn, store};
use serde_json::json;
use tiersync_mocks::data::StoreData;

const ALICE: (u64, &str) = (1, "alice@example.com");
const BOB: (u64, &str) = (2, "bob@example.com");

/// Alice has $100 (no level); Bob $600 (Silver by window spend).
fn two_customers() -> StoreData {
    store(
        vec![customer(ALICE.0, ALICE.1), customer(BOB.0, BOB.1)],
        vec![
            order(1, Some(ALICE), 30, "100.00").build(),
            order(2, Some(BOB), 30, "600.00").build(),
        ],
    )
}

#[tokio::test]
async fn the_first_sync_sends_no_events_and_a_later_promotion_sends_exactly_one_after_the_profile()
{
    let env = spawn(two_customers()).await;
    let first = env.pass().await;
    assert_eq!(
        env.servers.klaviyo.events().len(),
        0,
        "connecting tiersync triggers no flows"
    );
    assert_eq!(first.evaluation.events, 0);
    env.servers.klaviyo.clear_requests();

    env.servers
        .shopify
        .upsert_order(order(3, Some(ALICE), 0, "450.00").build());
    let report = env.pass().await;

    let events = env.servers.klaviyo.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.metric, "VIP Tier Entered");
    assert_eq!(event.email.as_deref(), Some(ALICE.1));
    assert_eq!(event.properties["to_tier"], json!("Silver"));
    assert_eq!(event.properties["from_tier"], json!(null));
    assert_eq!(event.properties["to_state"], json!("active"));
    assert!(event
        .unique_id
        .as_deref()
        .is_some_and(|id| id.starts_with("tiersync:1:Entered:")));
    assert_eq!((report.events.sent, report.event_outbox.pending), (1, 0));
    let paths: Vec<String> = env
        .servers
        .klaviyo
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        ["/api/profile-import", "/api/events"],
        "the profile is written first"
    );
}

#[tokio::test]
async fn an_answer_lost_after_klaviyo_recorded_the_event_re_sends_it_and_klaviyo_keeps_one() {
    let env = spawn(two_customers()).await;
    env.pass().await;
    // Klaviyo records the event but the answer never arrives (as when the process dies right
    // after sending): tiersync sends it again, with the same unique_id.
    env.servers.klaviyo.lose_next_responses("/api/events", 1);
    env.servers
        .shopify
        .upsert_order(order(3, Some(ALICE), 0, "450.00").build());

    let report = env.pass().await;

    let sends = env.servers.klaviyo.count("POST", "/api/events");
    assert_eq!(sends, 2, "sent, answer lost, sent again");
    let bodies: Vec<serde_json::Value> = env
        .servers
        .klaviyo
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/events")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(
        bodies[0]["data"]["attributes"]["unique_id"],
        bodies[1]["data"]["attributes"]["unique_id"]
    );
    assert_eq!(
        env.servers.klaviyo.events().len(),
        1,
        "exactly one VIP Tier Entered event"
    );
    assert_eq!(report.event_outbox.pending, 0);
}

#[tokio::test]
async fn lapse_and_welcome_back_send_their_own_metrics() {
    let carol = (3, "carol@example.com");
    let data = store(
        vec![customer(carol.0, carol.1)],
        vec![order(1, Some(carol), 10, "600.00").build()],
    );
    let mut env = spawn(data).await;
    env.settings.tiers.levels[0].min_clv = Some("500".parse().unwrap());
    env.settings.tiers.lapse_after_days = 180;
    // The daily recalculation runs on the first pass of each shop-local day.
    env.settings.sync.recalc_at = chrono::NaiveTime::MIN;
    env.pass().await; // initial sync: Silver, active, no events

    // 200 days later without an order: lapsed.
    let later = chrono::Utc::now() + chrono::Duration::days(200);
    env.pass_at(later).await;
    // She orders again that day: welcome back.
    let mut comeback = order(2, Some(carol), 0, "10.00").build();
    comeback.created_at = later;
    comeback.updated_at = later;
    env.servers.shopify.upsert_order(comeback);
    env.pass_at(later).await;

    let metrics: Vec<String> = env
        .servers
        .klaviyo
        .events()
        .into_iter()
        .map(|e| e.metric)
        .collect();
    assert_eq!(metrics, ["VIP Lapsed", "VIP Welcome Back"]);
    let profile = env.servers.klaviyo.profile_by_email(carol.1).unwrap();
    assert_eq!(profile.properties["vip_state"], json!("active"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_sending_the_event_a_restart_still_leaves_exactly_one() {
    let _clock = common::timing_sensitive().await; // the kill must land before the retry
    let env = spawn(two_customers()).await;
    env.pass().await;
    let config = env.config_file();
    let config = config.to_str().unwrap();
    // Klaviyo records the event, then its answer is lost: the daemon has sent it but holds no
    // acknowledgement (it is backing off before a retry) when SIGKILL lands.
    env.servers.klaviyo.lose_next_responses("/api/events", 1);
    env.servers
        .shopify
        .upsert_order(order(3, Some(ALICE), 0, "450.00").build());

    let mut daemon = env
        .binary(&["run", "--config", config], "first.log")
        .spawn()
        .expect("daemon starts");
    let klaviyo = env.servers.klaviyo.clone();
    let start = std::time::Instant::now();
    while klaviyo.events().is_empty() && start.elapsed() < std::time::Duration::from_secs(30) {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    daemon.kill().expect("SIGKILL");
    daemon.wait().expect("reaped");
    assert_eq!(klaviyo.events().len(), 1, "{}", env.log("first.log"));
    assert_eq!(
        klaviyo.count("POST", "/api/events"),
        1,
        "killed before any retry"
    );

    let restarted = env
        .binary(&["once", "--config", config], "second.log")
        .status()
        .expect("restart runs");

    assert!(restarted.success(), "{}", env.log("second.log"));
    assert_eq!(
        klaviyo.count("POST", "/api/events"),
        2,
        "the unacknowledged event is sent again after the restart"
    );
    let events = klaviyo.events();
    assert_eq!(events.len(), 1, "exactly one VIP Tier Entered: {events:?}");
    assert_eq!(events[0].metric, "VIP Tier Entered");
}
