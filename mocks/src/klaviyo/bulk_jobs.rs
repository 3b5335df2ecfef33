//! Bulk profile import jobs: `POST /api/profile-bulk-import-jobs` answers 202 with a queued
//! job, which then runs on its own (queued → processing → complete, one `bulk_job_step`
//! apart) applying each profile like a profile-import. Jobs run side by side, however many
//! there are; `GET /api/profile-bulk-import-jobs` lists them (`sort=created_at|-created_at`). A profile that fails is counted in
//! `failed_count` and listed at `GET …/{id}/import-errors` with its `original_payload`, so the
//! daemon's per-profile failure handling can be tested.
//!
//! Unlike profile-import, a bulk job does not clear a field sent as `null`: Klaviyo's guide
//! (developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api, updated 2026-11-09)
//! says only fields provided with non-null values are updated. The fake drops every `null`
//! in a profile's attributes before applying it, so the old value stays, as it does there;
//! `meta.patch_properties.unset` is what removes a property in a job.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::errors::{ApiError, Source};
use super::ids::ulid;
use super::jsonapi::{self, timestamp, Request};
use super::profiles::Mode;
use super::spec;
use super::Shared;
use crate::harness::faults::Injected;

const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
const MAX_PROFILES: usize = 10_000;
const MAX_PROFILE_BYTES: usize = 100 * 1024;
const PATH: &str = "/api/profile-bulk-import-jobs";
/// Profiles a processing job applies at a time (see [`run`]).
const CHUNK: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Processing,
    Complete,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Complete => "complete",
        }
    }
}

/// One profile the job could not apply.
#[derive(Debug, Clone)]
pub struct ImportError {
    pub id: String,
    pub error: ApiError,
    /// The profile resource as it was sent.
    pub original_payload: Value,
}

#[derive(Debug, Clone)]
pub struct BulkJob {
    pub id: String,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub total_count: usize,
    pub completed_count: usize,
    pub failed_count: usize,
    pub list_ids: Vec<String>,
    pub errors: Vec<ImportError>,
    /// The profile resources still to apply (emptied when the job runs).
    pending: Vec<Value>,
}

#[derive(Debug, Default)]
pub struct BulkJobs {
    jobs: Vec<BulkJob>,
}

impl BulkJobs {
    pub fn all(&self) -> &[BulkJob] {
        &self.jobs
    }

    fn get(&self, id: &str) -> Result<&BulkJob, ApiError> {
        self.jobs
            .iter()
            .find(|job| job.id == id)
            .ok_or_else(|| ApiError::not_found(format!("A job with id {id} does not exist.")))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut BulkJob> {
        self.jobs.iter_mut().find(|job| job.id == id)
    }
}

fn resource(job: &BulkJob, base_url: &str, request: Option<&Request>) -> Value {
    let optional = |at: Option<DateTime<Utc>>| at.map(timestamp);
    let attributes = json!({
        "status": job.status.as_str(),
        "created_at": timestamp(job.created_at),
        "total_count": job.total_count,
        "completed_count": job.completed_count,
        "failed_count": job.failed_count,
        "completed_at": optional(job.completed_at),
        "expires_at": optional(job.completed_at.map(|at| at + Duration::days(7))),
        "started_at": optional(job.started_at),
    });
    let mut attributes = attributes.as_object().cloned().unwrap_or_default();
    if let Some(request) = request {
        attributes = request.sparse("profile-bulk-import-job", attributes);
    }
    let link = format!("{base_url}{PATH}/{}", job.id);
    let lists: Vec<Value> = job
        .list_ids
        .iter()
        .map(|id| json!({ "type": "list", "id": id }))
        .collect();
    json!({
        "type": "profile-bulk-import-job",
        "id": job.id,
        "attributes": attributes,
        "relationships": {
            "lists": {
                "data": lists,
                "links": { "self": format!("{link}/relationships/lists/"), "related": format!("{link}/lists/") },
            },
            "profiles": {
                "links": { "self": format!("{link}/relationships/profiles/"), "related": format!("{link}/profiles/") },
            },
        },
        "links": { "self": format!("{link}/") },
    })
}

pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(
            "Bulk import requests may not exceed 5 MB.",
        ));
    }
    let body = spec::validated(spec::BULK_IMPORT, &body)?;
    let pending = body
        .pointer("/data/attributes/profiles/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if pending.is_empty() || pending.len() > MAX_PROFILES {
        return Err(ApiError::invalid(
            format!("A job must have between 1 and {MAX_PROFILES} profiles."),
            "/data/attributes/profiles/data",
        ));
    }
    if let Some(i) = pending
        .iter()
        .position(|p| p.to_string().len() > MAX_PROFILE_BYTES)
    {
        return Err(ApiError::invalid(
            "Each profile may not exceed 100 KB.",
            format!("/data/attributes/profiles/data/{i}"),
        ));
    }
    let list_ids = body
        .pointer("/data/relationships/lists/data")
        .and_then(Value::as_array)
        .map(|lists| {
            lists
                .iter()
                .filter_map(|l| l["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    let now = Utc::now();
    let job = {
        let mut store = shared.store();
        let job = BulkJob {
            id: ulid(now, store.jobs.jobs.len() as u64),
            status: JobStatus::Queued,
            created_at: now,
            started_at: None,
            completed_at: None,
            total_count: pending.len(),
            completed_count: 0,
            failed_count: 0,
            list_ids,
            errors: Vec::new(),
            pending,
        };
        store.jobs.jobs.push(job.clone());
        job
    };
    tokio::spawn(run(Arc::clone(&shared), job.id.clone()));
    let document = json!({ "data": resource(&job, &shared.base_url, None) });
    Ok(jsonapi::response(StatusCode::ACCEPTED, &document))
}

/// Moves the job along: processing after one step, complete after another. While it
/// processes, its profiles are applied a chunk at a time across the step, the store unlocked
/// in between, so any number of jobs progress side by side (Klaviyo documents no cap on jobs
/// in progress for profile imports) and `completed_count` moves as it would there.
async fn run(shared: Arc<Shared>, id: String) {
    tokio::time::sleep(shared.bulk_job_step).await;
    let chunks = {
        let mut store = shared.store();
        let Some(job) = store.jobs.get_mut(&id) else {
            return;
        };
        job.status = JobStatus::Processing;
        job.started_at = Some(Utc::now());
        job.pending.len().div_ceil(CHUNK).max(1)
    };
    let pause = shared.bulk_job_step / u32::try_from(chunks).unwrap_or(u32::MAX);
    let mut offset = 0;
    loop {
        tokio::time::sleep(pause).await;
        let mut store = shared.store();
        let store = &mut *store;
        let Some(job) = store.jobs.get_mut(&id) else {
            return;
        };
        let now = Utc::now();
        let take = CHUNK.min(job.pending.len());
        for (k, profile) in job.pending.drain(..take).enumerate() {
            let pointer = format!("/data/attributes/profiles/data/{}", offset + k);
            match store
                .profiles
                .write(&without_nulls(&profile), Mode::Upsert, &pointer, now)
            {
                Ok(_) => job.completed_count += 1,
                Err(error) => {
                    job.failed_count += 1;
                    job.errors.push(ImportError {
                        id: super::errors::next_error_id(),
                        error,
                        original_payload: profile,
                    });
                }
            }
        }
        offset += take;
        if job.pending.is_empty() {
            job.status = JobStatus::Complete;
            job.completed_at = Some(now);
            return;
        }
    }
}

/// The profile resource with every `null` inside its attributes left out (at any depth):
/// what a bulk job actually applies.
fn without_nulls(profile: &Value) -> Value {
    fn strip(value: &mut Value) {
        if let Value::Object(map) = value {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip);
        }
    }
    let mut profile = profile.clone();
    if let Some(attributes) = profile.get_mut("attributes") {
        strip(attributes);
    }
    profile
}

pub async fn get_one(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let request = Request::new(&shared.base_url, &format!("{PATH}/{id}"), query.as_deref());
    let store = shared.store();
    let job = store.jobs.get(&id)?;
    let document = json!({
        "data": resource(job, &shared.base_url, Some(&request)),
        "links": { "self": request.url },
    });
    Ok(jsonapi::response(StatusCode::OK, &document))
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    injected: Injected,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let request = Request::new(&shared.base_url, PATH, query.as_deref()).repeating(&injected);
    if request.param("filter").is_some() {
        return Err(ApiError::invalid_parameter(
            "This fake does not filter bulk import jobs.",
            "filter",
        ));
    }
    let store = shared.store();
    let mut jobs: Vec<&BulkJob> = store.jobs.jobs.iter().collect();
    match request.param("sort") {
        None | Some("created_at") => {}
        Some("-created_at") => jobs.reverse(),
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                format!("'{other}' is not a valid sort field; use created_at or -created_at."),
                "sort",
            ))
        }
    }
    let document = request.page(&jobs, |job| resource(job, &shared.base_url, Some(&request)))?;
    Ok(jsonapi::response(StatusCode::OK, &document))
}

pub async fn import_errors(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    injected: Injected,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let path = format!("{PATH}/{id}/import-errors");
    let request = Request::new(&shared.base_url, &path, query.as_deref()).repeating(&injected);
    let store = shared.store();
    let job = store.jobs.get(&id)?;
    let document = request.page(&job.errors, |e| {
        let mut error = import_error(e);
        if let Some(attributes) = error["attributes"].as_object().cloned() {
            error["attributes"] = request.sparse("import-error", attributes).into();
        }
        error
    })?;
    Ok(jsonapi::response(StatusCode::OK, &document))
}

/// An `import-error` resource: the error, where in the job body it was, and the profile sent.
fn import_error(e: &ImportError) -> Value {
    let pointer = match &e.error.source {
        Some(Source::Pointer(pointer)) => pointer.as_str(),
        _ => "/data",
    };
    json!({
        "type": "import-error",
        "id": e.id,
        "attributes": {
            "code": e.error.code,
            "title": e.error.title,
            "detail": e.error.detail,
            "source": { "pointer": pointer },
            "original_payload": e.original_payload,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:1";

    fn job(status: JobStatus) -> BulkJob {
        let now = Utc::now();
        let done = status == JobStatus::Complete;
        BulkJob {
            id: ulid(now, 0),
            status,
            created_at: now,
            started_at: done.then_some(now),
            completed_at: done.then_some(now),
            total_count: 2,
            completed_count: 1,
            failed_count: 1,
            list_ids: vec!["VRgFBd".into()],
            errors: vec![ImportError {
                id: super::super::errors::next_error_id(),
                error: ApiError::invalid(
                    "Invalid email address",
                    "/data/attributes/profiles/data/1/attributes/email",
                ),
                original_payload: json!({"type": "profile", "attributes": {"email": "x"}}),
            }],
            pending: Vec::new(),
        }
    }

    #[test]
    fn answers_match_the_spec_response_schemas() {
        let queued = json!({ "data": resource(&job(JobStatus::Queued), BASE, None) });
        spec::check_response("PostProfileImportJobResponse", &queued).unwrap();
        let complete = job(JobStatus::Complete);
        let one = json!({ "data": resource(&complete, BASE, None), "links": { "self": BASE } });
        spec::check_response("GetProfileImportJobResponseCompoundDocument", &one).unwrap();
        assert!(one["data"]["attributes"]["expires_at"].is_string());
    }

    #[test]
    fn a_job_applies_no_null_but_keeps_meta() {
        let sent = json!({"type": "profile",
            "attributes": {"email": "a@x.com", "external_id": null,
                           "properties": {"a": null, "b": 1, "c": {"d": null}}},
            "meta": {"patch_properties": {"unset": "e"}}});
        assert_eq!(
            without_nulls(&sent),
            json!({"type": "profile",
                "attributes": {"email": "a@x.com", "properties": {"b": 1, "c": {}}},
                "meta": {"patch_properties": {"unset": "e"}}})
        );
    }

    #[test]
    fn import_errors_match_the_spec() {
        let shared_job = job(JobStatus::Complete);
        let request = Request::new(BASE, "/x", None);
        let page = request.page(&shared_job.errors, import_error).unwrap();
        spec::check_response("GetImportErrorResponseCollection", &page).unwrap();
        assert_eq!(
            page["data"][0]["attributes"]["original_payload"]["attributes"]["email"],
            "x"
        );
    }
}
