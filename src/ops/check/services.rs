//! The services' checks: each credential and scope proven with read-only calls.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{platform_name, CheckReport, Outcome};
use crate::config::Settings;
use crate::http::{ApiError, ApiStats};
use crate::sinks::klaviyo::{probe_bulk_reads, probe_key, write_scopes, KlaviyoClient};
use crate::sources::loyalty::LoyaltyClient;
use crate::sources::shopify::{check_access, granted_scopes, shop_info};
use crate::vendors::shopify::ShopifyClient;

/// Shopify, Klaviyo and the loyalty app, one after the other (a handful of requests).
pub(super) async fn check(settings: &Settings, report: &mut CheckReport) {
    let stop = CancellationToken::new();
    shopify(settings, &stop, report).await;
    klaviyo(settings, &stop, report).await;
    loyalty(settings, &stop, report).await;
}

fn stats() -> Arc<ApiStats> {
    Arc::new(ApiStats::default())
}

/// The token, the shop, the access scopes and the plan's limit. A refused credential ends
/// the Shopify checks: every later one would fail the same way.
async fn shopify(settings: &Settings, stop: &CancellationToken, report: &mut CheckReport) {
    let client = ShopifyClient::new(settings, stats(), stop.clone());
    let key = client.credential_key();
    if let Err(error) = client.authenticate().await {
        report.push("shopify token", Outcome::Failed(error.to_string()));
        return;
    }
    let shop = match shop_info(&client).await {
        Ok(shop) => shop,
        Err(error) => {
            report.push("shopify shop", Outcome::Failed(error.to_string()));
            return;
        }
    };
    report.push(
        "shopify shop",
        Outcome::Ok(format!(
            "`{key}` accepted: \"{}\", plan {}, time zone {}",
            shop.name, shop.plan.display_name, shop.iana_timezone
        )),
    );
    let granted = match granted_scopes(&client).await {
        Ok(granted) => granted,
        Err(error) => {
            report.push("shopify scopes", Outcome::Failed(error.to_string()));
            return;
        }
    };
    // As for the first backfill: a store that has read orders no longer needs
    // `read_all_orders`, but a check does not open the store to know.
    let outcome = match check_access(&granted, settings, true) {
        Ok(access) if access.partial_history => Outcome::Ok(format!(
            "granted: {}; without read_all_orders only the last 60 days of orders are read (shopify.accept_partial_history = true)",
            granted.join(", ")
        )),
        Ok(_) => Outcome::Ok(format!("granted: {}", granted.join(", "))),
        Err(error) => Outcome::Failed(format!("{error} (granted: {})", granted.join(", "))),
    };
    report.push("shopify scopes", outcome);
    let bucket = client.bucket();
    report.push(
        "shopify limit",
        Outcome::Ok(format!(
            "cost bucket of {} points restoring {}/s{}",
            bucket.maximum_available,
            bucket.restore_rate,
            if shop.plan.shopify_plus {
                " (Shopify Plus)"
            } else {
                ""
            }
        )),
    );
}

/// The key (`profiles:read`), the bulk jobs' reads (`lists:read`), and what only a write
/// proves. A wrong key (401) ends the Klaviyo checks.
async fn klaviyo(settings: &Settings, stop: &CancellationToken, report: &mut CheckReport) {
    let client = KlaviyoClient::new(settings, stats(), stop.clone());
    match probe_key(&client).await {
        Ok(()) => report.push(
            "klaviyo key",
            Outcome::Ok("`klaviyo.api_key` accepted; profiles:read proven".into()),
        ),
        Err(error) => {
            let wrong_key = matches!(error, ApiError::Unauthorized { status: 401, .. });
            report.push("klaviyo key", Outcome::Failed(error.to_string()));
            if wrong_key || !error.is_credential() {
                return;
            }
        }
    }
    report.push(
        "klaviyo bulk",
        match probe_bulk_reads(&client).await {
            Ok(()) => Outcome::Ok("lists:read and profiles:read proven (bulk import jobs)".into()),
            Err(error) => Outcome::Failed(error.to_string()),
        },
    );
    report.push(
        "klaviyo writes",
        Outcome::Unproven(format!(
            "{}: Klaviyo has no read-only way to show a key's scopes, so the first write proves them (a missing one stops the Klaviyo destination, named in the log and `tiersync status`)",
            write_scopes().join(", ")
        )),
    );
}

/// One member of the loyalty app, if one is configured.
async fn loyalty(settings: &Settings, stop: &CancellationToken, report: &mut CheckReport) {
    let Some(client) = LoyaltyClient::new(settings, stats(), stop.clone()) else {
        return;
    };
    let platform = platform_name(settings.loyalty.platform);
    report.push(
        "loyalty app",
        match client.probe().await {
            Ok(()) => Outcome::Ok(format!(
                "{platform}: `loyalty.api_key` accepted (one member read)"
            )),
            Err(error) => Outcome::Failed(error.to_string()),
        },
    );
}
