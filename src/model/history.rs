//! A customer's orders reduced to what the model reads: lifetime and window sums, and the
//! purchase-day summary (first, last and number of purchase days, mean repeat value) that
//! BG/NBD, Gamma-Gamma and RFM need. Days are shop-local calendar days.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::store::OrderFacts;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// Net spend after refunds; cancelled and test orders count neither money nor orders.
    pub lifetime_net: Decimal,
    pub lifetime_orders: u32,
    /// The same, for orders placed within the tier window.
    pub window_net: Decimal,
    pub window_orders: u32,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    /// Distinct days with a counted order (same-day orders are one purchase, as in the CLV
    /// literature).
    pub purchase_days: u32,
    /// Mean net value of the purchase days after the first (0 without repeat purchases).
    pub repeat_value: f64,
}

impl History {
    /// Days between first and last purchase (`t_x`) and from first purchase to `today` (`T`).
    pub fn recency_and_age(&self, today: NaiveDate) -> Option<(f64, f64)> {
        let (first, last) = (self.first_day?, self.last_day?);
        Some((
            (last - first).num_days() as f64,
            (today - first).num_days().max(0) as f64,
        ))
    }
}

/// Summarizes one customer's orders. Orders created at or after `window_start` also count
/// toward the window sums.
pub fn history(orders: &[OrderFacts], window_start: DateTime<Utc>, tz: Tz) -> History {
    let mut sums = History::default();
    let mut days: Vec<(NaiveDate, Decimal)> = Vec::with_capacity(orders.len());
    for order in orders.iter().filter(|o| o.counts) {
        sums.lifetime_net += order.net;
        sums.lifetime_orders += 1;
        if order.created_at >= window_start {
            sums.window_net += order.net;
            sums.window_orders += 1;
        }
        days.push((order.created_at.with_timezone(&tz).date_naive(), order.net));
    }
    days.sort_unstable_by_key(|(day, _)| *day);
    let mut day_totals: Vec<(NaiveDate, Decimal)> = Vec::with_capacity(days.len());
    for (day, net) in days {
        match day_totals.last_mut() {
            Some((last, total)) if *last == day => *total += net,
            _ => day_totals.push((day, net)),
        }
    }
    sums.first_day = day_totals.first().map(|(d, _)| *d);
    sums.last_day = day_totals.last().map(|(d, _)| *d);
    sums.purchase_days = day_totals.len() as u32;
    if day_totals.len() > 1 {
        let repeat: Decimal = day_totals[1..].iter().map(|(_, t)| *t).sum();
        sums.repeat_value = repeat.to_f64().unwrap_or(0.0) / (day_totals.len() - 1) as f64;
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn order(day: u32, hour: u32, net: Decimal, counts: bool) -> OrderFacts {
        OrderFacts {
            created_at: Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap(),
            net,
            counts,
        }
    }

    #[test]
    fn sums_lifetime_and_window_and_merges_same_day_purchases() {
        let orders = [
            order(1, 12, dec!(100.00), true),
            order(10, 12, dec!(50.50), true),
            order(10, 14, dec!(9.50), true),
            order(11, 12, dec!(999.00), false),
            order(20, 12, dec!(20.00), true),
        ];
        let h = history(
            &orders,
            Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap(),
            chrono_tz::UTC,
        );
        assert_eq!(h.lifetime_net, dec!(180.00));
        assert_eq!(h.lifetime_orders, 4);
        assert_eq!(h.window_net, dec!(80.00));
        assert_eq!(h.window_orders, 3);
        assert_eq!(
            h.purchase_days, 3,
            "two orders on the 10th are one purchase day"
        );
        assert_eq!(h.repeat_value, 40.0, "(60 + 20) / 2 repeat days");
        let today = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(h.recency_and_age(today), Some((19.0, 30.0)));
    }

    #[test]
    fn days_are_shop_local() {
        // 03:00 UTC on Jan 2 is still Jan 1 in New York.
        let orders = [order(2, 3, dec!(10), true)];
        let h = history(
            &orders,
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            chrono_tz::America::New_York,
        );
        assert_eq!(h.first_day, NaiveDate::from_ymd_opt(2026, 1, 1));
    }
}
