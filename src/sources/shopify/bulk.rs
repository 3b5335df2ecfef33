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
use super::{queries, BulkSink, ShopifyClient};
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
    let until = Utc::now();
    let mut sink = OrderSink {
        store,
        buffer: Vec::with_capacity(CHUNK),
        report: IngestReport {
            backfill: true,
            ..IngestReport::default()
        },
    };
    let query = queries::bulk_orders_query(until);
    if !run_bulk_query(client, &query, settings, cancel, &mut sink).await? {
        return Ok(sink.report);
    }
    sink.apply()?;
    // Every order updated up to `until` is stored: the cursor may move there.
    store.apply_orders(&[], Some(until))?;
    tracing::info!(
        orders = sink.report.orders_read,
        "bulk backfill of orders stored"
    );
    Ok(sink.report)
}

/// The backfill's orders, stored [`CHUNK`] at a time as the result streams in. The cursor
/// moves only after the last line, so a download that starts over (see [`BulkSink`]) applies
/// some orders twice, which changes nothing: applying an order is idempotent in the store.
struct OrderSink<'a> {
    store: &'a Store,
    buffer: Vec<OrderNode>,
    report: IngestReport,
}

impl OrderSink<'_> {
    /// Stores the buffered orders.
    fn apply(&mut self) -> Result<(), IngestError> {
        let (chunk, skipped) = records(std::mem::take(&mut self.buffer));
        self.report.orders_skipped += skipped;
        self.report.orders_changed += self.store.apply_orders(&chunk, None)?;
        self.report.orders_read += chunk.len();
        Ok(())
    }
}

impl BulkSink<OrderNode> for OrderSink<'_> {
    type Error = IngestError;

    /// Counts start over; `orders_changed` keeps what earlier attempts changed (the orders
    /// they stored are unchanged the second time).
    fn restart(&mut self) {
        self.buffer.clear();
        self.report.orders_read = 0;
        self.report.orders_skipped = 0;
    }

    fn line(&mut self, order: OrderNode) -> Result<(), IngestError> {
        self.buffer.push(order);
        if self.buffer.len() >= CHUNK {
            self.apply()?;
        }
        Ok(())
    }
}

/// Runs a bulk query and streams its JSONL result into `sink` (nothing when it matched
/// nothing); `false` when `cancel` fired first. Waits first for an operation left running by
/// a killed run: only one runs at a time per shop.
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
            return Ok(false);
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
            }
            .into())
        }
    };
    tracing::info!(operation = %id, "bulk operation started");
    let Some(done) = wait_for(client, &id, poll_interval, cancel).await? else {
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
