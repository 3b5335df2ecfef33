//! Klaviyo at volume: profile bulk import jobs side by side, tier events in event bulk jobs,
//! each written once and in order, and the pass report's throughput against the ceilings.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::common::{
    self, customer, expected_profiles, klaviyo_profiles, now, order, spawn_with, store,
};
use tiersync::sinks::klaviyo::event_bulk_body;
use tiersync_mocks::data::{Order, StoreData};
use tiersync_mocks::klaviyo::{validate_request_body, KlaviyoOptions, BULK_CREATE_EVENTS};
use tiersync_mocks::MockOptions;

const EVENT_JOBS: &str = "/api/event-bulk-create-jobs";

fn email(id: u64) -> String {
    format!("c{id}@example.com")
}

/// `count` customers with one order each `days_ago`; totals spread over every level.
fn customers(count: u64, days_ago: i64, total: impl Fn(u64) -> String) -> StoreData {
    let emails: Vec<String> = (1..=count).map(email).collect();
    let people = (1..=count)
        .map(|id| customer(id, &emails[id as usize - 1]))
        .collect();
    let orders = (1..=count)
        .map(|id| {
            order(
                id,
                Some((id, &emails[id as usize - 1])),
                days_ago,
                &total(id),
            )
            .build()
        })
        .collect();
    store(people, orders)
}

/// The fakes with Klaviyo's jobs taking `step` queued and `step` processing.
fn with_job_step(step: Duration) -> MockOptions {
    MockOptions {
        klaviyo: KlaviyoOptions {
            bulk_job_step: step,
            ..KlaviyoOptions::default()
        },
        ..MockOptions::default()
    }
}

#[tokio::test]
async fn bulk_import_jobs_run_side_by_side_and_every_profile_is_acknowledged_once() {
    let _clock = common::timing_sensitive().await; // the jobs must overlap in time
                                                   // $100, $600, $1,600, $5,100: None, Silver, Gold, Platinum.
    let data = customers(25_000, 30, |id| {
        ["100.00", "600.00", "1600.00", "5100.00"][id as usize % 4].to_string()
    });
    let orders: Vec<Order> = data.orders.clone();
    let mut env = spawn_with(data, with_job_step(Duration::from_millis(400))).await;
    env.settings.storefront.enabled = false;

    let report = env.pass().await;
    println!("{report}");

    let jobs = env.servers.klaviyo.bulk_jobs();
    assert_eq!(jobs.len(), 3, "25,000 profiles in jobs of 10,000");
    assert_eq!(report.delivery.bulk_jobs, 3);
    let overlapping = jobs.iter().enumerate().any(|(i, a)| {
        jobs[i + 1..].iter().any(|b| {
            let (Some(a0), Some(a1), Some(b0), Some(b1)) =
                (a.started_at, a.completed_at, b.started_at, b.completed_at)
            else {
                return false;
            };
            a0 < b1 && b0 < a1
        })
    });
    assert!(
        overlapping,
        "jobs ran one at a time: {:?}",
        jobs.iter()
            .map(|j| (j.started_at, j.completed_at))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        klaviyo_profiles(&env),
        expected_profiles(&orders, now()),
        "every profile as the orders say"
    );
    assert_eq!(
        (report.delivery.written, report.delivery.deferred),
        (25_000, 0)
    );
    assert_eq!(report.klaviyo_outbox.pending, 0);
    // All jobs in flight were polled together: far fewer reads than one per job per poll.
    let reads = env
        .servers
        .klaviyo
        .count("GET", "/api/profile-bulk-import-jobs");
    assert!(reads >= 1, "the job list is how jobs are polled");
    let throughput = &report.klaviyo_throughput;
    let jobs_window = throughput
        .windows
        .iter()
        .find(|w| w.ceiling.name == "bulk jobs")
        .expect("a bulk jobs window");
    assert_eq!(
        jobs_window.requests as usize,
        3 + reads,
        "three creates and the list reads"
    );
    assert!(!throughput.busy.is_zero() && throughput.busy <= report.elapsed);
    assert!(
        report.to_string().contains("bulk jobs: "),
        "the report shows the bulk jobs window"
    );

    env.servers.klaviyo.clear_requests();
    let second = env.pass().await;
    assert_eq!(env.profile_writes(), 0, "a second pass writes nothing");
    assert_eq!(second.delivery.written, 0);
}

/// A first pass of `count` Silver customers ($600, 10 days ago; no events on a first sync),
/// and the moment, 200 days on, when all of them have lapsed: `count` events to send.
async fn lapsing(count: u64, options: MockOptions) -> (common::TestEnv, DateTime<Utc>) {
    let mut env = spawn_with(customers(count, 10, |_| "600.00".into()), options).await;
    env.settings.storefront.enabled = false;
    env.settings.tiers.levels[0].min_clv = Some("500".parse().unwrap());
    env.settings.tiers.lapse_after_days = 180;
    // The daily recalculation runs on the first pass of each shop-local day.
    env.settings.sync.recalc_at = chrono::NaiveTime::MIN;
    let first = env.pass().await;
    assert_eq!(first.evaluation.events, 0, "connecting triggers no flows");
    env.servers.klaviyo.clear_requests();
    (env, Utc::now() + chrono::Duration::days(200))
}

/// Waits for the fake to record `count` events (event bulk jobs record theirs later).
async fn recorded(env: &common::TestEnv, count: usize) -> Vec<tiersync_mocks::klaviyo::Event> {
    let start = Instant::now();
    loop {
        let events = env.servers.klaviyo.events();
        if events.len() >= count || start.elapsed() > Duration::from_secs(20) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn many_tier_events_go_as_bulk_jobs_after_their_profiles_and_are_recorded_once() {
    let (env, later) = lapsing(2_500, with_job_step(Duration::from_millis(100))).await;
    let report = env.pass_at(later).await;
    println!("{report}");

    assert_eq!(report.evaluation.events, 2_500);
    assert_eq!(
        (report.events.sent, report.event_outbox.pending),
        (2_500, 0)
    );
    let bulk = env.servers.klaviyo.count("POST", EVENT_JOBS);
    assert!((1..=3).contains(&bulk), "{bulk} event bulk requests");
    assert_eq!(env.servers.klaviyo.count("POST", "/api/events"), 0);

    let events = recorded(&env, 2_500).await;
    assert_eq!(events.len(), 2_500);
    let ids: HashSet<_> = events.iter().map(|e| e.unique_id.clone()).collect();
    assert_eq!(ids.len(), 2_500, "each transition recorded once");
    for event in &events {
        let email = event.email.as_deref().expect("events carry the email");
        let profile = env
            .servers
            .klaviyo
            .profile_by_email(email)
            .expect("profile");
        assert_eq!(profile.properties["vip_state"], "lapsed", "{email}");
        assert!(
            profile.updated <= event.received,
            "{email}: the profile was written at {} but its event recorded at {}",
            profile.updated,
            event.received
        );
        assert_eq!(event.metric, "VIP Lapsed");
    }
    let requests = env.servers.klaviyo.requests();
    let last_profile_write = requests
        .iter()
        .rposition(|r| r.path.starts_with("/api/profile-bulk-import-jobs"))
        .expect("the profiles went as a bulk job");
    let first_event_job = requests
        .iter()
        .position(|r| r.path == EVENT_JOBS)
        .expect("event jobs");
    assert!(
        last_profile_write < first_event_job,
        "profile jobs finish before events are sent"
    );
}

#[tokio::test]
async fn an_event_bulk_answer_lost_after_klaviyo_took_it_is_re_sent_and_recorded_once() {
    let (mut env, later) = lapsing(1_200, with_job_step(Duration::from_millis(50))).await;
    env.settings.sync.max_retry_time = Duration::from_millis(1);
    env.servers.klaviyo.lose_next_responses(EVENT_JOBS, 1);

    let first = env.pass_at(later).await;
    let second = env.pass_at(later).await;

    assert_eq!(first.events.sent + second.events.sent, 1_200);
    assert_eq!(second.event_outbox.pending, 0);
    let posts = env.servers.klaviyo.count("POST", EVENT_JOBS);
    assert_eq!(
        posts, 3,
        "two batches and the one whose answer was lost, again"
    );
    let events = recorded(&env, 1_200).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events_later = env.servers.klaviyo.events();
    assert_eq!(events.len(), 1_200);
    assert_eq!(events_later.len(), 1_200, "the re-sent batch added nothing");
}

#[test]
fn the_event_bulk_body_is_valid_against_the_official_spec_and_groups_by_customer() {
    let event = common::event_entry;
    let body = event_bulk_body(&[
        event(1, 1, "VIP Tier Entered"),
        event(2, 2, "VIP Tier Entered"),
        event(1, 3, "VIP Lapsed"),
    ]);
    validate_request_body(BULK_CREATE_EVENTS, &body).unwrap_or_else(|e| panic!("{e}"));
    let entries = body["data"]["attributes"]["events-bulk-create"]["data"]
        .as_array()
        .unwrap();
    assert_eq!(entries.len(), 2, "one entry per customer");
    let first = &entries[0]["attributes"];
    assert_eq!(first["profile"]["data"]["attributes"]["external_id"], "1");
    let metrics: Vec<&str> = first["events"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["attributes"]["metric"]["data"]["attributes"]["name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(metrics, ["VIP Tier Entered", "VIP Lapsed"], "in order");
}
