//! First-run backfill through a bulk operation: one query for the whole order history, run
//! by Shopify in the background, downloaded as JSONL. Costs a few points instead of the
//! hours a paged read of a large store would take under the cost limit.

use std::time::Duration;

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::orders::{records, IngestError, IngestReport, OrderNode};
use super::{queries, ShopifyClient};
use crate::config::ShopifySettings;
use crate::http::ApiError;
use crate::store::Store;

/// Orders per store transaction while loading the result.
const CHUNK: usize = 2_000;
/// A status poll or mutation costs at most this many points.
const SMALL_COST: f64 = 10.0;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkOperation {
    id: String,
    status: String,
    error_code: Option<String>,
    url: Option<String>,
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

pub(super) async fn backfill(
    client: &ShopifyClient,
    store: &Store,
    settings: &ShopifySettings,
    cancel: &CancellationToken,
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport {
        backfill: true,
        ..IngestReport::default()
    };
    let until = Utc::now();
    let Some(body) = run_bulk_query(
        client,
        &queries::bulk_orders_query(until),
        settings.bulk_poll_interval,
        cancel,
    )
    .await?
    else {
        return Ok(report);
    };
    let mut lines = jsonl::<OrderNode>(&body).peekable();
    while lines.peek().is_some() {
        let nodes = lines.by_ref().take(CHUNK).collect::<Result<Vec<_>, _>>()?;
        let (chunk, skipped) = records(nodes);
        report.orders_skipped += skipped;
        report.orders_changed += store.apply_orders(&chunk, None)?;
        report.orders_read += chunk.len();
    }
    // Every order updated up to `until` is stored: the cursor may move there.
    store.apply_orders(&[], Some(until))?;
    tracing::info!(
        orders = report.orders_read,
        "bulk backfill of orders stored"
    );
    Ok(report)
}

/// Each non-blank line of a bulk result decoded as `T`; a line that does not decode is an
/// error naming its line number and field path.
pub fn jsonl<T: DeserializeOwned>(body: &[u8]) -> impl Iterator<Item = Result<T, ApiError>> + '_ {
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(number, line)| {
            ApiError::decode("shopify bulk result", line).map_err(|e| match e {
                ApiError::Malformed {
                    endpoint,
                    path,
                    detail,
                } => ApiError::Malformed {
                    endpoint,
                    path: format!("line {}: {path}", number + 1),
                    detail,
                },
                other => other,
            })
        })
}

/// Runs a bulk query and downloads its JSONL result (empty when it matched nothing); `None`
/// when `cancel` fired first. Waits first for an operation left running by a killed run:
/// only one runs at a time per shop.
pub async fn run_bulk_query(
    client: &ShopifyClient,
    query: &str,
    poll_interval: Duration,
    cancel: &CancellationToken,
) -> Result<Option<bytes::Bytes>, ApiError> {
    let current: CurrentData = client
        .execute(
            "shopify current bulk operation",
            queries::BULK_CURRENT,
            json!({}),
            SMALL_COST,
        )
        .await?;
    if let Some(op) = current
        .current_bulk_operation
        .filter(|op| is_running(&op.status))
    {
        tracing::info!(operation = %op.id, "waiting for a bulk operation already running");
        if wait_for(client, &op.id, poll_interval, cancel)
            .await?
            .is_none()
        {
            return Ok(None);
        }
    }
    let run: RunData = client
        .execute(
            "shopify bulk operation run",
            queries::BULK_RUN,
            json!({ "query": query }),
            SMALL_COST,
        )
        .await?;
    let payload = run.bulk_operation_run_query;
    let id = match (payload.bulk_operation, payload.user_errors.is_empty()) {
        (Some(op), true) => op.id,
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
    };
    tracing::info!(operation = %id, "bulk operation started");
    let Some(done) = wait_for(client, &id, poll_interval, cancel).await? else {
        return Ok(None);
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
        });
    }
    tracing::debug!(operation = %done.id, "bulk operation completed");
    match &done.url {
        Some(url) => client.download(url).await.map(Some),
        None => Ok(Some(bytes::Bytes::new())),
    }
}

fn is_running(status: &str) -> bool {
    matches!(status, "CREATED" | "RUNNING" | "CANCELING")
}

/// Polls until the operation ends; `None` when cancelled first.
async fn wait_for(
    client: &ShopifyClient,
    id: &str,
    interval: Duration,
    cancel: &CancellationToken,
) -> Result<Option<BulkOperation>, ApiError> {
    loop {
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
            return Ok(Some(op));
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(None),
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
