//! Sending a request and classifying its answer, the same way for every vendor: 2xx is the
//! body; 401/403 a credential problem; 429 "slow down" (with any `Retry-After`); 5xx the
//! vendor's trouble; any other status a refusal of this request.

use std::time::Duration;

use bytes::Bytes;

use super::ApiError;

/// A response read to the end.
pub struct Reply {
    /// The HTTP status, which [`Reply::into_body`] turns into the body or a typed error.
    pub status: u16,
    /// The `Retry-After` header, if any: on a 429 it is how long the retry waits.
    pub retry_after: Option<Duration>,
    /// The whole body: the payload of a 2xx, otherwise the vendor's words for the error's
    /// `detail`.
    pub body: Bytes,
}

/// Sends `request` and reads the whole body; transport failures become `Transport` errors.
pub async fn send(
    endpoint: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<Reply, ApiError> {
    let response = request
        .send()
        .await
        .map_err(|error| ApiError::Transport { endpoint, error })?;
    let status = response.status().as_u16();
    let retry_after = super::retry_after(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|error| ApiError::Transport { endpoint, error })?;
    Ok(Reply {
        status,
        retry_after,
        body,
    })
}

impl Reply {
    /// The body of a 2xx answer, or the error its status means. `detail` renders the vendor's
    /// error body for messages; `credential` names the config key to check on 401/403.
    pub fn into_body(
        self,
        endpoint: &'static str,
        credential: &'static str,
        detail: impl Fn(&[u8]) -> String,
    ) -> Result<Bytes, ApiError> {
        let status = self.status;
        match status {
            200..=299 => Ok(self.body),
            401 | 403 => Err(ApiError::Unauthorized {
                endpoint,
                status,
                credential,
                detail: detail(&self.body),
            }),
            429 => Err(ApiError::RateLimited {
                endpoint,
                retry_after: self.retry_after,
            }),
            500..=599 => Err(ApiError::Server {
                endpoint,
                status,
                detail: detail(&self.body),
            }),
            _ => Err(ApiError::Rejected {
                endpoint,
                status,
                detail: detail(&self.body),
            }),
        }
    }
}
