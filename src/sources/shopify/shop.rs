//! Shop settings tiersync needs: the IANA time zone its calendar rules run in; and what
//! `tiersync check` shows of the shop (its name and plan).

use serde::Deserialize;
use serde_json::json;

use crate::http::ApiError;
use crate::vendors::shopify::{queries, ShopifyClient};

#[derive(Deserialize)]
struct ShopData {
    shop: Shop,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shop {
    iana_timezone: String,
}

/// The shop's time zone as Shopify reports it.
pub async fn shop_timezone(client: &ShopifyClient) -> Result<chrono_tz::Tz, ApiError> {
    const ENDPOINT: &str = "shopify shop";
    let data: ShopData = client
        .execute(ENDPOINT, queries::SHOP_TIMEZONE, json!({}), 2.0)
        .await?;
    data.shop
        .iana_timezone
        .parse()
        .map_err(|_| ApiError::Malformed {
            endpoint: ENDPOINT,
            path: "data.shop.ianaTimezone".into(),
            detail: format!("`{}` is not an IANA time zone", data.shop.iana_timezone),
        })
}

/// The shop as `tiersync check` shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopInfo {
    pub name: String,
    pub iana_timezone: String,
    pub plan: ShopPlan,
}

/// The shop's billing plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopPlan {
    pub display_name: String,
    pub shopify_plus: bool,
}

#[derive(Deserialize)]
struct ShopInfoData {
    shop: ShopInfo,
}

/// The shop's name, time zone and plan (one query costing 1 point).
pub async fn shop_info(client: &ShopifyClient) -> Result<ShopInfo, ApiError> {
    let data: ShopInfoData = client
        .execute("shopify shop", queries::SHOP_CHECK, json!({}), 2.0)
        .await?;
    Ok(data.shop)
}
