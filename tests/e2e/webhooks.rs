//! Shopify webhooks on the daemon's endpoint (`webhooks.enabled`): the `tiersync` binary runs
//! against the fakes with `sync.poll_interval` an hour long, so only a webhook can start a
//! pass during a test. A signed `orders/create` for a qualifying order brings the customer's
//! tier-entry event to Klaviyo within seconds; an unsigned or altered delivery is 401 and
//! starts nothing; a replayed delivery starts nothing; a late delivery changes nothing.

use std::process::Child;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::Engine;
use chrono::{DateTime, Utc};
use tiersync_mocks::data::Order;

use crate::common::{self, customer, order, spawn, store, TestEnv, ALICE};
use crate::http_endpoint::{
    exited, free_address, get, sample, samples, sigterm, start_daemon, wait_until_async,
};

const SECRET: &str = "webhook-signing-secret-for-tests";
const SHOP_DOMAIN: &str = "tiersync-test.myshopify.com";
const ENTERED: &str = "VIP Tier Entered";

/// How long a test watches for a pass that must not happen: longer than the spacing between
/// webhook passes (2 s), so a wake-up would have shown.
const QUIET: Duration = Duration::from_secs(3);

/// Alice with one small order, and the daemon with webhooks on, after its first pass.
async fn daemon_after_first_pass(orders: Vec<Order>) -> (TestEnv, String, Child) {
    let env = spawn(store(vec![customer(ALICE.0, ALICE.1)], orders)).await;
    let address = free_address();
    let daemon = start_daemon(
        &env,
        &address,
        &[
            ("TIERSYNC__SYNC__POLL_INTERVAL", "1h"),
            ("TIERSYNC__WEBHOOKS__ENABLED", "true"),
            ("TIERSYNC__WEBHOOKS__SECRET", SECRET),
        ],
    );
    assert!(
        wait_until_async(Duration::from_secs(60), || async {
            get_ready(&address).await
        })
        .await,
        "the first pass never finished: {}",
        env.log("run.log")
    );
    (env, address, daemon)
}

async fn get_ready(address: &str) -> bool {
    reqwest::get(format!("http://{address}/readyz"))
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// The body's signature as Shopify makes it, computed here with the crypto library directly.
fn sign(secret: &str, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, body.as_bytes()))
}

/// An order as an `orders/*` webhook carries it (the REST representation, trimmed).
fn order_body(order: &Order, total: &str, updated_at: DateTime<Utc>) -> String {
    serde_json::json!({
        "id": order.id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{}", order.id),
        "name": order.name,
        "email": order.email,
        "created_at": order.created_at.to_rfc3339(),
        "updated_at": updated_at.to_rfc3339(),
        "total_price": total,
        "currency": "USD",
        "customer": { "id": order.customer_id, "email": order.email },
    })
    .to_string()
}

/// Posts a delivery; `signature` `None` sends none. Returns the status and the answer.
async fn deliver(
    address: &str,
    topic: &str,
    id: &str,
    body: &str,
    signature: Option<String>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{address}/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", SHOP_DOMAIN)
        .header("X-Shopify-Webhook-Id", id)
        .header("X-Shopify-API-Version", "2026-10")
        .header("X-Shopify-Triggered-At", Utc::now().to_rfc3339())
        .body(body.to_string());
    if let Some(signature) = signature {
        request = request.header("X-Shopify-Hmac-Sha256", signature);
    }
    let response = request.send().await.expect("the endpoint answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Orders pages the daemon has read: one or more per pass.
fn order_reads(env: &TestEnv) -> usize {
    env.servers
        .shopify
        .requests()
        .iter()
        .filter(|r| r.body.contains("TiersyncOrdersPage"))
        .count()
}

fn entry_events(env: &TestEnv, email: &str) -> usize {
    env.servers
        .klaviyo
        .events()
        .iter()
        .filter(|e| e.metric == ENTERED && e.email.as_deref() == Some(email))
        .count()
}

/// `/metrics`' count of deliveries with this outcome.
async fn counted(address: &str, outcome: &str) -> f64 {
    let text = get(address, "/metrics").await.1;
    sample(
        &samples(&text),
        &format!("tiersync_webhooks_total{{outcome=\"{outcome}\"}}"),
    )
}

async fn stop(env: &TestEnv, mut daemon: Child) {
    sigterm(&daemon);
    let exit = exited(&mut daemon, Duration::from_secs(10)).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}: {}",
        env.log("run.log")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_new_order_brings_the_entry_event_within_seconds_and_a_replay_does_nothing() {
    let _clock = common::timing_sensitive().await; // a deadline of seconds
    let (env, address, daemon) =
        daemon_after_first_pass(vec![order(1, Some(ALICE), 30, "100.00").build()]).await;
    assert_eq!(entry_events(&env, ALICE.1), 0, "not a VIP yet");

    // Alice orders 600.00: past Silver's 500.00. Shopify has the order, then sends the hook.
    let big = order(2, Some(ALICE), 0, "600.00").build();
    env.servers.shopify.upsert_order(big.clone());
    let body = order_body(&big, "600.00", big.updated_at);
    let sent = Instant::now();
    let answer = deliver(
        &address,
        "orders/create",
        "d1",
        &body,
        Some(sign(SECRET, &body)),
    )
    .await;
    let answered = sent.elapsed();
    assert_eq!(answer, (200, "ok\n".to_string()));
    assert!(
        answered < Duration::from_secs(1),
        "answered in {answered:?}"
    );
    assert!(
        wait_until_async(Duration::from_secs(10), || async {
            entry_events(&env, ALICE.1) == 1
        })
        .await,
        "no entry event: {}",
        env.log("run.log")
    );
    let latency = sent.elapsed();
    eprintln!("webhook → Klaviyo entry event: {latency:?} (answered in {answered:?})");
    assert!(latency < Duration::from_secs(5), "{latency:?}");
    assert_eq!(env.klaviyo_tier(ALICE.1).as_deref(), Some("Silver"));

    // Shopify sends the same delivery again (it missed the answer): 200, and nothing runs.
    let reads = order_reads(&env);
    let answer = deliver(
        &address,
        "orders/create",
        "d1",
        &body,
        Some(sign(SECRET, &body)),
    )
    .await;
    assert_eq!(answer, (200, "already received\n".to_string()));
    tokio::time::sleep(QUIET).await;
    assert_eq!(order_reads(&env), reads, "a replay started a pass");
    assert_eq!(entry_events(&env, ALICE.1), 1);
    assert!(env.log("run.log").contains("webhook replayed"));
    assert_eq!(counted(&address, "accepted").await, 1.0);
    assert_eq!(counted(&address, "replayed").await, 1.0);
    stop(&env, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_altered_or_foreign_deliveries_are_refused_and_start_nothing() {
    let (env, address, daemon) =
        daemon_after_first_pass(vec![order(1, Some(ALICE), 30, "100.00").build()]).await;
    // A qualifying order is waiting: any pass would send Alice's entry event.
    let big = order(2, Some(ALICE), 0, "600.00").build();
    env.servers.shopify.upsert_order(big.clone());
    let body = order_body(&big, "600.00", big.updated_at);
    let reads = order_reads(&env);

    let unsigned = deliver(&address, "orders/create", "u1", &body, None).await;
    let altered_body = body.replace("600.00", "6000.00");
    let altered = deliver(
        &address,
        "orders/create",
        "u2",
        &altered_body,
        Some(sign(SECRET, &body)),
    )
    .await;
    let foreign = deliver(
        &address,
        "orders/create",
        "u3",
        &body,
        Some(sign("another-apps-secret", &body)),
    )
    .await;
    let garbled = deliver(&address, "orders/create", "u4", &body, Some("%%%".into())).await;
    for (what, answer) in [
        ("unsigned", unsigned),
        ("altered", altered),
        ("foreign", foreign),
        ("garbled", garbled),
    ] {
        assert_eq!(answer.0, 401, "{what}: {answer:?}");
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        order_reads(&env),
        reads,
        "a refused delivery started a pass"
    );
    assert_eq!(entry_events(&env, ALICE.1), 0);
    let log = env.log("run.log");
    assert_eq!(log.matches("webhook refused").count(), 4, "{log}");
    assert!(log.contains("no X-Shopify-Hmac-Sha256 header"), "{log}");
    assert!(
        log.contains("signature does not match the body and the configured secret"),
        "{log}"
    );
    assert!(
        !log.contains(SECRET) && !log.contains("total_price"),
        "a secret or a body in the log"
    );
    assert_eq!(counted(&address, "refused").await, 4.0);

    // The refused ids were not remembered: the genuine delivery with one of them works.
    let answer = deliver(
        &address,
        "orders/create",
        "u2",
        &body,
        Some(sign(SECRET, &body)),
    )
    .await;
    assert_eq!(answer.0, 200);
    assert!(
        wait_until_async(Duration::from_secs(10), || async {
            entry_events(&env, ALICE.1) == 1
        })
        .await,
        "{}",
        env.log("run.log")
    );
    stop(&env, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_delivery_changes_nothing() {
    // Order 1 was 100.00; a refund of 40.00 two days later is what Shopify (and the store,
    // after the first pass) hold now.
    let first = order(1, Some(ALICE), 30, "100.00").build();
    let refunded = order(1, Some(ALICE), 30, "100.00")
        .refunded("40.00")
        .build();
    let (env, address, daemon) = daemon_after_first_pass(vec![refunded]).await;
    let reads = order_reads(&env);
    let tier = env.klaviyo_tier(ALICE.1);

    // The `orders/create` of a month ago arrives now, claiming a total that would qualify.
    let late = order_body(&first, "900.00", first.updated_at);
    let answer = deliver(
        &address,
        "orders/create",
        "l1",
        &late,
        Some(sign(SECRET, &late)),
    )
    .await;
    assert_eq!(answer, (200, "ignored: already read\n".to_string()));
    tokio::time::sleep(QUIET).await;
    assert_eq!(order_reads(&env), reads, "a late delivery started a pass");

    // A delivery within the overlap window does start a pass; its body is not believed: the
    // pass reads the order from the API, where nothing changed.
    let recent = order_body(&first, "900.00", Utc::now());
    let answer = deliver(
        &address,
        "orders/updated",
        "l2",
        &recent,
        Some(sign(SECRET, &recent)),
    )
    .await;
    assert_eq!(answer.0, 200);
    assert!(
        wait_until_async(Duration::from_secs(10), || async {
            order_reads(&env) > reads
        })
        .await,
        "no pass: {}",
        env.log("run.log")
    );
    tokio::time::sleep(QUIET).await;
    assert_eq!(entry_events(&env, ALICE.1), 0);
    assert_eq!(env.klaviyo_tier(ALICE.1), tier);
    let report = env.log("run.log");
    assert!(report.contains("late webhook"), "{report}");
    assert_eq!(counted(&address, "late").await, 1.0);
    assert_eq!(counted(&address, "accepted").await, 1.0);
    stop(&env, daemon).await;
}
