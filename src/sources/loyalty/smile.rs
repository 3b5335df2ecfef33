//! Smile.io: `GET /v1/customers?updated_at_min=…&limit=250&include=vip_status.vip_tier`, cursor
//! paging through `metadata.next_cursor`; 10 requests/s per token.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::client::{since_param, LoyaltyClient, LoyaltyMember};
use crate::http::ApiError;

const ENDPOINT: &str = "smile customers";

#[derive(Deserialize)]
struct Page {
    customers: Vec<Customer>,
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Customer {
    email: Option<String>,
    points_balance: i64,
    updated_at: DateTime<Utc>,
    vip_status: Option<VipStatus>,
}

#[derive(Deserialize)]
struct VipStatus {
    vip_tier: Option<VipTier>,
}

#[derive(Deserialize)]
struct VipTier {
    name: String,
}

pub(super) async fn members_updated_since(
    client: &LoyaltyClient,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<LoyaltyMember>, ApiError> {
    let first = format!(
        "/customers?limit=250&include=vip_status.vip_tier{}",
        since_param(since)
    );
    let mut url = first;
    let mut members = Vec::new();
    loop {
        let page: Page = client.get(ENDPOINT, &url).await?;
        members.extend(page.customers.into_iter().filter_map(|c| {
            Some(LoyaltyMember {
                email: c.email?.trim().to_lowercase(),
                points: c.points_balance,
                tier: c.vip_status.and_then(|v| v.vip_tier).map(|t| t.name),
                updated_at: c.updated_at,
            })
        }));
        match page.metadata.next_cursor {
            Some(cursor) => {
                url = format!("/customers?limit=250&include=vip_status.vip_tier&cursor={cursor}")
            }
            None => return Ok(members),
        }
    }
}
