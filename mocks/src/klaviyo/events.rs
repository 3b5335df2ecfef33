//! `POST /api/events` → 202 with no body. The event's profile is upserted like a
//! profile-import; an event repeating a `unique_id` for the same profile and metric is
//! accepted but recorded only once (Klaviyo's idempotency rule, which tier events rely on),
//! whether it came alone or in an event bulk job ([`super::event_bulk`]).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::ids::ulid;
use super::profiles::Mode;
use super::spec;
use super::{Shared, Store};

/// Where the metric name sits in an event's attributes.
const METRIC_NAME: &str = "/metric/data/attributes/name";

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    /// The metric's name, e.g. `VIP Tier Changed`.
    pub metric: String,
    pub profile_id: String,
    /// The profile's identifiers when the event was recorded.
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub properties: Map<String, Value>,
    pub unique_id: Option<String>,
    /// Truncated to the second, as Klaviyo does.
    pub time: DateTime<Utc>,
    pub value: Option<f64>,
    pub value_currency: Option<String>,
    /// When this fake recorded it (a bulk job records its events after it answered).
    pub received: DateTime<Utc>,
}

/// Recorded events, oldest first, with the keys already seen for deduplication.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Vec<Event>,
    /// (profile id, metric, unique_id or the time to the second)
    seen: HashSet<(String, String, String)>,
}

impl EventLog {
    pub fn all(&self) -> &[Event] {
        &self.events
    }

    /// Records `event` unless its profile, metric and unique id were seen before.
    fn record(&mut self, event: Event) {
        let unique = event
            .unique_id
            .clone()
            .unwrap_or_else(|| event.time.to_rfc3339());
        let key = (event.profile_id.clone(), event.metric.clone(), unique);
        if self.seen.insert(key) {
            self.events.push(event);
        }
    }
}

pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let body = spec::validated(spec::CREATE_EVENT, &body)?;
    let attributes = &body["data"]["attributes"];
    let now = Utc::now();
    let checked = Checked::new(attributes, "/data/attributes", now)?;
    let mut store = shared.store();
    record(
        &mut store,
        &attributes["profile"]["data"],
        "/data/attributes/profile/data",
        checked,
        now,
    )?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// One event's own fields, checked as Klaviyo checks them when the request arrives.
#[derive(Debug, Clone)]
pub(super) struct Checked {
    metric: String,
    properties: Map<String, Value>,
    unique_id: Option<String>,
    time: DateTime<Utc>,
    value: Option<f64>,
    value_currency: Option<String>,
}

impl Checked {
    /// Checks the event attributes found at `at` (a JSON pointer, for error sources): metric
    /// name length, property count and time.
    pub(super) fn new(
        attributes: &Value,
        at: &str,
        now: DateTime<Utc>,
    ) -> Result<Checked, ApiError> {
        let metric = attributes
            .pointer("/metric/data/attributes/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if metric.is_empty() || metric.chars().count() >= 128 {
            return Err(ApiError::invalid(
                "Metric name must be between 1 and 127 characters.",
                format!("{at}{METRIC_NAME}"),
            ));
        }
        let properties = attributes["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if properties.len() > 400 {
            return Err(ApiError::invalid(
                "Events may not have more than 400 properties.",
                format!("{at}/properties"),
            ));
        }
        Ok(Checked {
            metric: metric.to_string(),
            properties,
            unique_id: attributes["unique_id"].as_str().map(str::to_string),
            time: event_time(attributes.get("time"), now, at)?,
            value: attributes["value"].as_f64(),
            value_currency: attributes["value_currency"].as_str().map(str::to_string),
        })
    }

    pub(super) fn metric(&self) -> &str {
        &self.metric
    }

    /// What makes two events of one profile and metric the same: the `unique_id`, or the
    /// time to the second without one.
    pub(super) fn unique_key(&self) -> String {
        self.unique_id
            .clone()
            .unwrap_or_else(|| self.time.to_rfc3339())
    }
}

/// Upserts the event's profile (the resource at `pointer`) like a profile-import, then records
/// the event for it unless it repeats one already recorded.
pub(super) fn record(
    store: &mut Store,
    profile: &Value,
    pointer: &str,
    event: Checked,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let profile = store
        .profiles
        .write(profile, Mode::Upsert, pointer, now)?
        .profile;
    let event = Event {
        id: ulid(now, store.events.all().len() as u64),
        metric: event.metric,
        profile_id: profile.id,
        email: profile.email,
        external_id: profile.external_id,
        properties: event.properties,
        unique_id: event.unique_id,
        time: event.time,
        value: event.value,
        value_currency: event.value_currency,
        received: now,
    };
    store.events.record(event);
    Ok(())
}

/// The event's `time` (default: now), to the second; after 1990 and at most a year ahead.
fn event_time(
    sent: Option<&Value>,
    now: DateTime<Utc>,
    at: &str,
) -> Result<DateTime<Utc>, ApiError> {
    let invalid = |detail: &str| ApiError::invalid(detail, format!("{at}/time"));
    let time = match sent.and_then(Value::as_str) {
        None => now,
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| invalid("Time must be an ISO 8601 datetime."))?,
    };
    let earliest = Utc.with_ymd_and_hms(1990, 1, 1, 0, 0, 0).single();
    if earliest.is_some_and(|earliest| time < earliest) || time > now + Duration::days(365) {
        return Err(invalid(
            "Time must be after 1990 and at most one year in the future.",
        ));
    }
    Ok(time.trunc_subsecs(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(unique_id: Option<&str>, metric: &str) -> Event {
        Event {
            id: "e".into(),
            metric: metric.into(),
            profile_id: "p".into(),
            email: None,
            external_id: None,
            properties: Map::new(),
            unique_id: unique_id.map(str::to_string),
            time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            value: None,
            value_currency: None,
            received: Utc::now(),
        }
    }

    #[test]
    fn same_unique_id_profile_and_metric_is_recorded_once() {
        let mut log = EventLog::default();
        log.record(event(Some("u1"), "Tier Changed"));
        log.record(event(Some("u1"), "Tier Changed"));
        log.record(event(Some("u1"), "Other Metric"));
        log.record(event(Some("u2"), "Tier Changed"));
        assert_eq!(log.all().len(), 3);
    }

    #[test]
    fn without_unique_id_the_second_is_the_key() {
        let mut log = EventLog::default();
        log.record(event(None, "m"));
        log.record(event(None, "m"));
        assert_eq!(log.all().len(), 1);
    }

    #[test]
    fn time_is_checked_and_truncated() {
        let now = Utc::now();
        let at = "/data/attributes";
        let time = event_time(Some(&"2026-03-01T10:00:00.750+02:00".into()), now, at).unwrap();
        assert_eq!(time, Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap());
        let early = event_time(Some(&"1989-12-31T00:00:00Z".into()), now, at).unwrap_err();
        assert_eq!(
            early.source,
            Some(super::super::errors::Source::Pointer(
                "/data/attributes/time".into()
            ))
        );
        assert!(event_time(Some(&"yesterday".into()), now, at).is_err());
        assert!(event_time(None, now, at).is_ok());
    }
}
