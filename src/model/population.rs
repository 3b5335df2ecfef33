//! What the daily recalculation derives from the whole customer base and every evaluation
//! that day uses: the fitted CLV model, the RFM quintile breakpoints and, in percentile mode,
//! the blended CLV that reaches each level.

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::customer::blend;
use super::{ClvModel, History, RfmBreaks};
use crate::config::{ClvSettings, TierMode, TierSettings};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    /// Shop-local day of the recalculation.
    pub as_of: NaiveDate,
    /// The day's fitted CLV model, or why there is none: every evaluation until the next
    /// recalculation predicts with it, and `explain` shows it.
    pub clv: ClvModel,
    /// The day's RFM quintile breakpoints that every customer is scored against; `None` when
    /// no customer has orders (then nobody gets a segment).
    pub rfm: Option<RfmBreaks>,
    /// Percentile mode: the lowest blended CLV in each level's share (lowest level first);
    /// `None` where no customer falls in the share. Empty in fixed mode.
    pub cutoffs: Vec<Option<Decimal>>,
    /// Customers with orders at the recalculation.
    pub customers: usize,
}

impl Population {
    /// Derives the day's population parameters from every customer's history and points.
    pub fn build(
        customers: &[(&History, i64)],
        today: NaiveDate,
        clv: &ClvSettings,
        tiers: &TierSettings,
    ) -> Population {
        let with_orders: Vec<&(&History, i64)> = customers
            .iter()
            .filter(|(h, _)| h.last_day.is_some())
            .collect();
        // The fit and the RFM quintiles are independent: one core each.
        let (model, rfm) = std::thread::scope(|scope| {
            let rfm = scope.spawn(|| {
                RfmBreaks::from_population(
                    with_orders
                        .iter()
                        .map(|(h, _)| days_since(h, today))
                        .collect(),
                    with_orders
                        .iter()
                        .map(|(h, _)| f64::from(h.lifetime_orders))
                        .collect(),
                    with_orders
                        .iter()
                        .map(|(h, _)| h.lifetime_net.to_f64().unwrap_or(0.0))
                        .collect(),
                )
            });
            let model = ClvModel::fit(with_orders.iter().map(|(h, _)| *h), today, clv);
            (model, rfm.join().expect("the RFM worker panicked"))
        });
        let cutoffs = match tiers.mode {
            TierMode::Fixed => Vec::new(),
            TierMode::Percentile => {
                let mut blended: Vec<Decimal> = customers
                    .iter()
                    .map(|(h, points)| blend(clv, h.lifetime_net, model.predict(h, today), *points))
                    .collect();
                blended.sort_unstable_by(|a, b| b.cmp(a));
                percentile_cutoffs(&blended, tiers)
            }
        };
        Population {
            as_of: today,
            clv: model,
            rfm,
            cutoffs,
            customers: with_orders.len(),
        }
    }
}

/// Days from the last order to `today`.
pub fn days_since(history: &History, today: NaiveDate) -> f64 {
    history
        .last_day
        .map_or(f64::INFINITY, |d| (today - d).num_days() as f64)
}

/// For blended values sorted from highest, the value at the bottom of each level's share
/// (the top level's share counted first). Values of 0 never make a VIP.
fn percentile_cutoffs(sorted_desc: &[Decimal], tiers: &TierSettings) -> Vec<Option<Decimal>> {
    let n = sorted_desc.len() as u64;
    let mut cumulative = Decimal::ZERO;
    let mut cutoffs: Vec<Option<Decimal>> = tiers
        .levels
        .iter()
        .rev()
        .map(|level| {
            cumulative += level.top_percent.unwrap_or_default();
            let rank = (cumulative * Decimal::from(n) / Decimal::ONE_HUNDRED)
                .floor()
                .to_u64()
                .unwrap_or(0);
            (rank > 0)
                .then(|| sorted_desc[(rank - 1) as usize])
                .filter(|v| *v > Decimal::ZERO)
        })
        .collect();
    cutoffs.reverse();
    cutoffs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Level;
    use rust_decimal_macros::dec;

    fn tiers() -> TierSettings {
        let level = |name: &str, pct: Decimal| Level {
            name: name.into(),
            min_clv: None,
            min_spend: None,
            min_orders: None,
            top_percent: Some(pct),
        };
        TierSettings {
            mode: TierMode::Percentile,
            window_days: 365,
            grace_days: 30,
            lapse_after_days: 365,
            levels: vec![
                level("Silver", dec!(15)),
                level("Gold", dec!(4)),
                level("Platinum", dec!(1)),
            ],
        }
    }

    #[test]
    fn cutoffs_put_the_top_shares_in_each_level() {
        // 1,000 customers valued 1..=1000.
        let values: Vec<Decimal> = (1..=1000).rev().map(Decimal::from).collect();
        let cutoffs = percentile_cutoffs(&values, &tiers());
        // Platinum: top 1% = 10 customers (1000..991); Gold: next 4% (to 951); Silver: next 15% (to 801).
        assert_eq!(
            cutoffs,
            vec![Some(dec!(801)), Some(dec!(951)), Some(dec!(991))]
        );
    }

    #[test]
    fn a_share_smaller_than_one_customer_has_no_cutoff_and_zero_never_qualifies() {
        let values = vec![dec!(50), dec!(0), dec!(0)];
        let cutoffs = percentile_cutoffs(&values, &tiers());
        assert_eq!(
            cutoffs,
            vec![None, None, None],
            "3 customers: 1% and 5% round to nobody; 20% too"
        );
        let values: Vec<Decimal> = std::iter::repeat_n(Decimal::ZERO, 100).collect();
        assert_eq!(
            percentile_cutoffs(&values, &tiers()),
            vec![None, None, None]
        );
    }
}
