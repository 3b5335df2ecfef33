//! `POST /webhooks/shopify` (`webhooks.enabled`): Shopify's `orders/create`, `orders/updated`
//! and `refunds/create` deliveries start the daemon's next pass early.
//!
//! A delivery is a hint, never data: nothing of its body is stored. The pass it starts reads
//! the changed orders from the Admin API like every poll (`updated_at` past the cursor), so
//! one path writes orders and polling stays the source of truth; a lost delivery costs only
//! latency. Per delivery, in order:
//! 1. the body (at most [`MAX_BODY`]) must be signed with a configured secret, else 401 and
//!    nothing else happens;
//! 2. a delivery for another shop is answered 200 and ignored (a subscription pointing at
//!    the wrong daemon: retrying would not help);
//! 3. `X-Shopify-Webhook-Id` is recorded in the store; one seen before (Shopify retries a
//!    delivery whose answer it missed) is answered 200 and ignored;
//! 4. a delivery whose change polling has read already (its `updated_at`, for a refund its
//!    `created_at`, before the orders cursor minus `shopify.overlap`; Shopify may deliver up
//!    to a day late) is answered 200 and ignored;
//! 5. otherwise the loop is woken ([`super::Daemon::wake`]) and the answer is 200 at once:
//!    Shopify waits 5 s at most, and the pass runs after the answer.
//!
//! The id and time headers are not signed (only the body is), so they are used as hints:
//! a forged id can at worst cause one more pass, which the loop's spacing bounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::metrics::WebhookOutcome;
use super::signature;
use super::Daemon;

/// The route Shopify's subscriptions point at (through the reverse proxy).
pub const PATH: &str = "/webhooks/shopify";

/// The largest body accepted: an order with hundreds of line items is a few hundred KB.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// How long a delivery id is remembered: Shopify retries a delivery for 4 hours and can
/// deliver up to a day late.
const RETENTION: chrono::Duration = chrono::Duration::hours(48);

/// How often remembered ids are expired (on a delivery, not on a timer).
const EXPIRE_EVERY: Duration = Duration::from_secs(3600);

/// The longest delivery id kept (Shopify's are UUIDs): a key's size is bounded.
const MAX_ID: usize = 128;

/// The topics that can change a customer's orders.
const TOPICS: [&str; 3] = ["orders/create", "orders/updated", "refunds/create"];

/// What a delivery body must hold for the lateness check; everything else is ignored.
#[derive(Deserialize)]
struct Hint {
    updated_at: Option<DateTime<Utc>>,
    created_at: Option<DateTime<Utc>>,
}

/// The receiver's state beside the daemon's: when ids were last expired.
pub struct Receiver {
    last_expiry: std::sync::Mutex<Option<Instant>>,
}

impl Receiver {
    pub fn new() -> Receiver {
        Receiver {
            last_expiry: std::sync::Mutex::new(None),
        }
    }

    /// Whether ids are due for expiry now (and, if so, the next time is an hour on).
    fn expiry_due(&self) -> bool {
        let mut last = self.last_expiry.lock().expect("webhook expiry lock");
        let due = last.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The answer to a delivery, counted in `/metrics` by what became of it.
fn answer(
    daemon: &Daemon,
    outcome: WebhookOutcome,
    status: StatusCode,
    text: &'static str,
) -> Response {
    daemon.metrics.webhook(outcome);
    (status, text).into_response()
}

pub async fn shopify(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let topic = header(&headers, "x-shopify-topic").unwrap_or("");
    let shop = header(&headers, "x-shopify-shop-domain").unwrap_or("");
    let id = header(&headers, "x-shopify-webhook-id").unwrap_or("");
    let pipeline = daemon.pipeline();
    let settings = pipeline.settings();
    if let Err(refusal) = signature::verify(
        &body,
        header(&headers, "x-shopify-hmac-sha256"),
        &settings.webhooks.secrets,
    ) {
        tracing::warn!(
            topic,
            shop,
            webhook_id = id,
            body_bytes = body.len(),
            reason = refusal.reason(),
            "webhook refused"
        );
        return answer(
            &daemon,
            WebhookOutcome::Refused,
            StatusCode::UNAUTHORIZED,
            "signature refused\n",
        );
    }
    let ours = format!("{}.myshopify.com", settings.shopify.shop);
    if !shop.eq_ignore_ascii_case(&ours) {
        tracing::warn!(
            topic,
            shop,
            webhook_id = id,
            expected = %ours,
            "webhook for another shop ignored; point that shop's subscription at its own daemon"
        );
        return answer(
            &daemon,
            WebhookOutcome::Ignored,
            StatusCode::OK,
            "ignored: another shop\n",
        );
    }
    if id.is_empty() || id.len() > MAX_ID {
        tracing::warn!(
            topic,
            shop,
            "webhook without a usable X-Shopify-Webhook-Id refused"
        );
        return answer(
            &daemon,
            WebhookOutcome::Refused,
            StatusCode::BAD_REQUEST,
            "X-Shopify-Webhook-Id is missing\n",
        );
    }
    let store = pipeline.store();
    let now = Utc::now();
    if daemon.webhooks.expiry_due() {
        match store.expire_webhooks(now - RETENTION) {
            Ok(expired) => tracing::debug!(expired, "old webhook ids forgotten"),
            Err(error) => tracing::warn!(%error, "forgetting old webhook ids"),
        }
    }
    match store.record_webhook(id, now) {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(topic, webhook_id = id, "webhook replayed; already handled");
            return answer(
                &daemon,
                WebhookOutcome::Replayed,
                StatusCode::OK,
                "already received\n",
            );
        }
        Err(error) => {
            // Shopify retries a 5xx, so the delivery is not lost.
            tracing::error!(%error, topic, webhook_id = id, "recording a webhook id");
            return answer(
                &daemon,
                WebhookOutcome::Failed,
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot record the delivery\n",
            );
        }
    }
    if !TOPICS.contains(&topic) {
        tracing::info!(
            topic,
            webhook_id = id,
            "webhook topic tiersync does not use; ignored"
        );
        return answer(
            &daemon,
            WebhookOutcome::Ignored,
            StatusCode::OK,
            "ignored: topic\n",
        );
    }
    let changed_at = serde_json::from_slice::<Hint>(&body)
        .ok()
        .and_then(|hint| match topic {
            "refunds/create" => hint.created_at,
            _ => hint.updated_at,
        });
    let read_since = store.orders_cursor().ok().flatten().map(|cursor| {
        cursor - chrono::Duration::from_std(settings.shopify.overlap).unwrap_or_default()
    });
    if let (Some(changed), Some(read)) = (changed_at, read_since) {
        if changed < read {
            tracing::info!(
                topic,
                webhook_id = id,
                changed_at = %changed,
                "late webhook: polling has read this change already; ignored"
            );
            return answer(
                &daemon,
                WebhookOutcome::Late,
                StatusCode::OK,
                "ignored: already read\n",
            );
        }
    }
    tracing::info!(
        topic,
        webhook_id = id,
        "webhook received; the next pass starts now"
    );
    daemon.wake();
    answer(&daemon, WebhookOutcome::Accepted, StatusCode::OK, "ok\n")
}
