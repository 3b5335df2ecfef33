//! `[webhooks]`: the optional Shopify webhook receiver, and the secret its deliveries are
//! checked with.
//!
//! Shopify signs every HTTPS delivery with the app's client secret. A Dev Dashboard app's
//! secret is `shopify.client_secret` already; an app created in the Shopify admin
//! authenticates with a static token and tiersync has no secret of it, so `webhooks.secret`
//! must say it. Turning webhooks on without any secret, or without the endpoint they arrive
//! on, is refused at start rather than answering every delivery 401.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{invalid, ConfigError, Credentials, ShopifyAuth};

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `webhooks.enabled`: serve `POST /webhooks/shopify` on `http.listen`.
    pub enabled: bool,
    /// The secrets a delivery's signature may be made with: the app's secret, then (during a
    /// rotation) the previous one. Empty when webhooks are off or the command loaded the
    /// settings without credentials.
    pub secrets: Vec<SecretString>,
}

#[derive(Deserialize)]
pub(super) struct RawWebhooks {
    enabled: bool,
    secret: SecretString,
    previous_secret: SecretString,
}

impl RawWebhooks {
    pub(super) fn validate(
        self,
        auth: &ShopifyAuth,
        listening: bool,
        credentials: Credentials,
    ) -> Result<WebhookSettings, ConfigError> {
        if !self.enabled {
            return Ok(WebhookSettings {
                enabled: false,
                secrets: Vec::new(),
            });
        }
        if !listening {
            return Err(invalid(
                "webhooks.enabled",
                "is true but `http.listen` is empty: webhooks arrive on the daemon's HTTP \
                 endpoint; set `http.listen` (and put a TLS reverse proxy in front of it), or \
                 set `webhooks.enabled = false`",
            ));
        }
        let given = |s: &SecretString| !s.expose_secret().trim().is_empty();
        let current = if given(&self.secret) {
            Some(self.secret)
        } else {
            match auth {
                ShopifyAuth::ClientCredentials { client_secret, .. } if given(client_secret) => {
                    Some(client_secret.clone())
                }
                _ => None,
            }
        };
        let mut secrets: Vec<SecretString> = current.into_iter().collect();
        if secrets.is_empty() && credentials == Credentials::Required {
            return Err(invalid(
                "webhooks.secret",
                "is empty and the Shopify app has no client secret in the configuration \
                 (it authenticates with `shopify.access_token`): Shopify signs webhooks with \
                 the app's secret, and unsigned deliveries are refused. Set the secret that \
                 signs them with TIERSYNC__WEBHOOKS__SECRET (for an app created in the Shopify \
                 admin: its API secret key, or the signing secret shown under Settings → \
                 Notifications → Webhooks for webhooks created there), or set \
                 `webhooks.enabled = false`",
            ));
        }
        if given(&self.previous_secret) {
            secrets.push(self.previous_secret);
        }
        Ok(WebhookSettings {
            enabled: true,
            secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use crate::config::Settings;

    fn settings(credential: &str, rest: &str) -> Result<Settings, String> {
        Settings::from_toml(&format!(
            "[shopify]\nshop = \"acme\"\n{credential}\n[klaviyo]\napi_key = \"pk\"\n{rest}"
        ))
        .map_err(|e| e.to_string())
    }

    const TOKEN: &str = "access_token = \"shpat_x\"";
    const CLIENT: &str = "client_id = \"id\"\nclient_secret = \"client-secret\"";

    fn secrets(settings: &Settings) -> Vec<&str> {
        settings
            .webhooks
            .secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect()
    }

    #[test]
    fn off_by_default_with_no_secret_needed() {
        let settings = settings(TOKEN, "").unwrap();
        assert!(!settings.webhooks.enabled);
        assert!(settings.webhooks.secrets.is_empty());
    }

    #[test]
    fn a_dev_dashboard_app_signs_with_its_client_secret() {
        let on = settings(CLIENT, "[webhooks]\nenabled = true").unwrap();
        assert_eq!(secrets(&on), ["client-secret"]);
        let rotating = settings(
            CLIENT,
            "[webhooks]\nenabled = true\nprevious_secret = \"old\"",
        )
        .unwrap();
        assert_eq!(secrets(&rotating), ["client-secret", "old"]);
    }

    #[test]
    fn a_static_token_app_needs_the_secret_said() {
        let error = settings(TOKEN, "[webhooks]\nenabled = true").unwrap_err();
        assert!(
            error.contains("`webhooks.secret`")
                && error.contains("TIERSYNC__WEBHOOKS__SECRET")
                && error.contains("webhooks.enabled = false"),
            "{error}"
        );
        let given = settings(TOKEN, "[webhooks]\nenabled = true\nsecret = \"s\"").unwrap();
        assert_eq!(secrets(&given), ["s"]);
    }

    #[test]
    fn webhooks_need_the_endpoint() {
        let error =
            settings(CLIENT, "[http]\nlisten = \"\"\n[webhooks]\nenabled = true").unwrap_err();
        assert!(
            error.contains("`webhooks.enabled`") && error.contains("http.listen"),
            "{error}"
        );
    }
}
