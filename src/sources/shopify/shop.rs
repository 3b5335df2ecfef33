//! Shop settings tiersync needs: the IANA time zone its calendar rules run in.

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
