//! One customer's inputs (historic, predicted and loyalty value, blended CLV, window sums,
//! RFM) and which level they reach, with the rule that placed them and what the next level
//! would take.

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::population::days_since;
use super::{History, Population};
use crate::config::{ClvSettings, Level, TierSettings};

/// Everything the tier decision reads, kept with the customer and shown by `explain`.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
pub struct Inputs {
    /// Lifetime net spend (refunds out): the CLV already earned, and `clv_historic`.
    pub historic: Decimal,
    /// The fitted model's expected spend over `clv.horizon_months` (0 without a fit).
    pub predicted: Decimal,
    /// The loyalty app's balance, which the blend values at `clv.point_value`.
    pub loyalty_points: i64,
    /// `loyalty_points` in money, kept so `explain` shows what the points added.
    pub points_value: Decimal,
    /// The weighted sum of the three above: what `min_clv` thresholds compare against.
    pub blended: Decimal,
    /// Net spend within `tiers.window_days`, for the window rules of each level.
    pub window_net: Decimal,
    /// Counted orders within the window, which `min_orders` compares against.
    pub window_orders: u32,
    /// Counted orders ever; Klaviyo's `orders_count`.
    pub lifetime_orders: u32,
    /// Shop-local day of the first counted order, for `explain`.
    pub first_order: Option<NaiveDate>,
    /// Shop-local day of the last counted order: the lapse clock runs from it.
    pub last_order: Option<NaiveDate>,
    /// RFM segment name, when the store has customers to rank against.
    pub rfm_segment: Option<String>,
    /// The recency, frequency and monetary quintiles behind the segment, for `explain`.
    pub rfm_scores: Option<(u8, u8, u8)>,
}

/// Blended CLV = weighted historic + weighted predicted + weighted points value.
pub fn blend(clv: &ClvSettings, historic: Decimal, predicted: Decimal, points: i64) -> Decimal {
    (clv.weights.historic * historic
        + clv.weights.predicted * predicted
        + clv.weights.loyalty * clv.point_value * Decimal::from(points))
    .round_dp(2)
}

pub fn inputs(
    history: &History,
    points: i64,
    population: &Population,
    clv: &ClvSettings,
    today: NaiveDate,
) -> Inputs {
    let predicted = population.clv.predict(history, today);
    let rfm = population
        .rfm
        .as_ref()
        .filter(|_| history.last_day.is_some())
        .map(|breaks| {
            breaks.score(
                days_since(history, today),
                f64::from(history.lifetime_orders),
                history.lifetime_net.to_f64().unwrap_or(0.0),
            )
        });
    Inputs {
        historic: history.lifetime_net,
        predicted,
        loyalty_points: points,
        points_value: (clv.point_value * Decimal::from(points)).round_dp(2),
        blended: blend(clv, history.lifetime_net, predicted, points),
        window_net: history.window_net,
        window_orders: history.window_orders,
        lifetime_orders: history.lifetime_orders,
        first_order: history.first_day,
        last_order: history.last_day,
        rfm_segment: rfm.map(|r| r.segment.name().to_string()),
        rfm_scores: rfm.map(|r| (r.r, r.f, r.m)),
    }
}

/// The blended CLV that reaches a level: its `min_clv`, or in percentile mode the day's cutoff.
fn clv_threshold(tiers: &TierSettings, population: &Population, index: usize) -> Option<Decimal> {
    match tiers.mode {
        crate::config::TierMode::Fixed => tiers.levels[index].min_clv,
        crate::config::TierMode::Percentile => population.cutoffs.get(index).copied().flatten(),
    }
}

/// The highest level the inputs reach, and the rule that placed them there.
pub fn place<'a>(
    tiers: &'a TierSettings,
    population: &Population,
    inputs: &Inputs,
) -> (Option<&'a Level>, String) {
    for (index, level) in tiers.levels.iter().enumerate().rev() {
        if let Some(min) =
            clv_threshold(tiers, population, index).filter(|min| inputs.blended >= *min)
        {
            return (
                Some(level),
                format!(
                    "blended CLV {} ≥ {} for {}",
                    inputs.blended, min, level.name
                ),
            );
        }
        if let Some(min) = level.min_spend.filter(|min| inputs.window_net >= *min) {
            return (
                Some(level),
                format!(
                    "net spend in the window {} ≥ {} for {}",
                    inputs.window_net, min, level.name
                ),
            );
        }
        if let Some(min) = level.min_orders.filter(|min| inputs.window_orders >= *min) {
            return (
                Some(level),
                format!(
                    "{} orders in the window ≥ {} for {}",
                    inputs.window_orders, min, level.name
                ),
            );
        }
    }
    (None, "below every level's thresholds".to_string())
}

/// The level above `current` (the lowest level when `None`) and the spend it would take:
/// the smaller of the blended-CLV gap and the window-spend gap (`None` when that level can only
/// be reached by orders).
pub fn next_level<'a>(
    tiers: &'a TierSettings,
    population: &Population,
    inputs: &Inputs,
    current: Option<&str>,
) -> Option<(&'a Level, Option<Decimal>)> {
    let index = match current {
        None => 0,
        Some(name) => tiers.levels.iter().position(|l| l.name == name)? + 1,
    };
    let level = tiers.levels.get(index)?;
    let gaps = [
        clv_threshold(tiers, population, index).map(|min| min - inputs.blended),
        level.min_spend.map(|min| min - inputs.window_net),
    ];
    let spend = gaps
        .into_iter()
        .flatten()
        .map(|gap| gap.max(Decimal::ZERO))
        .min();
    Some((level, spend))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClvWeights, TierMode};
    use crate::model::ClvModel;
    use rust_decimal_macros::dec;

    fn clv_settings() -> ClvSettings {
        ClvSettings {
            horizon_months: 12,
            monthly_discount: 0.01,
            min_customers: 500,
            min_history_days: 180,
            point_value: dec!(0.01),
            weights: ClvWeights {
                historic: dec!(1.0),
                predicted: dec!(0.5),
                loyalty: dec!(1.0),
            },
        }
    }

    fn tiers() -> TierSettings {
        TierSettings {
            mode: TierMode::Fixed,
            window_days: 365,
            grace_days: 30,
            lapse_after_days: 365,
            levels: vec![
                Level {
                    name: "Silver".into(),
                    min_clv: Some(dec!(500)),
                    min_spend: None,
                    min_orders: Some(5),
                    top_percent: None,
                },
                Level {
                    name: "Gold".into(),
                    min_clv: Some(dec!(1500)),
                    min_spend: Some(dec!(1000)),
                    min_orders: None,
                    top_percent: None,
                },
            ],
        }
    }

    fn population() -> Population {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        Population {
            as_of: today,
            clv: ClvModel::Unavailable {
                on: today,
                reason: "test".into(),
            },
            rfm: None,
            cutoffs: vec![],
            customers: 0,
        }
    }

    fn with(blended: Decimal, window_net: Decimal, window_orders: u32) -> Inputs {
        Inputs {
            historic: blended,
            predicted: Decimal::ZERO,
            loyalty_points: 0,
            points_value: Decimal::ZERO,
            blended,
            window_net,
            window_orders,
            lifetime_orders: window_orders,
            first_order: None,
            last_order: None,
            rfm_segment: None,
            rfm_scores: None,
        }
    }

    #[test]
    fn blend_weights_each_part() {
        // 1000 + 0.5 × 400 + 1.0 × 0.01 × 5000 points = 1250.
        assert_eq!(
            blend(&clv_settings(), dec!(1000), dec!(400), 5000),
            dec!(1250.00)
        );
    }

    #[test]
    fn placement_names_the_rule_that_placed_the_customer() {
        let t = tiers();
        let (level, why) = place(&t, &population(), &with(dec!(1600), dec!(0), 1));
        assert_eq!(level.map(|l| l.name.as_str()), Some("Gold"));
        assert!(why.contains("blended CLV 1600 ≥ 1500"), "{why}");
        let (level, why) = place(&t, &population(), &with(dec!(100), dec!(0), 6));
        assert_eq!(level.map(|l| l.name.as_str()), Some("Silver"));
        assert!(why.contains("6 orders"), "{why}");
        let (level, why) = place(&t, &population(), &with(dec!(900), dec!(1000), 1));
        assert_eq!(level.map(|l| l.name.as_str()), Some("Gold"), "{why}");
        assert_eq!(
            place(&t, &population(), &with(dec!(10), dec!(10), 1)).0,
            None
        );
    }

    #[test]
    fn the_next_level_takes_the_smaller_spend_gap() {
        let t = tiers();
        let (next, spend) = next_level(
            &t,
            &population(),
            &with(dec!(800), dec!(700), 1),
            Some("Silver"),
        )
        .unwrap();
        assert_eq!(next.name, "Gold");
        assert_eq!(spend, Some(dec!(300)), "window spend gap 300 < CLV gap 700");
        let (next, spend) =
            next_level(&t, &population(), &with(dec!(100), dec!(0), 1), None).unwrap();
        assert_eq!((next.name.as_str(), spend), ("Silver", Some(dec!(400))));
        assert!(next_level(&t, &population(), &with(dec!(0), dec!(0), 1), Some("Gold")).is_none());
    }
}
