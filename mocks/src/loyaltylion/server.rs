//! The HTTP surface: routes under `/v2`, and the checks before any endpoint runs, in order —
//! injected faults, `Authorization: Bearer …` (401), then the key's per-second limit (429).
//! Both checks and recording are [`harness::bearer`]'s; every request is recorded with the
//! status it got.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, patch};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::ApiError;
use super::Shared;
use crate::harness;
use crate::harness::faults::Injected;
use crate::smile::paging::{page, Direction};
use crate::smile::wire::{millis, parse_time, query_pairs};

/// LoyaltyLion's default and largest page sizes.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;
/// The only fields `PATCH /v2/customers/{merchant_id}` accepts.
const PATCHABLE: [&str; 2] = ["birthday", "blocked"];

pub fn router(shared: Arc<Shared>) -> Router {
    let router = Router::new()
        .route("/v2/customers", get(list_customers))
        .route("/v2/customers/{merchant_id}", patch(update_customer))
        .fallback(|| async { ApiError::not_found("Not found") });
    harness::guarded(router, Arc::clone(&shared.gate)).with_state(shared)
}

/// The filters of a listing; a cursor carries them, so later pages need only the `cursor`
/// parameter — and `limit`, the one parameter LoyaltyLion reads beside a cursor. The cursor
/// does not carry the limit: a page requested with a cursor and no `limit` has the default
/// size, and other filters sent with a cursor are ignored
/// (<https://developers.loyaltylion.com/api-reference/pagination>).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at_min: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at_max: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at_min: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at_max: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cursor {
    last_id: u64,
    direction: Direction,
    #[serde(flatten)]
    filters: Filters,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str) -> Result<Cursor, ApiError> {
        URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| ApiError::invalid([("cursor", "Invalid cursor".to_owned())]))
    }
}

struct Listing {
    limit: usize,
    at: Option<(Direction, u64)>,
    filters: Filters,
}

fn listing(query: Option<String>) -> Result<Listing, ApiError> {
    let params = query_pairs(query.as_deref());
    let mut problems = Vec::new();
    let limit = params.get("limit").map(|text| {
        text.parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .unwrap_or_else(|| {
                problems.push(("limit", format!("Must be an integer from 1 to {MAX_LIMIT}")));
                DEFAULT_LIMIT
            })
    });
    let (at, filters) = match params.get("cursor").filter(|c| !c.is_empty()) {
        // Every other filter in the query is ignored: the cursor's own apply.
        Some(text) => {
            let cursor = Cursor::decode(text)?;
            (Some((cursor.direction, cursor.last_id)), cursor.filters)
        }
        None => {
            let mut time = |name: &'static str| {
                params.get(name).and_then(|text| {
                    let parsed = parse_time(text);
                    if parsed.is_none() {
                        problems.push((name, "Invalid ISO 8601 date-time".to_owned()));
                    }
                    parsed
                })
            };
            let filters = Filters {
                created_at_min: time("created_at_min"),
                created_at_max: time("created_at_max"),
                updated_at_min: time("updated_at_min"),
                updated_at_max: time("updated_at_max"),
                email: params.get("email").map(|e| e.trim().to_lowercase()),
                since_id: params.get("since_id").and_then(|id| {
                    let parsed = id.parse::<u64>().ok();
                    if parsed.is_none() {
                        problems.push(("since_id", "Must be a non-negative integer".to_owned()));
                    }
                    parsed
                }),
            };
            (None, filters)
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    Ok(Listing {
        limit: limit.unwrap_or(DEFAULT_LIMIT),
        at,
        filters,
    })
}

/// `GET /v2/customers`: newest id first, `{customers, cursor: {prev, next}}`.
async fn list_customers(
    State(shared): State<Arc<Shared>>,
    injected: Injected,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let Listing { limit, at, filters } = listing(query)?;
    let store = shared.store();
    let f = &filters;
    let within = |at: DateTime<Utc>, min: Option<DateTime<Utc>>, max: Option<DateTime<Utc>>| {
        min.is_none_or(|min| at >= min) && max.is_none_or(|max| at <= max)
    };
    let matching: Vec<_> = store
        .customers()
        .into_iter()
        .filter(|c| f.since_id.is_none_or(|id| c.id > id))
        .filter(|c| f.email.as_ref().is_none_or(|e| &c.email == e))
        .filter(|c| within(c.created_at, f.created_at_min, f.created_at_max))
        .filter(|c| within(c.updated_at, f.updated_at_min, f.updated_at_max))
        .map(|c| (c.id, c))
        .collect();
    let page = page(matching, at, limit, injected.repeat_page(at.is_some()));
    let cursor = |last_id: u64, direction: Direction| {
        Cursor {
            last_id,
            direction,
            filters: filters.clone(),
        }
        .encode()
    };
    let customers: Vec<Value> = page.items.iter().map(|c| store.customer_json(c)).collect();
    Ok(Json(json!({
        "customers": customers,
        "cursor": {
            "prev": page.prev.map(|id| cursor(id, Direction::Prev)),
            "next": page.next.map(|id| cursor(id, Direction::Next)),
        },
    })))
}

/// `PATCH /v2/customers/{merchant_id}` with `{"customer": {"birthday"?, "blocked"?}}`; any
/// other field is refused with 400 before anything changes.
async fn update_customer(
    State(shared): State<Arc<Shared>>,
    Path(merchant_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid([("body", "Invalid JSON".to_owned())]))?;
    let Some(top) = body.as_object() else {
        return Err(ApiError::invalid([(
            "body",
            "Expected an object".to_owned(),
        )]));
    };
    let mut problems: Vec<(&str, String)> = top
        .keys()
        .filter(|key| *key != "customer")
        .map(|key| (key.as_str(), "Unrecognized key".to_owned()))
        .collect();
    let fields = top.get("customer").and_then(Value::as_object);
    if fields.is_none() {
        problems.push(("customer", "Required".to_owned()));
    }
    let mut birthday = None;
    let mut blocked = None;
    let mut keys: Vec<(String, String)> = Vec::new();
    for (key, value) in fields.into_iter().flatten() {
        match key.as_str() {
            "birthday" => match value {
                Value::Null => birthday = Some(None),
                Value::String(text) if NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() => {
                    birthday = Some(Some(text.clone()));
                }
                _ => keys.push((key.clone(), "Expected a date (YYYY-MM-DD)".to_owned())),
            },
            "blocked" => match value.as_bool() {
                Some(flag) => blocked = Some(flag),
                None => keys.push((key.clone(), "Expected a boolean".to_owned())),
            },
            _ => keys.push((
                key.clone(),
                format!(
                    "Unrecognized key (only {} can be updated)",
                    PATCHABLE.join(", ")
                ),
            )),
        }
    }
    let keys: Vec<(String, String)> = keys
        .into_iter()
        .map(|(key, problem)| (format!("customer.{key}"), problem))
        .collect();
    problems.extend(
        keys.iter()
            .map(|(key, problem)| (key.as_str(), problem.clone())),
    );
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let mut store = shared.store();
    let customer = store
        .by_merchant_id_mut(&merchant_id)
        .ok_or_else(|| ApiError::not_found("Customer not found"))?;
    let mut changed = false;
    if let Some(birthday) = birthday {
        changed |= customer.birthday != birthday;
        customer.birthday = birthday;
    }
    if let Some(blocked) = blocked {
        changed |= customer.blocked != blocked;
        customer.blocked = blocked;
    }
    if changed {
        customer.updated_at = millis(Utc::now());
    }
    let customer = customer.clone();
    Ok(Json(json!({ "customer": store.customer_json(&customer) })))
}
