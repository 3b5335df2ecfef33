//! Which configured level a customer reaches: spend OR frequency within the window.

use super::Aggregates;
use crate::config::Level;

/// The highest level whose spend threshold or order threshold the window sums meet.
/// `levels` is lowest first (the configuration guarantees it).
pub fn reached_level<'a>(levels: &'a [Level], sums: &Aggregates) -> Option<&'a Level> {
    levels.iter().rev().find(|level| {
        level.min_spend.is_some_and(|min| sums.window_net >= min)
            || level
                .min_orders
                .is_some_and(|min| sums.window_orders >= min)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    fn levels() -> Vec<Level> {
        vec![
            Level {
                name: "Silver".into(),
                min_spend: Some(dec!(500)),
                min_orders: Some(5),
            },
            Level {
                name: "Gold".into(),
                min_spend: Some(dec!(1500)),
                min_orders: None,
            },
            Level {
                name: "Platinum".into(),
                min_spend: None,
                min_orders: Some(20),
            },
        ]
    }

    fn sums(window_net: Decimal, window_orders: u32) -> Aggregates {
        Aggregates {
            window_net,
            window_orders,
            ..Aggregates::default()
        }
    }

    fn name(s: &Aggregates) -> Option<String> {
        reached_level(&levels(), s).map(|l| l.name.clone())
    }

    #[test]
    fn spend_or_orders_reach_a_level_and_the_highest_wins() {
        assert_eq!(name(&sums(dec!(499.99), 4)), None);
        assert_eq!(name(&sums(dec!(500.00), 1)), Some("Silver".into()));
        assert_eq!(name(&sums(dec!(10), 5)), Some("Silver".into()));
        assert_eq!(name(&sums(dec!(1500), 1)), Some("Gold".into()));
        // Gold has no order threshold: 19 cheap orders stay Silver.
        assert_eq!(name(&sums(dec!(100), 19)), Some("Silver".into()));
        assert_eq!(name(&sums(dec!(100), 20)), Some("Platinum".into()));
    }
}
