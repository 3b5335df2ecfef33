//! One `POST /api/profile-import` per pending write, a few in flight, each acknowledged in
//! the store (and flushed) as soon as Klaviyo confirms it, so a crash re-sends at most the
//! writes that were in flight.

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::client::{json_body, PROFILE_IMPORT};
use super::{import_body, DeliveryError, DeliveryReport, KlaviyoClient};
use crate::http::ApiError;
use crate::store::{OutboxEntry, Store};

pub(super) async fn deliver(
    client: &KlaviyoClient,
    store: &Store,
    pending: Vec<OutboxEntry>,
    concurrency: usize,
    cancel: &CancellationToken,
) -> Result<DeliveryReport, DeliveryError> {
    let mut report = DeliveryReport::default();
    let results = futures::stream::iter(pending)
        .take_until(cancel.cancelled())
        .map(|entry| async move {
            let result = client
                .send(
                    &PROFILE_IMPORT,
                    PROFILE_IMPORT.path,
                    Some(json_body(&import_body(&entry.state))),
                )
                .await;
            (entry, result)
        })
        .buffer_unordered(concurrency);
    let mut results = std::pin::pin!(results);
    while let Some((entry, result)) = results.next().await {
        match result {
            Ok(_) => {
                store.acknowledge(std::slice::from_ref(&entry))?;
                store.flush()?;
                report.written += 1;
            }
            Err(error) if error.is_credential() => return Err(error.into()),
            Err(ApiError::Rejected { detail, status, .. }) => {
                tracing::warn!(customer = %entry.customer_id, status, %detail, "klaviyo refused a profile write; parked until the customer's state changes");
                store.park(&entry, &format!("HTTP {status}: {detail}"))?;
                report.parked += 1;
            }
            Err(error) => {
                tracing::warn!(customer = %entry.customer_id, %error, "profile write still failing; it stays pending for the next pass");
                report.deferred += 1;
            }
        }
    }
    store.flush()?;
    Ok(report)
}
