//! First-run backfill through a bulk operation: one query for the whole order history, run
//! by Shopify in the background, downloaded as JSONL and stored as it streams in: every order
//! updated up to `until`.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::orders::{records, IngestError, IngestReport, OrderNode};
use crate::config::ShopifySettings;
use crate::progress::{Phase, Progress};
use crate::store::{FreshBackfill, Store};
use crate::vendors::shopify::{queries, run_bulk_query, BulkSink, ShopifyClient};

/// Orders per store transaction while loading the result.
const CHUNK: usize = 2_000;

pub(super) async fn backfill(
    client: &ShopifyClient,
    store: &Store,
    settings: &ShopifySettings,
    until: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<IngestReport, IngestError> {
    let _running = client.progress().run(Phase::Backfill, None);
    let mut sink = OrderSink {
        progress: client.progress(),
        store,
        fresh: store.begin_fresh_backfill()?,
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
    match sink.fresh.take() {
        Some(fresh) => sink.report.orders_changed = fresh.finish(until)?,
        None => {
            store.apply_orders(&[], Some(until))?;
        }
    }
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
    progress: &'a Progress,
    store: &'a Store,
    /// A store with no orders yet takes them the fast way ([`FreshBackfill`]): kept, then
    /// written once per customer at the end.
    fresh: Option<FreshBackfill<'a>>,
    buffer: Vec<OrderNode>,
    report: IngestReport,
}

impl OrderSink<'_> {
    /// Stores the buffered orders.
    fn apply(&mut self) -> Result<(), IngestError> {
        let (chunk, skipped) = records(std::mem::take(&mut self.buffer));
        self.report.orders_skipped += skipped;
        match &mut self.fresh {
            Some(fresh) => fresh.add(&chunk)?,
            None => self.report.orders_changed += self.store.apply_orders(&chunk, None)?,
        }
        self.report.orders_read += chunk.len();
        self.progress.add(Phase::Backfill, chunk.len() as u64);
        Ok(())
    }
}

impl BulkSink<OrderNode> for OrderSink<'_> {
    type Error = IngestError;

    /// Counts start over; `orders_changed` keeps what earlier attempts changed (the orders
    /// they stored are unchanged the second time).
    fn restart(&mut self) {
        self.buffer.clear();
        if let Some(fresh) = &mut self.fresh {
            fresh.restart();
        }
        self.report.orders_read = 0;
        self.report.orders_skipped = 0;
        self.progress.start(Phase::Backfill, None);
    }

    fn line(&mut self, order: OrderNode) -> Result<(), IngestError> {
        self.buffer.push(order);
        if self.buffer.len() >= CHUNK {
            self.apply()?;
        }
        Ok(())
    }
}
