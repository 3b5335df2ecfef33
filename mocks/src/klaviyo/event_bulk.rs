//! `POST /api/event-bulk-create-jobs`: up to 1,000 events for one or more profiles in one
//! request (`events-bulk-create` entries, each a profile and its events), 5 MB at most, no
//! string over 100 KB. Limits from the spec's `bulk_create_events` (10/s burst, 150/m steady).
//!
//! What the vendored spec says, and this fake does:
//! - the answer is 202 with no body (the 202 response has no content), and no operation reads
//!   such a job back: it cannot be polled, so a client knows only that the batch was accepted;
//! - the checks Klaviyo can make on arrival (schema, counts, sizes, metric names, times) refuse
//!   the whole request with a JSON:API error pointing into the body; nothing is recorded;
//! - "if a unique_id is repeated for the same profile and metric, the request will fail and no
//!   events will be processed": a batch naming the same profile, metric and `unique_id` twice
//!   is refused whole. A `unique_id` already recorded by an earlier request (single or bulk)
//!   is de-duplicated as `POST /api/events` does: accepted, recorded once;
//! - the events are recorded later, one `bulk_job_step` after the answer, each upserting its
//!   profile like `POST /api/events`. A profile that fails then is logged and its events are
//!   dropped: with no job to read, the client never learns of it.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use super::errors::ApiError;
use super::events::{record, Checked};
use super::spec;
use super::Shared;

const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
const MAX_EVENTS: usize = 1_000;
const MAX_STRING_BYTES: usize = 100 * 1024;
const ENTRIES: &str = "/data/attributes/events-bulk-create/data";

/// One profile's events of the batch, checked.
struct Entry {
    profile: Value,
    pointer: String,
    events: Vec<Checked>,
}

pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(
            "Bulk event requests may not exceed 5 MB.",
        ));
    }
    let body = spec::validated(spec::BULK_CREATE_EVENTS, &body)?;
    if let Some(pointer) = long_string(&body, String::new()) {
        return Err(ApiError::invalid(
            "A single string may not exceed 100 KB.",
            pointer,
        ));
    }
    let entries = checked_entries(&body)?;
    let shared = Arc::clone(&shared);
    tokio::spawn(async move {
        tokio::time::sleep(shared.bulk_job_step).await;
        let now = Utc::now();
        let mut store = shared.store();
        for entry in entries {
            for event in entry.events {
                if let Err(error) = record(&mut store, &entry.profile, &entry.pointer, event, now) {
                    tracing::warn!(detail = %error.detail, pointer = %entry.pointer, "fake Klaviyo dropped a bulk event whose profile failed");
                }
            }
        }
    });
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Every entry with its events checked, or the first reason to refuse the whole request.
fn checked_entries(body: &Value) -> Result<Vec<Entry>, ApiError> {
    let now = Utc::now();
    let sent = body
        .pointer(ENTRIES)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let count: usize = sent
        .iter()
        .map(|e| {
            e.pointer("/attributes/events/data")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        })
        .sum();
    if count == 0 || count > MAX_EVENTS {
        return Err(ApiError::invalid(
            format!("A request must have between 1 and {MAX_EVENTS} events; it had {count}."),
            ENTRIES,
        ));
    }
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(sent.len());
    for (i, entry) in sent.iter().enumerate() {
        let at = format!("{ENTRIES}/{i}/attributes");
        let profile = entry["attributes"]["profile"]["data"].clone();
        let identity = profile_identity(&profile);
        let mut events = Vec::new();
        let sent_events = entry
            .pointer("/attributes/events/data")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (j, event) in sent_events.iter().enumerate() {
            let event_at = format!("{at}/events/data/{j}/attributes");
            let checked = Checked::new(&event["attributes"], &event_at, now)?;
            let key = (
                identity.clone(),
                checked.metric().to_string(),
                checked.unique_key(),
            );
            if !seen.insert(key) {
                return Err(ApiError::invalid(
                    "The unique_id is repeated for the same profile and metric in this request; no events were processed.",
                    format!("{event_at}/unique_id"),
                ));
            }
            events.push(checked);
        }
        entries.push(Entry {
            profile,
            pointer: format!("{at}/profile/data"),
            events,
        });
    }
    Ok(entries)
}

/// The identifiers an entry's profile is named by, to tell the same profile sent twice.
fn profile_identity(profile: &Value) -> String {
    let attributes = &profile["attributes"];
    let text = |key: &str| attributes[key].as_str().unwrap_or("").to_lowercase();
    format!(
        "{}|{}|{}|{}",
        profile["id"].as_str().unwrap_or(""),
        text("email"),
        text("phone_number"),
        attributes["external_id"].as_str().unwrap_or("")
    )
}

/// The JSON pointer of the first string longer than Klaviyo allows, if any.
fn long_string(value: &Value, at: String) -> Option<String> {
    match value {
        Value::String(s) if s.len() > MAX_STRING_BYTES => Some(at),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| long_string(v, format!("{at}/{k}"))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| long_string(v, format!("{at}/{i}"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(email: &str, events: &[(&str, &str)]) -> Value {
        let events: Vec<Value> = events
            .iter()
            .map(|(metric, unique_id)| {
                json!({"type": "event", "attributes": {
                    "properties": {}, "unique_id": unique_id,
                    "metric": {"data": {"type": "metric", "attributes": {"name": metric}}}}})
            })
            .collect();
        json!({"type": "event-bulk-create", "attributes": {
            "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            "events": {"data": events}}})
    }

    fn job(entries: Vec<Value>) -> Value {
        json!({"data": {"type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": entries}}}})
    }

    #[test]
    fn a_valid_job_passes_the_spec_and_the_checks() {
        let body = job(vec![
            entry("a@x.com", &[("M", "1"), ("M", "2"), ("N", "1")]),
            entry("b@x.com", &[("M", "1")]),
        ]);
        spec::validated(spec::BULK_CREATE_EVENTS, body.to_string().as_bytes()).unwrap();
        let entries = checked_entries(&body).unwrap();
        assert_eq!(entries.iter().map(|e| e.events.len()).sum::<usize>(), 4);
    }

    #[test]
    fn a_unique_id_repeated_for_one_profile_and_metric_refuses_the_whole_request() {
        let body = job(vec![
            entry("a@x.com", &[("M", "1")]),
            entry("A@x.com", &[("M", "1")]),
        ]);
        let error = checked_entries(&body).err().expect("refused");
        assert_eq!(
            error.source,
            Some(super::super::errors::Source::Pointer(format!(
                "{ENTRIES}/1/attributes/events/data/0/attributes/unique_id"
            )))
        );
    }

    #[test]
    fn more_than_a_thousand_events_are_refused() {
        let ids: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
        let events: Vec<(&str, &str)> = ids.iter().map(|id| ("M", id.as_str())).collect();
        let body = job(vec![entry("a@x.com", &events)]);
        assert!(checked_entries(&body)
            .err()
            .is_some_and(|e| e.detail.contains("1001")));
    }

    #[test]
    fn a_bad_time_points_into_its_event() {
        let mut body = job(vec![entry("a@x.com", &[("M", "1")])]);
        body.pointer_mut(&format!("{ENTRIES}/0/attributes/events/data/0/attributes"))
            .unwrap()["time"] = json!("1980-01-01T00:00:00Z");
        let error = checked_entries(&body).err().expect("refused");
        assert_eq!(
            error.source,
            Some(super::super::errors::Source::Pointer(format!(
                "{ENTRIES}/0/attributes/events/data/0/attributes/time"
            )))
        );
    }
}
