//! One pass: ingest → evaluate (model + plan) → deliver, and its report.

mod evaluate;
pub mod events;
mod loyalty;
mod pass;
mod plan;
mod reconcile;
mod report;
#[cfg(test)]
mod seeding_scale;
#[cfg(test)]
pub(crate) use seeding_scale::record as test_record;

pub use evaluate::{evaluate, recalculation_due, transition_name, EvaluationReport};
pub use loyalty::{loyalty_disagreements, LoyaltyComparison, LoyaltyDisagreements};
pub use pass::{PassError, Pipeline};
pub(crate) use plan::Reads;
pub use plan::{desired_profile, desired_storefront};
pub use reconcile::{Drift, DriftKind, LoyaltyDrift, ReconcileReport};
pub use report::{PassReport, TierCount};
