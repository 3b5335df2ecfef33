//! LoyaltyLion's error body: `{"error": {"message": …}}`, with `details` naming the offending
//! fields of a 400 (the shape LoyaltyLion documents for its API errors).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::harness::bearer::BearerError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Field → problem, for 400 validation errors.
    pub details: Option<Map<String, Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            details: None,
        }
    }

    /// 400 `Invalid request` with one problem per field.
    pub fn invalid<'a>(problems: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let details = problems
            .into_iter()
            .map(|(field, problem)| (field.to_owned(), Value::String(problem)))
            .collect();
        ApiError {
            details: Some(details),
            ..Self::new(StatusCode::BAD_REQUEST, "Invalid request")
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl BearerError for ApiError {
    fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Authentication is required")
    }

    fn too_many_requests() -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
    }

    fn too_large() -> Self {
        Self::invalid([("body", "Request body too large".to_owned())])
    }

    fn failure(status: StatusCode) -> Self {
        Self::new(
            status,
            status.canonical_reason().unwrap_or("Internal server error"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "message": self.message });
        if let Some(details) = self.details {
            error["details"] = Value::Object(details);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}
