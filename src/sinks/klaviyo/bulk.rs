//! Bulk import jobs: up to 10,000 profiles (5 MB) per job, polled to completion; profiles the
//! job reports in its import errors are parked with Klaviyo's detail, the rest acknowledged.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::client::{BULK_JOB_CREATE, BULK_JOB_ERRORS, BULK_JOB_STATUS};
use super::{bulk_job_body, profile_resource, DeliveryError, DeliveryReport, KlaviyoClient};
use crate::http::ApiError;
use crate::store::{OutboxEntry, Store};

/// Klaviyo's documented ceilings per job, with headroom under the 5 MB payload limit.
const MAX_PROFILES: usize = 10_000;
const MAX_BYTES: usize = 4_500_000;

#[derive(Deserialize)]
struct JobResponse {
    data: Job,
}

#[derive(Deserialize)]
struct Job {
    id: String,
    attributes: JobAttributes,
}

#[derive(Deserialize)]
struct JobAttributes {
    status: String,
    #[serde(default)]
    failed_count: Option<u64>,
}

#[derive(Deserialize)]
struct ImportErrors {
    data: Vec<ImportError>,
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Deserialize)]
struct Links {
    next: Option<String>,
}

#[derive(Deserialize)]
struct ImportError {
    attributes: ImportErrorAttributes,
}

#[derive(Deserialize)]
struct ImportErrorAttributes {
    code: String,
    detail: String,
    source: Option<ErrorSource>,
    original_payload: Option<Value>,
}

#[derive(Deserialize)]
struct ErrorSource {
    pointer: Option<String>,
}

/// What a finished job refused.
struct Refusals {
    /// External id → Klaviyo's detail.
    by_external_id: HashMap<String, String>,
    /// Failures the job reported that could not be tied to a profile of the batch; the
    /// batch's other profiles are then not known to be written.
    unmatched: bool,
}

pub(super) async fn deliver(
    client: &KlaviyoClient,
    store: &Store,
    pending: Vec<OutboxEntry>,
    cancel: &CancellationToken,
) -> Result<DeliveryReport, DeliveryError> {
    let mut report = DeliveryReport::default();
    for batch in batches(pending) {
        if cancel.is_cancelled() {
            break;
        }
        match run_job(client, &batch, cancel).await {
            Ok(Some(refusals)) => {
                report.bulk_jobs += 1;
                let failures = refusals.by_external_id;
                let (refused, accepted): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .partition(|e| failures.contains_key(&e.state.external_id));
                if refusals.unmatched {
                    // Not knowing which profiles failed, acknowledge none: they are re-sent
                    // next pass (an idempotent upsert), never wrongly recorded as written.
                    tracing::warn!(profiles = accepted.len(), "a bulk import job reported failures tiersync cannot tie to profiles; the batch stays pending");
                    report.deferred += accepted.len();
                } else {
                    store.acknowledge(&accepted)?;
                    report.written += accepted.len();
                }
                for entry in &refused {
                    let detail = &failures[&entry.state.external_id];
                    tracing::warn!(customer = %entry.customer_id, %detail, "klaviyo bulk import refused a profile; parked until the customer's state changes");
                    store.park(entry, detail)?;
                }
                report.parked += refused.len();
                store.flush()?;
            }
            Ok(None) => break,
            Err(error) if error.is_credential() => return Err(error.into()),
            Err(error) => {
                tracing::warn!(%error, profiles = batch.len(), "bulk import job failed; its profiles stay pending for the next pass");
                report.deferred += batch.len();
            }
        }
    }
    Ok(report)
}

/// Splits writes into jobs within Klaviyo's count and size limits.
fn batches(pending: Vec<OutboxEntry>) -> Vec<Vec<OutboxEntry>> {
    let mut out: Vec<Vec<OutboxEntry>> = Vec::new();
    let mut bytes = 0;
    for entry in pending {
        let size = profile_resource(&entry.state).to_string().len() + 1;
        match out.last_mut() {
            Some(batch) if batch.len() < MAX_PROFILES && bytes + size <= MAX_BYTES => {
                batch.push(entry);
                bytes += size;
            }
            _ => {
                out.push(vec![entry]);
                bytes = size;
            }
        }
    }
    out
}

/// Runs one job to completion; returns the refused profiles (by external id) with Klaviyo's
/// detail, or `None` when cancelled while it ran (its writes stay pending and are re-sent).
async fn run_job(
    client: &KlaviyoClient,
    batch: &[OutboxEntry],
    cancel: &CancellationToken,
) -> Result<Option<Refusals>, ApiError> {
    let body = bulk_job_body(batch.iter().map(|e| &e.state));
    let created = client
        .send(&BULK_JOB_CREATE, BULK_JOB_CREATE.path, Some(&body))
        .await?;
    let job: JobResponse = ApiError::decode(BULK_JOB_CREATE.name, &created)?;
    let id = job.data.id;
    tracing::info!(job = %id, profiles = batch.len(), "klaviyo bulk import job submitted");
    let status_path = format!("/api/profile-bulk-import-jobs/{id}");
    let finished = loop {
        let body = client.send(&BULK_JOB_STATUS, &status_path, None).await?;
        let job: JobResponse = ApiError::decode(BULK_JOB_STATUS.name, &body)?;
        match job.data.attributes.status.as_str() {
            "complete" => break job.data.attributes,
            "cancelled" => {
                return Err(ApiError::Server {
                    endpoint: BULK_JOB_STATUS.name,
                    status: 200,
                    detail: format!("job {id} was cancelled"),
                })
            }
            _ => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(None),
            _ = tokio::time::sleep(client.bulk_poll_interval) => {}
        }
    };
    let failed = finished.failed_count.unwrap_or(0) as usize;
    if failed == 0 {
        return Ok(Some(Refusals {
            by_external_id: HashMap::new(),
            unmatched: false,
        }));
    }
    let mut refusals = import_errors(client, &status_path, batch).await?;
    refusals.unmatched |= refusals.by_external_id.len() < failed;
    Ok(Some(refusals))
}

/// Reads a finished job's import errors, tied to the batch's profiles by the payload's
/// external id or, failing that, by the profile's index in the error's JSON pointer.
async fn import_errors(
    client: &KlaviyoClient,
    job_path: &str,
    batch: &[OutboxEntry],
) -> Result<Refusals, ApiError> {
    let mut failures = HashMap::new();
    let mut unmatched = false;
    let mut path = format!("{job_path}/import-errors");
    loop {
        let body = client.send(&BULK_JOB_ERRORS, &path, None).await?;
        let page: ImportErrors = ApiError::decode(BULK_JOB_ERRORS.name, &body)?;
        for error in page.data {
            let payload = error.attributes.original_payload.unwrap_or(Value::Null);
            let by_payload = payload
                .pointer("/attributes/external_id")
                .or_else(|| payload.pointer("/external_id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let by_index = || {
                let pointer = error.attributes.source.as_ref()?.pointer.as_deref()?;
                let index: usize = pointer
                    .strip_prefix("/data/attributes/profiles/data/")?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()?;
                Some(batch.get(index)?.state.external_id.clone())
            };
            match by_payload.or_else(by_index) {
                Some(external_id) => {
                    failures.insert(
                        external_id,
                        format!("{}: {}", error.attributes.code, error.attributes.detail),
                    );
                }
                None => unmatched = true,
            }
        }
        match page.links.and_then(|l| l.next) {
            Some(next) => {
                path = next
                    .split_once("/api/")
                    .map(|(_, rest)| format!("/api/{rest}"))
                    .unwrap_or(next)
            }
            None => {
                return Ok(Refusals {
                    by_external_id: failures,
                    unmatched,
                })
            }
        }
    }
}
