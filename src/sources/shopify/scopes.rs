//! The access scopes tiersync needs, checked against what the app was granted
//! (`currentAppInstallation { accessScopes { handle } }`) before it reads or writes anything:
//! - `read_orders`, always;
//! - `read_all_orders` for the first backfill: without it Shopify shows only the orders
//!   created in the last 60 days (shopify.dev, the `Order` object), and every customer would be
//!   ranked on that alone, so the backfill is refused unless `shopify.accept_partial_history`;
//! - `write_customers` while the storefront destination is on (tags and metafields).
//!
//! A `write_` scope includes its `read_` scope, as on Shopify.

use serde::Deserialize;
use serde_json::json;

use crate::config::Settings;
use crate::http::ApiError;
use crate::vendors::shopify::{queries, ShopifyClient};

/// How far back Shopify shows orders without `read_all_orders`.
pub const ORDER_WINDOW_DAYS: i64 = 60;

/// A scope tiersync needs that the app was not granted.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("the Shopify app lacks the `{scope}` access scope, which tiersync needs {why}. Add `{scope}` to the Admin API scopes of the app's version in the Dev Dashboard (Apps → the app → Versions → new version), release the version and approve the new scopes on the store (a custom app made in the Shopify admin: Configuration → Admin API access scopes){alternative}")]
    Missing {
        scope: &'static str,
        why: &'static str,
        alternative: &'static str,
    },
    #[error("the Shopify app lacks the `read_all_orders` access scope: without it Shopify shows only the orders of the last {ORDER_WINDOW_DAYS} days, and the first backfill would rank every customer on those alone. Request access to all orders for the app from Shopify (Partner Dashboard → the app → API access → read all orders), then add `read_all_orders` to the Admin API scopes of the app's version in the Dev Dashboard, release it and approve it on the store. To start anyway with the last {ORDER_WINDOW_DAYS} days only, set `shopify.accept_partial_history = true`. Nothing was read; the orders cursor did not move")]
    PartialHistory,
}

/// What the granted scopes allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Orders older than 60 days are invisible (no `read_all_orders`).
    pub partial_history: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    current_app_installation: Installation,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Installation {
    access_scopes: Vec<Scope>,
}

#[derive(Deserialize)]
struct Scope {
    handle: String,
}

/// The scopes granted to the app on this shop (one query costing 1 point).
pub async fn granted_scopes(client: &ShopifyClient) -> Result<Vec<String>, ApiError> {
    let data: Data = client
        .execute(
            "shopify access scopes",
            queries::ACCESS_SCOPES,
            json!({}),
            2.0,
        )
        .await?;
    Ok(data
        .current_app_installation
        .access_scopes
        .into_iter()
        .map(|s| s.handle)
        .collect())
}

/// Checks `granted` against what `settings` need; `backfill_due` when no order has been read
/// yet.
pub fn check(
    granted: &[String],
    settings: &Settings,
    backfill_due: bool,
) -> Result<Access, AccessError> {
    let has = |scope: &str| {
        let write = scope.strip_prefix("read_").map(|r| format!("write_{r}"));
        granted
            .iter()
            .any(|g| g == scope || Some(g) == write.as_ref())
    };
    if !has("read_orders") {
        return Err(AccessError::Missing {
            scope: "read_orders",
            why: "to read orders",
            alternative: "",
        });
    }
    if settings.storefront.enabled && !has("write_customers") {
        return Err(AccessError::Missing {
            scope: "write_customers",
            why:
                "to write the storefront's customer tags and metafields (storefront.enabled = true)",
            alternative:
                "; or turn the storefront destination off with `storefront.enabled = false`",
        });
    }
    let partial_history = !has("read_all_orders");
    if partial_history && backfill_due && !settings.shopify.accept_partial_history {
        return Err(AccessError::PartialHistory);
    }
    Ok(Access { partial_history })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        Settings::from_toml(&format!(
            "[shopify]\nshop = \"acme\"\naccess_token = \"x\"\n{extra}\n[klaviyo]\napi_key = \"k\""
        ))
        .unwrap()
    }

    fn granted(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_needed_scope_granted_passes() {
        let all = granted(&["read_orders", "read_all_orders", "write_customers"]);
        let access = check(&all, &settings(""), true).unwrap();
        assert!(!access.partial_history);
    }

    #[test]
    fn read_all_orders_is_needed_for_the_first_backfill_only_unless_accepted() {
        let some = granted(&["read_orders", "read_customers", "write_customers"]);
        let refused = check(&some, &settings(""), true).unwrap_err().to_string();
        assert!(refused.contains("`read_all_orders`"), "{refused}");
        assert!(
            refused.contains("shopify.accept_partial_history = true"),
            "{refused}"
        );
        assert!(check(&some, &settings(""), false).unwrap().partial_history);
        let accepted = settings("accept_partial_history = true");
        assert!(check(&some, &accepted, true).unwrap().partial_history);
    }

    #[test]
    fn write_customers_is_needed_only_with_the_storefront_on() {
        let reads = granted(&["read_orders", "read_all_orders", "read_customers"]);
        let refused = check(&reads, &settings(""), false).unwrap_err().to_string();
        assert!(refused.contains("`write_customers`"), "{refused}");
        assert!(refused.contains("storefront.enabled = false"), "{refused}");
        let mut off = settings("");
        off.storefront.enabled = false;
        assert!(check(&reads, &off, false).is_ok());
    }

    #[test]
    fn read_orders_is_always_needed() {
        let refused = check(&granted(&["write_customers"]), &settings(""), false)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("`read_orders`"), "{refused}");
    }
}
