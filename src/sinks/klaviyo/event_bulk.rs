//! Event bulk jobs: `POST /api/event-bulk-create-jobs`, up to 1,000 events (5 MB) a request,
//! grouped by profile. Klaviyo answers 202 with no body and offers no way to read the job
//! back, so a 202 is all there is to know: the batch's events are acknowledged then. An event
//! Klaviyo refuses on arrival refuses the whole request; the batch is then sent one event at
//! a time, so only the refused event is parked. A batch whose answer was lost is sent again
//! next time; each event's `unique_id` makes Klaviyo record it once.

use std::collections::HashMap;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::client::{json_body, EVENT_BULK_CREATE};
use super::events::{event_attributes, event_profile, send_each};
use super::{DeliveryError, EventReport, KlaviyoClient};
use crate::http::ApiError;
use crate::store::{EventEntry, Store};

/// Klaviyo's ceilings per request, with headroom under the 5 MB payload limit.
const MAX_EVENTS: usize = 1_000;
const MAX_BYTES: usize = 4_500_000;

pub(super) async fn deliver(
    client: &KlaviyoClient,
    store: &Store,
    ready: Vec<EventEntry>,
    cancel: &CancellationToken,
    report: &mut EventReport,
) -> Result<(), DeliveryError> {
    for batch in batches(ready) {
        if cancel.is_cancelled() {
            break;
        }
        let body = bulk_body(&batch);
        match client
            .send(
                &EVENT_BULK_CREATE,
                EVENT_BULK_CREATE.path,
                Some(json_body(&body)),
            )
            .await
        {
            Ok(_) => {
                for event in &batch {
                    store.acknowledge_event(event)?;
                }
                store.flush()?;
                report.sent += batch.len();
                tracing::info!(events = batch.len(), "klaviyo event bulk job accepted");
            }
            Err(error) if error.is_credential() => return Err(error.into()),
            Err(ApiError::Rejected { status, detail, .. }) => {
                tracing::warn!(status, %detail, events = batch.len(), "klaviyo refused an event bulk job; sending its events one by one so only those it refuses are parked");
                send_each(client, store, batch, cancel, report).await?;
            }
            Err(error) => {
                tracing::warn!(%error, events = batch.len(), "event bulk job still failing; its events stay pending for the next pass");
                report.waiting += batch.len();
            }
        }
    }
    Ok(())
}

/// Splits events, oldest first, into requests within Klaviyo's count and size limits.
fn batches(events: Vec<EventEntry>) -> Vec<Vec<EventEntry>> {
    let mut out: Vec<Vec<EventEntry>> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let size = event_attributes(&event).to_string().len()
            + event_profile(&event).to_string().len()
            + 64;
        match out.last_mut() {
            Some(batch) if batch.len() < MAX_EVENTS && bytes + size <= MAX_BYTES => {
                batch.push(event);
                bytes += size;
            }
            _ => {
                out.push(vec![event]);
                bytes = size;
            }
        }
    }
    out
}

/// The request body: one `event-bulk-create` entry per customer, their events in order.
pub fn bulk_body(events: &[EventEntry]) -> Value {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut entries: Vec<(Value, Vec<Value>)> = Vec::new();
    for event in events {
        let attributes = json!({ "type": "event", "attributes": event_attributes(event) });
        match index.get(event.customer_id.as_str()) {
            Some(&i) => entries[i].1.push(attributes),
            None => {
                index.insert(&event.customer_id, entries.len());
                entries.push((event_profile(event), vec![attributes]));
            }
        }
    }
    let data: Vec<Value> = entries
        .into_iter()
        .map(|(profile, events)| {
            json!({
                "type": "event-bulk-create",
                "attributes": {
                    "profile": { "data": profile },
                    "events": { "data": events },
                }
            })
        })
        .collect();
    json!({
        "data": {
            "type": "event-bulk-create-job",
            "attributes": { "events-bulk-create": { "data": data } }
        }
    })
}
