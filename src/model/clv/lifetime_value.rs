//! Discounted customer lifetime value, exactly as lifetimes 0.11.3 computes it
//! in `GammaGammaFitter.customer_lifetime_value` → `utils._customer_lifetime_value`.
//!
//! Why: the tier needs one money number per customer over a fixed horizon;
//! matching lifetimes lets merchants compare with the well-known reference.
//!
//! Formula (discrete monthly cash flows, discounted at the end of each month):
//! ```text
//! CLV = Σ_{i=1}^{months} [E(i·s) − E(i·s − s)] · E[M | x, m̄] / (1 + d)^i
//! ```
//! * `E(t) = E[X(t) | x, t_x, T]` from BG/NBD eq. (10) ([`super::bgnbd`]);
//! * `E[M | x, m̄]` from Gamma-Gamma eq. (5) ([`super::gamma_gamma`]);
//! * `s` = model time units per month: lifetimes uses 4.345 for weeks (`freq='W'`),
//!   30 for days (`'D'`), 1 for months, 720 for hours
//!   ([`super::summary::TimeUnit::lifetimes_periods_per_month`]);
//! * `d` = monthly discount rate (lifetimes default 0.01).
//!
//! Like lifetimes, the previous time point is computed as `i·s − s` (not
//! `(i−1)·s`); the two differ only in the last bit. The purchase count is
//! telescoping, so only `months + 1` evaluations of eq. (10) are needed.
//!
//! Caveat: the time unit of `s` must be the unit the BG/NBD model was fitted
//! in. lifetimes' default `freq='D'` applied to week-based data (as in some old
//! tutorials) silently treats a month as 30 weeks.

use super::bgnbd::BgNbdParams;
use super::gamma_gamma::GammaGammaParams;

/// Horizon and discounting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvOptions {
    /// Horizon in months (lifetimes `time`, default 12).
    pub months: u32,
    /// Monthly discount rate (lifetimes `discount_rate`, default 0.01).
    pub monthly_discount: f64,
    /// Model time units per month (4.345 weeks or 30 days in lifetimes).
    pub periods_per_month: f64,
}

impl ClvOptions {
    /// lifetimes defaults (12 months, 1 % per month) for the given time unit.
    pub fn lifetimes_default(unit: super::summary::TimeUnit) -> Self {
        ClvOptions {
            months: 12,
            monthly_discount: 0.01,
            periods_per_month: unit.lifetimes_periods_per_month(),
        }
    }
}

/// Discounted expected value of future purchases when each purchase is worth
/// `value_per_purchase` (already the Gamma-Gamma-adjusted value).
pub fn discounted_value(
    bg: &BgNbdParams,
    x: f64,
    t_x: f64,
    age: f64,
    value_per_purchase: f64,
    opts: &ClvOptions,
) -> f64 {
    let s = opts.periods_per_month;
    let mut clv = 0.0;
    let mut prev = 0.0; // E(0) = 0
    for i in 1..=opts.months {
        let t = i as f64 * s;
        // lifetimes evaluates predict(i*s) - predict(i*s - s); for i = 1 that is E(0) = 0.
        let e = bg.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, age);
        clv += value_per_purchase * (e - prev) / (1.0 + opts.monthly_discount).powf(t / s);
        prev = e;
    }
    clv
}

/// Customer lifetime value as lifetimes 0.11.3 `GammaGammaFitter.customer_lifetime_value`:
/// `value_per_purchase = E[M | x, m̄]`, then [`discounted_value`].
pub fn customer_lifetime_value(
    bg: &BgNbdParams,
    gg: &GammaGammaParams,
    x: f64,
    t_x: f64,
    age: f64,
    mbar: f64,
    opts: &ClvOptions,
) -> f64 {
    let m = gg.conditional_expected_average_profit(x, mbar);
    discounted_value(bg, x, t_x, age, m, opts)
}
