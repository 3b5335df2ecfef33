//! Evaluation: the model over the customers whose facts changed — and over every customer at
//! the daily recalculation, when the CLV model is refitted and the population parameters
//! recomputed — then the plan (`plan`: each destination's desired state minus what it
//! acknowledged) and the commit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::events;
use super::plan::{desired_profile, desired_storefront, plan, Held, Reads};
use crate::config::{Authority, LoyaltyPlatform, Settings};
use crate::model::{
    self, History, Observation, Population, ProfileState, ShopDays, StateRules, StorefrontState,
    TierState, TransitionKind,
};
use crate::store::{
    AuditEntry, CustomerRecord, Evaluation, LoyaltyRecord, OutboxChange, RecordChange, Store,
    StoreError, TierCheckpoint,
};

/// Customers committed per store transaction.
const BATCH: usize = 4_096;
/// Customers from which the commits run on a thread of their own (see [`run`]): 16 batches.
const PIPELINED_FROM: usize = 16 * BATCH;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvaluationReport {
    /// Customers evaluated: those whose facts changed, or everyone at the daily recalculation.
    pub evaluated: usize,
    /// True when this was the daily recalculation (model refitted, everyone re-evaluated).
    pub recalculated: bool,
    /// Transitions recorded (grace, lapse… included).
    pub transitions: usize,
    /// Customers whose level changed.
    pub level_changes: usize,
    /// Writes newly enqueued (or replaced with a newer state).
    pub enqueued: usize,
    /// Flow-triggering events enqueued.
    pub events: usize,
    /// Where the time went.
    pub timings: EvaluationTimings,
}

/// Wall time per part of an evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvaluationTimings {
    /// Reading the targets' orders and summarizing them (the full scan at a recalculation).
    pub scan: Duration,
    /// Fitting the CLV model and the day's population parameters.
    pub population: Duration,
    /// Reading the stored records and deciding every target's tier (and its record).
    pub decide: Duration,
    /// Reading the destinations' acknowledged and pending states and planning against them,
    /// a batch at a time.
    pub plan: Duration,
    /// Committing records, outbox changes, transitions and dirty marks (on a thread of its
    /// own, beside the planning of the next batch: the two overlap), and the flush.
    pub write: Duration,
}

/// Whether the daily recalculation is due at `now` (shop-local `recalc_at` passed and not yet
/// run today), or has never run.
pub fn recalculation_due(
    population: Option<&Population>,
    settings: &Settings,
    tz: Tz,
    now: DateTime<Utc>,
) -> bool {
    let local = now.with_timezone(&tz);
    population
        .is_none_or(|p| p.as_of < local.date_naive() && local.time() >= settings.sync.recalc_at)
}

/// Evaluates the dirty customers, or everyone when the daily recalculation is due.
pub fn evaluate(
    store: &Store,
    settings: &Settings,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<EvaluationReport, StoreError> {
    run(store, settings, tz, now)
}

fn run(
    store: &Store,
    settings: &Settings,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<EvaluationReport, StoreError> {
    let mut timings = EvaluationTimings::default();
    let mut clock = Instant::now();
    let mut lap = |into: &mut Duration| {
        let now = Instant::now();
        *into += now - clock;
        clock = now;
    };
    let today = now.with_timezone(&tz).date_naive();
    let window_start = now - chrono::Duration::days(i64::from(settings.tiers.window_days));
    let stored = store.population()?;
    let recalculated = recalculation_due(stored.as_ref(), settings, tz, now);
    let loyalty = if recalculated || settings.loyalty.platform != LoyaltyPlatform::None {
        store.loyalty_by_customer()?
    } else {
        HashMap::new()
    };
    let initial_sync = stored.is_none();
    let (population, targets) = if recalculated {
        let days = ShopDays::new(tz);
        let everyone = store.scan_customers(cores(), |id, facts, previous| Subject {
            id: id.to_string(),
            history: model::history(facts, window_start, &days),
            previous,
        })?;
        lap(&mut timings.scan);
        let with_points: Vec<(&History, i64)> = everyone
            .iter()
            .flatten()
            .map(|s| (&s.history, loyalty.get(&s.id).map_or(0, |l| l.points)))
            .collect();
        let population = Population::build(&with_points, today, &settings.clv, &settings.tiers);
        log_population(&population);
        lap(&mut timings.population);
        (population, everyone)
    } else {
        let population = stored.expect("a population exists when no recalculation is due");
        let days = ShopDays::new(tz);
        // In key order, so the checkpoints and the destinations' states are read by range.
        let dirty = store.dirty_customers()?;
        let ids: Vec<&str> = dirty.iter().map(String::as_str).collect();
        let targets = ids
            .iter()
            .zip(store.checkpoints_sorted(&ids)?)
            .map(|(id, previous)| {
                Ok(Subject {
                    id: id.to_string(),
                    history: model::history(&store.customer_orders(id)?, window_start, &days),
                    previous,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        lap(&mut timings.scan);
        (population, vec![targets])
    };

    let mut report = EvaluationReport {
        recalculated,
        ..EvaluationReport::default()
    };
    let evaluator = Evaluator {
        settings,
        population: &population,
        today,
        now,
    };
    // Stage 1, the decisions: every customer's tier state and transitions, spread over the
    // cores, with nothing else touching the store meanwhile.
    let decisions: Vec<Vec<Decision>> = targets
        .iter()
        .map(|part| {
            parallel_map(cores(), part.iter().collect(), |subject: &Subject| {
                let assessment = evaluator.assess(subject, loyalty.get(&subject.id));
                evaluator.decide(subject, &assessment)
            })
        })
        .collect();
    lap(&mut timings.decide);
    tracing::debug!(
        decided = decisions.iter().map(Vec::len).sum::<usize>(),
        recalculated,
        secs = (timings.scan + timings.population + timings.decide).as_secs_f64(),
        "tier decisions made"
    );

    // Stage 2, the writes, a batch at a time: the records (the model is assessed again rather
    // than kept for a million customers; it is pure), the plan against what each destination
    // holds, and the commit.
    let total: usize = targets.iter().map(Vec::len).sum();
    let batches = targets.iter().zip(decisions).flat_map(|(part, decided)| {
        let mut decided = decided.into_iter();
        part.chunks(BATCH)
            .map(move |chunk| {
                (
                    chunk,
                    decided.by_ref().take(chunk.len()).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    });
    // The commits run on a thread of their own, a batch behind the planning, when there are
    // many: sled's writes are most of a recalculation (43 s of 54 at a million customers),
    // and a batch's reads and plans need nothing the previous batch's commit writes (its
    // customers are others, earlier in key order). The planning then spreads over one core
    // fewer, so that the commit thread keeps one: on two cores, three busy threads slowed the
    // commits by 8 s at a million customers. A few batches commit in line: the overlap would
    // save little, and a second thread freeing what the first allocated held a 10,000-customer
    // store's peak up to 111 MiB against 81–83.
    let pipelined = total > PIPELINED_FROM;
    let planners = if pipelined {
        cores().saturating_sub(1).max(1)
    } else {
        cores()
    };
    let planning = |commit: &mut dyn FnMut(Vec<Evaluation>) -> Result<bool, StoreError>| -> Result<(), StoreError> {
        for (chunk, decided) in batches {
            // Targets come in key order, so each destination's tree is read with one range scan
            // per batch rather than a lookup per customer.
            let ids: Vec<&str> = chunk.iter().map(|s| s.id.as_str()).collect();
            let dirty_emails = store.dirty_emails_sorted(&ids)?;
            let klaviyo = Reads::<ProfileState>::load(store, &ids, true)?;
            let storefront =
                Reads::<StorefrontState>::load(store, &ids, settings.storefront.enabled)?;
            let targets: Vec<Target> = chunk
                .iter()
                .zip(decided)
                .enumerate()
                .map(|(i, (subject, decision))| Target {
                    subject,
                    decision,
                    dirty_email: dirty_emails.get(i).cloned().flatten(),
                    klaviyo: klaviyo.at(i),
                    storefront: storefront.at(i),
                })
                .collect();
            let batch: Vec<Evaluation> = parallel_map(planners, targets, |t| {
                let subject = t.subject;
                let id = subject.id.as_str();
                let dirty = t.dirty_email.is_some();
                let email = t
                    .dirty_email
                    .flatten()
                    .or_else(|| subject.previous.as_ref().and_then(|p| p.email.clone()));
                let assessment = evaluator.assess(subject, loyalty.get(id));
                let (record, audit) = evaluator.record(subject, email, assessment, t.decision);
                let klaviyo = plan(&record, Some(desired_profile(&record)), t.klaviyo, now);
                let storefront = if settings.storefront.enabled {
                    plan(
                        &record,
                        desired_storefront(&record, &settings.storefront),
                        t.storefront,
                        now,
                    )
                } else {
                    OutboxChange::Keep
                };
                let change = RecordChange::between(
                    subject.previous.as_ref(),
                    &record,
                    record.fingerprint(),
                );
                // The first sync records transitions but triggers no flows: connecting tiersync
                // must not send every existing VIP a "welcome to your tier" email at once.
                let events = if initial_sync {
                    Vec::new()
                } else {
                    audit
                        .iter()
                        .filter_map(|a| {
                            events::event(
                                &record,
                                &a.transition,
                                &a.reason,
                                &settings.klaviyo.metrics,
                                now,
                            )
                        })
                        .collect()
                };
                Evaluation {
                    record,
                    klaviyo,
                    storefront,
                    audit,
                    events,
                    dirty,
                    change,
                }
            });
            for evaluation in &batch {
                report.transitions += evaluation.audit.len();
                report.level_changes += evaluation
                    .audit
                    .iter()
                    .filter(|a| a.transition.from_level != a.transition.to_level)
                    .count();
                report.enqueued +=
                    usize::from(matches!(evaluation.klaviyo, OutboxChange::Put(_)))
                        + usize::from(matches!(evaluation.storefront, OutboxChange::Put(_)));
                report.events += evaluation.events.len();
            }
            lap(&mut timings.plan);
            report.evaluated += batch.len();
            if !commit(batch)? {
                break;
            }
        }
        Ok(())
    };
    let committing = if pipelined {
        std::thread::scope(|scope| -> Result<Duration, StoreError> {
            let (to_commit, planned) = std::sync::mpsc::sync_channel::<Vec<Evaluation>>(1);
            let committer = scope.spawn(move || -> Result<Duration, StoreError> {
                let mut busy = Duration::ZERO;
                for batch in planned {
                    commit_timed(store, &batch, &mut busy)?;
                }
                Ok(busy)
            });
            // A send fails once the committer stopped on an error, which it returns.
            let planned = planning(&mut |batch| Ok(to_commit.send(batch).is_ok()));
            drop(to_commit);
            let committed = committer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            planned?;
            committed
        })?
    } else {
        let mut busy = Duration::ZERO;
        planning(&mut |batch| {
            commit_timed(store, &batch, &mut busy)?;
            Ok(true)
        })?;
        busy
    };
    // Waiting for the last commits: already in the commit thread's time.
    lap(&mut Duration::default());
    timings.write += committing;
    if recalculated {
        // Last, so that a recalculation interrupted by a crash runs again in full.
        store.set_population(&population)?;
    }
    store.flush()?;
    lap(&mut timings.write);
    if recalculated {
        tracing::info!(
            customers = report.evaluated,
            scan_s = timings.scan.as_secs_f64(),
            fit_s = timings.population.as_secs_f64(),
            decide_s = timings.decide.as_secs_f64(),
            plan_s = timings.plan.as_secs_f64(),
            write_s = timings.write.as_secs_f64(),
            "daily recalculation evaluated everyone"
        );
    }
    report.timings = timings;
    Ok(report)
}

/// Commits a batch, adding the time it took to `busy`.
fn commit_timed(
    store: &Store,
    batch: &[Evaluation],
    busy: &mut Duration,
) -> Result<(), StoreError> {
    let started = Instant::now();
    store.commit_evaluations(batch)?;
    *busy += started.elapsed();
    Ok(())
}

/// One customer to evaluate: their orders summarized and their last evaluation's checkpoint.
struct Subject {
    id: String,
    history: History,
    previous: Option<TierCheckpoint>,
}

/// A subject with their decision and what the destinations hold for them.
struct Target<'a> {
    subject: &'a Subject,
    decision: Decision,
    /// `Some` when the customer is dirty: the latest email their changed orders carried.
    dirty_email: Option<Option<String>>,
    klaviyo: Held<'a, ProfileState>,
    storefront: Held<'a, StorefrontState>,
}

/// The cores the recalculation spreads over.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` over `items` in order, on up to `threads` threads.
fn parallel_map<T: Send, R: Send>(
    threads: usize,
    mut items: Vec<T>,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    if threads < 2 || items.len() < 64 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    while items.len() > per {
        let rest = items.split_off(per);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a model worker panicked"))
            .collect()
    })
}

/// The model applied to one customer with the day's population.
struct Evaluator<'a> {
    settings: &'a Settings,
    population: &'a Population,
    today: chrono::NaiveDate,
    now: DateTime<Utc>,
}

/// What the model says of one customer today, before the tier state machine: their inputs,
/// the level they qualify for and why.
struct Assessment {
    inputs: model::Inputs,
    qualified: Option<String>,
    placement: String,
    loyalty_tier: Option<String>,
}

/// A customer's tier decision: the new tier state and the transitions that led to it.
struct Decision {
    tier: TierState,
    transitions: Vec<model::Transition>,
}

impl Evaluator<'_> {
    /// The model applied to one customer (pure; the same subject gives the same assessment).
    fn assess(&self, subject: &Subject, loyalty: Option<&LoyaltyRecord>) -> Assessment {
        let tiers = &self.settings.tiers;
        let points = loyalty.map_or(0, |l| l.points);
        let inputs = model::inputs(
            &subject.history,
            points,
            self.population,
            &self.settings.clv,
            self.today,
        );
        let loyalty_tier = super::loyalty::app_level(
            loyalty.and_then(|l| l.tier.as_deref()),
            &self.settings.loyalty.tier_names,
        );
        let (qualified, mut placement) = match self.settings.loyalty.authority {
            Authority::Tiersync => {
                let (level, why) = model::place(tiers, self.population, &inputs);
                (level.map(|l| l.name.clone()), why)
            }
            // The loyalty app's tier is the status; grace, lapse and events still apply.
            Authority::Loyalty => match loyalty_tier
                .as_deref()
                .filter(|t| tiers.levels.iter().any(|l| l.name == *t))
            {
                Some(tier) => (
                    Some(tier.to_string()),
                    format!("loyalty app tier {tier} (loyalty.authority = \"loyalty\")"),
                ),
                None => (
                    None,
                    "no level in the loyalty app (loyalty.authority = \"loyalty\")".to_string(),
                ),
            },
        };
        if let Some(before) = subject
            .previous
            .as_ref()
            .map(|p| p.historic)
            .filter(|b| *b > inputs.historic)
        {
            placement.push_str(&format!(
                "; net spend fell from {before} to {} (refund or cancellation)",
                inputs.historic
            ));
        }
        Assessment {
            inputs,
            qualified,
            placement,
            loyalty_tier,
        }
    }

    /// The tier state machine's step for one assessed customer.
    fn decide(&self, subject: &Subject, assessment: &Assessment) -> Decision {
        let tiers = &self.settings.tiers;
        let prior = subject
            .previous
            .as_ref()
            .map_or_else(|| TierState::new(self.today), |p| p.tier.clone());
        let (tier, transitions) = model::step(
            &tiers.level_names(),
            &StateRules::of(tiers),
            &prior,
            &Observation {
                today: self.today,
                qualified: assessment.qualified.as_deref(),
                last_order: assessment.inputs.last_order,
            },
        );
        Decision { tier, transitions }
    }

    /// The customer's new record and audit entries, from their assessment and decision.
    fn record(
        &self,
        subject: &Subject,
        email: Option<String>,
        assessment: Assessment,
        decision: Decision,
    ) -> (CustomerRecord, Vec<AuditEntry>) {
        let Assessment {
            inputs,
            qualified,
            placement,
            loyalty_tier,
        } = assessment;
        let Decision { tier, transitions } = decision;
        for t in &transitions {
            tracing::debug!(customer = subject.id, kind = ?t.kind, from = ?t.from_level, to = ?t.to_level, reason = %placement, "tier transition");
        }
        let next = model::next_level(
            &self.settings.tiers,
            self.population,
            &inputs,
            tier.level.as_deref(),
        );
        let audit = transitions
            .into_iter()
            .map(|transition| AuditEntry {
                at: self.now,
                transition,
                reason: placement.clone(),
                inputs: inputs.clone(),
            })
            .collect();
        let version = CustomerRecord::next_version(subject.previous.as_ref(), &tier);
        let record = CustomerRecord {
            version,
            id: subject.id.clone(),
            email,
            next_level: next.map(|(l, _)| l.name.clone()),
            spend_to_next: next.and_then(|(_, spend)| spend),
            inputs,
            placement,
            qualified,
            tier,
            loyalty_tier,
            evaluated_at: self.now,
        };
        (record, audit)
    }
}

fn log_population(population: &Population) {
    match &population.clv {
        model::ClvModel::Fitted(fit) => tracing::info!(
            customers = fit.customers,
            repeat_buyers = fit.repeat_buyers,
            bgnbd = ?fit.bgnbd,
            gamma_gamma = ?fit.gamma_gamma,
            log_likelihood = fit.bgnbd_log_likelihood,
            "daily recalculation: CLV model fitted"
        ),
        model::ClvModel::Unavailable { reason, .. } => {
            tracing::info!(%reason, "daily recalculation: no CLV prediction")
        }
    }
}

/// Names a transition for logs and reports.
pub fn transition_name(kind: TransitionKind) -> &'static str {
    match kind {
        TransitionKind::Entered => "entered",
        TransitionKind::Promoted => "promoted",
        TransitionKind::GraceStarted => "grace started",
        TransitionKind::GraceCleared => "grace cleared",
        TransitionKind::Demoted => "demoted",
        TransitionKind::Lapsed => "lapsed",
        TransitionKind::Reactivated => "reactivated",
        TransitionKind::Removed => "level removed",
    }
}
