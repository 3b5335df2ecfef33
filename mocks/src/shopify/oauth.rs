//! `POST /admin/oauth/access_token` with the client credentials grant, the way an app made in
//! the Dev Dashboard gets its Admin API tokens (shopify.dev, authentication-authorization/
//! access-tokens/client-credentials-grant): a form body `grant_type=client_credentials&
//! client_id=…&client_secret=…` answered with `{access_token, scope, expires_in}`. The tokens
//! expire after [`ShopifyOptions::token_lifetime`](super::ShopifyOptions::token_lifetime);
//! a request with an expired or unknown token gets Shopify's 401.
//!
//! Refusals use the OAuth 2.0 error body (RFC 6749 §5.2, `{"error", "error_description"}`):
//! `invalid_client` with HTTP 401 for a wrong client id or secret, `unsupported_grant_type` or
//! `invalid_request` with HTTP 400 for a malformed request. Shopify does not document the exact
//! bodies of this endpoint's refusals; the daemon treats a 400 and a 401 alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::state::Shared;

/// The tokens the grant issued, with when each expires.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    expiry: HashMap<String, Instant>,
    issued: usize,
}

impl Tokens {
    /// A new token valid for `lifetime`.
    fn issue(&mut self, lifetime: Duration) -> String {
        self.issued += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let token = format!("shpat_{:024x}{:08x}", nanos, self.issued);
        let now = Instant::now();
        self.expiry.retain(|_, at| *at > now);
        self.expiry.insert(token.clone(), now + lifetime);
        token
    }

    /// Whether `token` was issued and has not expired.
    pub(crate) fn valid(&self, token: &str) -> bool {
        self.expiry
            .get(token)
            .is_some_and(|at| *at > Instant::now())
    }

    /// How many tokens were issued.
    pub(crate) fn issued(&self) -> usize {
        self.issued
    }

    /// Ends every issued token now.
    pub(crate) fn expire_all(&mut self) {
        self.expiry.clear();
    }
}

/// An OAuth error answer.
fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, Json(body)).into_response()
}

/// The request's parameters, from a form body (what Shopify documents) or a JSON object
/// (what Shopify's own Node library sends).
fn parameters(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        Some(form_urlencoded::parse(body).into_owned().collect())
    } else if content_type.starts_with("application/json") {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
        Some(
            map.into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
                .collect(),
        )
    } else {
        None
    }
}

/// `POST /admin/oauth/access_token`.
pub(crate) async fn access_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(params) = parameters(&headers, &body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        );
    };
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("grant_type") != Some("client_credentials") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "this fake grants client_credentials only",
        );
    }
    let options = &shared.options;
    if param("client_id") != Some(options.client_id.as_str())
        || param("client_secret") != Some(options.client_secret.as_str())
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed: unknown client id or wrong client secret",
        );
    }
    let token = shared.tokens().issue(options.token_lifetime);
    Json(json!({
        "access_token": token,
        "scope": options.scopes.join(","),
        "expires_in": options.token_lifetime.as_secs(),
    }))
    .into_response()
}
