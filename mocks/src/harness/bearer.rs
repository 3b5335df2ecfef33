//! The checks both loyalty fakes (Smile.io, LoyaltyLion) make before any endpoint runs, in
//! order — `Authorization: Bearer …` (401), then the token's per-second limit (429) — each
//! answered in the vendor's own error body. Injected faults come first (see [`super::faults`]).

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::faults::{FaultAnswers, FaultPlan, Faults};
use super::Gate;
use crate::recorder::Recorder;
use crate::smile::rate_limit::PerSecond;
use crate::smile::wire::bearer;

/// A loyalty vendor's error answers for the checks.
pub(crate) trait BearerError: IntoResponse + Sized + Send + 'static {
    /// No, or the wrong, Bearer token.
    fn unauthorized() -> Self;
    /// The token's requests this second are used up.
    fn too_many_requests() -> Self;
    /// A body over the 1 MiB the fakes read.
    fn too_large() -> Self;
    /// An injected failure with a status other than 401 and 429.
    fn failure(status: StatusCode) -> Self;

    /// An injected failure with a plausible answer for its status.
    fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::unauthorized(),
            429 => Self::too_many_requests(),
            _ => Self::failure(status),
        }
    }
}

/// The token, its rate limit and the injected faults of a loyalty fake, and its request log;
/// `E` is the vendor's error answer.
pub(crate) struct BearerGate<E> {
    token: String,
    recorder: Recorder,
    limiter: Mutex<PerSecond>,
    faults: Faults,
    error: PhantomData<fn() -> E>,
}

impl<E> BearerGate<E> {
    /// Admits `token`, `requests_per_second` times a second, with the faults of `faults`.
    pub(crate) fn new(token: String, requests_per_second: u32, faults: &FaultPlan) -> Self {
        BearerGate {
            token,
            recorder: Recorder::default(),
            limiter: Mutex::new(PerSecond::new(requests_per_second)),
            faults: Faults::new(faults),
            error: PhantomData,
        }
    }

    /// The token requests must send.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl<E: BearerError> FaultAnswers for BearerGate<E> {
    fn fault_answer(&self, status: StatusCode, _retry_after: Option<u64>) -> Response {
        E::for_status(status).into_response()
    }
}

impl<E: BearerError> Gate for BearerGate<E> {
    const BODY_LIMIT: usize = 1024 * 1024;
    type Pass = ();
    type Refusal = E;

    fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn too_large() -> E {
        E::too_large()
    }

    fn admit(&self, parts: &Parts) -> Result<(), E> {
        let token = bearer(&parts.headers).ok_or_else(E::unauthorized)?;
        if token != self.token {
            return Err(E::unauthorized());
        }
        let admitted = self
            .limiter
            .lock()
            .expect("limiter lock")
            .take(token, Instant::now());
        if admitted {
            Ok(())
        } else {
            Err(E::too_many_requests())
        }
    }
}

/// State shared by a loyalty fake's handlers and the test's handle: its base URL, its gate
/// (with `E`, the vendor's error answer) and the program's data `St`.
pub(crate) struct Shared<St, E> {
    pub(crate) base_url: String,
    pub(crate) gate: Arc<BearerGate<E>>,
    store: Mutex<St>,
}

impl<St: Send + 'static, E: BearerError> Shared<St, E> {
    /// Serves `router` on `addr` (see [`super::serve`]) over `store`, admitting requests that
    /// send `token`, `requests_per_second` times a second, with the faults of `faults`.
    pub(crate) async fn serve(
        addr: SocketAddr,
        name: &'static str,
        token: String,
        requests_per_second: u32,
        faults: &FaultPlan,
        store: St,
        router: fn(Arc<Self>) -> Router,
    ) -> std::io::Result<Arc<Self>> {
        super::serve(addr, name, router, |base_url| Shared {
            base_url,
            gate: Arc::new(BearerGate::new(token, requests_per_second, faults)),
            store: Mutex::new(store),
        })
        .await
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, St> {
        self.store.lock().expect("store lock")
    }
}
