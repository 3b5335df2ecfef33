//! Smile.io: `GET /v1/customers?updated_at_min=…&limit=250&include=vip_status`, cursor paging
//! through `metadata.next_cursor`; 10 requests/s per token.
//!
//! The list endpoint documents `vip_status` as its only `include` (the nested
//! `vip_status.vip_tier` object is offered by `GET /v1/customers/{id}` alone), so a customer's
//! tier comes as `vip_status.vip_tier_id`, named through `GET /v1/vip_tiers`. Asking the list
//! for `vip_status.vip_tier` would read every member as having no tier.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::client::{since_param, LoyaltyClient, LoyaltyMember};
use crate::http::ApiError;

const ENDPOINT: &str = "smile customers";
const TIERS_ENDPOINT: &str = "smile vip_tiers";
/// Smile's largest page.
const LIMIT: &str = "250";

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
    vip_tier_id: Option<u64>,
}

#[derive(Deserialize)]
struct VipTiers {
    vip_tiers: Vec<VipTier>,
}

#[derive(Deserialize)]
struct VipTier {
    id: u64,
    name: String,
}

pub(super) async fn members_updated_since(
    client: &LoyaltyClient,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<LoyaltyMember>, ApiError> {
    let tiers: VipTiers = client.get(TIERS_ENDPOINT, "/vip_tiers", &[]).await?;
    let names: HashMap<u64, String> = tiers
        .vip_tiers
        .into_iter()
        .map(|tier| (tier.id, tier.name))
        .collect();
    let since = since_param(since);
    let mut cursor: Option<String> = None;
    let mut members = Vec::new();
    loop {
        let mut query = vec![("limit", LIMIT), ("include", "vip_status")];
        match (&cursor, &since) {
            (Some(cursor), _) => query.push(("cursor", cursor)),
            (None, Some(since)) => query.push(("updated_at_min", since)),
            (None, None) => {}
        }
        let page: Page = client.get(ENDPOINT, "/customers", &query).await?;
        for customer in page.customers {
            let Some(email) = customer.email else {
                continue;
            };
            let tier = match customer.vip_status.and_then(|v| v.vip_tier_id) {
                None => None,
                Some(id) => Some(names.get(&id).cloned().ok_or_else(|| ApiError::Malformed {
                    endpoint: ENDPOINT,
                    path: "customers[].vip_status.vip_tier_id".into(),
                    detail: format!(
                        "tier {id} is not among GET /v1/vip_tiers (a tier created meanwhile \
                         is read at the next pass)"
                    ),
                })?),
            };
            members.push(LoyaltyMember {
                email: email.trim().to_lowercase(),
                points: customer.points_balance,
                tier,
                updated_at: customer.updated_at,
            });
        }
        match page.metadata.next_cursor.filter(|c| !c.is_empty()) {
            Some(next) => cursor = Some(next),
            None => return Ok(members),
        }
    }
}
