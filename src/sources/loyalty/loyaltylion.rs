//! LoyaltyLion: `GET /v2/customers?updated_at_min=…&limit=500`, cursor paging through
//! `cursor.next` (which carries the filters); `points_approved` and the
//! `loyalty_tier_membership`; 20 requests/s.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::client::{since_param, LoyaltyClient, LoyaltyMember};
use crate::http::ApiError;

const ENDPOINT: &str = "loyaltylion customers";

#[derive(Deserialize)]
struct Page {
    customers: Vec<Customer>,
    cursor: Option<Cursor>,
}

#[derive(Deserialize)]
struct Cursor {
    next: Option<String>,
}

#[derive(Deserialize)]
struct Customer {
    email: Option<String>,
    points_approved: i64,
    updated_at: DateTime<Utc>,
    loyalty_tier_membership: Option<Membership>,
}

#[derive(Deserialize)]
struct Membership {
    loyalty_tier: Tier,
}

#[derive(Deserialize)]
struct Tier {
    name: String,
}

pub(super) async fn members_updated_since(
    client: &LoyaltyClient,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<LoyaltyMember>, ApiError> {
    let mut url = format!("/customers?limit=500{}", since_param(since));
    let mut members = Vec::new();
    loop {
        let page: Page = client.get(ENDPOINT, &url).await?;
        members.extend(page.customers.into_iter().filter_map(|c| {
            Some(LoyaltyMember {
                email: c.email?.trim().to_lowercase(),
                points: c.points_approved,
                tier: c.loyalty_tier_membership.map(|m| m.loyalty_tier.name),
                updated_at: c.updated_at,
            })
        }));
        match page.cursor.and_then(|c| c.next) {
            Some(cursor) => url = format!("/customers?cursor={cursor}"),
            None => return Ok(members),
        }
    }
}
