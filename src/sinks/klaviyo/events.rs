//! Flow-triggering events: one `POST /api/events` per tier transition, sent after the
//! customer's profile write (flows read the new properties), with a `unique_id` derived from
//! the transition so a re-send after a crash never makes a second event.

use rust_decimal::prelude::ToPrimitive;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::client::CREATE_EVENT;
use super::{DeliveryError, KlaviyoClient};
use crate::http::ApiError;
use crate::model::ProfileState;
use crate::store::{EventEntry, Store};

/// What one event delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventReport {
    pub sent: usize,
    pub parked: usize,
    /// Waiting for their customer's profile write, or still failing transiently.
    pub waiting: usize,
}

/// The body of `POST /api/events` for one transition.
pub fn event_body(event: &EventEntry) -> Value {
    let mut profile = serde_json::Map::new();
    if let Some(email) = &event.email {
        profile.insert("email".into(), json!(email));
    }
    profile.insert("external_id".into(), json!(event.external_id));
    json!({
        "data": {
            "type": "event",
            "attributes": {
                "properties": {
                    "from_tier": event.from_tier,
                    "to_tier": event.to_tier,
                    "from_state": event.from_state,
                    "to_state": event.to_state,
                    "clv_blended": event.clv_blended.round_dp(2).to_f64().unwrap_or(0.0),
                    "peak_tier": event.peak_tier,
                    "reason": event.reason,
                },
                "time": event.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "unique_id": event.unique_id,
                "metric": { "data": { "type": "metric", "attributes": { "name": event.metric } } },
                "profile": { "data": { "type": "profile", "attributes": profile } }
            }
        }
    })
}

/// Sends the pending events whose customer has no profile write pending, oldest first.
pub async fn deliver_events(
    client: &KlaviyoClient,
    store: &Store,
    cancel: &CancellationToken,
) -> Result<EventReport, DeliveryError> {
    let mut report = EventReport::default();
    for event in store.pending_events()? {
        if cancel.is_cancelled() {
            break;
        }
        if store
            .pending_entry::<ProfileState>(&event.customer_id)?
            .is_some_and(|p| p.failed.is_none())
        {
            report.waiting += 1;
            continue;
        }
        let body = event_body(&event);
        match client
            .send(&CREATE_EVENT, CREATE_EVENT.path, Some(&body))
            .await
        {
            Ok(_) => {
                store.acknowledge_event(&event)?;
                store.flush()?;
                report.sent += 1;
            }
            Err(error) if error.is_credential() => return Err(error.into()),
            Err(ApiError::Rejected { status, detail, .. }) => {
                tracing::warn!(customer = %event.customer_id, metric = %event.metric, status, %detail, "klaviyo refused an event; parked");
                store.park_event(&event, &format!("HTTP {status}: {detail}"))?;
                report.parked += 1;
            }
            Err(error) => {
                tracing::warn!(customer = %event.customer_id, %error, "event still failing; it stays pending for the next pass");
                report.waiting += 1;
            }
        }
    }
    Ok(report)
}
