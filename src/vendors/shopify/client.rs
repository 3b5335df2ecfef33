//! The GraphQL transport: one POST per document, throttled by the shared cost bucket,
//! authenticated by the configured credential (see [`super::auth`]), retried on transient
//! failures, with typed errors.

use std::sync::Arc;

use bytes::Bytes;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::auth::{Credential, Token};
use super::cost_bucket::{CostBucket, ThrottleStatus};
use super::jsonl::{self, BulkSink};
use crate::config::Settings;
use crate::http::{
    self, body_excerpt, with_retry, ApiError, ApiStats, Ceiling, RetryPolicy, Throughput, Unit,
};
use crate::progress::Progress;

pub struct ShopifyClient {
    http: reqwest::Client,
    endpoint: String,
    credential: Credential,
    bucket: Arc<CostBucket>,
    retry: RetryPolicy,
    stats: Arc<ApiStats>,
    /// Points spent against the plan's restore rate while busy, bucket waits, `THROTTLED`
    /// answers, and the time bulk operations ran (one window: [`POINTS`]).
    throughput: Throughput,
    /// Fired when tiersync is asked to stop: cost-bucket and back-off waits end at once.
    stop: CancellationToken,
    /// Where the backfill and storefront writes count what they did.
    progress: Arc<Progress>,
}

#[derive(Deserialize)]
struct Envelope {
    data: Option<Value>,
    errors: Option<Vec<GraphqlError>>,
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct GraphqlError {
    message: String,
    extensions: Option<ErrorExtensions>,
}

#[derive(Deserialize)]
struct ErrorExtensions {
    code: Option<String>,
}

#[derive(Deserialize)]
struct Extensions {
    cost: Option<Cost>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    requested_query_cost: Option<f64>,
    /// What the query cost once run (`null` when it was throttled): what the bucket kept.
    actual_query_cost: Option<f64>,
    throttle_status: ThrottleStatus,
}

/// The throughput window of the cost bucket.
const POINTS: usize = 0;

impl ShopifyClient {
    pub fn new(
        settings: &Settings,
        stats: Arc<ApiStats>,
        stop: CancellationToken,
    ) -> ShopifyClient {
        let shopify = &settings.shopify;
        let http = http::client(settings.sync.request_timeout);
        let bucket = Arc::new(CostBucket::new());
        let ceiling = Ceiling {
            name: "cost points",
            unit: Unit::Points,
            // Corrected by the first answer's `throttleStatus.restoreRate`.
            per_second: bucket.estimate().restore_rate as u32,
            per_minute: None,
        };
        let reservoir: Arc<dyn http::Reservoir> = bucket.clone();
        ShopifyClient {
            credential: Credential::new(settings, http.clone(), Arc::clone(&stats)),
            http,
            endpoint: format!(
                "{}/admin/api/{}/graphql.json",
                shopify.base_url, shopify.api_version
            ),
            bucket,
            throughput: Throughput::new([ceiling]).with_reservoir(POINTS, reservoir),
            retry: RetryPolicy::new(settings.sync.max_retry_time),
            stats,
            stop,
            progress: Arc::default(),
        }
    }

    /// Counts progress into `progress` (shared with the pipeline's renderers).
    pub fn with_progress(mut self, progress: Arc<Progress>) -> ShopifyClient {
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

    /// Busy time, points against the restore rate, bucket waits and bulk operations (for the
    /// pass report, progress). Callers mark their whole phase busy, so that time between
    /// requests counts as the daemon's, and bulk operations as time no bucket governs.
    pub fn throughput(&self) -> &Throughput {
        &self.throughput
    }

    /// The setting(s) a refusal of this client's credential names.
    pub fn credential_key(&self) -> &'static str {
        self.credential.key()
    }

    /// Gets a token now (a request to the token endpoint with client credentials; nothing
    /// with a static token, which only a query can prove), so a refusal is told apart from
    /// a refused query.
    pub async fn authenticate(&self) -> Result<(), ApiError> {
        self.credential.token().await.map(drop)
    }
    /// The shop's cost bucket as this client estimates it now.
    pub fn bucket(&self) -> ThrottleStatus {
        self.bucket.estimate()
    }

    /// Sends one document and decodes its `data` into `T`, waiting for the bucket to afford
    /// `cost` first and retrying throttles, 5xx and timeouts.
    pub async fn execute<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        query: &str,
        variables: Value,
        cost: f64,
    ) -> Result<T, ApiError> {
        self.send(endpoint, query, variables, cost, false).await
    }

    /// Like [`ShopifyClient::execute`] for a document that must not run twice (it starts
    /// something): only a refusal that proves it did not run (`THROTTLED`, 429) is tried
    /// again. Any other failure (a 5xx, a timeout, a cut connection, a garbled body) may have
    /// come after Shopify ran it, so it is returned at once for the caller to find out.
    pub async fn execute_once<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        query: &str,
        variables: Value,
        cost: f64,
    ) -> Result<T, ApiError> {
        self.send(endpoint, query, variables, cost, true).await
    }

    /// One document under the retry policy; with `only_refusals`, only a rate limit is
    /// retried and any other failure is the answer.
    async fn send<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        query: &str,
        variables: Value,
        cost: f64,
        only_refusals: bool,
    ) -> Result<T, ApiError> {
        let body = json!({ "query": query, "variables": variables });
        let _busy = self.throughput.busy();
        with_retry(&self.retry, &self.stats, &self.stop, || async {
            match self.attempt(endpoint, &body, cost).await {
                Err(error) if only_refusals && !matches!(error, ApiError::RateLimited { .. }) => {
                    Ok(Err(error))
                }
                answered => answered.map(Ok),
            }
        })
        .await?
    }

    /// Streams a bulk operation's result (JSONL) into `sink`, one decoded line at a time,
    /// holding only the unfinished line. The URL is pre-signed storage, so the access token
    /// is deliberately not sent. A large result takes minutes, so the download as a whole
    /// has no time limit; it fails when no data arrives for `read_timeout`. Any transfer
    /// failure starts the download over from the first line (see [`BulkSink`]), up to
    /// `sync.max_retry_time`; the sink's own failure ends it at once. A stop ends it too
    /// (`ApiError::Stopped`): minutes of download must not hold up a shutdown, and the lines
    /// stored so far are stored again, unchanged, when the next run starts it over.
    pub async fn download<T, S>(
        &self,
        url: &str,
        read_timeout: std::time::Duration,
        sink: &mut S,
    ) -> Result<(), S::Error>
    where
        T: DeserializeOwned,
        S: BulkSink<T> + Send,
    {
        let http = http::streaming_client(read_timeout);
        let _unbound = self.throughput.unbound();
        // Each attempt needs the sink; attempts never overlap, so the lock is never contended.
        let sink = tokio::sync::Mutex::new(sink);
        let outcome = with_retry(&self.retry, &self.stats, &self.stop, || {
            let (http, sink) = (&http, &sink);
            async move {
                self.stats.request();
                let mut sink = sink.lock().await;
                self.stop
                    .run_until_cancelled(jsonl::stream(http, url, &mut **sink))
                    .await
                    .ok_or(ApiError::Stopped {
                        endpoint: jsonl::ENDPOINT,
                    })?
            }
        })
        .await?;
        outcome
    }

    /// POSTs a staged upload form (`content_type` names its multipart boundary) to the
    /// storage URL `stagedUploadsCreate` returned, retrying transient failures. The URL is
    /// signed by the form's parameters, so no access token is sent, and a 401/403 is the
    /// form's refusal (an expired policy), not the credential's.
    pub async fn upload(&self, url: &str, content_type: &str, form: Bytes) -> Result<(), ApiError> {
        const ENDPOINT: &str = "shopify staged upload";
        let _unbound = self.throughput.unbound();
        with_retry(&self.retry, &self.stats, &self.stop, || async {
            self.stats.request();
            let request = self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(form.clone());
            match http::send(ENDPOINT, request).await? {
                reply if matches!(reply.status, 401 | 403) => Err(ApiError::Rejected {
                    endpoint: ENDPOINT,
                    status: reply.status,
                    detail: body_excerpt(&reply.body),
                }),
                reply => reply
                    .into_body(ENDPOINT, "the staged upload form", body_excerpt)
                    .map(|_| ()),
            }
        })
        .await
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        body: &Value,
        cost: f64,
    ) -> Result<T, ApiError> {
        let waited = self
            .bucket
            .reserve(cost, &self.stop)
            .await
            .ok_or(ApiError::Stopped { endpoint })?;
        self.stats.waited(waited);
        self.throughput.sent(POINTS, waited);
        let token = self.credential.token().await?;
        let mut result = self.post(endpoint, body, &token).await;
        // A granted token refused before its time: one new token, one more try.
        if matches!(result, Err(ApiError::Unauthorized { status: 401, .. }))
            && self.credential.refused(&token).await
        {
            let token = self.credential.token().await?;
            result = self.post(endpoint, body, &token).await;
        }
        if let Err(ApiError::RateLimited { .. }) = &result {
            self.stats.rate_limited();
            self.throughput.refused(POINTS);
        }
        let bytes = result?;
        let envelope: Envelope = ApiError::decode(endpoint, &bytes)?;
        let cost_info = envelope.extensions.and_then(|e| e.cost);
        if let Some(cost) = &cost_info {
            self.bucket.observe(cost.throttle_status);
            self.throughput
                .set_per_second(POINTS, cost.throttle_status.restore_rate as u32);
            self.throughput
                .spent(POINTS, cost.actual_query_cost.unwrap_or(0.0));
        }
        if let Some(errors) = envelope.errors.filter(|e| !e.is_empty()) {
            let throttled = errors.iter().any(|e| {
                e.extensions.as_ref().and_then(|x| x.code.as_deref()) == Some("THROTTLED")
            });
            if throttled {
                self.stats.rate_limited();
                self.throughput.refused(POINTS);
                let retry_after = cost_info.map(|c| {
                    let missing = c.requested_query_cost.unwrap_or(cost)
                        - c.throttle_status.currently_available;
                    std::time::Duration::from_secs_f64(
                        (missing / c.throttle_status.restore_rate.max(1.0)).max(0.0),
                    )
                });
                return Err(ApiError::RateLimited {
                    endpoint,
                    retry_after,
                });
            }
            let detail = errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            // GraphQL errors come with HTTP 200.
            return Err(ApiError::Rejected {
                endpoint,
                status: 200,
                detail,
            });
        }
        let data = envelope.data.ok_or_else(|| ApiError::Malformed {
            endpoint,
            path: "data".into(),
            detail: "no data and no errors in the response".into(),
        })?;
        decode_data(endpoint, data)
    }
}

impl ShopifyClient {
    /// One POST of `body` with `token`; the body of a 2xx answer.
    async fn post(
        &self,
        endpoint: &'static str,
        body: &Value,
        token: &Token,
    ) -> Result<Bytes, ApiError> {
        self.stats.request();
        let request = self
            .http
            .post(&self.endpoint)
            .header("X-Shopify-Access-Token", token.secret.expose_secret())
            .json(body);
        http::send(endpoint, request).await?.into_body(
            endpoint,
            self.credential.key(),
            body_excerpt,
        )
    }
}

/// A response's `data` as `T`, or an error naming the endpoint and the field path.
pub(crate) fn decode_data<T: DeserializeOwned>(
    endpoint: &'static str,
    data: Value,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(data).map_err(|e| ApiError::Malformed {
        endpoint,
        path: format!("data.{}", e.path()),
        detail: e.inner().to_string(),
    })
}
