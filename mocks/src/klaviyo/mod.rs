//! A stateful fake of the Klaviyo JSON:API endpoints tiersync uses, on loopback.
//!
//! It behaves like the real API where the daemon's correctness depends on it: the same
//! headers and error bodies, request bodies validated against Klaviyo's published OpenAPI
//! spec, API keys limited to the scopes they were created with (each operation's
//! `x-klaviyo-scopes` in the spec; 403 otherwise), profile upsert semantics (property merge,
//! `null` clears, `meta.patch_properties.unset` removes), asynchronous bulk import jobs with
//! per-profile errors (where a `null` clears nothing), event deduplication by `unique_id`, and
//! fixed-window burst and steady rate limits answering 429 + `Retry-After`. Tests read and change its state
//! through [`FakeKlaviyo`], and inject faults ([`FakeKlaviyo::faults`],
//! [`FakeKlaviyo::reject_next`], [`FakeKlaviyo::reject_email`]) to drive the daemon's retry
//! and failure paths.

mod bulk_jobs;
mod errors;
mod event_bulk;
mod events;
mod filter;
mod ids;
mod jsonapi;
mod keys;
mod profile_api;
mod profiles;
mod rate_limit;
mod server;
mod spec;

pub use spec::{
    required_scopes, Operation, BULK_CREATE_EVENTS, BULK_IMPORT, CREATE_EVENT, PROFILE_IMPORT,
};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::faults::{Fault, FaultPlan, Faults};
use crate::harness;
use crate::recorder::Recorder;

pub use bulk_jobs::{BulkJob, JobStatus};
pub use events::Event;
pub use profiles::Profile;
pub use rate_limit::{KlaviyoLimits, Limit};

/// Validates a request body against the schema Klaviyo's official OpenAPI spec gives for
/// `operation`, as the fake does for every request it receives. Lets tests prove the daemon's
/// bodies are valid without a server; the error names the JSON pointer that failed.
pub fn validate_request_body(operation: Operation, body: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    spec::validated(operation, &bytes)
        .map(|_| ())
        .map_err(|e| e.detail)
}

/// How the fake Klaviyo behaves.
#[derive(Debug, Clone)]
pub struct KlaviyoOptions {
    /// The account's full-access private API key, sent as `Authorization: Klaviyo-API-Key
    /// {key}`; keys with fewer scopes come from [`FakeKlaviyo::create_key`].
    pub api_key: String,
    pub limits: KlaviyoLimits,
    /// Time a bulk import job spends queued, and then processing (default 100 ms each); an
    /// event bulk job's events are recorded this long after it was accepted.
    pub bulk_job_step: Duration,
    /// Injected faults (none by default); see [`crate::faults`].
    pub faults: FaultPlan,
}

impl Default for KlaviyoOptions {
    fn default() -> Self {
        KlaviyoOptions {
            api_key: "pk_test_key".to_string(),
            limits: KlaviyoLimits::default(),
            bulk_job_step: Duration::from_millis(100),
            faults: FaultPlan::none(),
        }
    }
}

/// The account's data.
#[derive(Debug, Default)]
struct Store {
    profiles: profiles::Profiles,
    events: events::EventLog,
    jobs: bulk_jobs::BulkJobs,
}

/// State shared by the handlers and the test's handle.
struct Shared {
    api_key: String,
    keys: Mutex<keys::Keys>,
    base_url: String,
    bulk_job_step: Duration,
    recorder: Recorder,
    limiter: Mutex<rate_limit::RateLimiter>,
    faults: Faults,
    store: Mutex<Store>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().expect("klaviyo store lock")
    }

    fn keys(&self) -> MutexGuard<'_, keys::Keys> {
        self.keys.lock().expect("klaviyo keys lock")
    }

    fn limiter(&self) -> MutexGuard<'_, rate_limit::RateLimiter> {
        self.limiter.lock().expect("klaviyo limiter lock")
    }
}

/// A running fake Klaviyo; clones share its state.
#[derive(Clone)]
pub struct FakeKlaviyo {
    shared: Arc<Shared>,
}

impl FakeKlaviyo {
    /// Binds `addr` (port 0 picks one) and serves until the runtime stops.
    pub async fn start(addr: SocketAddr, options: KlaviyoOptions) -> std::io::Result<FakeKlaviyo> {
        // Build the spec validators now, so no request (or rate-limit window) waits for them.
        tokio::task::spawn_blocking(spec::warm)
            .await
            .map_err(std::io::Error::other)?;
        let shared = harness::serve(addr, "Klaviyo", server::router, |base_url| Shared {
            keys: Mutex::new(keys::Keys::new(&options.api_key)),
            api_key: options.api_key,
            base_url,
            bulk_job_step: options.bulk_job_step,
            recorder: Recorder::default(),
            limiter: Mutex::new(rate_limit::RateLimiter::new(options.limits)),
            faults: Faults::new(&options.faults),
            store: Mutex::new(Store::default()),
        })
        .await?;
        Ok(FakeKlaviyo { shared })
    }

    /// `http://127.0.0.1:PORT`, to use in place of `https://a.klaviyo.com`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The full-access key.
    pub fn api_key(&self) -> String {
        self.shared.api_key.clone()
    }

    /// Creates a private API key with exactly these scopes (e.g. `["profiles:write"]`), as a
    /// custom key made in Klaviyo's settings: a request needing a scope it lacks (the spec's
    /// `x-klaviyo-scopes` for the operation) gets 403 `permission_denied`.
    pub fn create_key(&self, scopes: &[&str]) -> String {
        self.shared.keys().create(scopes)
    }

    /// Every profile, in creation order.
    pub fn profiles(&self) -> Vec<Profile> {
        self.shared.store().profiles.all().to_vec()
    }

    /// The profile with this email (case-insensitive).
    pub fn profile_by_email(&self, email: &str) -> Option<Profile> {
        self.shared.store().profiles.by_email(email).cloned()
    }

    /// Simulates a hand edit in Klaviyo: sets one property (a `null` value removes it) and
    /// moves `updated`. Returns false when no profile has this email.
    pub fn set_property(&self, email: &str, key: &str, value: Value) -> bool {
        self.shared
            .store()
            .profiles
            .set_property(email, key, value, Utc::now())
    }

    /// A profile that existed before tiersync (made in the Klaviyo UI or by another tool),
    /// with these custom properties.
    pub fn create_profile(&self, email: &str, properties: Value) {
        let resource = serde_json::json!({
            "type": "profile",
            "attributes": { "email": email, "properties": properties }
        });
        self.shared
            .store()
            .profiles
            .write(&resource, profiles::Mode::Upsert, "/data", Utc::now())
            .expect("a valid profile");
    }

    /// Every profile bulk import job, in creation order (with when each started and finished
    /// processing, to see how many ran at once).
    pub fn bulk_jobs(&self) -> Vec<BulkJob> {
        self.shared.store().jobs.all().to_vec()
    }

    /// Every recorded event (duplicates by `unique_id` are not here), oldest first; events of
    /// an event bulk job appear one `bulk_job_step` after it was accepted.
    pub fn events(&self) -> Vec<Event> {
        self.shared.store().events.all().to_vec()
    }

    harness::request_log!(shared, "(\"POST\", \"/api/profile-import\")");

    /// Answers the next `count` requests, whatever they are, with `status` and Klaviyo's error
    /// body for it (with 429, `Retry-After: retry_after` when given), after any injections
    /// already due: `faults().inject_next(count, Fault::for_status(status, retry_after))`.
    /// Injected answers do not count against the rate limits.
    pub fn reject_next(&self, count: u32, status: u16, retry_after: Option<u64>) {
        self.faults()
            .inject_next(count, Fault::for_status(status, retry_after));
    }

    /// Loses the next `count` answers on `path` (e.g. `/api/events`): the request takes
    /// effect (an event is recorded) but the client gets a 503, as when a response times out
    /// after the server acted: `faults().inject_next_on(path, count,
    /// Fault::LostResponse(503))`.
    pub fn lose_next_responses(&self, path: &str, count: u32) {
        self.faults()
            .inject_next_on(path, count, Fault::LostResponse(503));
    }

    /// Makes every later write for this email's profile fail with `status` (400 → `invalid`)
    /// and `detail`; in bulk jobs the profile becomes an import error.
    pub fn reject_email(&self, email: &str, status: u16, detail: &str) {
        self.shared
            .store()
            .profiles
            .reject_email(email, status, detail);
    }

    /// Undoes [`FakeKlaviyo::reject_email`].
    pub fn accept_email(&self, email: &str) {
        self.shared.store().profiles.accept_email(email);
    }
}
