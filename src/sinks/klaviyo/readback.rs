//! Reading Klaviyo profiles back (reconcile): every profile's identifiers and the properties
//! tiersync owns, a page of 100 at a time under the profiles limiter.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::{KlaviyoClient, GET_PROFILES};
use crate::http::ApiError;
use crate::model::ProfileState;
use crate::progress::Phase;

const FIRST_PAGE: &str =
    "/api/profiles?page[size]=100&fields[profile]=email,external_id,properties";

#[derive(Deserialize)]
struct Page {
    data: Vec<Resource>,
    links: Option<Links>,
}

#[derive(Deserialize)]
struct Links {
    next: Option<String>,
}

#[derive(Deserialize)]
struct Resource {
    attributes: Attributes,
}

#[derive(Deserialize)]
struct Attributes {
    email: Option<String>,
    external_id: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
}

/// Every profile that carries an `external_id`, by it (the Shopify customer's numeric id),
/// as the state tiersync would have written.
pub async fn read_profiles(
    client: &KlaviyoClient,
) -> Result<HashMap<String, ProfileState>, ApiError> {
    let mut out = HashMap::new();
    let mut path = FIRST_PAGE.to_string();
    loop {
        let body = client.send(&GET_PROFILES, &path, None).await?;
        let page: Page = ApiError::decode(GET_PROFILES.name, &body)?;
        client
            .progress()
            .add(Phase::Reconcile, page.data.len() as u64);
        for resource in page.data {
            let a = resource.attributes;
            if let Some(external_id) = a.external_id {
                out.insert(
                    external_id.clone(),
                    profile_state(a.email, external_id, &a.properties),
                );
            }
        }
        match page.links.and_then(|l| l.next) {
            Some(next) => path = client.relative(&next),
            None => return Ok(out),
        }
    }
}

/// The properties as a [`ProfileState`]; a property missing or of another type reads as
/// empty, which then shows as drift.
fn profile_state(
    email: Option<String>,
    external_id: String,
    p: &Map<String, Value>,
) -> ProfileState {
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    let money = |k: &str| {
        p.get(k).and_then(|v| match v {
            Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
            Value::String(s) => Decimal::from_str(s).ok(),
            _ => None,
        })
    };
    ProfileState {
        email,
        external_id,
        vip_tier: text("vip_tier").unwrap_or_default(),
        vip_state: text("vip_state").unwrap_or_default(),
        vip_tier_since: text("vip_tier_since")
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
        vip_peak_tier: text("vip_peak_tier"),
        clv_historic: money("clv_historic").unwrap_or_default(),
        clv_predicted: money("clv_predicted").unwrap_or_default(),
        clv_blended: money("clv_blended").unwrap_or_default(),
        loyalty_points: p.get("loyalty_points").and_then(Value::as_i64).unwrap_or(0),
        orders_count: p
            .get("orders_count")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        rfm_segment: text("rfm_segment"),
        vip_next_tier: text("vip_next_tier"),
        vip_spend_to_next: money("vip_spend_to_next"),
        suppress_discounts: p
            .get("suppress_discounts")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}
