//! The Admin API credential: the static token of an admin-created custom app, or expiring
//! tokens from the client credentials grant for an app made in the Dev Dashboard
//! (shopify.dev, authentication-authorization/access-tokens/client-credentials-grant:
//! `POST {shop}/admin/oauth/access_token` with a form body `grant_type=client_credentials&
//! client_id=…&client_secret=…` → `{access_token, scope, expires_in}`).
//!
//! A granted token is cached and replaced shortly before `expires_in` runs out (a tenth of
//! its lifetime or 60 s, whichever is smaller, so a token of a few seconds in tests is renewed
//! too), and once when Shopify answers 401 anyway (revoked early, or clocks apart). One lock
//! serializes fetching: requests that need a token while one is being fetched wait for it
//! instead of asking for their own, and a 401 forgets a token only if no newer one replaced it
//! meanwhile. The secret and the tokens are `SecretString`s: never in logs, errors or Debug.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{Settings, ShopifyAuth};
use crate::http::{self, body_excerpt, ApiError, ApiStats};

/// The setting to check when Shopify refuses a static token.
const TOKEN_CREDENTIAL: &str = "shopify.access_token";
/// The settings to check when Shopify refuses the client credentials or their token.
const GRANT_CREDENTIAL: &str = "shopify.client_id / shopify.client_secret";
const ENDPOINT: &str = "shopify access token (client credentials grant)";
/// The most a token is renewed ahead of its expiry.
const MAX_MARGIN: Duration = Duration::from_secs(60);

/// A token to send, with which issue it is (so a refusal forgets only that one).
pub(super) struct Token {
    /// The token sent as `X-Shopify-Access-Token`; a `SecretString`, so it never reaches a log.
    pub secret: SecretString,
    generation: u64,
}

pub(super) enum Credential {
    Static(SecretString),
    Grant(Grant),
}

/// The client credentials grant and its cached token.
pub(super) struct Grant {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: SecretString,
    stats: Arc<ApiStats>,
    cached: Mutex<Option<Issued>>,
    generations: AtomicU64,
}

struct Issued {
    token: SecretString,
    renew_at: Instant,
    generation: u64,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Granted {
    access_token: SecretString,
    scope: String,
    expires_in: u64,
}

/// An OAuth error body (RFC 6749 §5.2).
#[derive(Deserialize)]
struct OauthError {
    error: String,
    error_description: Option<String>,
}

impl Credential {
    pub(super) fn new(settings: &Settings, http: reqwest::Client, stats: Arc<ApiStats>) -> Self {
        match &settings.shopify.auth {
            ShopifyAuth::AccessToken(token) => Credential::Static(token.clone()),
            ShopifyAuth::ClientCredentials {
                client_id,
                client_secret,
            } => Credential::Grant(Grant {
                http,
                url: format!("{}/admin/oauth/access_token", settings.shopify.base_url),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                stats,
                cached: Mutex::new(None),
                generations: AtomicU64::new(0),
            }),
        }
    }

    /// The setting(s) an error about this credential names.
    pub(super) fn key(&self) -> &'static str {
        match self {
            Credential::Static(_) => TOKEN_CREDENTIAL,
            Credential::Grant(_) => GRANT_CREDENTIAL,
        }
    }

    /// The token to send now: the static one, or a granted one that is not about to expire
    /// (fetched first if needed).
    pub(super) async fn token(&self) -> Result<Token, ApiError> {
        match self {
            Credential::Static(secret) => Ok(Token {
                secret: secret.clone(),
                generation: 0,
            }),
            Credential::Grant(grant) => grant.token().await,
        }
    }

    /// Shopify answered 401 to `token`. Returns whether a new token may help (only a granted
    /// one can be replaced), after making sure the next [`Credential::token`] fetches one.
    pub(super) async fn refused(&self, token: &Token) -> bool {
        match self {
            Credential::Static(_) => false,
            Credential::Grant(grant) => {
                let mut cached = grant.cached.lock().await;
                if cached
                    .as_ref()
                    .is_some_and(|c| c.generation == token.generation)
                {
                    tracing::info!(
                        "Shopify refused the access token before its expiry; getting a new one"
                    );
                    *cached = None;
                }
                true
            }
        }
    }
}

impl Grant {
    async fn token(&self) -> Result<Token, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some(issued) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(Token {
                secret: issued.token.clone(),
                generation: issued.generation,
            });
        }
        let granted = self.fetch().await?;
        let lifetime = Duration::from_secs(granted.expires_in);
        let margin = (lifetime / 10).min(MAX_MARGIN);
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            expires_in_s = granted.expires_in,
            scope = %granted.scope,
            "Shopify access token issued (client credentials grant)"
        );
        let issued = cached.insert(Issued {
            token: granted.access_token,
            renew_at: Instant::now() + lifetime - margin,
            generation,
        });
        Ok(Token {
            secret: issued.token.clone(),
            generation,
        })
    }

    /// One request to the token endpoint. A refused client ID or secret (400 or 401) is a
    /// credential error naming both settings, with the OAuth error code and description.
    async fn fetch(&self) -> Result<Granted, ApiError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose_secret())
            .finish();
        let request = self
            .http
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        self.stats.request();
        let reply = http::send(ENDPOINT, request).await?;
        if reply.status == 400 {
            return Err(ApiError::Unauthorized {
                endpoint: ENDPOINT,
                status: 400,
                credential: GRANT_CREDENTIAL,
                detail: oauth_detail(&reply.body),
            });
        }
        let bytes = reply.into_body(ENDPOINT, GRANT_CREDENTIAL, oauth_detail)?;
        // Not `ApiError::decode`: its message quotes the body, which holds the token.
        let mut json = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut json).map_err(|e| ApiError::Malformed {
            endpoint: ENDPOINT,
            path: e.path().to_string(),
            detail: e.inner().to_string(),
        })
    }
}

/// `error: description` of an OAuth error body, else the body's start.
fn oauth_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<OauthError>(body) {
        Ok(e) => match e.error_description {
            Some(description) => format!("{}: {description}", e.error),
            None => e.error,
        },
        Err(_) => body_excerpt(body),
    }
}
