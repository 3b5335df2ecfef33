//! LoyaltyLion: `GET /v2/customers?updated_at_min=…&limit=500`, cursor paging through
//! `cursor.next`; `points_approved` and the `loyalty_tier_membership`; 20 requests/s.
//!
//! The cursor carries the first request's filters, and `limit` is the only parameter read
//! beside it: a cursor page without `limit` falls back to 100 members, so `limit` goes with
//! every page (<https://developers.loyaltylion.com/api-reference/pagination>).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::client::{since_param, LoyaltyClient, LoyaltyMember};
use crate::http::ApiError;

const ENDPOINT: &str = "loyaltylion customers";
/// LoyaltyLion's largest page.
const LIMIT: &str = "500";

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
    let since = since_param(since);
    let mut cursor: Option<String> = None;
    let mut members = Vec::new();
    loop {
        let mut query = vec![("limit", LIMIT)];
        match (&cursor, &since) {
            (Some(cursor), _) => query.push(("cursor", cursor)),
            (None, Some(since)) => query.push(("updated_at_min", since)),
            (None, None) => {}
        }
        let page: Page = client.get(ENDPOINT, "/customers", &query).await?;
        members.extend(page.customers.into_iter().filter_map(|c| {
            Some(LoyaltyMember {
                email: c.email?.trim().to_lowercase(),
                points: c.points_approved,
                tier: c.loyalty_tier_membership.map(|m| m.loyalty_tier.name),
                updated_at: c.updated_at,
            })
        }));
        match page.cursor.and_then(|c| c.next) {
            Some(next) => cursor = Some(next),
            None => return Ok(members),
        }
    }
}
