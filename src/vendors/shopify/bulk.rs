//! Bulk operations: one query run by Shopify in the background, its result downloaded as
//! JSONL and streamed into a sink. The orders backfill and the storefront read-back both run
//! through here: a few points instead of the hours a paged read would take under the cost
//! limit.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::bulk_pace::Pace;
use super::{queries, BulkSink, ShopifyClient};
use crate::config::ShopifySettings;
use crate::http::ApiError;

/// A status poll or mutation costs at most this many points.
pub(super) const SMALL_COST: f64 = 10.0;

/// A bulk operation's state as polled.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperation {
    pub id: String,
    pub status: String,
    pub error_code: Option<String>,
    /// The result, once COMPLETED.
    pub url: Option<String>,
    /// What a FAILED (or canceled, expired) bulk mutation did before it stopped.
    #[serde(default)]
    pub partial_data_url: Option<String>,
    /// The running count of objects processed (a bulk mutation's lines done).
    #[serde(default, deserialize_with = "unsigned_int64")]
    pub object_count: u64,
    /// How long after the end its pace foretold the poll that saw it ended came (`None`
    /// when no pace was known). Not Shopify's: `completedAt` has whole seconds.
    #[serde(skip)]
    pub seen_late: Option<Duration>,
}

/// An `UnsignedInt64`, which GraphQL sends as a string (a number is taken too).
fn unsigned_int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Text(String),
        Number(u64),
    }
    match Count::deserialize(deserializer)? {
        Count::Text(text) => text.parse().map_err(serde::de::Error::custom),
        Count::Number(n) => Ok(n),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunData {
    bulk_operation_run_query: RunPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunPayload {
    bulk_operation: Option<StartedOperation>,
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct StartedOperation {
    id: String,
}

#[derive(Deserialize)]
struct UserError {
    message: String,
    /// `BulkOperationUserErrorCode`: `LIMIT_REACHED` (2026-01 on) means try again later.
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
struct NodeData {
    node: Option<BulkOperation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentData {
    current_bulk_operation: Option<BulkOperation>,
}

/// Bulk operations of each kind (queries, mutations) one app may run at once on a shop:
/// one before API version 2026-01, five from it (Shopify's bulk operations guides; the
/// changelog "Faster bulk operations", 2025-12-15).
pub fn concurrent_operations(api_version: &str) -> usize {
    if api_version >= "2026-01" {
        5
    } else {
        1
    }
}

/// Runs a bulk query and streams its JSONL result into `sink` (nothing when it matched
/// nothing); `false` when `cancel` fired first.
///
/// Before API version 2026-01 one bulk query runs at a time per shop, so an operation left
/// running by a killed run is waited for first. From 2026-01 five may run: the query starts
/// at once (beside the process's other bulk queries), and only when Shopify answers that the
/// limit is reached does it try again every `bulk_poll_interval`.
pub async fn run_bulk_query<T, S>(
    client: &ShopifyClient,
    query: &str,
    settings: &ShopifySettings,
    cancel: &CancellationToken,
    sink: &mut S,
) -> Result<bool, S::Error>
where
    T: DeserializeOwned,
    S: BulkSink<T> + Send,
{
    let poll_interval = settings.bulk_poll_interval;
    if concurrent_operations(&settings.api_version) == 1
        && !wait_for_running(client, poll_interval, cancel).await?
    {
        return Ok(false);
    }
    let Some(id) = start(client, query, poll_interval, cancel).await? else {
        return Ok(false);
    };
    tracing::info!(operation = %id, "bulk operation started");
    let Some(done) = wait_for(client, &id, poll_interval, None, cancel).await? else {
        return Ok(false);
    };
    if done.status != "COMPLETED" {
        return Err(ApiError::Rejected {
            endpoint: "shopify bulk operation",
            status: 200,
            detail: format!(
                "bulk operation {} ended {} (error code {})",
                done.id,
                done.status,
                done.error_code.as_deref().unwrap_or("none")
            ),
        }
        .into());
    }
    tracing::debug!(operation = %done.id, "bulk operation completed");
    if let Some(url) = &done.url {
        client
            .download(url, settings.bulk_read_timeout, sink)
            .await?;
    }
    Ok(true)
}

/// Waits for the shop's most recent bulk query if it still runs (left by a killed run: the
/// one slot before 2026-01); `false` when `cancel` fired first.
async fn wait_for_running(
    client: &ShopifyClient,
    interval: Duration,
    cancel: &CancellationToken,
) -> Result<bool, ApiError> {
    let current: CurrentData = client
        .execute(
            "shopify current bulk operation",
            queries::BULK_CURRENT,
            json!({}),
            SMALL_COST,
        )
        .await?;
    let Some(op) = current
        .current_bulk_operation
        .filter(|op| is_running(&op.status))
    else {
        return Ok(true);
    };
    tracing::info!(operation = %op.id, "waiting for a bulk operation already running");
    Ok(wait_for(client, &op.id, interval, None, cancel)
        .await?
        .is_some())
}

/// Starts the bulk query and returns its id. While Shopify answers `LIMIT_REACHED` (this
/// app's other bulk queries fill the shop's slots, from 2026-01) it tries again every
/// `interval`; `None` when `cancel` fired first. Any other refusal is an error.
async fn start(
    client: &ShopifyClient,
    query: &str,
    interval: Duration,
    cancel: &CancellationToken,
) -> Result<Option<String>, ApiError> {
    let mut waited = false;
    loop {
        let run: RunData = client
            .execute(
                "shopify bulk operation run",
                queries::BULK_RUN,
                json!({ "query": query }),
                SMALL_COST,
            )
            .await?;
        let payload = run.bulk_operation_run_query;
        let full = payload
            .user_errors
            .iter()
            .any(|e| e.code.as_deref() == Some("LIMIT_REACHED"));
        match (payload.bulk_operation, payload.user_errors.is_empty()) {
            (Some(op), true) => return Ok(Some(op.id)),
            _ if full => {}
            _ => {
                return Err(ApiError::Rejected {
                    endpoint: "shopify bulk operation run",
                    status: 200,
                    detail: payload
                        .user_errors
                        .iter()
                        .map(|e| e.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                })
            }
        }
        if !waited {
            waited = true;
            tracing::info!(
                retry_ms = interval.as_millis() as u64,
                "Shopify runs as many bulk queries of this app as it allows at once; starting this one when one of them ends"
            );
        }
        if cancel
            .run_until_cancelled(tokio::time::sleep(interval))
            .await
            .is_none()
        {
            return Ok(None);
        }
    }
}

pub(super) fn is_running(status: &str) -> bool {
    matches!(status, "CREATED" | "RUNNING" | "CANCELING")
}

/// Polls until the operation ends; `None` when cancelled first. Every `interval`, or, given
/// the `objects` it will have processed when done (a bulk mutation's lines), just after the
/// end its progress so far foretells ([`Pace`]).
pub(super) async fn wait_for(
    client: &ShopifyClient,
    id: &str,
    interval: Duration,
    objects: Option<u64>,
    cancel: &CancellationToken,
) -> Result<Option<BulkOperation>, ApiError> {
    // Shopify runs it at its own pace: time the cost bucket does not govern.
    let _operation = client.throughput().operation();
    let mut pace = Pace::new(interval, objects);
    loop {
        let polled = Instant::now();
        let data: NodeData = client
            .execute(
                "shopify bulk operation status",
                queries::BULK_STATUS,
                json!({ "id": id }),
                SMALL_COST,
            )
            .await?;
        let op = data.node.ok_or_else(|| ApiError::Malformed {
            endpoint: "shopify bulk operation status",
            path: "data.node".into(),
            detail: format!("bulk operation {id} not found"),
        })?;
        if !is_running(&op.status) {
            let mut op = op;
            op.seen_late = pace.late(polled);
            return Ok(Some(op));
        }
        let pause = pace.after(polled, op.object_count);
        if cancel
            .run_until_cancelled(tokio::time::sleep(pause))
            .await
            .is_none()
        {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::concurrent_operations;

    #[test]
    fn only_2026_01_and_later_run_several_bulk_operations() {
        assert_eq!(concurrent_operations("2025-01"), 1);
        assert_eq!(concurrent_operations("2025-10"), 1);
        assert_eq!(concurrent_operations("2026-01"), 5);
        assert_eq!(concurrent_operations("2026-10"), 5);
    }
}
