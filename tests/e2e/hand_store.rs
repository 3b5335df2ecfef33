//! A small store built by hand through the store's API — orders, evaluated records,
//! transitions, loyalty members — whose every figure a test can work out on paper. Used by
//! the `report` and `forget` tests.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tiersync::model::{Inputs, TierState, Transition, TransitionKind, VipState};
use tiersync::store::{
    AuditEntry, CustomerRecord, Evaluation, LoyaltyRecord, OrderRecord, OutboxChange, RecordChange,
    Store,
};
use tiersync::Settings;

/// Levels (one name needs escaping in HTML), a loyalty app, the shop's time zone.
pub fn settings(store: &std::path::Path) -> Settings {
    let mut settings = Settings::from_toml(&format!(
        r#"
[shopify]
shop = "hand-built"
access_token = "shpat_test"
timezone = "America/New_York"
[klaviyo]
api_key = "pk_test"
[loyalty]
platform = "smile"
api_key = "smile_test"
[store]
path = "{}"
[[tiers.levels]]
name = "Silver"
min_clv = "600.00"
[[tiers.levels]]
name = "Gold & Co"
min_clv = "2000.00"
"#,
        store.display()
    ))
    .expect("the hand-built store's settings are valid");
    settings.store.path = store.to_path_buf();
    settings
}

pub fn gid(n: u64) -> String {
    format!("gid://shopify/Customer/{n}")
}

pub fn email(n: u64) -> String {
    format!("customer-{n}@hand.example")
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 15, 0, 0).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// `n`th order of customer `c`; `kind` "cancelled" or "test" makes it count zero.
fn order(n: u64, c: u64, placed: DateTime<Utc>, net: Decimal, kind: &str) -> OrderRecord {
    OrderRecord {
        id: format!("gid://shopify/Order/{}", c * 100 + n),
        customer_id: Some(gid(c)),
        customer_email: Some(email(c)),
        created_at: placed,
        updated_at: placed,
        cancelled_at: (kind == "cancelled").then_some(placed),
        test: kind == "test",
        net_total: net,
    }
}

/// The report is computed at this moment: 22:00 on 31 March in New York, already April in
/// UTC, so the shop's month is March.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 2, 0, 0).unwrap()
}

fn transition(
    on: NaiveDate,
    kind: TransitionKind,
    to: Option<&str>,
    state: VipState,
) -> AuditEntry {
    AuditEntry {
        at: Utc.from_utc_datetime(&on.and_hms_opt(12, 0, 0).unwrap()),
        transition: Transition {
            on,
            kind,
            from_level: None,
            to_level: to.map(str::to_string),
            from_state: VipState::None,
            to_state: state,
        },
        reason: "hand-built".into(),
        inputs: inputs(Decimal::ZERO),
    }
}

fn inputs(blended: Decimal) -> Inputs {
    Inputs {
        historic: blended,
        predicted: Decimal::ZERO,
        loyalty_points: 0,
        points_value: Decimal::ZERO,
        blended,
        window_net: Decimal::ZERO,
        window_orders: 0,
        lifetime_orders: 0,
        first_order: None,
        last_order: None,
        rfm_segment: None,
        rfm_scores: None,
    }
}

fn evaluation(
    c: u64,
    level: Option<&str>,
    state: VipState,
    blended: Decimal,
    audit: Vec<AuditEntry>,
) -> Evaluation {
    Evaluation {
        record: CustomerRecord {
            id: gid(c),
            email: Some(email(c)),
            inputs: inputs(blended),
            placement: "hand-built".into(),
            qualified: level.map(str::to_string),
            tier: TierState {
                level: level.map(str::to_string),
                state,
                since: day(2025, 5, 1),
                below_since: None,
                peak: level.map(str::to_string),
            },
            next_level: None,
            spend_to_next: None,
            loyalty_tier: None,
            evaluated_at: now(),
            version: 1,
        },
        klaviyo: OutboxChange::Keep,
        storefront: OutboxChange::Keep,
        audit,
        events: Vec::new(),
        dirty: true,
        change: RecordChange::State,
    }
}

/// Customers 1001 (Gold & Co, active), 1002 (Silver, grace), 1003 (Silver, lapsed), 1004
/// (no level) and 1005 (orders read, not evaluated); see each test for the figures.
pub fn build(store: &Store) {
    use TransitionKind::*;
    store.set_shop_timezone("America/New_York").unwrap();
    let orders = [
        order(1, 1001, at(2025, 6, 1), dec!(500.00), ""),
        order(2, 1001, at(2026, 2, 1), dec!(700.00), ""),
        order(3, 1001, at(2026, 2, 2), dec!(999.00), "cancelled"),
        order(1, 1002, at(2024, 12, 1), dec!(300.00), ""),
        order(2, 1002, at(2026, 3, 1), dec!(100.00), ""),
        order(1, 1003, at(2024, 1, 10), dec!(900.00), ""),
        order(1, 1004, at(2025, 12, 24), dec!(50.00), ""),
        order(2, 1004, at(2025, 12, 25), dec!(80.00), "test"),
        order(1, 1005, at(2026, 1, 5), dec!(200.00), ""),
    ];
    store.apply_orders(&orders, None).unwrap();
    let gold = Some("Gold & Co");
    let silver = Some("Silver");
    store
        .commit_evaluations(&[
            evaluation(
                1001,
                gold,
                VipState::Active,
                dec!(3000.00),
                vec![
                    transition(day(2025, 6, 1), Entered, silver, VipState::Active),
                    transition(day(2026, 2, 1), Promoted, gold, VipState::Active),
                ],
            ),
            evaluation(
                1002,
                silver,
                VipState::Grace,
                dec!(800.00),
                vec![
                    transition(day(2025, 5, 10), Entered, silver, VipState::Active),
                    transition(day(2025, 9, 1), Lapsed, silver, VipState::Lapsed),
                    transition(day(2025, 10, 3), Reactivated, silver, VipState::Active),
                    transition(day(2026, 3, 2), GraceStarted, silver, VipState::Grace),
                ],
            ),
            evaluation(
                1003,
                silver,
                VipState::Lapsed,
                dec!(650.02),
                vec![
                    transition(day(2024, 1, 10), Entered, silver, VipState::Active),
                    transition(day(2025, 4, 1), Lapsed, silver, VipState::Lapsed),
                ],
            ),
            evaluation(
                1004,
                None,
                VipState::None,
                dec!(50.00),
                vec![
                    transition(day(2025, 7, 1), Entered, silver, VipState::Active),
                    transition(day(2026, 1, 15), Demoted, None, VipState::None),
                ],
            ),
        ])
        .unwrap();
    let member = |tier: &str| LoyaltyRecord {
        points: 10,
        tier: Some(tier.to_string()),
        updated_at: now(),
    };
    store
        .apply_loyalty(
            &[
                (email(1001), member("Gold & Co")),
                (email(1002), member("Gold & Co")),
                ("not-a-customer@hand.example".to_string(), member("Silver")),
            ],
            None,
        )
        .unwrap();
    store.flush().unwrap();
}
