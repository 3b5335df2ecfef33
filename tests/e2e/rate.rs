//! The requests the fakes receive never exceed the vendors' published rates over any window,
//! even when hundreds of customers change at once (every write one by one, below the bulk
//! threshold, with several in flight).

use crate::common::{self, order, spawn};
use chrono::{DateTime, Duration, Utc};
use tiersync::config::{Authority, LoyaltyPlatform};
use tiersync_mocks::generator::{generate, loyalty_members, GenConfig};
use tiersync_mocks::recorder::RecordedRequest;

/// The most requests any sliding window of `window` holds.
fn busiest(mut stamps: Vec<DateTime<Utc>>, window: Duration) -> usize {
    stamps.sort();
    (0..stamps.len())
        .map(|i| {
            stamps[i..]
                .iter()
                .take_while(|t| **t < stamps[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn stamps(requests: &[RecordedRequest], path: &str) -> Vec<DateTime<Utc>> {
    requests
        .iter()
        .filter(|r| r.path.starts_with(path))
        .map(|r| r.at)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fake_ever_sees_more_than_the_published_rate() {
    let _clock = common::timing_sensitive().await; // request rates per second at the fakes
    let data = generate(&GenConfig {
        customers: 300,
        seed: 7,
        now: Utc::now(),
        ..GenConfig::default()
    });
    let members = loyalty_members(&data, 7);
    let mut env = spawn(data.clone()).await;
    env.servers.smile.load(&data, &members);
    env.use_loyalty(LoyaltyPlatform::Smile, Authority::Tiersync);
    // Everything one request per profile: the path where the limiter does all the work.
    env.settings.klaviyo.bulk_threshold = 100_000;

    let first = env.pass().await;
    assert_eq!(first.delivery.written, 300, "{first}");
    // Then 150 customers change at once: profile writes and flow events together.
    let now = Utc::now();
    for (n, customer) in data.customers.iter().take(150).enumerate() {
        let email = customer.email.as_deref().unwrap_or_default().to_string();
        env.servers.shopify.upsert_order(
            order(
                9_000_000 + n as u64,
                Some((customer.id, &email)),
                0,
                "9000.00",
            )
            .build(),
        );
    }
    let second = env.pass_at(now).await;
    assert!(second.delivery.written >= 150, "{second}");
    assert!(second.events.sent > 0, "{second}");

    let klaviyo = env.servers.klaviyo.requests();
    let profiles = stamps(&klaviyo, "/api/profile-import");
    let events = stamps(&klaviyo, "/api/events");
    assert!(profiles.len() >= 450);
    assert!(
        busiest(profiles.clone(), Duration::seconds(1)) <= 75,
        "profile-import over 75 in a second"
    );
    assert!(busiest(profiles, Duration::minutes(1)) <= 750);
    assert!(busiest(events.clone(), Duration::seconds(1)) <= 350);
    assert!(busiest(events, Duration::minutes(1)) <= 3_500);
    assert!(
        klaviyo.iter().all(|r| r.status != 429),
        "Klaviyo never had to refuse a request"
    );
    let smile = env.servers.smile.requests();
    assert!(!smile.is_empty());
    assert!(busiest(stamps(&smile, "/v1"), Duration::seconds(1)) <= 10);
    assert!(smile.iter().all(|r| r.status != 429));
    let shopify = env.servers.shopify.requests();
    assert!(shopify.iter().all(|r| r.status != 429));
}
