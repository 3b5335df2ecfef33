//! The HTTP surface: `POST /admin/api/{version}/graphql.json` (token-checked like Shopify,
//! validated against that version's schema), `POST /admin/oauth/access_token` (the client
//! credentials grant, see [`oauth`]), `GET /bulk/{id}.jsonl` for bulk results (at the pace of
//! `ShopifyOptions::bulk_download`), behind [`harness::guarded`], which injects faults and logs
//! every request with the status it got and whether it was throttled.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::mpsc;

use super::access::Access;
use super::bulk::BulkFile;
use super::bulk_export::Export;
use super::paced::Paced;
use super::state::Shared;
use super::{graphql, oauth, request, staged};
use crate::faults::{FaultAnswers, Faults};
use crate::harness::faults::Injected;
use crate::harness::{self, Gate, ThrottledAnswer};
use crate::recorder::Recorder;

/// What Shopify answers a request without a valid access token.
const INVALID_TOKEN: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";

/// The fake's routes over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let router = Router::new()
        .route("/admin/api/{version}/graphql.json", post(graphql))
        .route("/admin/oauth/access_token", post(oauth::access_token))
        .route("/bulk/{file}", get(bulk_file))
        // The form carries a file of up to 20 MiB: above axum's default body limit.
        .route(
            staged::PATH,
            post(staged::upload).layer(DefaultBodyLimit::max(<Shared as Gate>::BODY_LIMIT)),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({ "errors": "Not Found" })),
            )
        });
    harness::guarded(router, Arc::clone(&shared)).with_state(shared)
}

impl Gate for Shared {
    /// Above the staged upload storage's 20 MiB file limit (plus the form around it), so an
    /// over-large file gets the storage's own `EntityTooLarge` answer.
    const BODY_LIMIT: usize = staged::MAX_FILE_BYTES + 1024 * 1024;
    type Pass = ();
    type Refusal = Response;

    fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn too_large() -> Response {
        let body = json!({ "errors": "Payload Too Large" });
        (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
    }

    /// The token is checked by the endpoint, after the API version in the path.
    fn admit(&self, _parts: &Parts) -> Result<(), Response> {
        Ok(())
    }
}

impl FaultAnswers for Shared {
    /// Shopify's `{"errors": "…"}`: its bad-token message, its REST-style call limit message
    /// for 429, else the status's reason.
    fn fault_answer(&self, status: StatusCode, _retry_after: Option<u64>) -> Response {
        let message = match status.as_u16() {
            401 => INVALID_TOKEN,
            429 => "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.",
            _ => status.canonical_reason().unwrap_or("Internal Server Error"),
        };
        (status, Json(json!({ "errors": message }))).into_response()
    }
}

async fn graphql(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    injected: Injected,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A version the fake has no schema for is answered like a path Shopify does not serve.
    let Some(api) = graphql::api(&version) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "errors": "Not Found" })),
        )
            .into_response();
    };
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The static token of an admin-created app, or an unexpired one from the grant.
    if token != shared.options.access_token && !shared.tokens().valid(token) {
        let body = json!({ "errors": INVALID_TOKEN });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let answer = request::handle(&shared, api, &body, &injected);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(answer.body)).into_response();
    if answer.throttled {
        response.extensions_mut().insert(ThrottledAnswer);
    }
    response
}

async fn bulk_file(State(shared): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    let file = file
        .strip_suffix(".jsonl")
        .and_then(|id| id.parse().ok())
        .and_then(|id| shared.state().bulk.file(id));
    let pace = shared.options.bulk_download;
    let body = match file {
        Some(BulkFile::Text(text)) => Paced::new(text, pace),
        Some(BulkFile::Export(export)) => Paced::streamed(write_export(shared, export), pace),
        None => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "errors": "Not Found" })),
            )
                .into_response()
        }
    };
    (
        [(axum::http::header::CONTENT_TYPE, "application/jsonl")],
        axum::body::Body::new(body),
    )
        .into_response()
}

/// Writes a bulk query's file on a blocking thread, a few chunks ahead of the download; stops
/// when the download is dropped.
fn write_export(
    shared: Arc<Shared>,
    export: Arc<Export>,
) -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let access = Access::new(&shared.options.scopes);
        let written = export.stream(
            &access,
            || shared.state(),
            |chunk| sender.blocking_send(Ok(Bytes::from(chunk))).is_ok(),
        );
        if let Err(error) = written {
            tracing::warn!(%error, "bulk file failed while downloaded");
            let _ = sender.blocking_send(Err(std::io::Error::other(error)));
        }
    });
    receiver
}
