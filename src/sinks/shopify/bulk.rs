//! Storefront writes as Shopify bulk mutations, for volume (`storefront.bulk_threshold`).
//!
//! A batch of customers becomes up to three kinds of operation, one line per customer each:
//! `tagsAdd`, `tagsRemove` (only tiersync's tags, as the documents do: `customerUpdate` would
//! replace every tag the customer has) and `metafieldsSet` (the customer's four metafields,
//! atomic per line). A kind whose file would pass Shopify's 20 MiB limit is split into several
//! operations. Each operation's file is staged, run, polled and its result read; a line's
//! `userErrors` refuse that customer's write, and a customer is acknowledged once every line
//! of theirs is done — exactly as the documents settle them.
//!
//! A batch is `storefront.bulk_batch_customers` customers (50,000 by default). It ends with a
//! barrier (its last operation finishes, then it is settled), which left Shopify's slots idle
//! about 3 s in every 43 with batches of 10,000; 50,000 spends it five times less often. The
//! batch is recorded once (about 25 MB at 50,000 VIPs), and a step rewrites only its
//! operation's progress.
//!
//! The batch is kept in the store ([`StorefrontBulk`]) before the first upload and after
//! every step: a run killed (or stopped) while an operation runs finds it again by its id on
//! restart and applies its result; an operation whose start answer never arrived (a crash, or
//! an answer lost after Shopify took it) is found among the bulk mutations created since it was
//! sent, never one the batch's other operations were given ([`lost_mutation`]). Lines an
//! operation did not do (a FAILED or EXPIRED one, read from its partial result) go into a new
//! operation; nothing is submitted twice, and the settlement is one transaction with the
//! record's removal.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::bulk_slots::{Slot, Slots};
use super::document::{describe, CustomerWrite};
use crate::config::{ShopifySettings, StorefrontSettings};
use crate::http::ApiError;
use crate::model::StorefrontState;
use crate::sinks::{DeliveryError, DeliveryReport};
use crate::store::{
    BulkWriteKind, BulkWriteOp, BulkWriteProgress, OutboxEntry, Store, StorefrontBulk,
};
use crate::vendors::shopify::bulk_mutation::{self, ResultLine, Started, MAX_FILE_BYTES};
use crate::vendors::shopify::{
    concurrent_operations, lost_mutation, queries, BulkSink, ShopifyClient,
};

/// Operations run for the same lines before what is still undone is left for the next pass.
const MAX_ATTEMPTS: u32 = 3;
/// How far before the recorded submission a found operation may have been created (clock
/// skew between this host and Shopify).
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(2);

/// What the bulk path needs to know beyond the storefront's settings.
pub struct BulkContext<'a> {
    pub client: &'a ShopifyClient,
    pub store: &'a Store,
    pub shopify: &'a ShopifySettings,
    /// How long to keep retrying a refusal because other bulk mutations run.
    pub busy_limit: Duration,
    pub cancel: &'a CancellationToken,
}

impl BulkWriteKind {
    fn mutation(self) -> &'static str {
        match self {
            BulkWriteKind::TagsAdd => queries::BULK_TAGS_ADD,
            BulkWriteKind::TagsRemove => queries::BULK_TAGS_REMOVE,
            BulkWriteKind::Metafields => queries::BULK_METAFIELDS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BulkWriteKind::TagsAdd => "tags-add",
            BulkWriteKind::TagsRemove => "tags-remove",
            BulkWriteKind::Metafields => "metafields",
        }
    }
}

/// Plans `entries` (pending, in key order) into a batch whose operations can all run at once
/// where the API version allows several: every kind's lines are cut into operations of about
/// [`operation_size`] lines (and further under the file size limit), so Shopify works on
/// them side by side. Entries Shopify already shows are returned apart, to be
/// acknowledged at once.
pub fn plan(
    store: &Store,
    entries: &[OutboxEntry<StorefrontState>],
    settings: &StorefrontSettings,
    concurrent: usize,
) -> Result<(StorefrontBulk, Vec<OutboxEntry<StorefrontState>>), DeliveryError> {
    let ids: Vec<&str> = entries.iter().map(|e| e.customer_id.as_str()).collect();
    let held = store.acknowledged_sorted::<StorefrontState>(&ids)?;
    let mut batch = Vec::new();
    let mut settled = Vec::new();
    let mut lines: [Vec<(u32, String)>; 3] = Default::default();
    for (entry, held) in entries.iter().zip(held) {
        let write = CustomerWrite::plan(entry, held.as_ref().map(|a| &a.state), settings);
        if write.is_empty() {
            settled.push(entry.clone());
            continue;
        }
        let index = batch.len() as u32;
        let gid = &write.customer_gid;
        if let Some(tag) = &write.add {
            lines[0].push((index, json!({ "id": gid, "tags": [tag] }).to_string()));
        }
        if !write.remove.is_empty() {
            lines[1].push((
                index,
                json!({ "id": gid, "tags": write.remove }).to_string(),
            ));
        }
        if !write.metafields.is_empty() {
            lines[2].push((index, json!({ "metafields": write.metafields }).to_string()));
        }
        batch.push(entry.clone());
    }
    Ok((
        StorefrontBulk {
            entries: batch,
            operations: operations(lines, concurrent),
        },
        settled,
    ))
}

/// Each kind's lines (tags to add, tags to remove, metafields) cut into equal parts of about
/// [`operation_size`] lines, so no kind's short last part runs alone.
fn operations(lines: [Vec<(u32, String)>; 3], concurrent: usize) -> Vec<BulkWriteOp> {
    let kinds = [
        BulkWriteKind::TagsAdd,
        BulkWriteKind::TagsRemove,
        BulkWriteKind::Metafields,
    ];
    let per_operation = operation_size(lines.iter().map(Vec::len).sum(), concurrent);
    kinds
        .into_iter()
        .zip(lines)
        .flat_map(|(kind, lines)| {
            let parts = lines.len().div_ceil(per_operation).max(1);
            let per_part = lines.len().div_ceil(parts).max(1);
            split(lines, MAX_FILE_BYTES, per_part).map(move |l| BulkWriteOp::new(kind, l))
        })
        .collect()
}

/// Rounds of operations a batch is cut into when several may run at once.
const ROUNDS: usize = 2;
/// Fewest lines worth an operation of their own: each costs a staged upload, a start and at
/// least one poll interval (about 10 points and a second or two), about what 500 lines take
/// at the rate the benchmark assumes; a small batch cut finer would spend more than it saves.
const MIN_OPERATION_LINES: usize = 500;

/// Lines per operation for a batch of `lines` when `concurrent` operations may run at once:
/// [`ROUNDS`] rounds of equal operations across every kind, so each of Shopify's slots stays
/// busy until the batch's last round ends together (one operation per kind, as before, left
/// slots idle and made the batch wait for its biggest kind). More rounds would shorten the
/// tail, but each operation costs a staged upload, a start and a poll interval.
fn operation_size(lines: usize, concurrent: usize) -> usize {
    if concurrent <= 1 {
        return lines.max(1);
    }
    lines.div_ceil(concurrent * ROUNDS).max(MIN_OPERATION_LINES)
}

/// Cuts lines into files of at most `max_lines` lines and `max_bytes` bytes (each line and
/// its `\n`).
fn split(
    lines: Vec<(u32, String)>,
    max_bytes: usize,
    max_lines: usize,
) -> impl Iterator<Item = Vec<(u32, String)>> {
    let mut files: Vec<Vec<(u32, String)>> = Vec::new();
    let mut size = 0;
    for line in lines {
        let len = line.1.len() + 1;
        let full = files.last().is_none_or(|f| f.len() >= max_lines);
        if full || size + len > max_bytes {
            files.push(Vec::new());
            size = 0;
        }
        size += len;
        files.last_mut().expect("pushed").push(line);
    }
    files.into_iter()
}

/// Runs `bulk` (new, or resumed from the store) to the end and settles it. `false` when it
/// was interrupted (a stop, or Shopify kept failing or refusing): it stays in the store and
/// the next pass resumes it.
///
/// Twice as many operations are under way as Shopify runs at once: those without a slot
/// stage their file meanwhile ([`Slots`]), so at most that many staged files wait, and a
/// slot that frees is taken by the next operation in order with only its start to send.
/// Operations submitted before a restart come first, to reclaim the slots they hold.
pub async fn run(
    cx: &BulkContext<'_>,
    bulk: StorefrontBulk,
    report: &mut DeliveryReport,
) -> Result<bool, DeliveryError> {
    let started = Instant::now();
    cx.store.set_storefront_bulk(&bulk)?;
    let recorded = started.elapsed();
    let concurrent = concurrent_operations(&cx.shopify.api_version);
    let (submitted, waiting): (Vec<usize>, Vec<usize>) =
        (0..bulk.operations.len()).partition(|&i| {
            let progress = &bulk.operations[i].progress;
            progress.operation_id.is_some() || progress.submitted_at.is_some()
        });
    let slots = Slots::new(concurrent, submitted.len());
    let shared = Mutex::new(bulk);
    let submitting = tokio::sync::Mutex::new(());
    let turn = Turn {
        shared: &shared,
        submitting: &submitting,
        slots: &slots,
    };
    let results: Vec<Result<(bool, usize), DeliveryError>> =
        futures::stream::iter(submitted.into_iter().chain(waiting))
            .map(|i| run_operation(cx, &turn, i))
            .buffer_unordered(2 * concurrent)
            .collect()
            .await;
    report.bulk_elapsed += started.elapsed();
    let mut finished = true;
    for result in results {
        let (done, runs) = result?;
        report.bulk_operations += runs;
        finished &= done;
    }
    if !finished {
        return Ok(false);
    }
    let bulk = shared.into_inner().expect("bulk lock");
    let settling = Instant::now();
    settle(cx.store, &bulk, report)?;
    tracing::info!(
        customers = bulk.entries.len(),
        operations = bulk.operations.len(),
        secs = started.elapsed().as_secs_f64(),
        record_s = recorded.as_secs_f64(),
        settle_s = settling.elapsed().as_secs_f64(),
        "storefront bulk batch written"
    );
    Ok(true)
}

/// Every customer's outcome: acknowledged when all their lines are done, parked when one was
/// refused, left pending when one was never done.
fn settle(
    store: &Store,
    bulk: &StorefrontBulk,
    report: &mut DeliveryReport,
) -> Result<(), DeliveryError> {
    let mut outcome: Vec<Result<Option<String>, ()>> = vec![Ok(None); bulk.entries.len()];
    for op in &bulk.operations {
        for ((customer, _), line) in op.lines.iter().zip(&op.progress.outcomes) {
            let slot = &mut outcome[*customer as usize];
            match (line, &*slot) {
                (None, _) => *slot = Err(()),
                (Some(Some(detail)), Ok(None)) => *slot = Ok(Some(detail.clone())),
                (Some(Some(detail)), Ok(Some(before))) => {
                    *slot = Ok(Some(format!("{before}; {detail}")))
                }
                _ => {}
            }
        }
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (entry, outcome) in bulk.entries.iter().zip(outcome) {
        match outcome {
            Ok(None) => accepted.push(entry.clone()),
            Ok(Some(detail)) => {
                tracing::warn!(customer = %entry.customer_id, %detail, "shopify refused a storefront bulk write; parked until the customer's state changes");
                refused.push((entry, detail));
            }
            Err(()) => report.deferred += 1,
        }
    }
    store.settle_storefront_bulk(bulk.operations.len(), &accepted, &refused)?;
    report.written += accepted.len();
    report.bulk_written += accepted.len();
    report.parked += refused.len();
    Ok(())
}

/// What a batch's operations share while they run.
struct Turn<'a> {
    shared: &'a Mutex<StorefrontBulk>,
    /// Held while a start is sent or a lost one looked for.
    submitting: &'a tokio::sync::Mutex<()>,
    slots: &'a Slots,
}

/// Drives operation `i` until each of its lines has an outcome (or its attempts are spent):
/// `(true, operations run)`, or `false` when interrupted.
async fn run_operation(
    cx: &BulkContext<'_>,
    turn: &Turn<'_>,
    i: usize,
) -> Result<(bool, usize), DeliveryError> {
    let Turn {
        shared,
        submitting,
        slots,
    } = *turn;
    // A step changes and records only the operation's progress; its lines (up to 10,000)
    // are copied once, here. A step that gives it a Shopify operation claims that id too.
    let record = |claim: Option<&str>,
                  f: &mut dyn FnMut(&mut BulkWriteProgress)|
     -> Result<BulkWriteProgress, DeliveryError> {
        let mut bulk = shared.lock().expect("bulk lock");
        let progress = &mut bulk.operations[i].progress;
        f(progress);
        match claim {
            Some(id) => cx.store.claim_storefront_bulk_operation(i, progress, id)?,
            None => cx.store.set_storefront_bulk_progress(i, progress)?,
        }
        Ok(progress.clone())
    };
    let op = |f: &mut dyn FnMut(&mut BulkWriteProgress)| record(None, f);
    let mut state = shared.lock().expect("bulk lock").operations[i].clone();
    let mut runs = 0;
    let mut busy_since: Option<Instant> = None;
    // The Shopify slot this operation holds: from before its start (or, resumed, while it
    // runs) until its result is recorded.
    let mut slot: Option<Slot<'_>> = None;
    loop {
        if state.undone().is_empty()
            || (state.progress.operation_id.is_none() && state.progress.attempts >= MAX_ATTEMPTS)
        {
            if !state.undone().is_empty() {
                tracing::warn!(kind = state.kind.name(), lines = state.undone().len(), "shopify bulk mutations kept missing lines; their customers stay pending for the next pass");
            }
            return Ok((true, runs));
        }
        if state.progress.operation_id.is_none() {
            if let Some(at) = state.progress.submitted_at {
                // Sent, answer never stored (a crash, or an answer lost after Shopify took
                // it): find the operation it started. No submission of the batch runs
                // meanwhile, so every operation the batch started has its id claimed, and the
                // id found is claimed before another lost one looks. It may be running: it
                // holds its slot.
                if slot.is_none() {
                    slot = cx.cancel.run_until_cancelled(slots.resume()).await;
                }
                if slot.is_none() {
                    return Ok((false, runs));
                }
                let _submitting = submitting.lock().await;
                let claimed = claimed_ids(cx.store, shared)?;
                let found = match lost_mutation::find(
                    cx.client,
                    &cx.shopify.api_version,
                    state.kind.mutation(),
                    at - CLOCK_SKEW,
                    &claimed,
                )
                .await
                {
                    Ok(found) => found,
                    Err(error) => return interrupted(error, runs),
                };
                state.progress = match &found {
                    Some(id) => record(Some(id), &mut |o| {
                        o.operation_id = Some(id.clone());
                        o.attempts += 1;
                    })?,
                    None => op(&mut |o| {
                        o.submitted_at = None;
                        o.staged_path = None;
                    })?,
                };
                match &found {
                    Some(id) => {
                        tracing::info!(operation = %id, kind = state.kind.name(), "found the bulk mutation whose start answer was lost")
                    }
                    None => {
                        tracing::info!(kind = state.kind.name(), "the bulk mutation whose start answer was lost never started; staging it again")
                    }
                }
                continue;
            }
            if cx.cancel.is_cancelled() {
                return Ok((false, runs));
            }
            if state.progress.staged_path.is_none() {
                let submitted = state.undone();
                let mut file = Vec::new();
                for &l in &submitted {
                    file.extend_from_slice(state.lines[l as usize].1.as_bytes());
                    file.push(b'\n');
                }
                let filename = format!("tiersync-{}.jsonl", state.kind.name());
                // In the queue for a slot from before the upload, staging while it waits.
                let (taken, staged) = tokio::join!(
                    hold(slot.take(), slots, cx.cancel),
                    bulk_mutation::stage(cx.client, &filename, file)
                );
                slot = taken;
                let path = match staged {
                    Ok(path) => path,
                    Err(ApiError::Rejected { detail, .. }) => {
                        // Refused for good (not a transient failure): a bounded number of
                        // tries, then its customers stay pending and the batch ends.
                        tracing::warn!(%detail, kind = state.kind.name(), "shopify refused to stage a bulk mutation file");
                        state.progress = op(&mut |o| o.attempts += 1)?;
                        continue;
                    }
                    Err(error) => return interrupted(error, runs),
                };
                state.progress = op(&mut |o| {
                    o.staged_path = Some(path.clone());
                    o.submitted = submitted.clone();
                })?;
            }
            let path = state.progress.staged_path.clone().expect("staged");
            slot = hold(slot.take(), slots, cx.cancel).await;
            let Some(held) = slot.as_mut() else {
                return Ok((false, runs));
            };
            let guard = submitting.lock().await;
            state.progress = op(&mut |o| o.submitted_at = Some(chrono::Utc::now()))?;
            let started = bulk_mutation::start(cx.client, state.kind.mutation(), &path).await;
            match started {
                Ok(Started::Running(id)) => {
                    tracing::info!(operation = %id, kind = state.kind.name(), lines = state.progress.submitted.len(), "bulk mutation started");
                    held.started(&id);
                    state.progress = record(Some(&id), &mut |o| {
                        o.operation_id = Some(id.clone());
                        o.attempts += 1;
                    })?;
                    runs += 1;
                    busy_since = None;
                }
                Ok(Started::Busy(detail)) => {
                    state.progress = op(&mut |o| o.submitted_at = None)?;
                    drop(guard);
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= cx.busy_limit {
                        tracing::warn!(%detail, "other bulk mutations keep running; this one waits for the next pass");
                        return Ok((false, runs));
                    }
                    tracing::info!(%detail, "waiting for other bulk mutations to finish");
                    let pause = tokio::time::sleep(cx.shopify.bulk_poll_interval);
                    if cx.cancel.run_until_cancelled(pause).await.is_none() {
                        return Ok((false, runs));
                    }
                }
                Err(ApiError::Rejected { detail, .. }) => {
                    // The file or the run refused (e.g. a staged file gone stale): stage
                    // again, a bounded number of times.
                    tracing::warn!(%detail, kind = state.kind.name(), "shopify refused a bulk mutation; staging it again");
                    state.progress = op(&mut |o| {
                        o.submitted_at = None;
                        o.staged_path = None;
                        o.attempts += 1;
                    })?;
                }
                Err(error) => return interrupted(error, runs),
            }
            continue;
        }
        let id = state.progress.operation_id.clone().expect("running");
        if slot.is_none() {
            slot = cx.cancel.run_until_cancelled(slots.resume()).await;
        }
        if slot.is_none() {
            return Ok((false, runs));
        }
        let lines = state.progress.submitted.len();
        let done = match bulk_mutation::wait(
            cx.client,
            &id,
            lines,
            cx.shopify.bulk_poll_interval,
            cx.cancel,
        )
        .await
        {
            Ok(Some(done)) => done,
            Ok(None) => return Ok((false, runs)),
            Err(error) => return interrupted(error, runs),
        };
        // How late the end was seen, as its pace foretold it: the part of the slot's idle
        // time polling accounts for.
        let seen_late = done.seen_late.unwrap_or_default();
        let url = if done.status == "COMPLETED" {
            done.url.clone()
        } else {
            tracing::warn!(operation = %id, status = %done.status, error_code = done.error_code.as_deref().unwrap_or("none"), "bulk mutation ended early; what it missed runs again");
            done.partial_data_url.clone()
        };
        let mut sink = Outcomes::new(state.progress.submitted.len());
        if let Some(url) = &url {
            match bulk_mutation::results(cx.client, url, cx.shopify.bulk_read_timeout, &mut sink)
                .await
            {
                Ok(()) => {}
                Err(DeliveryError::Api(error)) => return interrupted(error, runs),
                Err(other) => return Err(other),
            }
        }
        state.progress = op(&mut |o| {
            for (n, outcome) in sink.lines.iter_mut().enumerate() {
                if let Some(outcome) = outcome.take() {
                    let line = o.submitted[n] as usize;
                    o.outcomes[line] = Some(outcome);
                }
            }
            o.operation_id = None;
            o.staged_path = None;
            o.submitted_at = None;
            o.submitted.clear();
        })?;
        tracing::debug!(operation = %id, status = %done.status, seen_late_ms = seen_late.as_millis() as u64, "bulk mutation ended and its result recorded");
        if let Some(slot) = slot.take() {
            slot.free(seen_late);
        }
    }
}

/// `held`, or the next free slot; `None` when `cancel` fired first.
async fn hold<'s>(
    held: Option<Slot<'s>>,
    slots: &'s Slots,
    cancel: &CancellationToken,
) -> Option<Slot<'s>> {
    match held {
        Some(slot) => Some(slot),
        None => cancel.run_until_cancelled(slots.take()).await,
    }
}

/// The Shopify operations the batch holds or held: those claimed in the store, and any id an
/// operation holds that is not (recorded by a version that kept no claims).
fn claimed_ids(
    store: &Store,
    shared: &Mutex<StorefrontBulk>,
) -> Result<Vec<String>, DeliveryError> {
    let mut claimed = store.storefront_bulk_claimed()?;
    let bulk = shared.lock().expect("bulk lock");
    claimed.extend(
        bulk.operations
            .iter()
            .filter_map(|o| o.progress.operation_id.clone()),
    );
    Ok(claimed)
}

/// Ends an operation's run on an API failure: a refused credential stops the destination;
/// anything else leaves the batch for the next pass.
fn interrupted(error: ApiError, runs: usize) -> Result<(bool, usize), DeliveryError> {
    if error.is_credential() {
        return Err(error.into());
    }
    tracing::warn!(%error, "shopify bulk mutation interrupted; it resumes at the next pass");
    Ok((false, runs))
}

/// Collects a result file's outcome per submitted line (`None` until its line is read).
struct Outcomes {
    lines: Vec<Option<Option<String>>>,
}

impl Outcomes {
    fn new(lines: usize) -> Outcomes {
        Outcomes {
            lines: vec![None; lines],
        }
    }
}

impl BulkSink<ResultLine> for Outcomes {
    type Error = DeliveryError;

    fn restart(&mut self) {
        self.lines.iter_mut().for_each(|l| *l = None);
    }

    fn line(&mut self, item: ResultLine) -> Result<(), DeliveryError> {
        let Some(slot) = usize::try_from(item.line_number)
            .ok()
            .and_then(|n| self.lines.get_mut(n))
        else {
            tracing::warn!(
                line = item.line_number,
                "a bulk mutation result names a line that was not submitted; ignored"
            );
            return Ok(());
        };
        *slot = Some(line_outcome(&item));
        Ok(())
    }
}

/// `None` when the line's mutation succeeded, else what Shopify said.
fn line_outcome(item: &ResultLine) -> Option<String> {
    let mut problems: Vec<String> = item
        .errors
        .iter()
        .flatten()
        .map(|e| e.message.clone())
        .collect();
    let payloads = item.data.as_ref().and_then(Value::as_object);
    for payload in payloads.into_iter().flat_map(|p| p.values()) {
        let errors = payload.get("userErrors").and_then(Value::as_array);
        problems.extend(errors.into_iter().flatten().map(describe));
    }
    if item.data.is_none() && problems.is_empty() {
        problems.push("the bulk result line has neither data nor errors".into());
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_cut_under_the_size_limit() {
        let lines: Vec<(u32, String)> = (0..10).map(|i| (i, "x".repeat(9))).collect();
        let files: Vec<_> = split(lines.clone(), 35, 100).collect();
        assert_eq!(
            files.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        assert_eq!(files[1][0].0, 3);
        let files: Vec<_> = split(lines, 1000, 4).collect();
        assert_eq!(
            files.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
    }

    #[test]
    fn a_line_with_user_errors_is_refused_and_a_clean_one_done() {
        let refused: ResultLine = serde_json::from_str(
            r#"{"data":{"tagsAdd":{"userErrors":[{"field":["id"],"message":"Customer does not exist"}]}},"__lineNumber":3}"#,
        )
        .unwrap();
        assert_eq!(
            line_outcome(&refused).as_deref(),
            Some("id: Customer does not exist")
        );
        let done: ResultLine =
            serde_json::from_str(r#"{"data":{"tagsAdd":{"userErrors":[]}},"__lineNumber":0}"#)
                .unwrap();
        assert_eq!(line_outcome(&done), None);
        let broken: ResultLine = serde_json::from_str(
            r#"{"errors":[{"message":"Variable $id was not provided"}],"__lineNumber":1}"#,
        )
        .unwrap();
        assert_eq!(
            line_outcome(&broken).as_deref(),
            Some("Variable $id was not provided")
        );
    }

    #[test]
    fn a_batch_fills_every_slot_in_equal_rounds() {
        let lines = |n: u32| (0..n).map(|i| (i, format!("{{\"n\":{i}}}"))).collect();
        let sizes = |ops: Vec<BulkWriteOp>| {
            ops.iter()
                .map(|o| (o.kind.name(), o.lines.len()))
                .collect::<Vec<_>>()
        };
        // 10,000 tags to add, 50 to remove, 10,000 metafield lines, five slots: two rounds of
        // five equal operations, the removals beside them.
        let ops = operations([lines(10_000), lines(50), lines(10_000)], 5);
        let mut expected = vec![("tags-add", 2_000); 5];
        expected.push(("tags-remove", 50));
        expected.extend(vec![("metafields", 2_000); 5]);
        assert_eq!(sizes(ops), expected);
        // A small batch is not cut below 500 lines an operation.
        let ops = operations([lines(600), Vec::new(), lines(300)], 5);
        assert_eq!(
            sizes(ops),
            vec![("tags-add", 300), ("tags-add", 300), ("metafields", 300)]
        );
        // One slot (before 2026-01): one operation per kind.
        let ops = operations([lines(3_000), Vec::new(), lines(3_000)], 1);
        assert_eq!(sizes(ops), vec![("tags-add", 3_000), ("metafields", 3_000)]);
    }
}
