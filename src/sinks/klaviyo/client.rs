//! Klaviyo's JSON:API transport: the operations tiersync calls (with their limits and the
//! scopes a key needs for them), auth and revision headers, the per-endpoint limiters, and
//! typed errors carrying Klaviyo's own error detail.

use std::sync::Arc;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::http::{
    self, body_excerpt, with_retry, ApiError, ApiStats, Ceiling, RetryPolicy, Throughput, Unit,
    WindowLimiter,
};
use crate::progress::Progress;

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
    /// event bulk create jobs (their own bucket).
    EventBulkJobs,
}

impl Limit {
    /// The limit's window in [`KlaviyoClient::throughput`].
    fn index(self) -> usize {
        self as usize
    }
}

/// One Klaviyo operation tiersync calls.
#[derive(Debug)]
pub struct Call {
    /// For errors and logs, e.g. `klaviyo bulk import job create`.
    pub name: &'static str,
    /// The HTTP method the spec gives the operation.
    pub method: Method,
    /// The spec's path template.
    pub path: &'static str,
    /// The published rate limit the request counts against (one limiter per limit).
    pub limit: Limit,
    /// What a private key needs for it: the spec's `x-klaviyo-scopes` (tests/e2e/contracts.rs
    /// checks these against the vendored spec). Klaviyo's 403 does not say which scope is
    /// missing, so a refusal names these.
    pub scopes: &'static [&'static str],
}

pub static PROFILE_IMPORT: Call = Call {
    name: "klaviyo profile-import",
    method: Method::POST,
    path: "/api/profile-import",
    limit: Limit::Profiles,
    scopes: &["profiles:write"],
};

pub static GET_PROFILES: Call = Call {
    name: "klaviyo GET /api/profiles",
    method: Method::GET,
    path: "/api/profiles",
    limit: Limit::Profiles,
    scopes: &["profiles:read"],
};

pub static BULK_JOB_CREATE: Call = Call {
    name: "klaviyo bulk import job create",
    method: Method::POST,
    path: "/api/profile-bulk-import-jobs",
    limit: Limit::BulkJobs,
    scopes: &["lists:write", "profiles:write"],
};

/// Every job's status in one read: tiersync polls its jobs in flight this way, one request
/// for up to 100 of them, instead of one request per job from a bucket shared with creating
/// them.
pub static BULK_JOB_LIST: Call = Call {
    name: "klaviyo bulk import job list",
    method: Method::GET,
    path: "/api/profile-bulk-import-jobs",
    limit: Limit::BulkJobs,
    scopes: &["lists:read", "profiles:read"],
};

pub static BULK_JOB_STATUS: Call = Call {
    name: "klaviyo bulk import job status",
    method: Method::GET,
    path: "/api/profile-bulk-import-jobs/{job_id}",
    limit: Limit::BulkJobs,
    scopes: &["lists:read", "profiles:read"],
};

pub static BULK_JOB_ERRORS: Call = Call {
    name: "klaviyo bulk import job errors",
    method: Method::GET,
    path: "/api/profile-bulk-import-jobs/{id}/import-errors",
    limit: Limit::BulkJobs,
    scopes: &["profiles:read"],
};

pub static CREATE_EVENT: Call = Call {
    name: "klaviyo events",
    method: Method::POST,
    path: "/api/events",
    limit: Limit::Events,
    scopes: &["events:write"],
};

pub static EVENT_BULK_CREATE: Call = Call {
    name: "klaviyo event bulk create job",
    method: Method::POST,
    path: "/api/event-bulk-create-jobs",
    limit: Limit::EventBulkJobs,
    scopes: &["events:write"],
};

/// Every operation tiersync calls: the key's scopes must cover all of theirs.
pub static CALLS: [&Call; 8] = [
    &PROFILE_IMPORT,
    &GET_PROFILES,
    &BULK_JOB_CREATE,
    &BULK_JOB_LIST,
    &BULK_JOB_STATUS,
    &BULK_JOB_ERRORS,
    &CREATE_EVENT,
    &EVENT_BULK_CREATE,
];

pub struct KlaviyoClient {
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    revision: String,
    profiles: WindowLimiter,
    bulk_jobs: WindowLimiter,
    events: WindowLimiter,
    event_bulk_jobs: WindowLimiter,
    retry: RetryPolicy,
    /// How often running bulk import jobs are polled (`klaviyo.bulk_poll_interval`).
    pub(super) bulk_poll_interval: std::time::Duration,
    /// From this many events ready to send on, they go as event bulk jobs.
    pub(super) event_bulk_threshold: usize,
    stats: Arc<ApiStats>,
    /// Fired when tiersync is asked to stop: limiter and back-off waits end at once.
    stop: CancellationToken,
    throughput: Throughput,
    /// Where bulk jobs and the read-back count what they did.
    progress: Arc<Progress>,
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
    pub fn new(
        settings: &Settings,
        stats: Arc<ApiStats>,
        stop: CancellationToken,
    ) -> KlaviyoClient {
        let k = &settings.klaviyo;
        // In `Limit` order.
        let ceilings = [
            ("profiles", k.profiles_per_second, k.profiles_per_minute),
            ("bulk jobs", k.bulk_jobs_per_second, k.bulk_jobs_per_minute),
            ("events", k.events_per_second, k.events_per_minute),
            (
                "event bulk jobs",
                k.event_bulk_jobs_per_second,
                k.event_bulk_jobs_per_minute,
            ),
        ];
        KlaviyoClient {
            http: http::client(settings.sync.request_timeout),
            base_url: k.base_url.clone(),
            api_key: k.api_key.clone(),
            revision: k.revision.clone(),
            profiles: WindowLimiter::new(k.profiles_per_second, k.profiles_per_minute),
            bulk_jobs: WindowLimiter::new(k.bulk_jobs_per_second, k.bulk_jobs_per_minute),
            events: WindowLimiter::new(k.events_per_second, k.events_per_minute),
            event_bulk_jobs: WindowLimiter::new(
                k.event_bulk_jobs_per_second,
                k.event_bulk_jobs_per_minute,
            ),
            retry: RetryPolicy::new(settings.sync.max_retry_time),
            bulk_poll_interval: k.bulk_poll_interval,
            event_bulk_threshold: k.event_bulk_threshold,
            stats,
            stop,
            throughput: Throughput::new(ceilings.map(|(name, per_second, per_minute)| Ceiling {
                name,
                unit: Unit::Requests,
                per_second,
                per_minute: Some(per_minute),
            })),
            progress: Arc::default(),
        }
    }

    /// Counts progress into `progress` (shared with the pipeline's renderers).
    pub fn with_progress(mut self, progress: Arc<Progress>) -> KlaviyoClient {
        self.progress = progress;
        self
    }

    /// The counters the work done through this client updates.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn stats(&self) -> &ApiStats {
        &self.stats
    }

    /// Busy time and each limit's use against its ceiling (for the pass report, progress).
    pub fn throughput(&self) -> &Throughput {
        &self.throughput
    }

    /// A `links.next` URL as a path on this client's base URL.
    pub(super) fn relative(&self, url: &str) -> String {
        url.strip_prefix(&self.base_url).unwrap_or(url).to_string()
    }

    /// Sends one request for `call` to `path` (the call's path with its parameters and query
    /// filled in), retrying transient failures, and returns the response body.
    pub async fn send(
        &self,
        call: &Call,
        path: &str,
        body: Option<bytes::Bytes>,
    ) -> Result<bytes::Bytes, ApiError> {
        let _busy = self.throughput.busy();
        with_retry(&self.retry, &self.stats, &self.stop, || {
            self.attempt(call, path, body.clone())
        })
        .await
    }

    async fn attempt(
        &self,
        call: &Call,
        path: &str,
        body: Option<bytes::Bytes>,
    ) -> Result<bytes::Bytes, ApiError> {
        let limiter = match call.limit {
            Limit::Profiles => &self.profiles,
            Limit::BulkJobs => &self.bulk_jobs,
            Limit::Events => &self.events,
            Limit::EventBulkJobs => &self.event_bulk_jobs,
        };
        let waited = limiter.acquire(&self.stop).await.ok_or(ApiError::Stopped {
            endpoint: call.name,
        })?;
        self.stats.waited(waited);
        self.throughput.sent(call.limit.index(), waited);
        self.stats.request();
        let mut request = self
            .http
            .request(call.method.clone(), format!("{}{}", self.base_url, path))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Klaviyo-API-Key {}", self.api_key.expose_secret()),
            )
            .header("revision", &self.revision)
            .header(reqwest::header::ACCEPT, JSON_API);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, JSON_API)
                .body(body);
        }
        let result = http::send(call.name, request)
            .await?
            .into_body(call.name, CREDENTIAL, error_detail)
            .map_err(|error| needs_scopes(error, call));
        if let Err(ApiError::RateLimited { retry_after, .. }) = &result {
            self.stats.rate_limited();
            self.throughput.refused(call.limit.index());
            if let Some(after) = retry_after {
                limiter.pause(*after);
            }
        }
        result
    }
}

/// A request body: JSON serialized once, so that retries resend the same bytes.
pub fn json_body(value: &Value) -> bytes::Bytes {
    serde_json::to_vec(value)
        .expect("a JSON value serializes")
        .into()
}

/// A 403 is a key without a scope the call needs; Klaviyo's body does not say which, so the
/// error names the call's scopes.
fn needs_scopes(error: ApiError, call: &Call) -> ApiError {
    match error {
        ApiError::Unauthorized {
            endpoint,
            status: 403,
            credential,
            detail,
        } => ApiError::Unauthorized {
            endpoint,
            status: 403,
            credential,
            detail: format!(
                "{detail}; the key lacks a scope this call needs: {}",
                call.scopes.join(", ")
            ),
        },
        other => other,
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
