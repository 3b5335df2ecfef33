//! Smile's error body: `{"error": {"message": …, "request_id": …}}` with a conventional status
//! (400 bad request, 401 credentials, 404, 422 semantic errors such as a negative balance,
//! 429 rate limit).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::harness::bearer::BearerError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl BearerError for ApiError {
    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The required authentication credentials are missing or incorrect.",
        )
    }

    fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded. Try again in a second.",
        )
    }

    fn too_large() -> Self {
        Self::bad_request("Request body too large.")
    }

    fn failure(status: StatusCode) -> Self {
        Self::new(status, "Your request could not be completed.")
    }
}

/// A fresh UUID-shaped request id (deterministic counter, not random).
fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("00000000-0000-4000-8000-{n:012x}")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "request_id": request_id()}});
        (self.status, Json(body)).into_response()
    }
}
