//! Shopify authentication as an app made in the Dev Dashboard: expiring tokens from the client
//! credentials grant, renewed by the daemon across expiries (and once on a 401), a refused
//! client secret, and the access scopes checked before anything is read or written.

use std::time::{Duration, Instant};

use crate::common::{self, customer, hand_built_store, order, spawn_with, store, TestEnv};
use tiersync::sources::shopify::shop_timezone;
use tiersync::store::Store;
use tiersync::vendors::shopify::ShopifyClient;
use tiersync::Pipeline;
use tiersync_mocks::MockOptions;
use tokio_util::sync::CancellationToken;

const GRAPHQL: &str = "/admin/api/2026-10/graphql.json";
const TOKEN: &str = "/admin/oauth/access_token";

/// The fakes with the hand-built store, tokens living `lifetime`, the app granted `scopes`
/// (`None`: every scope tiersync asks for), and settings using client credentials.
async fn env_with(lifetime: Duration, scopes: Option<&[&str]>) -> TestEnv {
    let mut options = MockOptions::default();
    options.shopify.token_lifetime = lifetime;
    if let Some(scopes) = scopes {
        options.shopify.scopes = scopes.iter().map(|s| s.to_string()).collect();
    }
    let mut env = spawn_with(hand_built_store().0, options).await;
    env.use_client_credentials();
    env
}

/// GraphQL requests the fake answered 401.
fn refused(env: &TestEnv) -> usize {
    env.servers
        .shopify
        .requests()
        .iter()
        .filter(|r| r.path == GRAPHQL && r.status == 401)
        .count()
}

/// A new customer with one $600 order placed now (Silver by spending).
fn new_buyer(env: &TestEnv, n: u64) -> String {
    let email = format!("newbuyer{n}@example.com");
    let id = 1_000 + n;
    env.servers.shopify.upsert_customer(customer(id, &email));
    env.servers
        .shopify
        .upsert_order(order(10_000 + n, Some((id, &email)), 0, "600.00").build());
    email
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_syncing_across_token_expiries() {
    let _clock = common::timing_sensitive().await; // 2 s tokens, passes by a deadline
    let env = env_with(Duration::from_secs(2), None).await;
    let config = env.config_file();
    let mut daemon = env
        .binary(&["run", "--config", config.to_str().unwrap()], "run.log")
        .env("RUST_LOG", "tiersync=info")
        .spawn()
        .expect("daemon starts");

    // New orders keep arriving while tokens expire every 2 s.
    let started = Instant::now();
    let mut buyers = Vec::new();
    for n in 0..6 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        buyers.push(new_buyer(&env, n));
    }
    let delivered = |env: &TestEnv| {
        buyers
            .iter()
            .filter(|email| env.klaviyo_tier(email).as_deref() == Some("Silver"))
            .count()
    };
    while delivered(&env) < buyers.len() && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = daemon.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let status = daemon.wait().expect("the daemon stops");
    let log = env.log("run.log");

    let tokens = env.servers.shopify.tokens_issued();
    let passes = log.matches("pass finished").count();
    let issued_lines = log
        .matches("Shopify access token issued (client credentials grant)")
        .count();
    println!(
        "run for {:.1} s with 2 s tokens: {tokens} tokens issued, {passes} passes finished, \
         {} failed, {} GraphQL answers 401, {} of {} new orders' customers in Klaviyo",
        started.elapsed().as_secs_f64(),
        log.matches("pass failed").count(),
        refused(&env),
        delivered(&env),
        buyers.len()
    );
    assert!(status.success(), "{log}");
    assert_eq!(
        delivered(&env),
        buyers.len(),
        "every new order reached Klaviyo: {log}"
    );
    assert!(
        tokens >= 3,
        "{tokens} tokens: the run spanned several expiries"
    );
    assert_eq!(
        issued_lines, tokens,
        "each token the fake issued was the daemon's"
    );
    assert!(passes >= 6, "{passes} passes: {log}");
    assert!(!log.contains("pass failed"), "no pass failed: {log}");
    assert!(
        !log.contains(&env.servers.shopify.client_secret()),
        "the client secret never prints"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_replaced_once_and_the_request_succeeds() {
    let env = env_with(Duration::from_secs(86_400), None).await;
    let pipeline = Pipeline::open(env.settings.clone()).unwrap();
    let cancel = CancellationToken::new();
    pipeline.pass(&cancel).await.expect("first pass");
    assert_eq!(env.servers.shopify.tokens_issued(), 1);

    // Shopify ends the token long before its `expires_in` (e.g. the app was reinstalled).
    env.servers.shopify.expire_tokens();
    env.servers.shopify.clear_requests();
    let email = new_buyer(&env, 1);
    let report = pipeline
        .pass(&cancel)
        .await
        .expect("the pass succeeds after one new token");
    assert_eq!(
        env.servers.shopify.tokens_issued(),
        2,
        "exactly one re-fetch"
    );
    assert_eq!(
        refused(&env),
        1,
        "one 401, then the retry with the new token"
    );
    assert_eq!(env.servers.shopify.count("POST", TOKEN), 1);
    assert_eq!(report.ingest.orders_changed, 1);
    assert_eq!(env.klaviyo_tier(&email).as_deref(), Some("Silver"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_token_fetch() {
    let env = env_with(Duration::from_secs(86_400), None).await;
    let client = ShopifyClient::new(&env.settings, Default::default(), Default::default());
    let all = || futures::future::join_all((0..8).map(|_| shop_timezone(&client)));
    assert!(all().await.iter().all(Result::is_ok));
    assert_eq!(
        env.servers.shopify.tokens_issued(),
        1,
        "one fetch for 8 requests"
    );

    env.servers.shopify.expire_tokens();
    assert!(all().await.iter().all(Result::is_ok));
    assert_eq!(
        env.servers.shopify.tokens_issued(),
        2,
        "8 requests refused with the same token fetch one new token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_renewed_before_it_expires() {
    let _clock = common::timing_sensitive().await; // sleeps to 0.25 s before the expiry
                                                   // 3 s tokens are renewed 0.3 s (a tenth) before they expire.
    let env = env_with(Duration::from_secs(3), None).await;
    let client = ShopifyClient::new(&env.settings, Default::default(), Default::default());
    shop_timezone(&client).await.expect("first request");
    tokio::time::sleep(Duration::from_millis(2_750)).await;
    shop_timezone(&client).await.expect("second request");
    assert_eq!(env.servers.shopify.tokens_issued(), 2, "renewed");
    assert_eq!(refused(&env), 0, "before Shopify refused the old token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_stops_the_pass_naming_the_settings() {
    let env = env_with(Duration::from_secs(86_400), None).await;
    let config = env.config_file();
    let wrong = "shpss_wrong_secret_0123456789";
    let status = env
        .binary(&["once", "--config", config.to_str().unwrap()], "once.log")
        .env("TIERSYNC__SHOPIFY__CLIENT_SECRET", wrong)
        .status()
        .unwrap();
    let log = env.log("once.log");
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("credential was refused (HTTP 401)")
            && log.contains("shopify.client_id / shopify.client_secret")
            && log.contains("invalid_client"),
        "{log}"
    );
    assert!(!log.contains(wrong), "the secret never prints: {log}");
    assert_eq!(env.servers.shopify.tokens_issued(), 0);
    assert_eq!(env.servers.shopify.count("POST", GRAPHQL), 0);
    let store = Store::open(&env.settings.store.path).unwrap();
    assert_eq!(
        store.orders_cursor().unwrap(),
        None,
        "the cursor did not move"
    );
}

/// A pass that must fail, as the message an operator reads.
async fn refused_pass(env: &TestEnv) -> String {
    Pipeline::open(env.settings.clone())
        .unwrap()
        .pass(&CancellationToken::new())
        .await
        .expect_err("the pass is refused")
        .to_string()
}

/// Requests the fake Shopify received whose body names any of `words` (a mutation or query).
fn requests_naming(env: &TestEnv, words: &[&str]) -> usize {
    env.servers
        .shopify
        .requests()
        .iter()
        .filter(|r| words.iter().any(|w| r.body.contains(w)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_all_orders_the_backfill_waits_for_the_scope_or_an_opt_in() {
    let scopes = ["read_orders", "read_customers", "write_customers"];
    let mut env = env_with(Duration::from_secs(86_400), Some(&scopes)).await;
    let error = refused_pass(&env).await;
    assert!(
        error.contains("`read_all_orders`") && error.contains("shopify.accept_partial_history"),
        "{error}"
    );
    let bulk_runs = requests_naming(&env, &["bulkOperationRunQuery"]);
    assert_eq!(bulk_runs, 0, "nothing was read");
    assert_eq!(env.profile_writes(), 0, "nothing was written");
    {
        let store = Store::open(&env.settings.store.path).unwrap();
        assert_eq!(
            store.orders_cursor().unwrap(),
            None,
            "the cursor did not move"
        );
    }

    // The merchant accepts the last 60 days only.
    env.settings.shopify.accept_partial_history = true;
    let report = env.pass().await;
    let recent = env
        .servers
        .shopify
        .orders()
        .iter()
        .filter(|o| o.created_at >= chrono::Utc::now() - chrono::Duration::days(60))
        .count();
    assert!(
        recent < env.servers.shopify.orders().len(),
        "the store has older orders"
    );
    assert_eq!(
        report.ingest.orders_read, recent,
        "only the last 60 days are visible"
    );
    assert!(report.partial_history_since.is_some());
    let text = report.to_string();
    assert!(
        text.contains("PARTIAL") && text.contains("read_all_orders"),
        "{text}"
    );
    let store = Store::open(&env.settings.store.path).unwrap();
    let status = tiersync::ops::status::status(&store, &env.settings).unwrap();
    assert!(status.contains("order history    PARTIAL"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_write_customers_the_storefront_is_refused_before_any_write() {
    let scopes = ["read_orders", "read_all_orders", "read_customers"];
    let mut env = env_with(Duration::from_secs(86_400), Some(&scopes)).await;
    assert!(env.settings.storefront.enabled);
    let error = refused_pass(&env).await;
    assert!(
        error.contains("`write_customers`") && error.contains("storefront.enabled = false"),
        "{error}"
    );
    let writes = requests_naming(&env, &["tagsAdd", "metafieldsSet"]);
    assert_eq!(writes, 0);
    assert_eq!(env.profile_writes(), 0);

    // With the storefront off, the same app syncs Klaviyo.
    env.settings.storefront.enabled = false;
    let report = env.pass().await;
    assert!(report.delivery.written > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_orders_nothing_runs() {
    let mut env = env_with(Duration::from_secs(86_400), Some(&["write_customers"])).await;
    env.servers.shopify.load(store(vec![], vec![]));
    let error = refused_pass(&env).await;
    assert!(error.contains("`read_orders`"), "{error}");
    env.settings.shopify.accept_partial_history = true;
    assert!(Pipeline::open(env.settings.clone())
        .unwrap()
        .pass(&CancellationToken::new())
        .await
        .is_err());
}
