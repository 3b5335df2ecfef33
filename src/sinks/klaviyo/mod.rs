//! Klaviyo profiles: the tier and its inputs as profile properties, upserted by email with
//! `external_id` = the Shopify customer id.
//!
//! A handful of changes go one by one through `POST /api/profile-import` (75/s, 750/min);
//! from `klaviyo.bulk_threshold` pending writes on, they go as bulk import jobs of up to
//! 10,000 profiles, many at once (a 10,000-customer first sync takes seconds instead of 13
//! minutes at 750/min). Tier events likewise go one by one or, from
//! `klaviyo.event_bulk_threshold` on, as event bulk jobs of up to 1,000.

mod bulk;
mod client;
mod event_bulk;
mod events;
mod probe;
mod profile;
mod readback;
mod single;

pub use client::{Call, KlaviyoClient, CALLS};
pub use event_bulk::bulk_body as event_bulk_body;
pub use events::{deliver_events, event_body, EventReport};
pub use probe::{probe_bulk_reads, probe_key, write_scopes};
pub use profile::{bulk_job_body, import_body, profile_resource};
pub use readback::read_profiles;

use tokio_util::sync::CancellationToken;

pub use super::{DeliveryError, DeliveryReport};
use crate::model::ProfileState;
use crate::store::Store;

/// Sends every pending Klaviyo write; stops starting new ones once `cancel` fires.
pub async fn deliver(
    client: &KlaviyoClient,
    store: &Store,
    bulk_threshold: usize,
    concurrency: usize,
    cancel: &CancellationToken,
) -> Result<DeliveryReport, DeliveryError> {
    // Counting (and, below the bulk threshold, reading) the pending writes takes seconds at
    // a million profiles: on a blocking thread, so the storefront's steps, driven by the
    // same task, go on meanwhile. Bulk jobs read their writes as they are sent.
    let pending = store
        .run_blocking(|store| store.outbox_counts::<ProfileState>())
        .await?
        .pending;
    if pending == 0 {
        Ok(DeliveryReport::default())
    } else if pending >= bulk_threshold {
        bulk::deliver(client, store, pending, cancel).await
    } else {
        let pending = store
            .run_blocking(|store| store.pending::<ProfileState>())
            .await?;
        single::deliver(client, store, pending, concurrency, cancel).await
    }
}
