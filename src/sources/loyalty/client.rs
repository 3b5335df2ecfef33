//! The loyalty-app interface and the transport both apps share: Bearer auth, a per-token
//! requests-per-second limiter, retries, typed errors.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::config::{LoyaltyPlatform, Settings};
use crate::http::{
    self, body_excerpt, with_retry, ApiError, ApiStats, Ceiling, RetryPolicy, Throughput, Unit,
    WindowLimiter,
};

/// A loyalty member as tiersync keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyMember {
    /// Lower-cased; the key tiersync matches Shopify customers on.
    pub email: String,
    /// The points balance (Smile `points_balance`, LoyaltyLion `points_approved`), which the
    /// blended CLV values at `clv.point_value`.
    pub points: i64,
    /// The app's own tier name, if any.
    pub tier: Option<String>,
    /// When the app last changed the member: the loyalty cursor moves to the latest one read.
    pub updated_at: DateTime<Utc>,
}

/// The configured loyalty app.
pub struct LoyaltyClient {
    /// Which app's endpoints and JSON `members_updated_since` uses.
    pub(super) platform: LoyaltyPlatform,
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
    limiter: WindowLimiter,
    retry: RetryPolicy,
    stats: Arc<ApiStats>,
    /// Fired when tiersync is asked to stop: limiter and back-off waits end at once.
    stop: CancellationToken,
    /// Requests against the per-second limit while reading, waits and 429s (one window).
    throughput: Throughput,
}

impl LoyaltyClient {
    /// `None` when no loyalty app is configured.
    pub fn new(
        settings: &Settings,
        stats: Arc<ApiStats>,
        stop: CancellationToken,
    ) -> Option<LoyaltyClient> {
        let loyalty = &settings.loyalty;
        if loyalty.platform == LoyaltyPlatform::None {
            return None;
        }
        let per_second = loyalty.requests_per_second;
        Some(LoyaltyClient {
            platform: loyalty.platform,
            http: http::client(settings.sync.request_timeout),
            base_url: loyalty.base_url.clone(),
            token: loyalty.api_key.clone(),
            // The apps count per second only.
            limiter: WindowLimiter::per_second_only(per_second),
            retry: RetryPolicy::new(settings.sync.max_retry_time),
            stats,
            stop,
            throughput: Throughput::new([Ceiling {
                name: "requests",
                unit: Unit::Requests,
                per_second,
                per_minute: None,
            }]),
        })
    }

    pub fn stats(&self) -> &ApiStats {
        &self.stats
    }

    /// Busy time and requests against the per-second limit (for the pass report, progress).
    pub fn throughput(&self) -> &Throughput {
        &self.throughput
    }

    /// Every member updated at or after `since` (everyone when `None`).
    pub async fn members_updated_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<LoyaltyMember>, ApiError> {
        // The whole read: decoding a page delays the next request.
        let _busy = self.throughput.busy();
        match self.platform {
            LoyaltyPlatform::Smile => super::smile::members_updated_since(self, since).await,
            LoyaltyPlatform::LoyaltyLion => {
                super::loyaltylion::members_updated_since(self, since).await
            }
            LoyaltyPlatform::None => Ok(Vec::new()),
        }
    }

    /// One member (`limit=1`): proves the key and its read scope, and changes nothing.
    pub async fn probe(&self) -> Result<(), ApiError> {
        let endpoint = match self.platform {
            LoyaltyPlatform::Smile => "smile customers",
            LoyaltyPlatform::LoyaltyLion => "loyaltylion customers",
            LoyaltyPlatform::None => return Ok(()),
        };
        let _: serde_json::Value = self.get(endpoint, "/customers", &[("limit", "1")]).await?;
        Ok(())
    }

    /// GETs `path` (relative to the base URL) with `query`, encoded by reqwest (cursors are
    /// base64, whose `+` would read as a space if sent as is), and decodes the body.
    pub(super) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let _busy = self.throughput.busy();
        let body = with_retry(&self.retry, &self.stats, &self.stop, || async {
            let waited = self
                .limiter
                .acquire(&self.stop)
                .await
                .ok_or(ApiError::Stopped { endpoint })?;
            self.stats.waited(waited);
            self.throughput.sent(0, waited);
            self.stats.request();
            let request = self
                .http
                .get(&url)
                .query(query)
                .bearer_auth(self.token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json");
            let result = http::send(endpoint, request).await?.into_body(
                endpoint,
                "loyalty.api_key",
                body_excerpt,
            );
            match result {
                Err(ApiError::RateLimited { retry_after, .. }) => {
                    self.stats.rate_limited();
                    self.throughput.refused(0);
                    // Both apps refuse for the rest of the second and send no Retry-After.
                    let wait = retry_after.unwrap_or(std::time::Duration::from_secs(1));
                    self.limiter.pause(wait);
                    Err(ApiError::RateLimited {
                        endpoint,
                        retry_after: Some(wait),
                    })
                }
                other => other,
            }
        })
        .await?;
        ApiError::decode(endpoint, &body)
    }
}

/// `updated_at_min` as both apps take it.
pub(super) fn since_param(since: Option<DateTime<Utc>>) -> Option<String> {
    since.map(|s| s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
