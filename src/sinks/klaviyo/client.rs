//! Klaviyo's JSON:API transport: auth and revision headers, the per-endpoint limiters, and
//! typed errors carrying Klaviyo's own error detail.

use std::sync::Arc;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::config::Settings;
use crate::http::{self, body_excerpt, with_retry, ApiError, ApiStats, RetryPolicy, WindowLimiter};

const CREDENTIAL: &str = "klaviyo.api_key";
const JSON_API: &str = "application/vnd.api+json";

/// Which published limit a request counts against.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// profile-import and the profiles endpoints.
    Profiles,
    /// profile bulk import jobs and their reads.
    BulkJobs,
    /// the Events API.
    Events,
}

pub struct KlaviyoClient {
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    revision: String,
    profiles: WindowLimiter,
    bulk_jobs: WindowLimiter,
    events: WindowLimiter,
    retry: RetryPolicy,
    pub(super) bulk_poll_interval: std::time::Duration,
    stats: Arc<ApiStats>,
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: Option<String>,
    detail: Option<String>,
    title: Option<String>,
    source: Option<ErrorSource>,
}

#[derive(Deserialize)]
struct ErrorSource {
    pointer: Option<String>,
    parameter: Option<String>,
}

impl KlaviyoClient {
    pub fn new(settings: &Settings, stats: Arc<ApiStats>) -> KlaviyoClient {
        let k = &settings.klaviyo;
        KlaviyoClient {
            http: http::client(settings.sync.request_timeout),
            base_url: k.base_url.clone(),
            api_key: k.api_key.clone(),
            revision: k.revision.clone(),
            profiles: WindowLimiter::new(k.profiles_per_second, k.profiles_per_minute),
            bulk_jobs: WindowLimiter::new(k.bulk_jobs_per_second, k.bulk_jobs_per_minute),
            events: WindowLimiter::new(k.events_per_second, k.events_per_minute),
            retry: RetryPolicy::new(settings.sync.max_retry_time),
            bulk_poll_interval: k.bulk_poll_interval,
            stats,
        }
    }

    pub fn stats(&self) -> &ApiStats {
        &self.stats
    }

    /// A `links.next` URL as a path on this client's base URL.
    pub(super) fn relative(&self, url: &str) -> String {
        url.strip_prefix(&self.base_url).unwrap_or(url).to_string()
    }

    /// Sends one request (retrying transient failures) and returns the response body.
    pub async fn send(
        &self,
        endpoint: &'static str,
        limit: Limit,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<bytes::Bytes, ApiError> {
        with_retry(&self.retry, &self.stats, || {
            self.attempt(endpoint, limit, method.clone(), path, body)
        })
        .await
    }

    async fn attempt(
        &self,
        endpoint: &'static str,
        limit: Limit,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<bytes::Bytes, ApiError> {
        let limiter = match limit {
            Limit::Profiles => &self.profiles,
            Limit::BulkJobs => &self.bulk_jobs,
            Limit::Events => &self.events,
        };
        self.stats.waited(limiter.acquire().await);
        self.stats.request();
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base_url, path))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Klaviyo-API-Key {}", self.api_key.expose_secret()),
            )
            .header("revision", &self.revision)
            .header(reqwest::header::ACCEPT, JSON_API);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, JSON_API)
                .body(serde_json::to_vec(body).expect("a JSON value serializes"));
        }
        let result =
            http::send(endpoint, request)
                .await?
                .into_body(endpoint, CREDENTIAL, error_detail);
        if let Err(ApiError::RateLimited { retry_after, .. }) = &result {
            self.stats.rate_limited();
            if let Some(after) = retry_after {
                limiter.pause(*after);
            }
        }
        result
    }
}

/// Klaviyo's own words from a JSON:API error body: code, detail and where it points.
fn error_detail(body: &[u8]) -> String {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return body_excerpt(body);
    };
    parsed
        .errors
        .iter()
        .map(|e| {
            let mut text = format!(
                "{}: {}",
                e.code.as_deref().unwrap_or("error"),
                e.detail
                    .as_deref()
                    .or(e.title.as_deref())
                    .unwrap_or("no detail")
            );
            if let Some(at) = e
                .source
                .as_ref()
                .and_then(|s| s.pointer.as_deref().or(s.parameter.as_deref()))
            {
                text.push_str(&format!(" (at {at})"));
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}
