//! Fault injection shared by every fake: what can go wrong ([`Fault`]), when it goes wrong
//! (a [`FaultPlan`] of per-kind rates drawn from a seeded generator, a schedule of the next
//! `n` requests, and a revoked token), and the live handle tests steer it through ([`Faults`],
//! from each fake's `faults()`).
//!
//! A request gets at most one fault, chosen when it arrives, in this order: a revoked token
//! (401 until restored), else the first scheduled injection whose path prefix matches, else one
//! draw of the seeded generator against the rates. The fault then takes effect at one of two
//! moments (see [`Fault::phase`]):
//!
//! - **Before the endpoint** ([`Phase::Before`]): 429 (with or without `Retry-After`), 5xx and
//!   other error statuses, 401, and [`Fault::DropConnection`]`(Phase::Before)` answer instead
//!   of the endpoint, so nothing changes and the vendor's own checks (and rate limits) are not
//!   consulted. Shopify's `THROTTLED` and [`Fault::RepeatPage`] are also decided before any
//!   data is touched, by the endpoint itself.
//! - **After the endpoint** ([`Phase::After`], "lost answers"): the request takes effect, then
//!   its answer is delayed ([`Fault::Slow`]), cut short ([`Fault::MalformedJson`]), replaced
//!   by an error ([`Fault::LostResponse`]) or never sent ([`Fault::DropConnection`]`(Phase::After)`).
//!
//! Every request is recorded with the status the client saw (0 when the connection was
//! dropped) and the kind of fault it got ([`crate::recorder::RecordedRequest::fault`]); the
//! handle counts injected faults by kind. A fault the request cannot have (`THROTTLED`
//! anywhere but Shopify, a repeated page on anything but a later page of a listing) is not
//! injected and not counted.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The delay of [`Fault::Slow`] when a rate spec does not name one: beyond the daemon's
/// default 30 s request timeout.
pub const DEFAULT_SLOW: Duration = Duration::from_secs(35);

/// When a fault takes effect relative to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Instead of the endpoint: nothing changes.
    Before,
    /// After the endpoint ran: the change is made, the answer is lost.
    After,
}

/// One thing that can go wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fault {
    /// HTTP 429 with the vendor's rate-limit body, with `Retry-After: {seconds}` when given
    /// and without the header otherwise.
    TooManyRequests { retry_after: Option<u64> },
    /// Shopify only: HTTP 200 with `errors: [{message: "Throttled", extensions: {code:
    /// "THROTTLED"}}]` and the cost extension (the bucket is drained so `throttleStatus`
    /// agrees), as Shopify answers when its bucket is empty.
    Throttled,
    /// A 5xx (500, 502, 503, …) with the vendor's error body.
    ServerError(u16),
    /// Any other error status with the vendor's error body for it (e.g. 400, 403, 404).
    Status(u16),
    /// HTTP 401 with the vendor's bad-credentials body, as for a revoked token.
    Unauthorized,
    /// The endpoint runs, and its answer is sent after this delay (meant to be longer than
    /// the client's timeout). The request is recorded when the endpoint answers.
    Slow(Duration),
    /// The TCP connection is closed without any answer: before the endpoint runs (nothing
    /// changes) or after it ran (the change is made).
    DropConnection(Phase),
    /// The endpoint runs, and its answer (status and headers kept) carries only the first
    /// half of its body, which is never valid JSON.
    MalformedJson,
    /// A page after the first of a paged listing starts half a page early, repeating items
    /// the previous page returned; its next cursor still moves forward. Shopify's root
    /// connections (`orders`, `customers` with `after`), Klaviyo's collections (with
    /// `page[cursor]`), Smile's customers and points transactions and LoyaltyLion's
    /// customers (with `cursor`).
    RepeatPage,
    /// The endpoint runs (the change is made), and the client gets this error status
    /// instead of its answer, as when a gateway times out after the server acted.
    LostResponse(u16),
}

impl Fault {
    /// The fault a legacy `reject_next(status)` injects: 429 → [`Fault::TooManyRequests`],
    /// 401 → [`Fault::Unauthorized`], 5xx → [`Fault::ServerError`], else [`Fault::Status`].
    pub fn for_status(status: u16, retry_after: Option<u64>) -> Fault {
        match status {
            429 => Fault::TooManyRequests { retry_after },
            401 => Fault::Unauthorized,
            500..=599 => Fault::ServerError(status),
            _ => Fault::Status(status),
        }
    }

    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::TooManyRequests { .. } => FaultKind::TooManyRequests,
            Fault::Throttled => FaultKind::Throttled,
            Fault::ServerError(_) => FaultKind::ServerError,
            Fault::Status(_) => FaultKind::Status,
            Fault::Unauthorized => FaultKind::Unauthorized,
            Fault::Slow(_) => FaultKind::Slow,
            Fault::DropConnection(_) => FaultKind::DropConnection,
            Fault::MalformedJson => FaultKind::MalformedJson,
            Fault::RepeatPage => FaultKind::RepeatPage,
            Fault::LostResponse(_) => FaultKind::LostResponse,
        }
    }

    /// Whether the fault answers before the endpoint runs (nothing changes) or after it ran.
    pub fn phase(&self) -> Phase {
        match self {
            Fault::Slow(_) | Fault::MalformedJson | Fault::LostResponse(_) => Phase::After,
            Fault::DropConnection(phase) => *phase,
            _ => Phase::Before,
        }
    }

    /// The status and `Retry-After` of a fault answered with an error before the endpoint.
    fn refusal(&self) -> Option<(StatusCode, Option<u64>)> {
        let status =
            |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self {
            Fault::TooManyRequests { retry_after } => {
                Some((StatusCode::TOO_MANY_REQUESTS, *retry_after))
            }
            Fault::ServerError(code) | Fault::Status(code) => Some((status(*code), None)),
            Fault::Unauthorized => Some((StatusCode::UNAUTHORIZED, None)),
            _ => None,
        }
    }
}

/// A [`Fault`] without its parameters, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    TooManyRequests,
    Throttled,
    ServerError,
    Status,
    Unauthorized,
    Slow,
    DropConnection,
    MalformedJson,
    RepeatPage,
    LostResponse,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FaultKind::TooManyRequests => "429",
            FaultKind::Throttled => "throttled",
            FaultKind::ServerError => "5xx",
            FaultKind::Status => "status",
            FaultKind::Unauthorized => "401",
            FaultKind::Slow => "slow",
            FaultKind::DropConnection => "drop",
            FaultKind::MalformedJson => "malformed",
            FaultKind::RepeatPage => "repeat",
            FaultKind::LostResponse => "lost",
        };
        f.write_str(name)
    }
}

/// The next `remaining` requests whose path starts with `path_prefix` get `fault`.
#[derive(Debug, Clone, PartialEq)]
struct Scheduled {
    fault: Fault,
    remaining: u32,
    path_prefix: String,
}

/// A fake's faults as configured: rates (drawn from a generator seeded with `seed`), a
/// schedule, and whether the token starts revoked. The default injects nothing.
///
/// ```
/// # use std::time::Duration;
/// # use tiersync_mocks::faults::{Fault, FaultPlan};
/// let plan = FaultPlan::rates(7)
///     .with(Fault::TooManyRequests { retry_after: Some(1) }, 0.10)
///     .with(Fault::ServerError(503), 0.05)
///     .next(2, Fault::Unauthorized);
/// let same = FaultPlan::from_spec("429=0.1,5xx=0.05", 7, Duration::from_secs(35)).unwrap();
/// assert_eq!(same.seed(), 7);
/// # let _ = plan;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    seed: u64,
    rates: Vec<(Fault, f64)>,
    schedule: Vec<Scheduled>,
    revoked: bool,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// No faults yet; rates added with [`FaultPlan::with`] are drawn from a generator seeded
    /// with `seed`, so the same requests get the same faults on every run.
    pub fn rates(seed: u64) -> FaultPlan {
        FaultPlan {
            seed,
            ..FaultPlan::default()
        }
    }

    /// Each request (not otherwise faulted) gets `fault` with probability `rate`.
    ///
    /// # Panics
    /// When `rate` is outside `0..=1` or the rates add up to more than 1.
    pub fn with(mut self, fault: Fault, rate: f64) -> FaultPlan {
        self.rates.push((fault, rate));
        check_rates(&self.rates);
        self
    }

    /// The next `n` requests get `fault` (after any scheduled earlier).
    pub fn next(self, n: u32, fault: Fault) -> FaultPlan {
        self.next_on("", n, fault)
    }

    /// The next `n` requests whose path starts with `path_prefix` get `fault`.
    pub fn next_on(mut self, path_prefix: &str, n: u32, fault: Fault) -> FaultPlan {
        self.schedule.push(Scheduled {
            fault,
            remaining: n,
            path_prefix: path_prefix.to_owned(),
        });
        self
    }

    /// Starts with the token revoked: every request gets 401 until
    /// [`Faults::restore_token`].
    pub fn revoked(mut self) -> FaultPlan {
        self.revoked = true;
        self
    }

    /// The same plan drawing from another seed.
    pub fn with_seed(mut self, seed: u64) -> FaultPlan {
        self.seed = seed;
        self
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The rates, as given.
    pub fn fault_rates(&self) -> &[(Fault, f64)] {
        &self.rates
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty() && self.schedule.is_empty() && !self.revoked
    }

    /// Rates from a spec such as `429=0.1,5xx=0.05,timeout=0.02,malformed=0.01` (the
    /// `tiersync-mocks --faults` flag). Keys: `429` (half with `Retry-After: 1`, half
    /// without), `throttled`, `5xx` (500, 502 and 503 alike) or `500`/`502`/`503`, `401`,
    /// `timeout` or `slow` ([`Fault::Slow`] of `slow`), `drop` (after the endpoint ran),
    /// `drop-before`, `malformed`, `repeat`, `lost` (503 after the endpoint ran).
    pub fn from_spec(spec: &str, seed: u64, slow: Duration) -> Result<FaultPlan, String> {
        let mut plan = FaultPlan::rates(seed);
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, rate) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: expected KIND=RATE"))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .ok()
                .filter(|rate| (0.0..=1.0).contains(rate))
                .ok_or_else(|| format!("`{item}`: the rate must be a number from 0 to 1"))?;
            let faults = match key.trim() {
                "429" => vec![
                    Fault::TooManyRequests {
                        retry_after: Some(1),
                    },
                    Fault::TooManyRequests { retry_after: None },
                ],
                "throttled" => vec![Fault::Throttled],
                "5xx" => vec![
                    Fault::ServerError(500),
                    Fault::ServerError(502),
                    Fault::ServerError(503),
                ],
                code @ ("500" | "502" | "503" | "504") => {
                    vec![Fault::ServerError(code.parse().unwrap_or(500))]
                }
                "401" => vec![Fault::Unauthorized],
                "timeout" | "slow" => vec![Fault::Slow(slow)],
                "drop" => vec![Fault::DropConnection(Phase::After)],
                "drop-before" => vec![Fault::DropConnection(Phase::Before)],
                "malformed" => vec![Fault::MalformedJson],
                "repeat" => vec![Fault::RepeatPage],
                "lost" => vec![Fault::LostResponse(503)],
                other => return Err(format!("`{other}`: unknown fault kind")),
            };
            let share = rate / faults.len() as f64;
            plan.rates
                .extend(faults.into_iter().map(|fault| (fault, share)));
        }
        let total: f64 = plan.rates.iter().map(|(_, rate)| rate).sum();
        if total > 1.0 + 1e-9 {
            return Err(format!("the rates add up to {total}, more than 1"));
        }
        Ok(plan)
    }
}

fn check_rates(rates: &[(Fault, f64)]) {
    for (fault, rate) in rates {
        assert!(
            (0.0..=1.0).contains(rate),
            "the rate of {fault:?} must be from 0 to 1, not {rate}"
        );
    }
    let total: f64 = rates.iter().map(|(_, rate)| rate).sum();
    assert!(total <= 1.0 + 1e-9, "fault rates add up to {total} > 1");
}

/// The live faults of one fake; clones share them. Tests get it from the fake's `faults()`.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Mutex<State>>,
}

struct State {
    rng: ChaCha8Rng,
    rates: Vec<(Fault, f64)>,
    schedule: VecDeque<Scheduled>,
    revoked: bool,
    counts: BTreeMap<FaultKind, u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new(&FaultPlan::none())
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Faults")
            .field("rates", &state.rates)
            .field("schedule", &state.schedule)
            .field("revoked", &state.revoked)
            .field("counts", &state.counts)
            .finish()
    }
}

impl Faults {
    /// Faults as `plan` configures them, none injected yet.
    pub fn new(plan: &FaultPlan) -> Faults {
        Faults {
            inner: Arc::new(Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(plan.seed),
                rates: plan.rates.clone(),
                schedule: plan.schedule.iter().cloned().collect(),
                revoked: plan.revoked,
                counts: BTreeMap::new(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the rates, schedule and revocation with `plan`'s (reseeding the generator);
    /// the counts are kept.
    pub fn set_plan(&self, plan: &FaultPlan) {
        let mut state = self.state();
        state.rng = ChaCha8Rng::seed_from_u64(plan.seed);
        state.rates = plan.rates.clone();
        state.schedule = plan.schedule.iter().cloned().collect();
        state.revoked = plan.revoked;
    }

    /// Replaces the rates, drawn from now on from a generator seeded with `seed`.
    ///
    /// # Panics
    /// When a rate is outside `0..=1` or they add up to more than 1.
    pub fn set_rates(&self, seed: u64, rates: impl IntoIterator<Item = (Fault, f64)>) {
        let rates: Vec<_> = rates.into_iter().collect();
        check_rates(&rates);
        let mut state = self.state();
        state.rng = ChaCha8Rng::seed_from_u64(seed);
        state.rates = rates;
    }

    /// The next `n` requests get `fault` (after any injections already due).
    pub fn inject_next(&self, n: u32, fault: Fault) {
        self.inject_next_on("", n, fault);
    }

    /// The next `n` requests whose path starts with `path_prefix` get `fault` (after any
    /// injections already due for those paths).
    pub fn inject_next_on(&self, path_prefix: &str, n: u32, fault: Fault) {
        if n > 0 {
            self.state().schedule.push_back(Scheduled {
                fault,
                remaining: n,
                path_prefix: path_prefix.to_owned(),
            });
        }
    }

    /// Every request gets 401 (counted as [`FaultKind::Unauthorized`]) until
    /// [`Faults::restore_token`].
    pub fn revoke_token(&self) {
        self.state().revoked = true;
    }

    pub fn restore_token(&self) {
        self.state().revoked = false;
    }

    pub fn is_revoked(&self) -> bool {
        self.state().revoked
    }

    /// No more faults: rates, schedule and revocation are dropped (the counts are kept).
    pub fn clear(&self) {
        let mut state = self.state();
        state.rates.clear();
        state.schedule.clear();
        state.revoked = false;
    }

    /// How many faults of `kind` were injected.
    pub fn injected(&self, kind: FaultKind) -> u64 {
        self.state().counts.get(&kind).copied().unwrap_or(0)
    }

    /// The faults injected so far, by kind (kinds never injected are absent).
    pub fn counts(&self) -> BTreeMap<FaultKind, u64> {
        self.state().counts.clone()
    }

    /// How many faults were injected, of any kind.
    pub fn total_injected(&self) -> u64 {
        self.state().counts.values().sum()
    }

    pub fn reset_counts(&self) {
        self.state().counts.clear();
    }

    /// Scheduled injections not yet used.
    pub fn pending(&self) -> u32 {
        self.state().schedule.iter().map(|s| s.remaining).sum()
    }

    /// The fault for a request on `path`, if it gets one.
    fn draw(&self, path: &str) -> Option<Fault> {
        let mut state = self.state();
        if state.revoked {
            return Some(Fault::Unauthorized);
        }
        let due = state
            .schedule
            .iter()
            .position(|s| path.starts_with(&s.path_prefix));
        if let Some(index) = due {
            let scheduled = &mut state.schedule[index];
            scheduled.remaining -= 1;
            let fault = scheduled.fault.clone();
            if scheduled.remaining == 0 {
                state.schedule.remove(index);
            }
            return Some(fault);
        }
        if state.rates.is_empty() {
            return None;
        }
        let draw: f64 = state.rng.random();
        let mut bound = 0.0;
        for (fault, rate) in &state.rates {
            bound += rate;
            if draw < bound {
                return Some(fault.clone());
            }
        }
        None
    }

    fn count(&self, kind: FaultKind) {
        *self.state().counts.entry(kind).or_insert(0) += 1;
    }
}

/// The fault a request drew, as the endpoint sees it (an extractor): the endpoint decides
/// whether a [`Fault::RepeatPage`] or [`Fault::Throttled`] applies to it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Injected(Option<Arc<Ticket>>);

#[derive(Debug)]
pub(crate) struct Ticket {
    fault: Fault,
    applied: AtomicBool,
}

impl Injected {
    fn take(&self, wanted: FaultKind, applies: bool) -> bool {
        match &self.0 {
            Some(ticket) if applies && ticket.fault.kind() == wanted => {
                ticket.applied.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Whether this listing page is to repeat items of the previous one: a
    /// [`Fault::RepeatPage`] was drawn and this is a page after the first (`later_page`).
    pub(crate) fn repeat_page(&self, later_page: bool) -> bool {
        self.take(FaultKind::RepeatPage, later_page)
    }

    /// Whether to answer `THROTTLED` ([`Fault::Throttled`] was drawn).
    pub(crate) fn throttled(&self) -> bool {
        self.take(FaultKind::Throttled, true)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Injected {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Injected>()
            .cloned()
            .unwrap_or_default())
    }
}

/// What [`apply`] needs from a fake: its vendor's error answers.
pub(crate) trait FaultAnswers {
    /// The vendor's error answer for `status` (401: bad credentials, 429: rate limited,
    /// else a generic error with that status); `Retry-After` is set (or removed) afterwards.
    fn fault_answer(&self, status: StatusCode, retry_after: Option<u64>) -> Response;
}

/// What happened to one request: its answer, and how to record it.
pub(crate) struct Outcome {
    pub response: Response,
    /// The fault injected, if one was.
    pub fault: Option<FaultKind>,
    /// Close the connection instead of answering (recorded as status 0).
    pub severed: bool,
    /// Send the answer after this delay (after recording it).
    pub delay: Option<Duration>,
}

impl Outcome {
    /// An answer without a fault.
    pub fn answer(response: Response) -> Outcome {
        Outcome {
            response,
            fault: None,
            severed: false,
            delay: None,
        }
    }

    /// The status the client sees (0: none).
    pub fn status(&self) -> u16 {
        if self.severed {
            0
        } else {
            self.response.status().as_u16()
        }
    }

    /// The answer to send, once recorded and delayed.
    pub async fn deliver(self) -> Response {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        if self.severed {
            severed()
        } else {
            self.response
        }
    }
}

/// Runs one request on `path` through `faults`: draws its fault, answers before the
/// endpoint (`endpoint`, which gets the [`Injected`] ticket to put in the request's
/// extensions) or after it, and counts the fault if it was injected.
pub(crate) async fn apply<A, F, Fut>(
    faults: &Faults,
    answers: &A,
    path: &str,
    endpoint: F,
) -> Outcome
where
    A: FaultAnswers + ?Sized,
    F: FnOnce(Injected) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(fault) = faults.draw(path) else {
        return Outcome::answer(endpoint(Injected::default()).await);
    };
    let mut outcome = Outcome {
        response: Response::default(),
        fault: Some(fault.kind()),
        severed: false,
        delay: None,
    };
    if let Some((status, retry_after)) = fault.refusal() {
        outcome.response = refusal(answers, status, retry_after);
    } else if fault == Fault::DropConnection(Phase::Before) {
        outcome.severed = true;
    } else {
        let ticket = Arc::new(Ticket {
            fault: fault.clone(),
            applied: AtomicBool::new(false),
        });
        let response = endpoint(Injected(Some(Arc::clone(&ticket)))).await;
        outcome.response = response;
        match fault {
            Fault::Slow(delay) => outcome.delay = Some(delay),
            Fault::DropConnection(_) => outcome.severed = true,
            Fault::MalformedJson => outcome.response = truncated(outcome.response).await,
            Fault::LostResponse(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                outcome.response = refusal(answers, status, None);
            }
            _ if ticket.applied.load(Ordering::Relaxed) => {}
            _ => outcome.fault = None,
        }
    }
    if let Some(kind) = outcome.fault {
        faults.count(kind);
    }
    outcome
}

/// The vendor's answer for `status`, with `Retry-After` exactly as asked.
fn refusal<A: FaultAnswers + ?Sized>(
    answers: &A,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let mut response = answers.fault_answer(status, retry_after);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    match retry_after {
        Some(seconds) => {
            headers.insert(header::RETRY_AFTER, seconds.into());
        }
        None => {
            headers.remove(header::RETRY_AFTER);
        }
    }
    response
}

/// `response` with only the first half of its body (never valid JSON).
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut cut = bytes.slice(..bytes.len() / 2);
    if cut.is_empty() || serde_json::from_slice::<serde_json::Value>(&cut).is_ok() {
        cut = Bytes::from_static(b"{\"");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}

/// An answer whose body fails before a byte is written, so the server closes the connection
/// without sending anything.
fn severed() -> Response {
    Response::new(Body::new(Severed))
}

struct Severed;

impl http_body::Body for Severed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected fault: connection dropped",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_take_exactly_n_requests_on_their_paths() {
        let faults = Faults::default();
        faults.inject_next_on("/v1/customers", 2, Fault::ServerError(502));
        faults.inject_next(1, Fault::Unauthorized);
        assert_eq!(
            faults.draw("/v1/customers/1"),
            Some(Fault::ServerError(502))
        );
        assert_eq!(faults.draw("/v1/vip_tiers"), Some(Fault::Unauthorized));
        assert_eq!(faults.draw("/v1/vip_tiers"), None);
        assert_eq!(faults.draw("/v1/customers"), Some(Fault::ServerError(502)));
        assert_eq!(faults.draw("/v1/customers"), None);
        assert_eq!(faults.pending(), 0);
    }

    #[test]
    fn rates_are_reproducible_for_a_seed() {
        let plan = FaultPlan::rates(3)
            .with(Fault::ServerError(500), 0.2)
            .with(Fault::MalformedJson, 0.1);
        let run = |plan: &FaultPlan| {
            let faults = Faults::new(plan);
            (0..1000).map(|_| faults.draw("/")).collect::<Vec<_>>()
        };
        let first = run(&plan);
        assert_eq!(first, run(&plan));
        assert_ne!(first, run(&plan.clone().with_seed(4)));
        let errors = first
            .iter()
            .filter(|f| **f == Some(Fault::ServerError(500)));
        let errors = errors.count();
        assert!((150..250).contains(&errors), "{errors} of 1000 at 20%");
    }

    #[test]
    fn revocation_wins_until_restored() {
        let faults = Faults::new(&FaultPlan::none().revoked());
        faults.inject_next(1, Fault::ServerError(500));
        assert_eq!(faults.draw("/"), Some(Fault::Unauthorized));
        faults.restore_token();
        assert_eq!(faults.draw("/"), Some(Fault::ServerError(500)));
        assert_eq!(faults.draw("/"), None);
    }

    #[test]
    fn specs_expand_to_rates() {
        let plan = FaultPlan::from_spec(
            "429=0.1, 5xx=0.06,timeout=0.02,malformed=0.01",
            9,
            Duration::from_secs(1),
        )
        .unwrap();
        let rates = plan.fault_rates();
        assert_eq!(rates.len(), 2 + 3 + 1 + 1);
        assert!(rates.contains(&(Fault::TooManyRequests { retry_after: None }, 0.05)));
        assert!(rates.contains(&(Fault::Slow(Duration::from_secs(1)), 0.02)));
        assert!(FaultPlan::from_spec("429=2", 0, DEFAULT_SLOW).is_err());
        assert!(FaultPlan::from_spec("teapot=0.1", 0, DEFAULT_SLOW).is_err());
        assert!(FaultPlan::from_spec("429=0.6,5xx=0.6", 0, DEFAULT_SLOW).is_err());
        assert!(FaultPlan::from_spec("", 0, DEFAULT_SLOW)
            .unwrap()
            .is_empty());
    }
}
