//! The storefront: each VIP's tier on the Shopify customer, as one tag in tiersync's prefix
//! (`vip:gold`) and metafields (`tiersync.vip_tier`, `.vip_state`, `.vip_peak_tier`,
//! `.clv_blended`) that themes, Shopify Flow and segments can read.
//!
//! Writes go through the same [`ShopifyClient`] as the orders source, so its cost bucket
//! (mirrored from every `throttleStatus`) governs reads and writes together. Customers who
//! never held a level get nothing written.

mod bulk;
mod bulk_slots;
mod document;
mod readback;

pub use document::{build, CustomerWrite, Document};
pub use readback::{read_storefront, StorefrontReadback};

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{DeliveryError, DeliveryReport};
use crate::config::{ShopifySettings, StorefrontSettings};
use crate::http::ApiError;
use crate::model::StorefrontState;
use crate::progress::Phase;
use crate::store::{OutboxEntry, Store};
use crate::vendors::shopify::{concurrent_operations, ShopifyClient};

/// Sends every pending storefront write: first finishes a bulk write left in flight (by a
/// crash or a stop); then, from `storefront.bulk_threshold` pending writes on, bulk mutation
/// operations of up to `storefront.bulk_batch_customers` customers each, else `customers_per_call`
/// customers per document. Stops starting new work once `cancel` fires or Shopify keeps
/// failing.
pub async fn deliver(
    client: &ShopifyClient,
    store: &Store,
    settings: &StorefrontSettings,
    shopify: &ShopifySettings,
    busy_limit: std::time::Duration,
    cancel: &CancellationToken,
) -> Result<DeliveryReport, DeliveryError> {
    // The whole delivery is Shopify's busy time: planning the next document delays it.
    let _busy = client.throughput().busy();
    let mut report = DeliveryReport::default();
    // Bulk mutations (planning, staging and running them) go at Shopify's pace, not the
    // cost bucket's: only per-document writes count against the restore rate.
    let bulk_work = || client.throughput().unbound();
    let cx = bulk::BulkContext {
        client,
        store,
        shopify,
        busy_limit,
        cancel,
    };
    if let Some(left) = store.storefront_bulk()? {
        tracing::info!(
            customers = left.entries.len(),
            "resuming the storefront bulk write left in flight"
        );
        let _bulk = bulk_work();
        if !bulk::run(&cx, left, &mut report).await? {
            report.deferred += store.outbox_counts::<StorefrontState>()?.pending;
            return Ok(report);
        }
    }
    let pending = store.pending::<StorefrontState>()?;
    let progress = client.progress();
    let _running = progress.run(Phase::Storefront, Some(pending.len() as u64));
    if pending.len() >= settings.bulk_threshold {
        let _bulk = bulk_work();
        deliver_in_bulk(&cx, pending, settings, &mut report).await?;
        store.flush()?;
        return Ok(report);
    }
    for (n, batch) in pending.chunks(settings.customers_per_call).enumerate() {
        if n > 0 {
            // The previous document's customers: written, parked or left pending.
            progress.add(Phase::Storefront, settings.customers_per_call as u64);
        }
        if cancel.is_cancelled() {
            report.deferred += pending.len() - n * settings.customers_per_call;
            break;
        }
        let mut writes = Vec::with_capacity(batch.len());
        let mut entries: Vec<&OutboxEntry<StorefrontState>> = Vec::with_capacity(batch.len());
        let mut settled = Vec::new();
        for entry in batch {
            let held = store.acknowledged::<StorefrontState>(&entry.customer_id)?;
            let write = CustomerWrite::plan(entry, held.as_ref().map(|a| &a.state), settings);
            if write.is_empty() {
                // Shopify already shows it (the acknowledgement only lacks the version).
                settled.push(entry.clone());
            } else {
                writes.push(write);
                entries.push(entry);
            }
        }
        store.acknowledge(&settled)?;
        report.written += settled.len();
        if writes.is_empty() {
            continue;
        }
        let document = build(&writes);
        let data: serde_json::Value = match client
            .execute(
                "shopify customer tags and metafields",
                &document.query,
                document.variables.clone(),
                document.cost,
            )
            .await
        {
            Ok(data) => data,
            Err(error) if error.is_credential() => return Err(error.into()),
            Err(ApiError::Rejected { detail, .. }) => {
                tracing::warn!(customers = entries.len(), %detail, "shopify refused a storefront write document; parked until the customers' state changes");
                for entry in &entries {
                    store.park(*entry, &detail)?;
                }
                report.parked += entries.len();
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, deferred = pending.len() - n * settings.customers_per_call, "shopify storefront writes keep failing; the rest stay pending for the next pass");
                report.deferred += pending.len() - n * settings.customers_per_call;
                break;
            }
        };
        let mut accepted = Vec::with_capacity(entries.len());
        for (entry, outcome) in
            entries
                .iter()
                .zip(document::outcomes(&document, &data, entries.len()))
        {
            match outcome {
                Ok(None) => accepted.push((*entry).clone()),
                Ok(Some(detail)) => {
                    tracing::warn!(customer = %entry.customer_id, %detail, "shopify refused a storefront write; parked until the customer's state changes");
                    store.park(*entry, &detail)?;
                    report.parked += 1;
                }
                Err(()) => report.deferred += 1,
            }
        }
        store.acknowledge(&accepted)?;
        store.flush()?;
        report.written += accepted.len();
    }
    if !pending.is_empty() && !cancel.is_cancelled() {
        let last = pending.len()
            - (pending.len() - 1) / settings.customers_per_call * settings.customers_per_call;
        progress.add(Phase::Storefront, last as u64);
    }
    Ok(report)
}

/// The pending writes as bulk mutations, `storefront.bulk_batch_customers` customers at a time. The
/// next batch is planned (a read of what the storefront was last told about each of its
/// customers) while the current one runs: Shopify's slots would otherwise stay idle for it
/// between batches.
async fn deliver_in_bulk(
    cx: &bulk::BulkContext<'_>,
    pending: Vec<OutboxEntry<StorefrontState>>,
    settings: &StorefrontSettings,
    report: &mut DeliveryReport,
) -> Result<(), DeliveryError> {
    let progress = cx.client.progress();
    let per_batch = settings.bulk_batch_customers;
    let concurrent = concurrent_operations(&cx.shopify.api_version);
    let pending = Arc::new(pending);
    let batches = pending.len().div_ceil(per_batch);
    let plan = |n: usize| {
        let (pending, settings) = (Arc::clone(&pending), settings.clone());
        cx.store.run_blocking(move |store| {
            let range = n * per_batch..pending.len().min((n + 1) * per_batch);
            bulk::plan(store, &pending[range], &settings, concurrent)
        })
    };
    let mut planned = plan(0).await;
    for n in 0..batches {
        let left = pending.len() - n * per_batch;
        if cx.cancel.is_cancelled() {
            report.deferred += left;
            break;
        }
        let (batch, settled) = planned?;
        cx.store.acknowledge(&settled)?;
        report.written += settled.len();
        let customers = batch.entries.len();
        let next = async {
            if n + 1 < batches {
                Some(plan(n + 1).await)
            } else {
                None
            }
        };
        let (finished, next) = if batch.entries.is_empty() {
            (true, next.await)
        } else {
            let (finished, next) = tokio::join!(bulk::run(cx, batch, report), next);
            (finished?, next)
        };
        if !finished {
            report.deferred += customers + left.saturating_sub(per_batch);
            break;
        }
        progress.add(Phase::Storefront, left.min(per_batch) as u64);
        match next {
            Some(next) => planned = next,
            None => break,
        }
    }
    Ok(())
}
