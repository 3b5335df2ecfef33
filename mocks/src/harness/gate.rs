//! The middleware in front of every fake: it reads the body, draws the request's injected
//! fault ([`super::faults`]), runs the fake's admission checks (a refusal answers instead of
//! the endpoint), lets the fake adjust the endpoint's answer, and records the request with the
//! status it got and the fault it was given.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::Utc;

use super::faults::{self, FaultAnswers, Faults, Outcome};
use crate::recorder::{RecordedRequest, Recorder};

/// Put in an answer's extensions to record it as Shopify's `THROTTLED`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThrottledAnswer;

/// A fake's checks before any endpoint runs, its injected faults, and where it records
/// requests. Its [`FaultAnswers`] answer injected errors in the vendor's format.
pub(crate) trait Gate: FaultAnswers + Send + Sync + 'static {
    /// The largest body read; a larger one is answered with [`Gate::too_large`].
    const BODY_LIMIT: usize;
    /// What an admitted request carries to [`Gate::answered`].
    type Pass: Send;
    /// The fake's error answer.
    type Refusal: IntoResponse + Send;

    fn recorder(&self) -> &Recorder;

    fn faults(&self) -> &Faults;

    /// The answer to a body over [`Gate::BODY_LIMIT`] (recorded with an empty body).
    fn too_large() -> Self::Refusal;

    /// The checks, in the vendor's order; an error answers the request instead.
    fn admit(&self, parts: &Parts) -> Result<Self::Pass, Self::Refusal>;

    /// The endpoint's answer to an admitted request on `path`, as the client gets it.
    fn answered(&self, _pass: Self::Pass, _path: &str, response: Response) -> Response {
        response
    }
}

/// `router` with `gate` in front of every route (and the fallback).
pub(crate) fn guarded<S, G>(router: Router<S>, gate: Arc<G>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    G: Gate,
{
    router.layer(middleware::from_fn_with_state(gate, guard::<G>))
}

async fn guard<G: Gate>(State(gate): State<Arc<G>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let (body_text, outcome) = match to_bytes(body, G::BODY_LIMIT).await {
        Err(_) => (
            String::new(),
            Outcome::answer(G::too_large().into_response()),
        ),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let gate = &*gate;
            let path = path.as_str();
            let endpoint = |injected| async move {
                match gate.admit(&parts) {
                    Err(refusal) => refusal.into_response(),
                    Ok(pass) => {
                        let mut request = Request::from_parts(parts, Body::from(bytes));
                        request.extensions_mut().insert(injected);
                        let response = next.run(request).await;
                        gate.answered(pass, path, response)
                    }
                }
            };
            let outcome = faults::apply(gate.faults(), gate, path, endpoint).await;
            (text, outcome)
        }
    };
    gate.recorder().push(RecordedRequest {
        at: Utc::now(),
        method,
        path,
        query,
        body: body_text,
        status: outcome.status(),
        throttled: outcome
            .response
            .extensions()
            .get::<ThrottledAnswer>()
            .is_some(),
        fault: outcome.fault,
    });
    outcome.deliver().await
}
