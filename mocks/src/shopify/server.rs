//! The HTTP surface: `POST /admin/api/{version}/graphql.json` (token-checked like Shopify),
//! `GET /bulk/{id}.jsonl` for bulk results, and a recorder layer that logs every request with
//! the status it got and whether it was throttled.

use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use super::request;
use super::state::Shared;
use crate::recorder::RecordedRequest;

/// Largest request body the fake reads (Shopify's documents are far smaller).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Marks a response as a `THROTTLED` answer for the recorder.
#[derive(Clone, Copy)]
struct Throttled;

/// The fake's routes over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/admin/api/{version}/graphql.json", post(graphql))
        .route("/bulk/{file}", get(bulk_file))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({ "errors": "Not Found" })),
            )
        })
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), record))
        .with_state(shared)
}

/// Whether `version` looks like a Shopify API version (`YYYY-MM`).
fn is_version(version: &str) -> bool {
    let bytes = version.as_bytes();
    bytes.len() == 7
        && bytes[4] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit())
}

async fn graphql(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_version(&version) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "errors": "Not Found" })),
        )
            .into_response();
    }
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok());
    if token != Some(shared.options.access_token.as_str()) {
        let body = json!({
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
        });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let answer = request::handle(&shared, &body);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(answer.body)).into_response();
    if answer.throttled {
        response.extensions_mut().insert(Throttled);
    }
    response
}

async fn bulk_file(State(shared): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    let file = file
        .strip_suffix(".jsonl")
        .and_then(|id| id.parse().ok())
        .and_then(|id| shared.state().bulk.file(id));
    match file {
        Some(text) => (
            [(axum::http::header::CONTENT_TYPE, "application/jsonl")],
            text.as_str().to_owned(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "errors": "Not Found" })),
        )
            .into_response(),
    }
}

/// Records the request (with its body) and the answer's status.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let mut recorded = RecordedRequest {
        at: Utc::now(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: 0,
        throttled: false,
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    recorded.status = response.status().as_u16();
    recorded.throttled = response.extensions().get::<Throttled>().is_some();
    shared.recorder.push(recorded);
    response
}
