//! The daemon's HTTP endpoint (`http.listen`): `/healthz`, `/readyz`, `/status` and
//! `/metrics`, and with `webhooks.enabled` Shopify's webhooks (`webhooks`), served while
//! `tiersync run` runs and stopped with it.
//!
//! [`Daemon`] is what the daemon's loop and the endpoint share: the pipeline (its store and
//! clients), what the last passes did, the metrics, and the signal a webhook wakes the loop
//! with.

mod metrics;
mod readiness;
mod signature;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::Destination;
use crate::ops::status::Status;
use crate::sync::{PassError, PassReport, Pipeline, ReconcileReport};

pub use metrics::Metrics;
pub use readiness::readiness;

/// How long a stop waits for requests being answered before the server is dropped.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// The shortest time from one pass's start to the start of a pass a webhook asked for: a
/// sale's stream of orders makes a pass every 2 s at most, not one per order (each pass
/// costs an orders query; the deliveries meanwhile collapse into one wake-up).
pub const WEBHOOK_PASS_SPACING: Duration = Duration::from_secs(2);

/// What the daemon's loop and its endpoint share.
pub struct Daemon {
    pipeline: Arc<Pipeline>,
    metrics: Metrics,
    /// When the last successful pass ended.
    last_success: Mutex<Option<DateTime<Utc>>>,
    /// Set by a webhook that should start the next pass now; holds one wake-up while a pass
    /// runs, so deliveries during a pass start exactly one more.
    wake: tokio::sync::Notify,
    /// The webhook receiver's own state.
    webhooks: webhooks::Receiver,
}

impl Daemon {
    pub fn new(pipeline: Arc<Pipeline>) -> Daemon {
        Daemon {
            metrics: Metrics::new(Arc::clone(&pipeline)),
            pipeline,
            last_success: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            webhooks: webhooks::Receiver::new(),
        }
    }

    /// Asks the loop to start its next pass now (see [`Daemon::woken`]).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Completes when a webhook asked for a pass, at once if one did during the last pass.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Records a pass that took `elapsed`, for `/readyz` and `/metrics`.
    pub fn pass_finished(&self, elapsed: Duration, outcome: &Result<PassReport, PassError>) {
        let report = outcome.as_ref().ok();
        if report.is_some() {
            *self.last_success.lock().expect("last success lock") = Some(Utc::now());
        }
        let population = match self.pipeline.store().population() {
            Ok(population) => population,
            Err(error) => {
                tracing::warn!(%error, "reading the fitted model for the metrics");
                None
            }
        };
        self.metrics.pass(elapsed, report, population.as_ref());
    }

    /// Records what a scheduled reconcile's repairs wrote.
    pub fn reconciled(&self, report: &ReconcileReport) {
        self.metrics.reconcile(report);
    }

    /// `/readyz`'s answer now.
    fn readiness(&self) -> Result<(), Vec<String>> {
        let store = self.pipeline.store();
        let settings = self.pipeline.settings();
        let mut destinations = vec![Destination::Klaviyo];
        if settings.storefront.enabled {
            destinations.push(Destination::Storefront);
        }
        let mut stopped = Vec::new();
        for destination in destinations {
            match store.destination_stopped(destination) {
                Ok(Some(why)) => stopped.push(format!("{}: {why}", destination.name())),
                Ok(None) => {}
                Err(error) => stopped.push(format!("{}: unknown ({error})", destination.name())),
            }
        }
        let last_success = *self.last_success.lock().expect("last success lock");
        readiness(
            Utc::now(),
            last_success,
            settings.sync.poll_interval,
            &stopped,
        )
    }
}

/// Binds `http.listen`; a failure names the address and the key.
pub async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address} (http.listen); choose a free address in http.listen, or set it to \"\" to turn the endpoint off")
    })
}

/// Serves the endpoint on `listener` until `stop` fires.
pub fn serve(
    listener: tokio::net::TcpListener,
    daemon: Arc<Daemon>,
    stop: CancellationToken,
) -> Server {
    let address = listener.local_addr().ok();
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics));
    let router = if daemon.pipeline.settings().webhooks.enabled {
        router.route(
            webhooks::PATH,
            post(webhooks::shopify).layer(DefaultBodyLimit::max(webhooks::MAX_BODY)),
        )
    } else {
        router
    };
    let router = router.with_state(daemon);
    tracing::info!(address = ?address, "http endpoint listening");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the http endpoint failed");
        }
    });
    Server { task }
}

/// The running endpoint.
pub struct Server {
    task: JoinHandle<()>,
}

impl Server {
    /// Waits (after the stop fired) for the answers being written, at most [`STOP_GRACE`]:
    /// a slow `/status` never holds the daemon's exit.
    pub async fn stopped(self) {
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_GRACE, self.task).await.is_err() {
            abort.abort();
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(daemon): State<Arc<Daemon>>) -> Response {
    match daemon.readiness() {
        Ok(()) => "ready\n".into_response(),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", reasons.join("\n")),
        )
            .into_response(),
    }
}

async fn status(State(daemon): State<Arc<Daemon>>) -> Response {
    // A scan of every customer: off the async workers.
    let read = tokio::task::spawn_blocking(move || {
        let pipeline = daemon.pipeline();
        Status::read(pipeline.store(), pipeline.settings())
    })
    .await;
    match read {
        Ok(Ok(status)) => Json(status).into_response(),
        Ok(Err(error)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the status: {error:#}\n"),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the status: {error}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        daemon.metrics.encode(),
    )
        .into_response()
}
