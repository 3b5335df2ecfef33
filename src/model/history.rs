//! A customer's orders reduced to what the model reads: lifetime and window sums, and the
//! purchase-day summary (first, last and number of purchase days, mean repeat value) that
//! BG/NBD, Gamma-Gamma and RFM need. Days are shop-local calendar days.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The part of an order the model reads, kept in the per-customer index so evaluating a
/// customer is one prefix scan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OrderFacts {
    /// When the order was placed: whether it falls in the tier window, and (as a shop-local
    /// day) which purchase day it belongs to.
    pub created_at: DateTime<Utc>,
    /// What it adds to net spend, in the shop currency: its total less refunds, or zero when it
    /// does not count.
    pub net: Decimal,
    /// False for cancelled and test orders, which add no money, no order and no purchase day.
    pub counts: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// Net spend after refunds; cancelled and test orders count neither money nor orders.
    pub lifetime_net: Decimal,
    /// Counted orders ever: the RFM frequency, and Klaviyo's `orders_count`.
    pub lifetime_orders: u32,
    /// The same, for orders placed within the tier window.
    pub window_net: Decimal,
    /// Counted orders within the window, which `min_orders` compares against.
    pub window_orders: u32,
    /// Shop-local day of the first counted order: the customer's age (`T`) and recency (`t_x`)
    /// for the CLV model are measured from it.
    pub first_day: Option<NaiveDate>,
    /// Shop-local day of the last counted order: the lapse clock and the RFM recency run from
    /// it; `None` for a customer without counted orders.
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

/// Shop-local calendar days of UTC instants, without a time-zone lookup per order: the zone's
/// UTC offset is tabulated once per UTC day from 2000 to 2100 (the daily recalculation turns
/// ten million order times into days). Days whose offset changes within them (a DST switch)
/// and instants outside the table ask the zone itself.
#[derive(Debug, Clone)]
pub struct ShopDays {
    tz: Tz,
    /// UTC day number (days since 1970-01-01) of `offsets[0]`.
    first_day: i64,
    /// The offset in seconds for the whole UTC day, or [`VARIES`].
    offsets: Vec<i32>,
}

const VARIES: i32 = i32::MIN;
const SECS_PER_DAY: i64 = 86_400;
/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i64 = 719_163;

impl ShopDays {
    pub fn new(tz: Tz) -> ShopDays {
        use chrono::Offset;
        use chrono::TimeZone;
        let first_day = 10_957; // 2000-01-01
        let last_day = 47_482; // 2100-01-01
        let offset_at = |secs: i64| {
            tz.offset_from_utc_datetime(
                &DateTime::from_timestamp(secs, 0)
                    .expect("within chrono's range")
                    .naive_utc(),
            )
            .fix()
            .local_minus_utc()
        };
        let offsets = (first_day..last_day)
            .map(|day| {
                let start = day * SECS_PER_DAY;
                let offset = offset_at(start);
                let same = [start + SECS_PER_DAY / 2, start + SECS_PER_DAY - 1]
                    .into_iter()
                    .all(|t| offset_at(t) == offset);
                if same {
                    offset
                } else {
                    VARIES
                }
            })
            .collect();
        ShopDays {
            tz,
            first_day,
            offsets,
        }
    }

    /// The shop-local calendar day of `at`.
    pub fn day(&self, at: DateTime<Utc>) -> NaiveDate {
        let secs = at.timestamp();
        let offset = usize::try_from(secs.div_euclid(SECS_PER_DAY) - self.first_day)
            .ok()
            .and_then(|i| self.offsets.get(i))
            .filter(|o| **o != VARIES);
        offset
            .and_then(|offset| {
                let local_day = (secs + i64::from(*offset)).div_euclid(SECS_PER_DAY);
                NaiveDate::from_num_days_from_ce_opt(
                    i32::try_from(local_day + UNIX_EPOCH_FROM_CE).ok()?,
                )
            })
            .unwrap_or_else(|| at.with_timezone(&self.tz).date_naive())
    }
}

/// Summarizes one customer's orders. Orders created at or after `window_start` also count
/// toward the window sums.
pub fn history(orders: &[OrderFacts], window_start: DateTime<Utc>, days: &ShopDays) -> History {
    let mut sums = History::default();
    let mut purchases: Vec<(NaiveDate, Decimal)> = Vec::with_capacity(orders.len());
    for order in orders.iter().filter(|o| o.counts) {
        sums.lifetime_net += order.net;
        sums.lifetime_orders += 1;
        if order.created_at >= window_start {
            sums.window_net += order.net;
            sums.window_orders += 1;
        }
        purchases.push((days.day(order.created_at), order.net));
    }
    purchases.sort_unstable_by_key(|(day, _)| *day);
    // Same-day orders merged in place: one purchase per day with the day's total.
    let mut days_seen = 0;
    for i in 0..purchases.len() {
        let (day, net) = purchases[i];
        if days_seen > 0 && purchases[days_seen - 1].0 == day {
            purchases[days_seen - 1].1 += net;
        } else {
            purchases[days_seen] = (day, net);
            days_seen += 1;
        }
    }
    purchases.truncate(days_seen);
    let day_totals = purchases;
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
            &ShopDays::new(chrono_tz::UTC),
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
            &ShopDays::new(chrono_tz::America::New_York),
        );
        assert_eq!(h.first_day, NaiveDate::from_ymd_opt(2026, 1, 1));
    }

    #[test]
    fn tabulated_days_match_the_time_zone_everywhere() {
        // Zones with DST, half-hour DST (Lord Howe), 45-minute offsets, and no DST; instants
        // every 7h13m from 1995 to 2105 hit every kind of day, switch days included.
        for tz in [
            chrono_tz::America::New_York,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::Pacific::Chatham,
            chrono_tz::Europe::London,
            chrono_tz::UTC,
        ] {
            let days = ShopDays::new(tz);
            let mut secs = Utc
                .with_ymd_and_hms(1995, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp();
            let end = Utc
                .with_ymd_and_hms(2105, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp();
            while secs < end {
                let at = DateTime::from_timestamp(secs, 0).unwrap();
                assert_eq!(
                    days.day(at),
                    at.with_timezone(&tz).date_naive(),
                    "{tz} at {at}"
                );
                secs += 7 * 3600 + 13 * 60;
            }
        }
    }
}
