//! Injected faults over real HTTP, for every fake: each kind as the client sees it (status,
//! headers, vendor error body, a body that does not parse, a timeout, a dropped connection, a
//! page repeating items), errors that change nothing and lost answers that keep the change,
//! schedules that take exactly `n` requests, a revoked token that stays revoked until restored,
//! and seeded rates that are reproducible and near their rate.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use tiersync_mocks::faults::{Fault, FaultKind, FaultPlan, Faults, Phase};
use tiersync_mocks::generator::{generate, GenConfig};
use tiersync_mocks::klaviyo::{KlaviyoLimits, KlaviyoOptions, Limit};
use tiersync_mocks::loyaltylion::{LoyaltyLionCustomer, LoyaltyLionOptions};
use tiersync_mocks::recorder::RecordedRequest;
use tiersync_mocks::smile::{SmileCustomer, SmileOptions};
use tiersync_mocks::{MockOptions, MockServers};

const GRAPHQL: &str = "/admin/api/2026-10/graphql.json";
const REVISION: &str = "2026-07-15";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Vendor {
    Shopify,
    Klaviyo,
    Smile,
    LoyaltyLion,
}

const VENDORS: [Vendor; 4] = [
    Vendor::Shopify,
    Vendor::Klaviyo,
    Vendor::Smile,
    Vendor::LoyaltyLion,
];

/// All four fakes, with rate limits high enough that only injected faults refuse requests.
async fn start(plan: &FaultPlan) -> MockServers {
    let options = MockOptions {
        klaviyo: KlaviyoOptions {
            limits: KlaviyoLimits {
                profiles: Limit::new(100_000, 1_000_000),
                ..KlaviyoLimits::default()
            },
            ..KlaviyoOptions::default()
        },
        smile: SmileOptions {
            requests_per_second: 100_000,
            ..SmileOptions::default()
        },
        loyaltylion: LoyaltyLionOptions {
            requests_per_second: 100_000,
            ..LoyaltyLionOptions::default()
        },
        ..MockOptions::default()
    };
    MockServers::start(options.with_faults(plan))
        .await
        .expect("fakes start")
}

/// One fake under test.
struct Target<'a> {
    vendor: Vendor,
    servers: &'a MockServers,
}

impl Target<'_> {
    fn faults(&self) -> &Faults {
        match self.vendor {
            Vendor::Shopify => self.servers.shopify.faults(),
            Vendor::Klaviyo => self.servers.klaviyo.faults(),
            Vendor::Smile => self.servers.smile.faults(),
            Vendor::LoyaltyLion => self.servers.loyaltylion.faults(),
        }
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        match self.vendor {
            Vendor::Shopify => self.servers.shopify.requests(),
            Vendor::Klaviyo => self.servers.klaviyo.requests(),
            Vendor::Smile => self.servers.smile.requests(),
            Vendor::LoyaltyLion => self.servers.loyaltylion.requests(),
        }
    }

    /// The path of [`Target::read`], and of its listing.
    fn path(&self) -> &'static str {
        match self.vendor {
            Vendor::Shopify => GRAPHQL,
            Vendor::Klaviyo => "/api/profiles",
            Vendor::Smile => "/v1/customers",
            Vendor::LoyaltyLion => "/v2/customers",
        }
    }

    /// An authenticated request to `path_and_query` (a GraphQL POST of `graphql` on Shopify).
    fn request(&self, client: &Client, path_and_query: &str, graphql: &Value) -> RequestBuilder {
        let servers = self.servers;
        match self.vendor {
            Vendor::Shopify => client
                .post(format!("{}{path_and_query}", servers.shopify.base_url()))
                .header("X-Shopify-Access-Token", servers.shopify.access_token())
                .json(graphql),
            Vendor::Klaviyo => client
                .get(format!("{}{path_and_query}", servers.klaviyo.base_url()))
                .header(
                    "Authorization",
                    format!("Klaviyo-API-Key {}", servers.klaviyo.api_key()),
                )
                .header("revision", REVISION),
            Vendor::Smile => client
                .get(format!("{}{path_and_query}", servers.smile.base_url()))
                .bearer_auth(servers.smile.api_token()),
            Vendor::LoyaltyLion => client
                .get(format!(
                    "{}{path_and_query}",
                    servers.loyaltylion.base_url()
                ))
                .bearer_auth(servers.loyaltylion.api_key()),
        }
    }

    /// A cheap authenticated read that answers 200.
    fn read(&self, client: &Client) -> RequestBuilder {
        self.request(
            client,
            self.path(),
            &json!({ "query": "{ shop { name } }" }),
        )
    }

    async fn read_status(&self) -> StatusCode {
        self.read(&Client::new())
            .send()
            .await
            .expect("answered")
            .status()
    }

    /// The message of an error body in the vendor's format.
    fn error_message<'b>(&self, body: &'b Value) -> Option<&'b str> {
        match self.vendor {
            Vendor::Shopify => body["errors"].as_str(),
            Vendor::Klaviyo => body["errors"][0]["detail"].as_str(),
            Vendor::Smile | Vendor::LoyaltyLion => body["error"]["message"].as_str(),
        }
    }

    /// Puts `n` items in the fake's listing.
    fn seed_listing(&self, n: u64) {
        match self.vendor {
            Vendor::Shopify => self.servers.shopify.load(generate(&GenConfig {
                customers: 10,
                ..GenConfig::default()
            })),
            // Profiles are written over HTTP; see `listing_page`.
            Vendor::Klaviyo => {}
            Vendor::Smile => {
                for i in 1..=n {
                    self.servers.smile.upsert_customer(SmileCustomer {
                        email: format!("member{i}@example.com"),
                        ..SmileCustomer::default()
                    });
                }
            }
            Vendor::LoyaltyLion => {
                for i in 1..=n {
                    self.servers
                        .loyaltylion
                        .upsert_customer(LoyaltyLionCustomer {
                            merchant_id: i.to_string(),
                            email: format!("member{i}@example.com"),
                            ..LoyaltyLionCustomer::default()
                        });
                }
            }
        }
    }

    /// One page of 4 items of the fake's listing: their ids and the next page's cursor.
    async fn listing_page(&self, cursor: Option<String>) -> (Vec<String>, Option<String>) {
        let client = Client::new();
        let graphql = json!({
            "query": "query($after: String) { orders(first: 4, after: $after) {
                edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            "variables": { "after": cursor },
        });
        let path = match (self.vendor, &cursor) {
            (Vendor::Shopify, _) => GRAPHQL.to_owned(),
            // Klaviyo's next link is a full URL.
            (Vendor::Klaviyo, Some(next)) => {
                let base = self.servers.klaviyo.base_url();
                next.strip_prefix(&base).expect("same server").to_owned()
            }
            (Vendor::Klaviyo, None) => "/api/profiles?page[size]=4".to_owned(),
            // Smile's cursors are standard base64: `+` must be encoded.
            (_, Some(cursor)) => {
                let cursor: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
                format!("{}?limit=4&cursor={cursor}", self.path())
            }
            (_, None) => format!("{}?limit=4", self.path()),
        };
        let response = self.request(&client, &path, &graphql).send().await;
        let body: Value = response.expect("answered").json().await.expect("JSON");
        let ids = |items: &Value, id: &str| -> Vec<String> {
            let items = items.as_array().expect("a page of items");
            items
                .iter()
                .map(|item| item.pointer(id).expect("id").to_string())
                .collect()
        };
        let cursor = |value: &Value| value.as_str().map(str::to_owned);
        match self.vendor {
            Vendor::Shopify => {
                let orders = &body["data"]["orders"];
                let next = orders["pageInfo"]["hasNextPage"]
                    .as_bool()
                    .unwrap_or(false)
                    .then(|| cursor(&orders["pageInfo"]["endCursor"]))
                    .flatten();
                (ids(&orders["edges"], "/node/id"), next)
            }
            Vendor::Klaviyo => (ids(&body["data"], "/id"), cursor(&body["links"]["next"])),
            Vendor::Smile => (
                ids(&body["customers"], "/id"),
                cursor(&body["metadata"]["next_cursor"]),
            ),
            Vendor::LoyaltyLion => (
                ids(&body["customers"], "/id"),
                cursor(&body["cursor"]["next"]),
            ),
        }
    }
}

fn targets(servers: &MockServers) -> impl Iterator<Item = Target<'_>> {
    VENDORS
        .into_iter()
        .map(move |vendor| Target { vendor, servers })
}

/// The statuses and faults the fake recorded, oldest first.
fn log(target: &Target<'_>) -> Vec<(u16, Option<FaultKind>)> {
    let requests = target.requests().into_iter();
    requests.map(|r| (r.status, r.fault)).collect()
}

/// Klaviyo's profile import of `email`, with the headers the daemon sends.
fn klaviyo_import(servers: &MockServers, email: &str) -> RequestBuilder {
    Client::new()
        .post(format!("{}/api/profile-import", servers.klaviyo.base_url()))
        .header(
            "Authorization",
            format!("Klaviyo-API-Key {}", servers.klaviyo.api_key()),
        )
        .header("revision", REVISION)
        .header("Content-Type", "application/vnd.api+json")
        .body(json!({"data": {"type": "profile", "attributes": {"email": email}}}).to_string())
}

#[tokio::test]
async fn error_faults_answer_in_each_vendors_format() {
    let servers = start(&FaultPlan::none()).await;
    for target in targets(&servers) {
        let vendor = target.vendor;
        let faults = [
            Fault::TooManyRequests {
                retry_after: Some(3),
            },
            Fault::TooManyRequests { retry_after: None },
            Fault::ServerError(500),
            Fault::ServerError(502),
            Fault::ServerError(503),
            Fault::Unauthorized,
        ];
        for fault in faults.iter().cloned() {
            target.faults().inject_next(1, fault);
        }
        let client = Client::new();
        let mut seen = Vec::new();
        for _ in &faults {
            let response = target.read(&client).send().await.expect("answered");
            let status = response.status();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.expect("a JSON error body");
            let message = target.error_message(&body);
            assert!(
                message.is_some_and(|m| !m.is_empty()),
                "{vendor:?} {status}: {body}"
            );
            if vendor == Vendor::Klaviyo {
                assert_eq!(body["errors"][0]["status"], status.as_u16(), "{body}");
            }
            seen.push((status.as_u16(), retry_after));
        }
        let three = Some("3".parse().unwrap());
        assert_eq!(
            seen,
            [
                (429, three),
                (429, None),
                (500, None),
                (502, None),
                (503, None),
                (401, None)
            ],
            "{vendor:?}"
        );
        assert_eq!(target.read_status().await, StatusCode::OK, "{vendor:?}");

        let faults = target.faults();
        assert_eq!(faults.injected(FaultKind::TooManyRequests), 2);
        assert_eq!(faults.injected(FaultKind::ServerError), 3);
        assert_eq!(faults.injected(FaultKind::Unauthorized), 1);
        assert_eq!(faults.total_injected(), 6);
        let logged = log(&target);
        assert_eq!(logged.len(), 7, "{vendor:?}: every request recorded");
        assert_eq!(logged[0], (429, Some(FaultKind::TooManyRequests)));
        assert_eq!(logged[5], (401, Some(FaultKind::Unauthorized)));
        assert_eq!(logged[6], (200, None));
    }
}

#[tokio::test]
async fn vendor_bodies_name_the_refusal() {
    let servers = start(&FaultPlan::none()).await;
    let shopify = Target {
        vendor: Vendor::Shopify,
        servers: &servers,
    };
    let klaviyo = Target {
        vendor: Vendor::Klaviyo,
        servers: &servers,
    };
    let client = Client::new();
    for (target, fault, expected) in [
        (
            &shopify,
            Fault::Unauthorized,
            "Invalid API key or access token",
        ),
        (
            &shopify,
            Fault::TooManyRequests { retry_after: None },
            "Exceeded 2 calls per second",
        ),
        (&klaviyo, Fault::Unauthorized, "authentication_failed"),
        (
            &klaviyo,
            Fault::TooManyRequests { retry_after: None },
            "throttled",
        ),
    ] {
        target.faults().inject_next(1, fault);
        let body = target.read(&client).send().await.expect("answered");
        let body = body.text().await.expect("body");
        assert!(body.contains(expected), "{body}");
    }
}

#[tokio::test]
async fn shopify_answers_injected_throttled_with_the_cost_extension() {
    let servers = start(&FaultPlan::none()).await;
    for target in targets(&servers) {
        target.faults().inject_next(1, Fault::Throttled);
        let response = target.read(&Client::new()).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("JSON");
        if target.vendor != Vendor::Shopify {
            // Only Shopify throttles this way; the others answer normally.
            assert_eq!(target.faults().injected(FaultKind::Throttled), 0);
            assert_eq!(log(&target), [(200, None)]);
            continue;
        }
        assert_eq!(body["errors"][0]["message"], "Throttled");
        assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
        let cost = &body["extensions"]["cost"];
        assert_eq!(cost["requestedQueryCost"], 1);
        assert!(
            cost["throttleStatus"]["currentlyAvailable"]
                .as_u64()
                .unwrap()
                < 10
        );
        assert!(body.get("data").is_none());
        let recorded = target.requests();
        assert!(recorded[0].throttled);
        assert_eq!(recorded[0].fault, Some(FaultKind::Throttled));
        assert_eq!(target.faults().injected(FaultKind::Throttled), 1);
    }
}

#[tokio::test]
async fn slow_answers_outlast_the_client_timeout() {
    let _clock = crate::timing::timing_sensitive().await; // a 300 ms client timeout
    let servers = start(&FaultPlan::none()).await;
    let client = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    for target in targets(&servers) {
        target
            .faults()
            .inject_next(1, Fault::Slow(Duration::from_secs(1)));
        let error = target.read(&client).send().await.expect_err("timed out");
        assert!(error.is_timeout(), "{:?}: {error:?}", target.vendor);
        let response = target.read(&client).send().await.expect("answered in time");
        assert_eq!(response.status(), StatusCode::OK);
        // Recorded when the endpoint answered, with the status it would have sent.
        assert_eq!(log(&target), [(200, Some(FaultKind::Slow)), (200, None)]);
        assert_eq!(target.faults().injected(FaultKind::Slow), 1);
    }
}

#[tokio::test]
async fn dropped_connections_are_connection_errors() {
    let servers = start(&FaultPlan::none()).await;
    for target in targets(&servers) {
        let vendor = target.vendor;
        let client = Client::new();
        for phase in [Phase::Before, Phase::After] {
            target.faults().inject_next(1, Fault::DropConnection(phase));
            let error = target.read(&client).send().await.expect_err("dropped");
            assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
            assert!(error.is_request(), "{vendor:?} {phase:?}: {error:?}");
            assert_eq!(target.read_status().await, StatusCode::OK);
        }
        let dropped = (0, Some(FaultKind::DropConnection));
        assert_eq!(log(&target), [dropped, (200, None), dropped, (200, None)]);
        assert_eq!(target.faults().injected(FaultKind::DropConnection), 2);
    }
}

#[tokio::test]
async fn malformed_answers_do_not_parse() {
    let servers = start(&FaultPlan::none()).await;
    for target in targets(&servers) {
        target.faults().inject_next(1, Fault::MalformedJson);
        let response = target.read(&Client::new()).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.bytes().await.expect("the whole (short) body");
        assert!(!body.is_empty());
        let parsed = serde_json::from_slice::<Value>(&body);
        assert!(parsed.is_err(), "{:?}: {body:?}", target.vendor);
        assert_eq!(log(&target), [(200, Some(FaultKind::MalformedJson))]);
        assert_eq!(target.faults().injected(FaultKind::MalformedJson), 1);
    }
}

#[tokio::test]
async fn refusals_change_nothing_and_lost_answers_keep_the_change() {
    let servers = start(&FaultPlan::none()).await;
    let smile = &servers.smile;
    let customer = smile.upsert_customer(SmileCustomer {
        email: "ann@example.com".to_owned(),
        ..SmileCustomer::default()
    });
    let add_points = |points: i64| {
        Client::new()
            .post(format!("{}/v1/points_transactions", smile.base_url()))
            .bearer_auth(smile.api_token())
            .json(&json!({"points_transaction": {
                "customer_id": customer.id, "points_change": points}}))
            .send()
    };
    let changes = || -> Vec<i64> {
        let transactions = smile.points_transactions().into_iter();
        transactions.map(|t| t.points_change).collect()
    };
    for fault in [
        Fault::ServerError(503),
        Fault::TooManyRequests { retry_after: None },
        Fault::Unauthorized,
        Fault::DropConnection(Phase::Before),
    ] {
        smile.faults().inject_next(1, fault);
        assert!(add_points(1)
            .await
            .map_or(true, |r| !r.status().is_success()));
    }
    assert_eq!(changes(), Vec::<i64>::new(), "refused before the endpoint");
    smile
        .faults()
        .inject_next(1, Fault::DropConnection(Phase::After));
    assert!(add_points(10).await.is_err());
    smile.faults().inject_next(1, Fault::LostResponse(502));
    let lost = add_points(20).await.expect("answered");
    assert_eq!(lost.status(), StatusCode::BAD_GATEWAY);
    smile.faults().inject_next(1, Fault::MalformedJson);
    let malformed = add_points(30).await.expect("answered").bytes().await;
    assert!(serde_json::from_slice::<Value>(&malformed.unwrap()).is_err());
    assert_eq!(
        changes(),
        [10, 20, 30],
        "the endpoint ran, the answer was lost"
    );

    let klaviyo = &servers.klaviyo;
    klaviyo
        .faults()
        .inject_next(1, Fault::TooManyRequests { retry_after: None });
    let refused = klaviyo_import(&servers, "bob@example.com").send().await;
    assert_eq!(refused.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(klaviyo.profile_by_email("bob@example.com").is_none());
    klaviyo.lose_next_responses("/api/profile-import", 1);
    let lost = klaviyo_import(&servers, "bob@example.com").send().await;
    assert_eq!(lost.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(klaviyo.profile_by_email("bob@example.com").is_some());
    let statuses: Vec<u16> = klaviyo.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 503]);
}

#[tokio::test]
async fn repeated_pages_return_items_already_seen() {
    let servers = start(&FaultPlan::none()).await;
    for email in (1..=10).map(|i| format!("member{i}@example.com")) {
        let created = klaviyo_import(&servers, &email).send().await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    for target in targets(&servers) {
        let vendor = target.vendor;
        target.seed_listing(10);
        // On a first page there is nothing to repeat: no fault.
        target
            .faults()
            .inject_next_on(target.path(), 1, Fault::RepeatPage);
        let (first, cursor) = target.listing_page(None).await;
        assert_eq!(target.faults().injected(FaultKind::RepeatPage), 0);
        assert_eq!(first.len(), 4, "{vendor:?}");

        target
            .faults()
            .inject_next_on(target.path(), 1, Fault::RepeatPage);
        let (second, mut cursor) = target.listing_page(cursor).await;
        let repeated: Vec<_> = second.iter().filter(|id| first.contains(id)).collect();
        assert_eq!(repeated.len(), 2, "{vendor:?}: {first:?} then {second:?}");
        assert_eq!(target.faults().injected(FaultKind::RepeatPage), 1);

        // Following the cursors still reaches every item.
        let mut all: Vec<String> = first.into_iter().chain(second).collect();
        while cursor.is_some() {
            let (ids, next) = target.listing_page(cursor).await;
            all.extend(ids);
            cursor = next;
        }
        let distinct: BTreeSet<_> = all.iter().collect();
        let expected = match vendor {
            Vendor::Shopify => servers.shopify.orders().len(),
            _ => 10,
        };
        assert_eq!(distinct.len(), expected, "{vendor:?}");
        assert_eq!(all.len(), expected + 2, "{vendor:?}: two items seen twice");
        let faulted = target
            .requests()
            .iter()
            .filter(|r| r.fault.is_some())
            .count();
        assert_eq!(faulted, 1);
    }
}

#[tokio::test]
async fn schedules_take_exactly_n_requests_on_their_paths() {
    let servers = start(&FaultPlan::none()).await;
    for target in targets(&servers) {
        let faults = target.faults();
        faults.inject_next(3, Fault::ServerError(503));
        faults.inject_next_on("/elsewhere", 2, Fault::ServerError(500));
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(target.read_status().await.as_u16());
        }
        assert_eq!(statuses, [503, 503, 503, 200, 200], "{:?}", target.vendor);
        assert_eq!(faults.pending(), 2, "not due on other paths");
        assert_eq!(faults.injected(FaultKind::ServerError), 3);
        faults.clear();
        assert_eq!(faults.pending(), 0);
        assert_eq!(target.read_status().await, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_revoked_token_stays_revoked_until_restored() {
    let servers = start(&FaultPlan::none()).await;
    for target in targets(&servers) {
        let faults = target.faults();
        faults.revoke_token();
        faults.inject_next(1, Fault::ServerError(500));
        for _ in 0..4 {
            assert_eq!(target.read_status().await, StatusCode::UNAUTHORIZED);
        }
        assert!(faults.is_revoked());
        faults.restore_token();
        assert_eq!(
            target.read_status().await.as_u16(),
            500,
            "the schedule waited"
        );
        assert_eq!(target.read_status().await, StatusCode::OK);
        assert_eq!(faults.injected(FaultKind::Unauthorized), 4);
    }

    // Configured at start: revoked from the first request.
    let revoked = start(&FaultPlan::none().revoked()).await;
    for target in targets(&revoked) {
        assert_eq!(target.read_status().await, StatusCode::UNAUTHORIZED);
        target.faults().restore_token();
        assert_eq!(target.read_status().await, StatusCode::OK);
    }
}

/// The faults of 300 reads from each fake, in order.
async fn faults_of_300_reads(plan: &FaultPlan) -> Vec<Vec<Option<FaultKind>>> {
    let servers = start(plan).await;
    let client = Client::new();
    let mut runs = Vec::new();
    for target in targets(&servers) {
        for _ in 0..300 {
            let _ = target.read(&client).send().await;
        }
        runs.push(target.requests().into_iter().map(|r| r.fault).collect());
    }
    runs
}

#[tokio::test]
async fn rates_are_reproducible_for_a_seed_and_near_their_rate() {
    let plan = FaultPlan::rates(42)
        .with(Fault::ServerError(503), 0.20)
        .with(Fault::TooManyRequests { retry_after: None }, 0.10);
    let first = faults_of_300_reads(&plan).await;
    assert_eq!(
        first,
        faults_of_300_reads(&plan).await,
        "same seed, same faults"
    );
    assert_ne!(first, faults_of_300_reads(&plan.clone().with_seed(7)).await);
    for (vendor, run) in VENDORS.iter().zip(&first) {
        let count = |kind| run.iter().filter(|f| **f == Some(kind)).count();
        let (errors, refusals) = (
            count(FaultKind::ServerError),
            count(FaultKind::TooManyRequests),
        );
        // 60 and 30 expected; well within four standard deviations.
        assert!(
            (32..=88).contains(&errors),
            "{vendor:?}: {errors} 503s of 300"
        );
        assert!(
            (12..=50).contains(&refusals),
            "{vendor:?}: {refusals} 429s of 300"
        );
        assert_eq!(run.len(), 300);
    }
}
