//! Bulk import jobs: up to 10,000 profiles (5 MB) per job, many at once, polled to
//! completion; profiles a job reports in its import errors are parked with Klaviyo's detail,
//! the rest acknowledged, job by job in whatever order they finish.
//!
//! Creating a job and every read of one count against the same bucket (10/s burst, 150/min
//! steady), so jobs are started as fast as the limiter allows and all the jobs in flight are
//! polled with one read of the job list per `klaviyo.bulk_poll_interval`, not one read each.
//! A crash or shutdown leaves the writes of the jobs in flight pending: they are re-sent
//! next pass, an idempotent upsert.

use crate::progress::Phase;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{BULK_JOB_CREATE, BULK_JOB_ERRORS, BULK_JOB_LIST, BULK_JOB_STATUS};
use super::{bulk_job_body, profile_resource, DeliveryError, DeliveryReport, KlaviyoClient};
use crate::http::ApiError;
use crate::model::ProfileState;
use crate::store::{OutboxEntry, Store, StoreError};

/// Klaviyo's documented ceilings per job, with headroom under the 5 MB payload limit.
const MAX_PROFILES: usize = 10_000;
const MAX_BYTES: usize = 4_500_000;
/// Jobs in flight at most. Klaviyo documents no cap on profile import jobs in progress (its
/// catalog bulk jobs have one, 500); this one keeps every job tiersync waits for on the one
/// page of the job list a poll reads.
const MAX_IN_FLIGHT: usize = 100;
/// The newest jobs first, a full page, only the attributes a poll needs.
const NEWEST_JOBS: &str = "/api/profile-bulk-import-jobs?sort=-created_at&page[size]=100&fields[profile-bulk-import-job]=status,failed_count";

#[derive(Deserialize)]
struct JobResponse {
    data: Job,
}

#[derive(Deserialize)]
struct JobList {
    data: Vec<Job>,
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

/// A job Klaviyo accepted and tiersync has not settled yet.
struct InFlight {
    id: String,
    batch: Vec<OutboxEntry>,
}

/// How a job in flight stands after a poll.
enum Poll {
    Running,
    Complete { failed: usize },
    Cancelled,
}

/// Sends the `profiles` pending writes as bulk import jobs, read as they are sent, and settles
/// each job as it finishes.
pub(super) async fn deliver(
    client: &KlaviyoClient,
    store: &Store,
    profiles: usize,
    cancel: &CancellationToken,
) -> Result<DeliveryReport, DeliveryError> {
    let _busy = client.throughput().busy();
    let _running = client
        .progress()
        .run(Phase::BulkJobs, Some(profiles as u64));
    let mut report = DeliveryReport::default();
    let mut queue = Jobs {
        after: None,
        done: false,
    };
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut next_poll = Instant::now() + client.bulk_poll_interval;
    loop {
        // Start jobs while there is room, until a poll is due (at once when none runs).
        while !cancel.is_cancelled()
            && in_flight.len() < MAX_IN_FLIGHT
            && (in_flight.is_empty() || Instant::now() < next_poll)
        {
            let Some(batch) = queue.next(store).await? else {
                break;
            };
            match start(client, &batch).await {
                Ok(id) => in_flight.push(InFlight { id, batch }),
                Err(error) if error.is_credential() => return Err(error.into()),
                Err(error) => {
                    tracing::warn!(%error, profiles = batch.len(), "bulk import job could not be created; its profiles stay pending for the next pass");
                    report.deferred += batch.len();
                }
            }
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                // Their writes stay pending and are re-sent (an idempotent upsert).
                let profiles: usize = in_flight.iter().map(|j| j.batch.len()).sum();
                tracing::info!(jobs = in_flight.len(), profiles, "stopping: bulk import jobs in flight are left to Klaviyo and re-sent next pass");
                report.deferred += profiles;
                break;
            }
            _ = tokio::time::sleep_until(next_poll) => {}
        }
        let polled = poll(client, &in_flight).await;
        next_poll = Instant::now() + client.bulk_poll_interval;
        let statuses = match polled {
            Ok(statuses) => statuses,
            Err(error) if error.is_credential() => return Err(error.into()),
            Err(error) => {
                let profiles: usize = in_flight.iter().map(|j| j.batch.len()).sum();
                tracing::warn!(%error, jobs = in_flight.len(), profiles, "bulk import jobs could not be polled; their profiles stay pending for the next pass");
                report.deferred += profiles;
                in_flight.clear();
                continue;
            }
        };
        let mut running = Vec::with_capacity(in_flight.len());
        for (job, status) in in_flight.into_iter().zip(statuses) {
            match status {
                Poll::Running => running.push(job),
                Poll::Cancelled => {
                    tracing::warn!(job = %job.id, profiles = job.batch.len(), "klaviyo cancelled a bulk import job; its profiles stay pending for the next pass");
                    report.deferred += job.batch.len();
                }
                Poll::Complete { failed } => match refusals(client, &job, failed).await {
                    Ok(refusals) => {
                        client
                            .progress()
                            .add(Phase::BulkJobs, job.batch.len() as u64);
                        settle(store, job.batch, refusals, &mut report)?
                    }
                    Err(error) if error.is_credential() => return Err(error.into()),
                    Err(error) => {
                        tracing::warn!(%error, job = %job.id, "a bulk import job's errors could not be read; its profiles stay pending for the next pass");
                        report.deferred += job.batch.len();
                    }
                },
            }
        }
        in_flight = running;
    }
    Ok(report)
}

/// Records what a finished job did: the profiles it refused parked with Klaviyo's detail,
/// the others acknowledged; flushed before the next job is looked at.
fn settle(
    store: &Store,
    batch: Vec<OutboxEntry>,
    refusals: Refusals,
    report: &mut DeliveryReport,
) -> Result<(), DeliveryError> {
    report.bulk_jobs += 1;
    let failures = refusals.by_external_id;
    let (refused, accepted): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|e| failures.contains_key(&e.state.external_id));
    if refusals.unmatched {
        // Not knowing which profiles failed, acknowledge none: they are re-sent next pass
        // (an idempotent upsert), never wrongly recorded as written.
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
    Ok(())
}

/// Reads the pending profile writes a job at a time, in key order, each job within
/// Klaviyo's count and size limits: only the jobs in flight are held, not every pending write.
struct Jobs {
    /// The last customer of the last job read.
    after: Option<String>,
    /// Every pending write has been read.
    done: bool,
}

impl Jobs {
    /// The next job, read on a blocking thread; `None` when no write is left.
    async fn next(&mut self, store: &Store) -> Result<Option<Vec<OutboxEntry>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let after = self.after.clone();
        let job = store
            .run_blocking(move |store| {
                let (mut profiles, mut bytes) = (0, 0);
                store.pending_after::<ProfileState>(after.as_deref(), |entry| {
                    let size = profile_resource(&entry.state).to_string().len() + 1;
                    let room = profiles < MAX_PROFILES && bytes + size <= MAX_BYTES;
                    // A job takes at least one profile, whatever its size.
                    if profiles > 0 && !room {
                        return false;
                    }
                    profiles += 1;
                    bytes += size;
                    true
                })
            })
            .await?;
        match job.last() {
            Some(last) => self.after = Some(last.customer_id.clone()),
            None => self.done = true,
        }
        Ok((!job.is_empty()).then_some(job))
    }
}

/// Submits one job; returns its id.
async fn start(client: &KlaviyoClient, batch: &[OutboxEntry]) -> Result<String, ApiError> {
    let body = bulk_job_body(batch.iter().map(|e| &e.state));
    let created = client
        .send(&BULK_JOB_CREATE, BULK_JOB_CREATE.path, Some(body))
        .await?;
    let job: JobResponse = ApiError::decode(BULK_JOB_CREATE.name, &created)?;
    tracing::info!(job = %job.data.id, profiles = batch.len(), "klaviyo bulk import job submitted");
    Ok(job.data.id)
}

/// Where each job in flight stands, in their order: one read of the newest jobs covers them
/// all, unless other jobs on the account pushed some off that page; those are read one by
/// one.
async fn poll(client: &KlaviyoClient, in_flight: &[InFlight]) -> Result<Vec<Poll>, ApiError> {
    let body = client.send(&BULK_JOB_LIST, NEWEST_JOBS, None).await?;
    let page: JobList = ApiError::decode(BULK_JOB_LIST.name, &body)?;
    let mut seen: HashMap<String, JobAttributes> = page
        .data
        .into_iter()
        .map(|j| (j.id, j.attributes))
        .collect();
    let mut out = Vec::with_capacity(in_flight.len());
    for job in in_flight {
        let attributes = match seen.remove(&job.id) {
            Some(attributes) => attributes,
            None => {
                let path = format!("{}/{}", BULK_JOB_CREATE.path, job.id);
                let body = client.send(&BULK_JOB_STATUS, &path, None).await?;
                ApiError::decode::<JobResponse>(BULK_JOB_STATUS.name, &body)?
                    .data
                    .attributes
            }
        };
        out.push(match attributes.status.as_str() {
            "complete" => Poll::Complete {
                failed: attributes.failed_count.unwrap_or(0) as usize,
            },
            "cancelled" => Poll::Cancelled,
            _ => Poll::Running,
        });
    }
    Ok(out)
}

/// What a finished job refused: nothing to read when it reports no failures.
async fn refusals(
    client: &KlaviyoClient,
    job: &InFlight,
    failed: usize,
) -> Result<Refusals, ApiError> {
    if failed == 0 {
        return Ok(Refusals {
            by_external_id: HashMap::new(),
            unmatched: false,
        });
    }
    let job_path = format!("{}/{}", BULK_JOB_CREATE.path, job.id);
    let mut refusals = import_errors(client, &job_path, &job.batch).await?;
    refusals.unmatched |= refusals.by_external_id.len() < failed;
    Ok(refusals)
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
