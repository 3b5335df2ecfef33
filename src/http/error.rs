//! The one error type vendor clients return, classified by what the caller should do.

use std::time::Duration;

/// A failed call to a vendor API. `endpoint` is the operation, e.g. `klaviyo profile-import`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401/403: the credential is wrong, revoked or lacks a scope. Retrying cannot help.
    #[error("{endpoint}: the credential was refused (HTTP {status}): {detail}; check `{credential}` (the key's scopes and that it is not revoked)")]
    Unauthorized {
        endpoint: &'static str,
        status: u16,
        credential: &'static str,
        detail: String,
    },
    /// 429 or Shopify `THROTTLED`: wait (at least `retry_after`) and try again.
    #[error("{endpoint}: rate limited{}", .retry_after.map(|d| format!(", retry after {:.1}s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        endpoint: &'static str,
        retry_after: Option<Duration>,
    },
    /// 5xx: the vendor is having trouble; back off and retry.
    #[error("{endpoint}: server error HTTP {status}: {detail}")]
    Server {
        endpoint: &'static str,
        status: u16,
        detail: String,
    },
    /// Timeout, refused or dropped connection: back off and retry. The message carries every
    /// cause (reqwest's own stops at "error sending request", leaving out the "connection
    /// refused" or "dns error" the operator needs), so it is no `source` to print again.
    #[error("{endpoint}: request failed: {}", causes(.error))]
    Transport {
        endpoint: &'static str,
        error: reqwest::Error,
    },
    /// Not sent: tiersync was asked to stop while this request waited for a rate limiter.
    /// The write stays pending; it is sent on the next run.
    #[error("{endpoint}: not sent, tiersync is stopping")]
    Stopped { endpoint: &'static str },
    /// Another 4xx (or a GraphQL error): the request itself is wrong for this input; retrying
    /// the same request cannot help.
    #[error("{endpoint}: refused (HTTP {status}): {detail}")]
    Rejected {
        endpoint: &'static str,
        status: u16,
        detail: String,
    },
    /// The response did not have the shape the API documents.
    #[error("{endpoint}: unexpected response at `{path}`: {detail}")]
    Malformed {
        endpoint: &'static str,
        path: String,
        detail: String,
    },
}

impl ApiError {
    /// Whether the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        // A malformed body is usually a truncated or garbled transfer: worth another try.
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Server { .. }
                | ApiError::Transport { .. }
                | ApiError::Malformed { .. }
                | ApiError::Stopped { .. }
        )
    }

    /// Whether this stops the whole destination (a credential problem).
    pub fn is_credential(&self) -> bool {
        matches!(self, ApiError::Unauthorized { .. })
    }

    /// Parses a JSON body into `T`, naming the field path that did not fit.
    ///
    /// Tracking the path slows every parse, and a bulk result parses millions of lines: the
    /// path is only traced when the plain parse failed.
    pub fn decode<T: serde::de::DeserializeOwned>(
        endpoint: &'static str,
        body: &[u8],
    ) -> Result<T, ApiError> {
        if let Ok(value) = serde_json::from_slice(body) {
            return Ok(value);
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| ApiError::Malformed {
            endpoint,
            path: e.path().to_string(),
            detail: format!("{} (body starts: {})", e.inner(), body_excerpt(body)),
        })
    }
}

/// An error and its causes, each said once: `error sending request for url (…): client error
/// (Connect): tcp connect error: Connection refused (os error 111)`.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    said_once(std::iter::successors(Some(error), |e| e.source()))
}

/// A chain of errors (outermost first) joined by `: `, leaving out a cause whose text an
/// outer one already says: a layer that quotes its source (a `{source}` in its message, a
/// reqwest error that names the URL its own source names again) would otherwise print the
/// same words two or three times.
pub fn said_once<'a>(
    chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut text = String::new();
    for cause in chain {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

/// The first 300 characters of a body, for error messages.
pub fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut excerpt: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .expect_err("nothing listens");
        let message = ApiError::Transport {
            endpoint: "test",
            error,
        }
        .to_string();
        assert!(
            message.to_lowercase().contains("connection refused"),
            "{message}"
        );
        assert_eq!(message.matches("127.0.0.1").count(), 1, "{message}");
    }
}
