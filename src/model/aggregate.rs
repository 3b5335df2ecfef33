//! Per-customer sums over their orders: lifetime and within the tier window.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::store::OrderFacts;

/// A customer's spend and order counts. Net spend is after refunds; cancelled and test
/// orders count neither money nor orders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aggregates {
    pub lifetime_net: Decimal,
    pub lifetime_orders: u32,
    pub window_net: Decimal,
    pub window_orders: u32,
}

/// Sums `orders`; those created at or after `window_start` also count toward the window.
pub fn aggregate(orders: &[OrderFacts], window_start: DateTime<Utc>) -> Aggregates {
    let mut sums = Aggregates::default();
    for order in orders.iter().filter(|o| o.counts) {
        sums.lifetime_net += order.net;
        sums.lifetime_orders += 1;
        if order.created_at >= window_start {
            sums.window_net += order.net;
            sums.window_orders += 1;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn order(day: u32, net: Decimal, counts: bool) -> OrderFacts {
        OrderFacts {
            created_at: Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap(),
            net,
            counts,
        }
    }

    #[test]
    fn sums_lifetime_and_window_separately_and_skips_non_counting_orders() {
        let orders = [
            order(1, dec!(100.00), true),
            order(10, dec!(50.50), true),
            order(11, dec!(999.00), false),
            order(20, dec!(0.00), true),
        ];
        let sums = aggregate(&orders, Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap());
        assert_eq!(sums.lifetime_net, dec!(150.50));
        assert_eq!(sums.lifetime_orders, 3);
        assert_eq!(sums.window_net, dec!(50.50));
        assert_eq!(sums.window_orders, 2);
    }
}
