//! JSON:API error bodies shaped like Klaviyo's (a Django REST Framework service, hence DRF's
//! codes and titles: `invalid`, `not_authenticated`, `throttled`, …), so the daemon's error
//! handling is exercised against the real wire format rather than a simplified one.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// Where in the request an error points: a JSON pointer into the body or a query/header name.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Pointer(String),
    Parameter(String),
}

/// One error as Klaviyo reports it; renders as `{"errors":[…]}` with the matching status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub source: Option<Source>,
    /// Boxed to keep `Result<_, ApiError>` small.
    pub meta: Box<Map<String, Value>>,
    /// Sent as the `Retry-After` header (whole seconds).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, title: &'static str, detail: String) -> Self {
        ApiError {
            status,
            code,
            title,
            detail,
            source: None,
            meta: Box::default(),
            retry_after: None,
        }
    }

    /// 400 `invalid` pointing into the request body.
    pub fn invalid(detail: impl Into<String>, pointer: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid input.",
            detail.into(),
        )
        .at(Source::Pointer(pointer.into()))
    }

    /// 400 `invalid` naming a query parameter or header.
    pub fn invalid_parameter(detail: impl Into<String>, parameter: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid input.",
            detail.into(),
        )
        .at(Source::Parameter(parameter.into()))
    }

    /// 400 `parse_error`: the body is not JSON at all.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "parse_error",
            "Malformed request.",
            detail.into(),
        )
    }

    /// 401 with no (or an unrecognised) `Authorization` header.
    pub fn not_authenticated() -> Self {
        let title = "Authentication credentials were not provided.";
        Self::new(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            title,
            title.into(),
        )
    }

    /// 401 with a `Klaviyo-API-Key` that is not this account's.
    pub fn authentication_failed() -> Self {
        let title = "Incorrect authentication credentials.";
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            title,
            title.into(),
        )
    }

    /// 403 `permission_denied`: the key is valid but lacks a scope the operation requires.
    /// Klaviyo's body names no scope — the one published sample (community.klaviyo.com,
    /// "API patch action status 403 code permission denied", 2023) repeats the title as the
    /// detail and points at `/data/` — so a client must know its operations' scopes itself.
    pub fn permission_denied() -> Self {
        let title = "You do not have permission to perform this action.";
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            title,
            title.into(),
        )
        .at(Source::Pointer("/data/".into()))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found.",
            detail.into(),
        )
    }

    pub fn unsupported_media_type(media_type: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type.",
            format!("Unsupported media type \"{media_type}\" in request."),
        )
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large.",
            detail.into(),
        )
    }

    /// 409 `duplicate_profile`: the identifiers sent belong to another profile.
    pub fn duplicate_profile(existing_id: &str) -> Self {
        let mut error = Self::new(
            StatusCode::CONFLICT,
            "duplicate_profile",
            "Conflict.",
            "A profile already exists with one of these identifiers.".into(),
        );
        error
            .meta
            .insert("duplicate_profile_id".into(), existing_id.into());
        error
    }

    /// 429 `throttled` with `Retry-After: seconds`.
    pub fn throttled(seconds: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "Request was throttled.",
            format!("Request was throttled. Expected available in {seconds} seconds."),
        );
        error.retry_after = Some(seconds);
        error
    }

    /// The error Klaviyo would send with this status, for fault injection.
    pub fn for_status(status: u16, retry_after: Option<u64>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut error = match status.as_u16() {
            400 => Self::invalid("The request was rejected.", "/data"),
            401 => Self::authentication_failed(),
            403 => Self::permission_denied(),
            404 => Self::not_found("Not found."),
            409 => Self::new(status, "conflict", "Conflict.", "Conflict.".into()),
            429 => Self::throttled(retry_after.unwrap_or(1)),
            503 => Self::new(
                status,
                "service_unavailable",
                "Service temporarily unavailable.",
                "Service temporarily unavailable, try again later.".into(),
            ),
            _ => Self::new(
                status,
                "error",
                "A server error occurred.",
                "A server error occurred.".into(),
            ),
        };
        error.status = status;
        error.retry_after = retry_after;
        error
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn at(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// The error object as it appears inside `errors[]`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": next_error_id(),
            "status": self.status.as_u16(),
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "source": self.source_json(),
            "links": {},
            "meta": self.meta,
        })
    }

    /// `{"pointer": …}` or `{"parameter": …}` (empty when the error has no source).
    pub fn source_json(&self) -> Value {
        match &self.source {
            Some(Source::Pointer(pointer)) => json!({ "pointer": pointer }),
            Some(Source::Parameter(parameter)) => json!({ "parameter": parameter }),
            None => json!({}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "errors": [self.to_json()] });
        let mut response = super::jsonapi::response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A UUID-shaped id, unique within the process (error ids are only for log correlation).
pub fn next_error_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        0x6b6c_6176u32,
        (n >> 48) & 0xffff,
        (n >> 36) & 0xfff,
        (n >> 24) & 0xfff,
        n & 0xff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_error_has_the_jsonapi_shape() {
        let body = ApiError::invalid("Invalid email address", "/data/attributes/email").to_json();
        assert_eq!(body["status"], 400);
        assert_eq!(body["code"], "invalid");
        assert_eq!(body["title"], "Invalid input.");
        assert_eq!(body["source"]["pointer"], "/data/attributes/email");
        assert_eq!(body["id"].as_str().map(str::len), Some(36));
    }

    #[test]
    fn throttled_names_the_wait() {
        let error = ApiError::throttled(7);
        assert_eq!(error.retry_after, Some(7));
        assert_eq!(
            error.detail,
            "Request was throttled. Expected available in 7 seconds."
        );
    }

    #[test]
    fn injected_statuses_keep_their_status() {
        assert_eq!(ApiError::for_status(503, None).code, "service_unavailable");
        assert_eq!(ApiError::for_status(502, None).status.as_u16(), 502);
        assert_eq!(ApiError::for_status(429, Some(3)).retry_after, Some(3));
    }
}
