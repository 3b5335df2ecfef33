//! Flow-triggering events: one per tier transition, sent after the customer's profile write
//! (flows read the new properties), with a `unique_id` derived from the transition so a
//! re-send after a crash never makes a second event. A few go one `POST /api/events` each;
//! many go as event bulk jobs ([`super::event_bulk`]).

use rust_decimal::prelude::ToPrimitive;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::client::{json_body, CREATE_EVENT};
use super::{DeliveryError, KlaviyoClient};
use crate::http::ApiError;
use crate::model::ProfileState;
use crate::store::{EventEntry, Store};

/// What one event delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventReport {
    /// Events Klaviyo accepted (single or in a bulk job), now acknowledged.
    pub sent: usize,
    /// Events Klaviyo refused for good, kept with its error for `status` and `retry`.
    pub parked: usize,
    /// Waiting for their customer's profile write, or still failing transiently.
    pub waiting: usize,
}

/// The body of `POST /api/events` for one transition.
pub fn event_body(event: &EventEntry) -> Value {
    let mut attributes = event_attributes(event);
    attributes["profile"] = json!({ "data": event_profile(event) });
    json!({ "data": { "type": "event", "attributes": attributes } })
}

/// The event's own attributes (what an event bulk job carries per event).
pub(super) fn event_attributes(event: &EventEntry) -> Value {
    json!({
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
    })
}

/// The profile the event is about: its email and external id.
pub(super) fn event_profile(event: &EventEntry) -> Value {
    let mut profile = serde_json::Map::new();
    if let Some(email) = &event.email {
        profile.insert("email".into(), json!(email));
    }
    profile.insert("external_id".into(), json!(event.external_id));
    json!({ "type": "profile", "attributes": profile })
}

/// Sends the pending events whose customer has no profile write pending, oldest first: from
/// `klaviyo.event_bulk_threshold` of them on as event bulk jobs, else one by one.
pub async fn deliver_events(
    client: &KlaviyoClient,
    store: &Store,
    cancel: &CancellationToken,
) -> Result<EventReport, DeliveryError> {
    let mut report = EventReport::default();
    let mut ready = Vec::new();
    for event in store.pending_events()? {
        // After the profile write: a flow triggered by the event reads the new properties.
        if store
            .pending_entry::<ProfileState>(&event.customer_id)?
            .is_some_and(|p| p.failed.is_none())
        {
            report.waiting += 1;
        } else {
            ready.push(event);
        }
    }
    if ready.is_empty() {
        return Ok(report);
    }
    let _busy = client.throughput().busy();
    if ready.len() >= client.event_bulk_threshold {
        super::event_bulk::deliver(client, store, ready, cancel, &mut report).await?;
    } else {
        send_each(client, store, ready, cancel, &mut report).await?;
    }
    Ok(report)
}

/// One `POST /api/events` per event, each acknowledged (and flushed) once Klaviyo took it.
pub(super) async fn send_each(
    client: &KlaviyoClient,
    store: &Store,
    events: Vec<EventEntry>,
    cancel: &CancellationToken,
    report: &mut EventReport,
) -> Result<(), DeliveryError> {
    for event in events {
        if cancel.is_cancelled() {
            break;
        }
        let body = event_body(&event);
        match client
            .send(&CREATE_EVENT, CREATE_EVENT.path, Some(json_body(&body)))
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
    Ok(())
}
