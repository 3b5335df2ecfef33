//! The HTTP surface: routes under `/v1`, and the checks before any endpoint runs, in order —
//! injected faults, `Authorization: Bearer …` (401), then the token's per-second limit (429).
//! Both checks and recording are [`harness::bearer`]'s; every request is recorded with the
//! status it got.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::ApiError;
use super::paging::{page, Direction};
use super::store::{PointsError, Store};
use super::wire::{parse_time, query_pairs};
use super::{Shared, SmileState};
use crate::harness;
use crate::harness::faults::Injected;

/// Smile's default and largest page sizes.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 250;
/// What `include` may name on `GET /v1/customers`: the list documents `vip_status` alone,
/// while `GET /v1/customers/{id}` also takes `vip_status.vip_tier` and
/// `vip_status.next_vip_tier` (<https://dev.smile.io/api/resources/customers/list-customers>,
/// `…/retrieve-a-customer`).
const LIST_INCLUDES: [&str; 1] = ["vip_status"];

pub fn router(shared: Arc<Shared>) -> Router {
    let router = Router::new()
        .route("/v1/customers", get(list_customers))
        .route("/v1/customers/{id}", get(get_customer))
        .route(
            "/v1/points_transactions",
            get(list_transactions).post(create_transaction),
        )
        .route("/v1/vip_tiers", get(list_vip_tiers))
        .fallback(|| async { ApiError::not_found("The requested resource doesn't exist.") });
    harness::guarded(router, Arc::clone(&shared.gate)).with_state(shared)
}

/// What a cursor carries: where the page starts, and the filters of the first request, so
/// later pages need only `cursor` (and `limit`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    id: u64,
    direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    customer_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at_min: Option<String>,
}

/// Opaque bytes in front of a cursor's JSON. Smile's cursors are standard base64 with padding
/// (<https://dev.smile.io/api/pagination/cursor-pagination>), which may hold `+`, `/` and `=`;
/// this tag encodes as `+/+/` and the JSON is padded so the text ends in `==`, so every cursor
/// the fake hands out holds all three, and a client that puts one in a URL without encoding
/// it (`+` then reads as a space) gets 400 on its first cursor page, as it eventually would
/// from Smile.
const CURSOR_TAG: [u8; 3] = [0xFB, 0xFF, 0xBF];

impl Cursor {
    fn encode(&self) -> String {
        let mut bytes = CURSOR_TAG.to_vec();
        bytes.extend(serde_json::to_vec(self).unwrap_or_default());
        // JSON ignores trailing spaces; one byte past a multiple of 3 gives `==` padding.
        while bytes.len() % 3 != 1 {
            bytes.push(b' ');
        }
        STANDARD.encode(bytes)
    }

    fn decode(text: &str) -> Result<Cursor, ApiError> {
        STANDARD
            .decode(text)
            .ok()
            .and_then(|bytes| {
                let json = bytes.strip_prefix(CURSOR_TAG.as_slice())?;
                serde_json::from_slice::<Cursor>(json).ok()
            })
            .filter(|cursor| cursor.direction.is_some())
            .ok_or_else(|| ApiError::bad_request("The provided cursor is invalid."))
    }
}

/// The request's paging and filters: from the cursor when one is given, else from the query.
struct Listing {
    limit: usize,
    at: Option<(Direction, u64)>,
    filters: Cursor,
    updated_at_min: Option<DateTime<Utc>>,
    include: Vec<String>,
}

fn listing(query: Option<String>) -> Result<Listing, ApiError> {
    let params = query_pairs(query.as_deref());
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be between 1 and {MAX_LIMIT}."))
            })?,
    };
    let (at, filters) = match params.get("cursor").filter(|c| !c.is_empty()) {
        Some(text) => {
            let cursor = Cursor::decode(text)?;
            let at = cursor.direction.map(|direction| (direction, cursor.id));
            (at, cursor)
        }
        None => {
            let customer_id = params
                .get("customer_id")
                .map(|id| {
                    id.parse::<u64>()
                        .map_err(|_| ApiError::bad_request("customer_id must be an integer."))
                })
                .transpose()?;
            let filters = Cursor {
                email: params.get("email").map(|e| e.trim().to_lowercase()),
                state: params.get("state").cloned(),
                customer_id,
                updated_at_min: params.get("updated_at_min").cloned(),
                ..Cursor::default()
            };
            (None, filters)
        }
    };
    let updated_at_min = filters
        .updated_at_min
        .as_deref()
        .map(|text| {
            parse_time(text).ok_or_else(|| {
                ApiError::bad_request("updated_at_min must be an ISO 8601 date-time.")
            })
        })
        .transpose()?;
    if let Some(state) = filters.state.as_deref() {
        if SmileState::parse(state).is_none() {
            return Err(ApiError::bad_request(
                "state must be one of candidate, member, disabled.",
            ));
        }
    }
    let include = params
        .get("include")
        .map(|list| list.split(',').map(|i| i.trim().to_owned()).collect())
        .unwrap_or_default();
    Ok(Listing {
        limit,
        at,
        filters,
        updated_at_min,
        include,
    })
}

/// `metadata` with the neighbouring pages' cursors (null at either end).
fn metadata(filters: &Cursor, next: Option<u64>, prev: Option<u64>) -> Value {
    let cursor = |id: u64, direction: Direction| {
        Cursor {
            id,
            direction: Some(direction),
            email: filters.email.clone(),
            state: filters.state.clone(),
            customer_id: filters.customer_id,
            updated_at_min: filters.updated_at_min.clone(),
        }
        .encode()
    };
    json!({
        "next_cursor": next.map(|id| cursor(id, Direction::Next)),
        "previous_cursor": prev.map(|id| cursor(id, Direction::Prev)),
    })
}

/// `GET /v1/customers`: newest id first, filtered by `email`, `state`, `updated_at_min`;
/// `include=vip_status` adds each customer's `vip_status` (with `vip_tier_id`).
async fn list_customers(
    State(shared): State<Arc<Shared>>,
    injected: Injected,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let listing = listing(query)?;
    let store = shared.store();
    let filters = &listing.filters;
    let matching: Vec<_> = store
        .customers()
        .into_iter()
        .filter(|c| filters.email.as_ref().is_none_or(|e| &c.email == e))
        .filter(|c| {
            filters
                .state
                .as_deref()
                .is_none_or(|s| c.state.as_str() == s)
        })
        .filter(|c| listing.updated_at_min.is_none_or(|min| c.updated_at >= min))
        .map(|c| (c.id, c))
        .collect();
    let page = page(
        matching,
        listing.at,
        listing.limit,
        injected.repeat_page(listing.at.is_some()),
    );
    // The list documents `include=vip_status` only; the nested tier objects are for
    // `GET /v1/customers/{id}`, so other values are ignored here.
    let include: Vec<String> = listing
        .include
        .into_iter()
        .filter(|i| LIST_INCLUDES.contains(&i.as_str()))
        .collect();
    let customers: Vec<Value> = page
        .items
        .iter()
        .map(|c| store.customer_json(c, &include))
        .collect();
    Ok(Json(json!({
        "customers": customers,
        "metadata": metadata(filters, page.next, page.prev),
    })))
}

/// `GET /v1/customers/{id}`.
async fn get_customer(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let listing = listing(query)?;
    let store = shared.store();
    let customer = id
        .parse::<u64>()
        .ok()
        .and_then(|id| store.customer(id))
        .ok_or_else(|| ApiError::not_found("Customer not found."))?;
    Ok(Json(
        json!({"customer": store.customer_json(customer, &listing.include)}),
    ))
}

/// `GET /v1/points_transactions`: newest id first, filtered by `customer_id`, `updated_at_min`.
async fn list_transactions(
    State(shared): State<Arc<Shared>>,
    injected: Injected,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let listing = listing(query)?;
    let filters = &listing.filters;
    let matching: Vec<_> = shared
        .store()
        .transactions()
        .into_iter()
        .filter(|t| filters.customer_id.is_none_or(|id| t.customer_id == id))
        .filter(|t| listing.updated_at_min.is_none_or(|min| t.updated_at >= min))
        .map(|t| (t.id, t))
        .collect();
    let page = page(
        matching,
        listing.at,
        listing.limit,
        injected.repeat_page(listing.at.is_some()),
    );
    let transactions: Vec<Value> = page.items.iter().map(Store::transaction_json).collect();
    Ok(Json(json!({
        "points_transactions": transactions,
        "metadata": metadata(filters, page.next, page.prev),
    })))
}

/// `POST /v1/points_transactions` with `{"points_transaction": {customer_id, points_change,
/// description?, internal_note?}}`.
async fn create_transaction(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(ApiError::bad_request(
            "The Content-Type header must be application/json.",
        ));
    }
    let body: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("The request body is not valid JSON."))?;
    let fields = body
        .get("points_transaction")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ApiError::bad_request("param is missing or the value is empty: points_transaction")
        })?;
    let integer = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::unprocessable(format!("{name} must be an integer.")))
    };
    let customer_id = integer("customer_id")?;
    let points_change = integer("points_change")?;
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    let created = shared.store().create_transaction(
        u64::try_from(customer_id).unwrap_or(0),
        points_change,
        text("description"),
        text("internal_note"),
        Utc::now(),
    );
    match created {
        Ok(transaction) => Ok(Json(
            json!({"points_transaction": Store::transaction_json(&transaction)}),
        )),
        Err(PointsError::UnknownCustomer) => Err(ApiError::unprocessable(format!(
            "Customer {customer_id} could not be found."
        ))),
        Err(PointsError::NegativeBalance { balance }) => Err(ApiError::unprocessable(format!(
            "Points transaction would result in a negative points balance \
             (balance {balance}, points_change {points_change})."
        ))),
    }
}

/// `GET /v1/vip_tiers`: every tier by milestone, unpaged.
async fn list_vip_tiers(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let store = shared.store();
    let tiers: Vec<Value> = store.tiers().iter().map(Store::tier_json).collect();
    Json(json!({ "vip_tiers": tiers }))
}

#[cfg(test)]
mod tests {
    use super::super::wire::timestamp;
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor {
            id: 7,
            direction: Some(Direction::Next),
            updated_at_min: Some(timestamp(Utc::now())),
            ..Cursor::default()
        };
        let text = cursor.encode();
        assert!(['+', '/', '='].iter().all(|c| text.contains(*c)), "{text}");
        let decoded = Cursor::decode(&text).expect("decodes");
        assert_eq!((decoded.id, decoded.direction), (7, Some(Direction::Next)));
        assert!(Cursor::decode(&text.replace('+', " ")).is_err());
        assert!(Cursor::decode("not a cursor").is_err());
    }

    #[test]
    fn limit_is_bounded() {
        assert!(listing(Some("limit=250".into())).is_ok());
        assert!(listing(Some("limit=251".into())).is_err());
        assert!(listing(Some("limit=0".into())).is_err());
        assert!(listing(Some("state=vip".into())).is_err());
    }
}
