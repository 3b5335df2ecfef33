//! `tiersync calibrate`: on the stored history, how customers and revenue spread over the
//! configured levels and over candidate blended-CLV thresholds, and a proposal that puts a
//! target share of customers (default 20%) in VIP levels. Changes nothing.

use std::fmt::Write;

use chrono::Utc;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::config::{Level, Settings, TierMode, TierSettings};
use crate::model::{self, History, Inputs, Population};
use crate::store::Store;

/// Top shares (percent) shown as candidate thresholds.
const CANDIDATES: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0];

pub fn calibrate(store: &Store, settings: &Settings, target_share: f64) -> anyhow::Result<String> {
    anyhow::ensure!(
        target_share > 0.0 && target_share < 100.0,
        "--target-share is a percentage of customers between 0 and 100, e.g. 20"
    );
    let tz = store
        .shop_timezone()?
        .and_then(|name| name.parse::<chrono_tz::Tz>().ok())
        .or(settings.shopify.timezone)
        .unwrap_or(chrono_tz::UTC);
    let now = Utc::now();
    let today = now.with_timezone(&tz).date_naive();
    let window_start = now - chrono::Duration::days(i64::from(settings.tiers.window_days));
    let loyalty = store.loyalty_by_customer()?;
    let days = model::ShopDays::new(tz);
    let mut histories: Vec<(History, i64)> = Vec::new();
    store.scan_customer_orders(|id, orders| {
        let points = loyalty.get(id).map_or(0, |l| l.points);
        histories.push((model::history(orders, window_start, &days), points));
        Ok(())
    })?;
    anyhow::ensure!(
        !histories.is_empty(),
        "the store at {} holds no customers yet: run a pass first",
        store.path().display()
    );
    let with_points: Vec<(&History, i64)> = histories.iter().map(|(h, p)| (h, *p)).collect();
    let population = Population::build(&with_points, today, &settings.clv, &settings.tiers);
    let inputs: Vec<Inputs> = histories
        .iter()
        .map(|(h, points)| model::inputs(h, *points, &population, &settings.clv, today))
        .collect();
    let revenue: Decimal = inputs.iter().map(|i| i.historic).sum();
    let n = inputs.len();

    let mut out = String::new();
    writeln!(
        out,
        "{n} customers with orders, lifetime net revenue {revenue}"
    )?;
    match &population.clv {
        model::ClvModel::Fitted(fit) => writeln!(
            out,
            "predicted CLV: fitted on {} customers ({} repeat buyers)",
            fit.customers, fit.repeat_buyers
        )?,
        model::ClvModel::Unavailable { reason, .. } => {
            writeln!(out, "predicted CLV: none ({reason})")?
        }
    }
    writeln!(
        out,
        "\ncurrent configuration ({} mode)",
        mode_name(settings.tiers.mode)
    )?;
    spread(&mut out, &settings.tiers, &population, &inputs, revenue)?;

    let mut blended: Vec<Decimal> = inputs.iter().map(|i| i.blended).collect();
    blended.sort_unstable_by(|a, b| b.cmp(a));
    writeln!(
        out,
        "\ncandidate thresholds (blended CLV reached by the top share of customers)"
    )?;
    writeln!(
        out,
        "    {:>6}  {:>12}  {:>10}  {:>8}",
        "top", "min_clv", "customers", "revenue"
    )?;
    for share in CANDIDATES {
        let threshold = at_share(&blended, share);
        let (count, rev) = reaching(&inputs, |i| i.blended >= threshold);
        writeln!(
            out,
            "    {:>5.0}%  {:>12}  {:>10}  {:>7.1}%",
            share,
            threshold,
            count,
            percent(rev, revenue)
        )?;
    }

    let proposal = propose(&settings.tiers, &blended, target_share);
    writeln!(out, "\nproposal: {target_share}% of customers in VIP levels (each level about 4× rarer than the one below; min_orders kept)")?;
    spread(&mut out, &proposal, &population, &inputs, revenue)?;
    writeln!(out, "\n[tiers]\nmode = \"fixed\"")?;
    for level in &proposal.levels {
        writeln!(
            out,
            "\n[[tiers.levels]]\nname = \"{}\"\nmin_clv = \"{}\"",
            level.name,
            level.min_clv.unwrap_or_default()
        )?;
        if let Some(orders) = level.min_orders {
            writeln!(out, "min_orders = {orders}")?;
        }
    }
    Ok(out)
}

/// Customers and revenue per level under `tiers` (placement only, no grace or lapse).
fn spread(
    out: &mut String,
    tiers: &TierSettings,
    population: &Population,
    inputs: &[Inputs],
    revenue: Decimal,
) -> std::fmt::Result {
    let n = inputs.len().max(1);
    let mut rows: Vec<(String, usize, Decimal)> = std::iter::once("None".to_string())
        .chain(tiers.levels.iter().map(|l| l.name.clone()))
        .map(|name| (name, 0, Decimal::ZERO))
        .collect();
    for i in inputs {
        let index = model::place(tiers, population, i)
            .0
            .and_then(|l| tiers.levels.iter().position(|x| x.name == l.name))
            .map_or(0, |p| p + 1);
        rows[index].1 += 1;
        rows[index].2 += i.historic;
    }
    let vip: usize = rows[1..].iter().map(|r| r.1).sum();
    for (name, count, rev) in &rows {
        writeln!(
            out,
            "    {:<14} {:>9} customers {:>6.1}%   revenue {:>6.1}%",
            name,
            count,
            *count as f64 * 100.0 / n as f64,
            percent(*rev, revenue)
        )?;
    }
    writeln!(
        out,
        "    VIP in all     {:>9} customers {:>6.1}%",
        vip,
        vip as f64 * 100.0 / n as f64
    )
}

/// Levels with `min_clv` thresholds that put `target` percent of customers in VIP levels,
/// each level about four times rarer than the one below, rounded to two significant digits.
fn propose(current: &TierSettings, blended_desc: &[Decimal], target: f64) -> TierSettings {
    let k = current.levels.len() as i32;
    let weights: Vec<f64> = (0..k).map(|j| 4f64.powi(j)).collect(); // top level first
    let total: f64 = weights.iter().sum();
    let mut cumulative = 0.0;
    let mut thresholds: Vec<Decimal> = weights
        .iter()
        .map(|w| {
            cumulative += target * w / total;
            round_two_digits(at_share(blended_desc, cumulative))
        })
        .collect();
    thresholds.reverse(); // lowest level first
    let mut levels: Vec<Level> = Vec::new();
    for (level, mut threshold) in current.levels.iter().zip(thresholds) {
        if let Some(prev) = levels.last().and_then(|l| l.min_clv) {
            threshold = threshold.max(prev + Decimal::ONE); // keep thresholds rising
        }
        levels.push(Level {
            name: level.name.clone(),
            min_clv: Some(threshold),
            min_spend: None,
            min_orders: level.min_orders,
            top_percent: None,
        });
    }
    TierSettings {
        mode: TierMode::Fixed,
        levels,
        ..current.clone()
    }
}

/// The value reached by the top `share` percent of the (descending) values.
fn at_share(desc: &[Decimal], share: f64) -> Decimal {
    let rank = ((share / 100.0) * desc.len() as f64).ceil() as usize;
    desc.get(rank.clamp(1, desc.len().max(1)) - 1)
        .copied()
        .unwrap_or_default()
}

fn reaching(inputs: &[Inputs], reaches: impl Fn(&Inputs) -> bool) -> (usize, Decimal) {
    inputs
        .iter()
        .filter(|i| reaches(i))
        .fold((0, Decimal::ZERO), |(n, r), i| (n + 1, r + i.historic))
}

fn percent(part: Decimal, whole: Decimal) -> f64 {
    if whole.is_zero() {
        return 0.0;
    }
    (part * Decimal::ONE_HUNDRED / whole)
        .to_f64()
        .unwrap_or(0.0)
}

fn round_two_digits(value: Decimal) -> Decimal {
    let v = value.to_f64().unwrap_or(0.0);
    if v < 10.0 {
        return value.round_dp(0).max(Decimal::ONE);
    }
    let magnitude = 10f64.powi(v.log10().floor() as i32 - 1);
    Decimal::from_f64((v / magnitude).round() * magnitude)
        .unwrap_or(value)
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
}

fn mode_name(mode: TierMode) -> &'static str {
    match mode {
        TierMode::Fixed => "fixed",
        TierMode::Percentile => "percentile",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn thresholds_round_to_two_significant_digits() {
        assert_eq!(round_two_digits(dec!(1234.56)), dec!(1200));
        assert_eq!(round_two_digits(dec!(987)), dec!(990));
        assert_eq!(round_two_digits(dec!(56.2)), dec!(56));
        assert_eq!(round_two_digits(dec!(3.4)), dec!(3));
    }

    #[test]
    fn the_share_picks_the_value_at_that_rank() {
        let desc: Vec<Decimal> = (1..=100).rev().map(Decimal::from).collect();
        assert_eq!(at_share(&desc, 1.0), dec!(100));
        assert_eq!(at_share(&desc, 20.0), dec!(81));
    }
}
