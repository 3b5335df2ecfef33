//! Finds the bulk mutation a `bulkOperationRunMutation` started when its answer never
//! arrived (the process died, or the answer was lost after Shopify accepted it), so its result
//! is read instead of its lines being run a second time.
//!
//! Before API 2026-01 one bulk mutation runs per shop, and the most recent
//! (`currentBulkOperation(type: MUTATION)`) is the only candidate. From 2026-01 up to five run
//! at once, and the most recent may be another operation of the same batch, sent after this
//! one's answer was lost (`currentBulkOperation` is also deprecated in 2026-10 for
//! `bulkOperations`): every mutation created since the send is listed, and the oldest that
//! runs the same mutation and is not claimed by another operation of the batch is it.
//! Submissions are serialized, so the lost one was created before any sent after it.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::json;

use super::bulk::SMALL_COST;
use super::{concurrent_operations, queries, ShopifyClient};
use crate::http::ApiError;

/// A bulk mutation as both lookups show it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    id: String,
    /// The mutation it runs once per line.
    query: String,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentData {
    current_bulk_operation: Option<Candidate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListData {
    bulk_operations: Page,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    page_info: PageInfo,
    nodes: Vec<Candidate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// The id of the operation running `mutation` that was started at or after `since` (the send,
/// less the clock skew allowed) and is none of `claimed` (the ids the batch's other
/// operations were given); `None` when Shopify never started it.
pub async fn find(
    client: &ShopifyClient,
    api_version: &str,
    mutation: &str,
    since: DateTime<Utc>,
    claimed: &[String],
) -> Result<Option<String>, ApiError> {
    // Shopify's `createdAt` has whole seconds: one created in the same second as `since`
    // shows a time before it.
    let since = since.trunc_subsecs(0);
    let candidates = if concurrent_operations(api_version) > 1 {
        created_since(client, since).await?
    } else {
        most_recent(client).await?.into_iter().collect()
    };
    Ok(pick(candidates, mutation, since, claimed))
}

/// The oldest candidate that fits (ties of a second by id, which Shopify hands out in order).
fn pick(
    candidates: Vec<Candidate>,
    mutation: &str,
    since: DateTime<Utc>,
    claimed: &[String],
) -> Option<String> {
    candidates
        .into_iter()
        .filter(|c| {
            c.query.trim() == mutation.trim() && c.created_at >= since && !claimed.contains(&c.id)
        })
        .min_by_key(|c| (c.created_at, gid_number(&c.id)))
        .map(|c| c.id)
}

/// The number ending a GID (`gid://shopify/BulkOperation/123`).
fn gid_number(gid: &str) -> u64 {
    gid.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The most recent bulk mutation of this app and shop, if any.
async fn most_recent(client: &ShopifyClient) -> Result<Option<Candidate>, ApiError> {
    let data: CurrentData = client
        .execute(
            "shopify current bulk mutation",
            queries::BULK_CURRENT_MUTATION,
            json!({}),
            SMALL_COST,
        )
        .await?;
    Ok(data.current_bulk_operation)
}

/// Every bulk mutation of this app and shop created at or after `since`, every page.
async fn created_since(
    client: &ShopifyClient,
    since: DateTime<Utc>,
) -> Result<Vec<Candidate>, ApiError> {
    let query = format!(
        "operation_type:mutation created_at:>='{}'",
        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data: ListData = client
            .execute(
                "shopify bulk mutations since",
                queries::BULK_MUTATIONS_SINCE,
                json!({ "query": query, "after": after }),
                queries::BULK_MUTATIONS_SINCE_COST,
            )
            .await?;
        let page = data.bulk_operations;
        all.extend(page.nodes);
        match page.page_info.end_cursor {
            Some(cursor) if page.page_info.has_next_page => after = Some(cursor),
            _ => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(n: u64, query: &str, at: &str) -> Candidate {
        Candidate {
            id: format!("gid://shopify/BulkOperation/{n}"),
            query: query.into(),
            created_at: at.parse().unwrap(),
        }
    }

    #[test]
    fn the_oldest_unclaimed_operation_of_the_same_mutation_since_the_send_is_picked() {
        let since = "2026-11-02T10:00:00Z".parse().unwrap();
        let listed = || {
            vec![
                candidate(9, "mutation A", "2026-11-02T10:00:05Z"),
                candidate(8, "mutation A", "2026-11-02T10:00:03Z"),
                candidate(7, "mutation B", "2026-11-02T10:00:01Z"),
                candidate(6, "mutation A", "2026-11-02T10:00:03Z"),
                candidate(5, "mutation A", "2026-11-02T09:59:59Z"),
            ]
        };
        let id = |n: u64| format!("gid://shopify/BulkOperation/{n}");
        // 5 is too early, 7 runs another mutation; 6 and 8 tie on the second: 6 came first.
        assert_eq!(pick(listed(), " mutation A\n", since, &[]), Some(id(6)));
        // Another operation of the batch holds 6: then 8.
        assert_eq!(pick(listed(), "mutation A", since, &[id(6)]), Some(id(8)));
        assert_eq!(
            pick(listed(), "mutation A", since, &[id(6), id(8), id(9)]),
            None
        );
        assert_eq!(pick(listed(), "mutation C", since, &[]), None);
    }
}
