//! The predictive part of the CLV: BG/NBD (how many more purchases) × Gamma-Gamma (how much
//! each), fitted on the store's own customers at the daily recalculation, valued over
//! `clv.horizon_months` with `clv.monthly_discount` exactly as the `lifetimes` package does.
//!
//! Time is in shop-local days; a month is 30 days (lifetimes' `freq='D'`). With too little
//! history the fit is not trusted: the predicted part is 0 and the model says why.

use chrono::NaiveDate;
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::clv::bgnbd::{self, BgNbdParams};
use super::clv::gamma_gamma::{self, GammaGammaParams};
use super::clv::lifetime_value::{customer_lifetime_value, ClvOptions};
use super::clv::summary::CustomerSummary;
use super::History;
use crate::config::ClvSettings;

/// Days per month in the CLV sum, as `lifetimes` counts them for daily data.
const DAYS_PER_MONTH: f64 = 30.0;

/// The model of the day, as stored and shown by `explain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClvModel {
    Fitted(FittedModel),
    /// Why there is no prediction (too little history, or the fit failed).
    Unavailable {
        on: NaiveDate,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedModel {
    /// Shop-local day of the recalculation that fitted it, shown by `explain`.
    pub fitted_on: NaiveDate,
    /// BG/NBD r, alpha (days), a, b.
    pub bgnbd: [f64; 4],
    /// The BG/NBD fit's log-likelihood at its optimum: logged at the recalculation and shown by
    /// `explain`, to compare one day's fit with another's.
    pub bgnbd_log_likelihood: f64,
    /// Gamma-Gamma p, q, v.
    pub gamma_gamma: [f64; 3],
    /// The Gamma-Gamma fit's log-likelihood at its optimum, kept in the stored model for
    /// diagnosis (no command prints it yet).
    pub gamma_gamma_log_likelihood: f64,
    /// Customers with orders the BG/NBD fit used.
    pub customers: usize,
    /// Repeat buyers the Gamma-Gamma fit used.
    pub repeat_buyers: usize,
    /// `clv.horizon_months` at the fit: predictions until the next recalculation use the
    /// horizon the model was fitted with, even if the setting changes meanwhile.
    pub horizon_months: u32,
    /// `clv.monthly_discount` at the fit, kept for the same reason as `horizon_months`.
    pub monthly_discount: f64,
}

impl ClvModel {
    /// Fits the model on every customer's history as of `today`.
    pub fn fit<'a>(
        histories: impl Iterator<Item = &'a History>,
        today: NaiveDate,
        settings: &ClvSettings,
    ) -> ClvModel {
        let summaries: Vec<CustomerSummary> = histories.filter_map(|h| summary(h, today)).collect();
        let unavailable = |reason: String| ClvModel::Unavailable { on: today, reason };
        if summaries.len() < settings.min_customers {
            return unavailable(format!(
                "{} customers with orders; the prediction needs at least {} (clv.min_customers)",
                summaries.len(),
                settings.min_customers
            ));
        }
        let span = summaries.iter().map(|s| s.age).fold(0.0, f64::max);
        if span < f64::from(settings.min_history_days) {
            return unavailable(format!(
                "{span:.0} days of order history; the prediction needs at least {} (clv.min_history_days)",
                settings.min_history_days
            ));
        }
        let bg = match bgnbd::fit(&summaries) {
            Ok(fit) => fit,
            Err(e) => return unavailable(format!("the BG/NBD fit failed: {e}")),
        };
        let gg = match gamma_gamma::fit(&summaries) {
            Ok(fit) => fit,
            Err(e) => return unavailable(format!("the Gamma-Gamma fit failed: {e}")),
        };
        let model = FittedModel {
            fitted_on: today,
            bgnbd: [bg.params.r, bg.params.alpha, bg.params.a, bg.params.b],
            bgnbd_log_likelihood: bg.log_likelihood,
            gamma_gamma: [gg.params.p, gg.params.q, gg.params.v],
            gamma_gamma_log_likelihood: gg.log_likelihood,
            customers: bg.n_customers,
            repeat_buyers: gg.n_customers,
            horizon_months: settings.horizon_months,
            monthly_discount: settings.monthly_discount,
        };
        // A fit can converge to parameters the prediction cannot use (e.g. a, b → ∞ when no
        // customer seems to churn); check the most active customer's value is a number.
        let busiest = summaries
            .iter()
            .max_by_key(|s| s.frequency)
            .expect("not empty");
        let probe = model.value(busiest);
        if !probe.is_finite() {
            return unavailable(format!(
                "the fitted model is degenerate (BG/NBD r={:.4}, alpha={:.4}, a={:.4e}, b={:.4e}) and gives no usable prediction",
                model.bgnbd[0], model.bgnbd[1], model.bgnbd[2], model.bgnbd[3]
            ));
        }
        ClvModel::Fitted(model)
    }

    /// Predicted CLV of one customer over the horizon, in the shop currency (cents).
    pub fn predict(&self, history: &History, today: NaiveDate) -> Decimal {
        let ClvModel::Fitted(model) = self else {
            return Decimal::ZERO;
        };
        let Some(s) = summary(history, today) else {
            return Decimal::ZERO;
        };
        let value = model.value(&s);
        Decimal::from_f64(value)
            .filter(|_| value.is_finite() && value >= 0.0)
            .unwrap_or(Decimal::ZERO)
            .round_dp(2)
    }
}

impl FittedModel {
    /// The discounted expected value of one customer over the horizon (may be non-finite
    /// for degenerate parameters).
    fn value(&self, s: &CustomerSummary) -> f64 {
        let [r, alpha, a, b] = self.bgnbd;
        let [p, q, v] = self.gamma_gamma;
        customer_lifetime_value(
            &BgNbdParams { r, alpha, a, b },
            &GammaGammaParams { p, q, v },
            f64::from(s.frequency),
            s.recency,
            s.age,
            s.monetary_value,
            &ClvOptions {
                months: self.horizon_months,
                monthly_discount: self.monthly_discount,
                periods_per_month: DAYS_PER_MONTH,
            },
        )
    }
}

/// The (x, t_x, T, mean repeat value) summary in days; `None` without orders.
fn summary(history: &History, today: NaiveDate) -> Option<CustomerSummary> {
    let (recency, age) = history.recency_and_age(today)?;
    Some(CustomerSummary {
        customer: 0,
        frequency: history.purchase_days.saturating_sub(1),
        // An order stamped after `now` (clock skew) must not make recency exceed age.
        recency: recency.min(age),
        age,
        monetary_value: history.repeat_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn settings(min_customers: usize) -> ClvSettings {
        ClvSettings {
            horizon_months: 12,
            monthly_discount: 0.01,
            min_customers,
            min_history_days: 180,
            point_value: dec!(0.01),
            weights: crate::config::ClvWeights {
                historic: dec!(1),
                predicted: dec!(1),
                loyalty: dec!(1),
            },
        }
    }

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(n)
    }

    /// A deterministic little population: some one-timers, some regulars.
    fn population() -> Vec<History> {
        (0..600u32)
            .map(|i| {
                let first = i64::from(i % 300);
                let repeats = (i * 7 % 11) as i64 % 5;
                History {
                    first_day: Some(day(first)),
                    last_day: Some(day(first + repeats * 30)),
                    purchase_days: repeats as u32 + 1,
                    repeat_value: if repeats > 0 {
                        40.0 + f64::from(i % 50)
                    } else {
                        0.0
                    },
                    ..History::default()
                }
            })
            .collect()
    }

    #[test]
    fn too_few_customers_means_no_prediction_and_says_why() {
        let model = ClvModel::fit(population().iter(), day(400), &settings(1000));
        let ClvModel::Unavailable { reason, .. } = &model else {
            panic!("fitted: {model:?}")
        };
        assert!(
            reason.contains("600 customers") && reason.contains("clv.min_customers"),
            "{reason}"
        );
        assert_eq!(model.predict(&population()[0], day(400)), Decimal::ZERO);
    }

    #[test]
    fn too_short_a_history_means_no_prediction() {
        let model = ClvModel::fit(population().iter(), day(100), &settings(500));
        let ClvModel::Unavailable { reason, .. } = &model else {
            panic!("fitted: {model:?}")
        };
        assert!(reason.contains("clv.min_history_days"), "{reason}");
    }

    /// Histories of a generated store (heavy-tailed spend, churn, one-timers).
    fn generated(customers: usize, now: chrono::DateTime<chrono::Utc>) -> Vec<History> {
        use std::collections::BTreeMap;
        let store = tiersync_mocks::generator::generate(&tiersync_mocks::generator::GenConfig {
            customers,
            seed: 5,
            now,
            ..Default::default()
        });
        let mut by_customer: BTreeMap<u64, Vec<crate::model::OrderFacts>> = BTreeMap::new();
        for o in &store.orders {
            if let Some(c) = o.customer_id {
                by_customer
                    .entry(c)
                    .or_default()
                    .push(crate::model::OrderFacts {
                        created_at: o.created_at,
                        net: o.shop_total - o.shop_refunded,
                        counts: o.cancelled_at.is_none() && !o.test,
                    });
            }
        }
        let window_start = now - chrono::Duration::days(365);
        let utc = crate::model::ShopDays::new(chrono_tz::UTC);
        by_customer
            .values()
            .map(|orders| crate::model::history(orders, window_start, &utc))
            .collect()
    }

    #[test]
    fn a_fitted_model_values_recent_regulars_above_silent_one_timers() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let today = now.date_naive();
        let people = generated(3000, now);
        let model = ClvModel::fit(people.iter(), today, &settings(500));
        let ClvModel::Fitted(fit) = &model else {
            panic!("not fitted: {model:?}")
        };
        assert!(fit.customers > 2500, "{fit:?}");
        assert!(fit.bgnbd_log_likelihood.is_finite());
        let regular = people
            .iter()
            .filter(|h| {
                h.purchase_days >= 5 && h.last_day.is_some_and(|d| (today - d).num_days() < 30)
            })
            .max_by_key(|h| h.purchase_days)
            .expect("a recent regular");
        let one_timer = people
            .iter()
            .filter(|h| h.purchase_days == 1)
            .min_by_key(|h| h.first_day)
            .unwrap();
        let (high, low) = (
            model.predict(regular, today),
            model.predict(one_timer, today),
        );
        assert!(high > low, "regular {high} vs one-timer {low}");
        assert!(
            high > dec!(100),
            "a frequent recent buyer is worth something: {high}"
        );
    }

    #[test]
    fn a_degenerate_fit_is_refused_rather_than_predicting_nonsense() {
        // Nobody ever churns: BG/NBD's dropout parameters run off to infinity.
        let people: Vec<History> = (0..600u32)
            .map(|i| History {
                first_day: Some(day(i64::from(i % 100))),
                last_day: Some(day(399)),
                purchase_days: 10,
                repeat_value: 50.0,
                ..History::default()
            })
            .collect();
        let model = ClvModel::fit(people.iter(), day(400), &settings(500));
        if let ClvModel::Fitted(fit) = &model {
            let p = model.predict(&people[0], day(400));
            assert!(
                p > Decimal::ZERO,
                "a fitted model must predict finite values: {fit:?}"
            );
        }
    }
}
