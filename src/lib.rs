//! tiersync keeps one VIP tier per Shopify customer in sync across Klaviyo, the storefront
//! (Shopify tags and metafields) and the loyalty app.
//!
//! Layout, in the order data flows:
//! - [`config`]: typed settings (defaults → TOML file → `TIERSYNC__…` environment).
//! - [`sources`]: facts in — Shopify orders, the shop's time zone and access scopes, and the
//!   loyalty app's members.
//! - [`store`]: the sled checkpoint store — cursors, orders, tier state, acknowledgements and
//!   the durable outbox, one file per family of trees. The only module that touches sled.
//! - [`model`]: pure functions from a customer's orders to their level, and the state each
//!   destination shows of it ([`model::ProfileState`], [`model::StorefrontState`]).
//! - [`sync`]: one pass (ingest → evaluate and plan → deliver) and its report; `sync::plan`
//!   decides each destination's desired state and what must be sent.
//! - [`sinks`]: destinations — Klaviyo profiles and events, Shopify customer tags and
//!   metafields — behind limiters shaped like each API's limits, and their read-back.
//! - [`vendors`]: a vendor's transport used by both a source and a sink (Shopify: the client,
//!   its credential, the cost bucket, bulk operations, every GraphQL document).
//! - [`http`]: what the vendor clients share (errors, retries, limiters, call accounting).
//! - [`progress`]: counters of the long phases (backfill, bulk jobs, storefront writes,
//!   reconcile's read-back) that the clients update, and their renderers (bars on a
//!   terminal, log lines elsewhere).
//! - [`ops`]: operator-facing commands beyond the daemon itself (demo, status, explain,
//!   calibrate). The demo's fake servers come from `tiersync-mocks` with the `demo` feature,
//!   on by default and left out of the production build.
//! - [`endpoint`]: the daemon's HTTP endpoint (health, readiness, status, metrics, and the
//!   optional Shopify webhooks that start a pass early).
//!
//! Imports run `endpoint → ops → sync → sinks → sources → store → model`, with `vendors`,
//! `config`, `http` and `progress` below the modules that use them; a unit test
//! (`layering.rs`) keeps it so.
//!
//! [`run`] is the daemon, shared by `main` and the tests; [`once`] runs a single pass.

pub mod allocator;
pub mod config;
pub mod endpoint;
pub mod http;
#[cfg(test)]
mod layering;
pub mod model;
pub mod ops;
pub mod progress;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod vendors;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use config::Settings;
pub use sync::{PassReport, Pipeline};

/// Runs one pass against the configured services and returns its report.
pub async fn once(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<PassReport> {
    let pipeline = Pipeline::open(settings).context("opening the checkpoint store")?;
    let cancel = cancel_on(shutdown);
    let _progress = pipeline.show_progress();
    let report = pipeline.pass(&cancel).await.context("the pass failed")?;
    Ok(report)
}

/// Like [`once`], but sends nothing: reads the sources, plans, and returns the report with
/// the planned writes listed.
pub async fn dry_run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(PassReport, String)> {
    let pipeline = Pipeline::open(settings)
        .context("opening the checkpoint store")?
        .dry_run();
    let cancel = cancel_on(shutdown);
    let report = pipeline.pass(&cancel).await.context("the pass failed")?;
    let planned = ops::status::planned(pipeline.store())?;
    Ok((report, planned))
}

/// Reads every destination back and reports drift; with `repair` enqueues and delivers the
/// fixes (with `dry_run` only plans them, returned as the planned writes).
pub async fn reconcile(
    settings: Settings,
    repair: bool,
    dry_run: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(sync::ReconcileReport, Option<String>)> {
    let mut pipeline = Pipeline::open(settings).context("opening the checkpoint store")?;
    if dry_run {
        pipeline = pipeline.dry_run();
    }
    let cancel = cancel_on(shutdown);
    let _progress = pipeline.show_progress();
    let report = pipeline
        .reconcile(&cancel, repair)
        .await
        .context("reconcile failed")?;
    let planned = if dry_run {
        Some(ops::status::planned(pipeline.store())?)
    } else {
        None
    };
    Ok((report, planned))
}

/// Rebuilds a lost, corrupt or outdated store: moves the directory aside (kept, never
/// deleted), re-reads the sources into a fresh store and reconciles with repair, so what the
/// destinations already show is adopted and only drift is written. Returns where the old
/// directory went.
pub async fn rebuild(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(Option<std::path::PathBuf>, sync::ReconcileReport)> {
    let path = settings.store.path.clone();
    let aside = if path.exists() {
        let name = path
            .file_name()
            .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
        let aside = path.with_file_name(format!(
            "{name}.before-rebuild-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        std::fs::rename(&path, &aside).with_context(|| {
            format!(
                "moving the store {} aside to {} (is the daemon running? stop it first)",
                path.display(),
                aside.display()
            )
        })?;
        Some(aside)
    } else {
        None
    };
    let pipeline = Pipeline::open(settings).context("creating the new checkpoint store")?;
    let cancel = cancel_on(shutdown);
    let _progress = pipeline.show_progress();
    let report = pipeline
        .reconcile(&cancel, true)
        .await
        .context("rebuilding from the sources")?;
    Ok((aside, report))
}

/// Un-parks every write and event a destination refused (after fixing their cause, e.g. a
/// profile Klaviyo refused), then runs one pass to send them. Returns how many were
/// un-parked and the pass.
pub async fn retry(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(usize, PassReport)> {
    let pipeline = Pipeline::open(settings).context("opening the checkpoint store")?;
    let count = pipeline.store().unpark_all()?;
    let cancel = cancel_on(shutdown);
    let report = pipeline.pass(&cancel).await.context("the pass failed")?;
    Ok((count, report))
}

/// The daemon: a pass every `sync.poll_interval` until `shutdown` completes, with its HTTP
/// endpoint on `http.listen` (if set) meanwhile, where Shopify's webhooks (if
/// `webhooks.enabled`) start a pass early. On shutdown the pass in progress stops
/// starting new work, finishes and records the writes in flight, the endpoint stops, and `run`
/// returns. API failures are logged and retried on the next pass; a store failure (disk full,
/// corruption) ends the daemon with an error, since continuing could lose state.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let poll_interval = settings.sync.poll_interval;
    let reconcile_every = settings.sync.reconcile_every;
    let listener = match settings.http.listen {
        Some(address) => Some(endpoint::bind(address).await?),
        None => None,
    };
    let pipeline = Arc::new(Pipeline::open(settings).context("opening the checkpoint store")?);
    let _progress = pipeline.show_progress();
    let daemon = Arc::new(endpoint::Daemon::new(pipeline));
    let cancel = cancel_on(shutdown);
    let server = listener.map(|l| endpoint::serve(l, Arc::clone(&daemon), cancel.clone()));
    tracing::info!(
        poll_interval_s = poll_interval.as_secs(),
        "tiersync daemon started"
    );
    let outcome = passes(&daemon, &cancel, poll_interval, reconcile_every).await;
    // The endpoint stops with the daemon, whatever ended the loop.
    cancel.cancel();
    if let Some(server) = server {
        server.stopped().await;
    }
    if outcome.is_ok() {
        tracing::info!("tiersync daemon stopped");
    }
    outcome
}

/// The daemon's loop: a scheduled reconcile when due, then a pass, every `poll_interval`,
/// or sooner when a webhook wakes it (at most once every [`endpoint::WEBHOOK_PASS_SPACING`]).
async fn passes(
    daemon: &endpoint::Daemon,
    cancel: &CancellationToken,
    poll_interval: std::time::Duration,
    reconcile_every: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let pipeline = daemon.pipeline();
    loop {
        if let Some(every) = reconcile_every {
            match pipeline.reconcile_if_due(cancel, every).await {
                Ok(Some(report)) => {
                    daemon.reconciled(&report);
                    tracing::info!(
                        klaviyo_drift = report.klaviyo.total(),
                        storefront_drift = report.storefront.as_ref().map_or(0, |d| d.total()),
                        "scheduled reconcile repaired drift"
                    )
                }
                Ok(None) => {}
                Err(error) if error.is_fatal() => {
                    return Err(error).context("stopping: the checkpoint store cannot be used")
                }
                Err(error) => {
                    tracing::error!(%error, "scheduled reconcile failed; retrying at the next poll")
                }
            }
        }
        let started = std::time::Instant::now();
        let outcome = pipeline.pass(cancel).await;
        daemon.pass_finished(started.elapsed(), &outcome);
        match outcome {
            Ok(report) => tracing::info!(
                orders_read = report.ingest.orders_read,
                evaluated = report.evaluation.evaluated,
                level_changes = report.evaluation.level_changes,
                written = report.delivery.written,
                parked = report.delivery.parked,
                deferred = report.delivery.deferred,
                pending = report.klaviyo_outbox.pending,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "pass finished"
            ),
            Err(error) if error.is_fatal() => {
                return Err(error).context("stopping: the checkpoint store cannot be used")
            }
            Err(error) => tracing::error!(%error, "pass failed; retrying at the next poll"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(poll_interval) => {}
            _ = daemon.woken() => {
                let spaced = started + endpoint::WEBHOOK_PASS_SPACING;
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep_until(spaced.into()) => {}
                }
                tracing::debug!("a webhook starts the next pass early");
            }
        }
    }
}

/// A token cancelled when `shutdown` completes.
fn cancel_on(shutdown: impl Future<Output = ()> + Send + 'static) -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    cancel
}
