//! The tier state machine: how a customer's standing changes from one evaluation to the next.
//!
//! Rules (every change is returned as a [`Transition`] so it can be recorded and explained):
//! - **Promotion is immediate**: qualifying for a higher level than the one held moves the
//!   customer up at once (`Entered` from no level, `Promoted` otherwise).
//! - **Demotion waits out a grace period**: qualifying for less than the level held starts
//!   `grace` (`GraceStarted`); requalifying ends it (`GraceCleared`); staying below for
//!   `grace_days` in a row demotes to what they qualify for (`Demoted`). Refunds take this
//!   path too, so a refund never demotes silently or at once.
//! - **Lapse**: a customer with a level and no order for `lapse_after_days` is `lapsed`
//!   (`Lapsed`): the level is kept for win-back flows, but perks are off.
//! - **Re-activation**: a lapsed customer who orders again and qualifies for a level is active
//!   again at that level (`Reactivated`). Lapsed customers who order but do not qualify stay
//!   lapsed.
//! - The **peak** level ever held and the day the current level began (`since`) are kept.
//!
//! Levels are compared by their position in the configured list (lowest first). A stored
//! level that is no longer configured counts as below every level, so the customer moves to
//! what they qualify for at once (`Removed`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::config::TierSettings;

/// Where a customer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VipState {
    /// No level.
    None,
    /// Holds a level and its perks.
    Active,
    /// Holds a level but qualifies for less; demoted when the grace period runs out.
    Grace,
    /// Holds a level (for win-back) but has not ordered for `lapse_after_days`; perks off.
    Lapsed,
}

impl VipState {
    /// The name written to destinations (`vip_state`).
    pub fn as_str(self) -> &'static str {
        match self {
            VipState::None => "none",
            VipState::Active => "active",
            VipState::Grace => "grace",
            VipState::Lapsed => "lapsed",
        }
    }
}

/// A customer's standing, as stored between evaluations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierState {
    /// The level held (a configured name; `None`: no level). During grace it is above what the
    /// customer qualifies for, and it is kept while lapsed. Destinations show it as `vip_tier`.
    pub level: Option<String>,
    /// Active, grace, lapsed or none: the `vip_state` destinations show, and which rules the
    /// next step applies.
    pub state: VipState,
    /// Day the current level (or no level) began.
    pub since: NaiveDate,
    /// First day of the current stretch below the level held (grace clock).
    pub below_since: Option<NaiveDate>,
    /// Highest level ever held.
    pub peak: Option<String>,
}

impl TierState {
    /// A customer never evaluated before.
    pub fn new(today: NaiveDate) -> TierState {
        TierState {
            level: None,
            state: VipState::None,
            since: today,
            below_since: None,
            peak: None,
        }
    }
}

/// Durations the rules use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRules {
    /// Days in a row below the level held before the demotion (`tiers.grace_days`).
    pub grace_days: u32,
    /// Days without a counted order before a customer with a level lapses
    /// (`tiers.lapse_after_days`).
    pub lapse_after_days: u32,
}

impl StateRules {
    /// The rules the configured tiers set.
    pub fn of(tiers: &TierSettings) -> StateRules {
        StateRules {
            grace_days: tiers.grace_days,
            lapse_after_days: tiers.lapse_after_days,
        }
    }

    /// The day a customer below their level since `below_since` is demoted, unless they
    /// requalify first.
    pub fn demoted_on(&self, below_since: NaiveDate) -> NaiveDate {
        below_since + chrono::Duration::days(i64::from(self.grace_days))
    }

    /// The day a customer whose last counted order was on `last_order` lapses, unless they
    /// order again first.
    pub fn lapses_on(&self, last_order: NaiveDate) -> NaiveDate {
        last_order + chrono::Duration::days(i64::from(self.lapse_after_days))
    }
}

/// What the model sees at one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Shop-local day of the evaluation.
    pub today: NaiveDate,
    /// The level the customer's inputs qualify for now.
    pub qualified: Option<&'a str>,
    /// Shop-local day of the last counted order.
    pub last_order: Option<NaiveDate>,
}

/// Kinds of change, named for the flows they trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransitionKind {
    Entered,
    Promoted,
    GraceStarted,
    GraceCleared,
    Demoted,
    Lapsed,
    Reactivated,
    Removed,
}

/// One recorded change of standing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Shop-local day of the evaluation that made the change; part of the Klaviyo event's
    /// `unique_id`, so a re-sent event is recorded once.
    pub on: NaiveDate,
    /// Which rule fired: it picks the Klaviyo metric (grace changes send none).
    pub kind: TransitionKind,
    /// The level held before (`None`: no level); the event's `from_tier`.
    pub from_level: Option<String>,
    /// The level held after; the event's `to_tier`. A pass counts a level change where it
    /// differs from `from_level`.
    pub to_level: Option<String>,
    /// The state before, sent with the event and shown in `explain`'s transitions.
    pub from_state: VipState,
    /// The state after, sent with the event and shown in `explain`'s transitions.
    pub to_state: VipState,
}

/// Applies the rules to one observation: the new state and the transitions that led to it.
pub fn step(
    levels: &[&str],
    rules: &StateRules,
    previous: &TierState,
    seen: &Observation<'_>,
) -> (TierState, Vec<Transition>) {
    let rank = |level: Option<&str>| -> Option<usize> {
        level.and_then(|l| levels.iter().position(|x| *x == l))
    };
    let qualified = seen.qualified.map(str::to_string);
    let held_rank = rank(previous.level.as_deref());
    let qualified_rank = rank(seen.qualified);
    let inactive = seen
        .last_order
        .is_none_or(|day| seen.today >= rules.lapses_on(day));

    let mut next = previous.clone();
    let mut transitions = Vec::new();
    let mut change =
        |next: &mut TierState, kind: TransitionKind, level: Option<String>, state: VipState| {
            transitions.push(Transition {
                on: seen.today,
                kind,
                from_level: next.level.clone(),
                to_level: level.clone(),
                from_state: next.state,
                to_state: state,
            });
            if next.level != level {
                next.since = seen.today;
            }
            next.level = level;
            next.state = state;
            next.below_since = None;
        };

    match (previous.level.as_ref(), held_rank, previous.state) {
        // No level held.
        // No level held. A customer qualifying on old orders alone enters lapsed (the first
        // evaluation of a long-silent big spender): the level is kept for win-back.
        (None, _, _) => {
            if qualified.is_some() {
                let state = if inactive {
                    VipState::Lapsed
                } else {
                    VipState::Active
                };
                change(&mut next, TransitionKind::Entered, qualified.clone(), state);
            }
        }
        // A level that is no longer configured.
        (Some(_), None, _) => {
            let state = if qualified.is_some() {
                VipState::Active
            } else {
                VipState::None
            };
            change(&mut next, TransitionKind::Removed, qualified.clone(), state);
        }
        (Some(_), Some(_), VipState::Lapsed) => {
            if !inactive && qualified.is_some() {
                change(
                    &mut next,
                    TransitionKind::Reactivated,
                    qualified.clone(),
                    VipState::Active,
                );
            }
        }
        (Some(held), Some(held_rank), state) => {
            if inactive {
                change(
                    &mut next,
                    TransitionKind::Lapsed,
                    Some(held.clone()),
                    VipState::Lapsed,
                );
            } else if qualified_rank.is_some_and(|q| q > held_rank) {
                change(
                    &mut next,
                    TransitionKind::Promoted,
                    qualified.clone(),
                    VipState::Active,
                );
            } else if qualified_rank == Some(held_rank) {
                if state == VipState::Grace {
                    change(
                        &mut next,
                        TransitionKind::GraceCleared,
                        Some(held.clone()),
                        VipState::Active,
                    );
                }
            } else {
                // Below the level held.
                let below_since = match (state, previous.below_since) {
                    (VipState::Grace, Some(day)) => day,
                    _ => seen.today,
                };
                if seen.today >= rules.demoted_on(below_since) {
                    let state = if qualified.is_some() {
                        VipState::Active
                    } else {
                        VipState::None
                    };
                    change(&mut next, TransitionKind::Demoted, qualified.clone(), state);
                } else if state != VipState::Grace {
                    change(
                        &mut next,
                        TransitionKind::GraceStarted,
                        Some(held.clone()),
                        VipState::Grace,
                    );
                    next.below_since = Some(below_since);
                }
            }
        }
    }
    if rank(next.level.as_deref()) > rank(next.peak.as_deref()) {
        next.peak = next.level.clone();
    }
    (next, transitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [&str; 3] = ["Silver", "Gold", "Platinum"];
    const RULES: StateRules = StateRules {
        grace_days: 30,
        lapse_after_days: 180,
    };

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n)
    }

    /// Steps through (day, qualified level, last order day) observations.
    fn run(observations: &[(i64, Option<&str>, Option<i64>)]) -> (TierState, Vec<Transition>) {
        let mut state = TierState::new(day(0));
        let mut all = Vec::new();
        for (today, qualified, last) in observations {
            let (next, transitions) = step(
                &LEVELS,
                &RULES,
                &state,
                &Observation {
                    today: day(*today),
                    qualified: *qualified,
                    last_order: last.map(day),
                },
            );
            state = next;
            all.extend(transitions);
        }
        (state, all)
    }

    fn kinds(transitions: &[Transition]) -> Vec<TransitionKind> {
        transitions.iter().map(|t| t.kind).collect()
    }

    #[test]
    fn qualifying_enters_at_once_and_higher_levels_promote_at_once() {
        let (state, transitions) = run(&[
            (0, None, Some(0)),
            (1, Some("Silver"), Some(1)),
            (2, Some("Platinum"), Some(2)),
        ]);
        assert_eq!(
            kinds(&transitions),
            [TransitionKind::Entered, TransitionKind::Promoted]
        );
        assert_eq!(state.level.as_deref(), Some("Platinum"));
        assert_eq!(state.state, VipState::Active);
        assert_eq!(state.since, day(2));
        assert_eq!(state.peak.as_deref(), Some("Platinum"));
        assert_eq!(transitions[1].from_level.as_deref(), Some("Silver"));
    }

    #[test]
    fn falling_below_starts_grace_and_requalifying_clears_it() {
        let (state, transitions) = run(&[
            (0, Some("Gold"), Some(0)),
            (10, Some("Silver"), Some(0)),
            (20, Some("Silver"), Some(0)),
            (25, Some("Gold"), Some(25)),
        ]);
        assert_eq!(
            kinds(&transitions),
            [
                TransitionKind::Entered,
                TransitionKind::GraceStarted,
                TransitionKind::GraceCleared
            ]
        );
        assert_eq!(state.level.as_deref(), Some("Gold"));
        assert_eq!(state.state, VipState::Active);
        assert_eq!(
            state.since,
            day(0),
            "grace does not reset the level's start"
        );
        assert_eq!(state.below_since, None);
    }

    #[test]
    fn grace_expiry_demotes_to_the_level_qualified_for() {
        let (state, transitions) = run(&[
            (0, Some("Gold"), Some(0)),
            (10, Some("Silver"), Some(0)),
            (39, Some("Silver"), Some(0)),
        ]);
        assert_eq!(
            state.state,
            VipState::Grace,
            "29 days below: still in grace"
        );
        assert_eq!(
            kinds(&transitions).last(),
            Some(&TransitionKind::GraceStarted)
        );
        let (state, transitions) = run(&[
            (0, Some("Gold"), Some(0)),
            (10, Some("Silver"), Some(0)),
            (40, Some("Silver"), Some(0)),
        ]);
        assert_eq!(kinds(&transitions).last(), Some(&TransitionKind::Demoted));
        assert_eq!(state.level.as_deref(), Some("Silver"));
        assert_eq!(state.state, VipState::Active);
        assert_eq!(state.since, day(40));
        assert_eq!(state.peak.as_deref(), Some("Gold"), "the peak stays");
    }

    #[test]
    fn a_refund_that_drops_every_threshold_demotes_through_grace_to_none() {
        // Day 5: a refund leaves the customer below every level.
        let (state, transitions) = run(&[
            (0, Some("Silver"), Some(0)),
            (5, None, Some(0)),
            (35, None, Some(0)),
        ]);
        assert_eq!(
            kinds(&transitions),
            [
                TransitionKind::Entered,
                TransitionKind::GraceStarted,
                TransitionKind::Demoted
            ]
        );
        assert_eq!(state.level, None);
        assert_eq!(state.state, VipState::None);
        assert_eq!(transitions[2].from_level.as_deref(), Some("Silver"));
    }

    #[test]
    fn no_order_for_the_lapse_period_lapses_and_keeps_the_level() {
        let (state, transitions) = run(&[
            (0, Some("Gold"), Some(0)),
            (179, Some("Gold"), Some(0)),
            (180, Some("Gold"), Some(0)),
        ]);
        assert_eq!(
            kinds(&transitions),
            [TransitionKind::Entered, TransitionKind::Lapsed]
        );
        assert_eq!(state.state, VipState::Lapsed);
        assert_eq!(state.level.as_deref(), Some("Gold"));
        // Lapsed customers stay lapsed while they do not order, whatever else changes.
        let (state, transitions) = run(&[
            (0, Some("Gold"), Some(0)),
            (180, Some("Gold"), Some(0)),
            (300, None, Some(0)),
        ]);
        assert_eq!(state.state, VipState::Lapsed);
        assert_eq!(
            kinds(&transitions),
            [TransitionKind::Entered, TransitionKind::Lapsed]
        );
    }

    #[test]
    fn a_lapsed_customer_who_orders_and_qualifies_is_reactivated() {
        let (state, transitions) = run(&[
            (0, Some("Gold"), Some(0)),
            (200, Some("Gold"), Some(0)),
            (210, Some("Silver"), Some(210)),
        ]);
        assert_eq!(
            kinds(&transitions),
            [
                TransitionKind::Entered,
                TransitionKind::Lapsed,
                TransitionKind::Reactivated
            ]
        );
        assert_eq!(state.state, VipState::Active);
        assert_eq!(state.level.as_deref(), Some("Silver"));
        assert_eq!(state.peak.as_deref(), Some("Gold"));
        let last = transitions.last().unwrap();
        assert_eq!(
            (last.from_state, last.to_state),
            (VipState::Lapsed, VipState::Active)
        );
    }

    #[test]
    fn a_lapsed_customer_who_orders_without_qualifying_stays_lapsed() {
        let (state, _) = run(&[
            (0, Some("Gold"), Some(0)),
            (200, Some("Gold"), Some(0)),
            (210, None, Some(210)),
        ]);
        assert_eq!(state.state, VipState::Lapsed);
    }

    #[test]
    fn a_level_removed_from_the_configuration_moves_the_customer_at_once() {
        let previous = TierState {
            level: Some("Diamond".into()),
            state: VipState::Active,
            since: day(0),
            below_since: None,
            peak: Some("Diamond".into()),
        };
        let seen = Observation {
            today: day(1),
            qualified: Some("Silver"),
            last_order: Some(day(1)),
        };
        let (state, transitions) = step(&LEVELS, &RULES, &previous, &seen);
        assert_eq!(kinds(&transitions), [TransitionKind::Removed]);
        assert_eq!(state.level.as_deref(), Some("Silver"));
    }

    #[test]
    fn qualifying_on_old_orders_alone_enters_lapsed() {
        let (state, transitions) = run(&[(400, Some("Gold"), Some(0))]);
        assert_eq!(kinds(&transitions), [TransitionKind::Entered]);
        assert_eq!(
            (state.level.as_deref(), state.state),
            (Some("Gold"), VipState::Lapsed)
        );
    }

    #[test]
    fn nothing_changes_when_nothing_changed() {
        let (state, transitions) = run(&[
            (0, Some("Gold"), Some(0)),
            (1, Some("Gold"), Some(1)),
            (2, Some("Gold"), Some(1)),
        ]);
        assert_eq!(transitions.len(), 1);
        assert_eq!(state.since, day(0));
    }
}
