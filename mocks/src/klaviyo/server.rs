//! The HTTP surface: routes, and the checks Klaviyo makes before any endpoint runs, in its
//! order — after injected faults ([`crate::faults`]) — `Authorization: Klaviyo-API-Key …` (401), the `revision` header
//! (400), the key's scopes for the operation (403), the body's media type (415), then the
//! endpoint group's rate limit (429, counted only for admitted requests). Every request is recorded with the status it got (by
//! [`harness::guarded`]).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use super::errors::ApiError;
use super::rate_limit::{Group, Quota};
use super::{bulk_jobs, event_bulk, events, keys, profile_api, Shared};
use crate::faults::{FaultAnswers, Faults};
use crate::harness::{self, Gate};
use crate::recorder::Recorder;

/// Above Klaviyo's 5 MB bulk-job limit, so that limit answers with its own error.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn router(shared: Arc<Shared>) -> Router {
    let routes: [(&str, MethodRouter<Arc<Shared>>); 8] = [
        ("/api/profile-import", post(profile_api::import)),
        (
            "/api/profiles",
            get(profile_api::list).post(profile_api::create),
        ),
        (
            "/api/profiles/{id}",
            get(profile_api::get_one).patch(profile_api::update),
        ),
        (
            "/api/profile-bulk-import-jobs",
            get(bulk_jobs::list).post(bulk_jobs::create),
        ),
        (
            "/api/profile-bulk-import-jobs/{id}",
            get(bulk_jobs::get_one),
        ),
        (
            "/api/profile-bulk-import-jobs/{id}/import-errors",
            get(bulk_jobs::import_errors),
        ),
        ("/api/events", post(events::create)),
        ("/api/event-bulk-create-jobs", post(event_bulk::create)),
    ];
    // Klaviyo answers with and without the trailing slash (older SDKs send it).
    let router = routes
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router
                .route(path, handler.clone())
                .route(&format!("{path}/"), handler)
        });
    let router = router.fallback(|| async { ApiError::not_found("Not found.") });
    harness::guarded(router, Arc::clone(&shared))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

impl Gate for Shared {
    const BODY_LIMIT: usize = BODY_LIMIT;
    /// The rate-limit window the request counted against, if any.
    type Pass = Option<Quota>;
    type Refusal = ApiError;

    fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn too_large() -> ApiError {
        ApiError::payload_too_large("Request body too large.")
    }

    fn admit(&self, parts: &Parts) -> Result<Option<Quota>, ApiError> {
        admit(self, &parts.method, parts.uri.path(), &parts.headers)
    }

    /// Adds the rate-limit headers.
    fn answered(&self, quota: Option<Quota>, _path: &str, mut response: Response) -> Response {
        if let Some(quota) = quota {
            rate_limit_headers(response.headers_mut(), quota);
        }
        response
    }
}

impl FaultAnswers for Shared {
    fn fault_answer(&self, status: StatusCode, retry_after: Option<u64>) -> Response {
        ApiError::for_status(status.as_u16(), retry_after).into_response()
    }
}

/// The checks before the endpoint; `Ok(Some(quota))` when the request counted against a limit.
fn admit(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Option<Quota>, ApiError> {
    let sent = sent_key(headers)?;
    {
        let keys = shared.keys();
        let access = keys.access(sent)?;
        check_revision(headers)?;
        keys::check(access, method.as_str(), path)?;
    }
    if [Method::POST, Method::PATCH, Method::PUT].contains(method) {
        check_media_type(headers)?;
    }
    let Some(group) = Group::of(path) else {
        return Ok(None);
    };
    shared
        .limiter()
        .take(group, Instant::now())
        .map(Some)
        .map_err(ApiError::throttled)
}

/// The key of `Authorization: Klaviyo-API-Key {key}` (401 `not_authenticated` without one).
fn sent_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Klaviyo-API-Key "))
        .ok_or_else(ApiError::not_authenticated)
}

/// `revision: YYYY-MM-DD` with an optional `.suffix` (e.g. `2026-07-15.pre`).
fn check_revision(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(revision) = headers.get("revision") else {
        return Err(ApiError::invalid_parameter(
            "Missing required header 'revision' (format: YYYY-MM-DD[.suffix]).",
            "revision",
        ));
    };
    let revision = revision.to_str().unwrap_or("");
    let date = revision.split_once('.').map_or(revision, |(date, _)| date);
    if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10 {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(
            format!("Invalid revision '{revision}' (format: YYYY-MM-DD[.suffix])."),
            "revision",
        ))
    }
}

fn check_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let sent = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = sent.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(super::jsonapi::MEDIA_TYPE)
        || essence.eq_ignore_ascii_case("application/json")
    {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(sent))
    }
}

/// The steady window's state, as plain integers (Klaviyo's format).
fn rate_limit_headers(headers: &mut HeaderMap, quota: Quota) {
    let values = [
        ("ratelimit-limit", u64::from(quota.limit)),
        ("ratelimit-remaining", u64::from(quota.remaining)),
        ("ratelimit-reset", quota.reset),
    ];
    for (name, value) in values {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn key_must_be_klaviyo_api_key_scheme() {
        let sent = headers(&[("authorization", "Klaviyo-API-Key pk")]);
        assert_eq!(sent_key(&sent).unwrap(), "pk");
        let bearer = headers(&[("authorization", "Bearer pk")]);
        assert_eq!(sent_key(&bearer).unwrap_err().code, "not_authenticated");
        assert!(sent_key(&headers(&[])).is_err());
    }

    #[test]
    fn revision_is_a_date_with_optional_suffix() {
        for good in ["2026-07-15", "2026-10-15.pre"] {
            assert!(
                check_revision(&headers(&[("revision", good)])).is_ok(),
                "{good}"
            );
        }
        for bad in ["2026-13-01", "latest", "2026-7-15"] {
            assert!(
                check_revision(&headers(&[("revision", bad)])).is_err(),
                "{bad}"
            );
        }
        assert!(check_revision(&headers(&[])).is_err());
    }

    #[test]
    fn media_type_allows_jsonapi_and_json_with_parameters() {
        let ok = [
            "application/vnd.api+json",
            "application/json; charset=utf-8",
        ];
        for good in ok {
            assert!(check_media_type(&headers(&[("content-type", good)])).is_ok());
        }
        let error = check_media_type(&headers(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!(error.status.as_u16(), 415);
        assert!(check_media_type(&headers(&[])).is_err());
    }
}
