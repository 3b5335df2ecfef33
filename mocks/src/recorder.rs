//! A log of every request a fake received, so tests can assert on exactly what the daemon sent.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::faults::FaultKind;

/// One request as the fake saw it, with the status it answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub at: DateTime<Utc>,
    pub method: String,
    /// Path without the query string, e.g. `/api/profile-import`.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// Request body as received (UTF-8, lossy).
    pub body: String,
    /// HTTP status the client got; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// For Shopify: true when the answer was a `THROTTLED` error (HTTP 200).
    pub throttled: bool,
    /// The fault injected into this request, if any (see [`crate::faults`]).
    pub fault: Option<FaultKind>,
}

/// Shared, append-only request log.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl Recorder {
    pub fn push(&self, request: RecordedRequest) {
        self.inner.lock().expect("recorder lock").push(request);
    }

    /// Every request so far, oldest first.
    pub fn all(&self) -> Vec<RecordedRequest> {
        self.inner.lock().expect("recorder lock").clone()
    }

    /// Requests with this method and path.
    pub fn matching(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        self.all()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// Forget everything recorded so far (e.g. between two passes of a test).
    pub fn clear(&self) {
        self.inner.lock().expect("recorder lock").clear();
    }
}
