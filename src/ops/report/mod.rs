//! `tiersync report [--html FILE]`: the VIP program's health from the store — the tier
//! distribution, the VIPs' share of revenue, repeat purchases, tier movement per month, the
//! lapse rate, the average blended CLV per level and where the loyalty app disagrees. Text
//! on stdout; with `--html`, one self-contained page with hand-drawn SVG charts (no script,
//! no network). Reads the store only, in one walk (see [`metrics`]).

pub mod html;
pub mod metrics;
mod svg;
mod text;

pub use metrics::{compute, LevelStats, MonthMovement, Report, RevenueShare};

/// What each figure means, as printed under the text report and in the page: every number
/// a merchant compares with a VIP-program guide needs its exact definition beside it.
pub const DEFINITIONS: &[(&str, &str)] = &[
    (
        "VIP",
        "a customer who holds a level and its perks now: active or in grace (a lapsed customer keeps the level for win-back flows, without perks)",
    ),
    (
        "VIP share of revenue",
        "net spend (order totals less refunds; cancelled and test orders count zero) of the orders placed in the last 365 days by customers who are VIPs now, divided by the net spend of every customer's orders placed in those days; guest checkouts belong to no customer and are not in the store",
    ),
    (
        "Repeat-purchase rate",
        "customers of the row with two or more counted orders (ever), divided by the row's customers",
    ),
    (
        "Lapse rate",
        "lapsed customers divided by the customers holding a level (active, in grace or lapsed)",
    ),
    (
        "Average blended CLV",
        "the mean of the row's blended CLV (weighted historic spend, predicted spend and loyalty points) as of each customer's last evaluation, to the cent",
    ),
    (
        "Tier movement",
        "transitions recorded per calendar month in the shop's time zone: entries (no level to a level), promotions (up a level), demotions (down after the grace period, or off a level removed from the configuration), lapses, and welcome-backs (a lapsed customer who ordered and requalified); grace starting and ending is not counted",
    ),
    (
        "Loyalty-app disagreements",
        "members of the loyalty app whose app tier (mapped through loyalty.tier_names) is not the level tiersync holds",
    ),
];

/// The report of the store `settings` names, as of now.
pub fn report(store: &crate::store::Store, settings: &crate::Settings) -> anyhow::Result<Report> {
    compute(store, settings, chrono::Utc::now())
}

/// A row's level for people: its name, or "no level".
fn level_name(row: &LevelStats) -> &str {
    row.level.as_deref().unwrap_or("no level")
}

/// A percentage for people: `41.2%`, or `n/a` when its denominator is zero.
fn shown(percent: Option<rust_decimal::Decimal>) -> String {
    percent.map_or_else(|| "n/a".to_string(), |p| format!("{p:.1}%"))
}

/// The movement columns' names, in [`MonthMovement::counts`] order.
const MOVEMENT: [&str; 5] = [
    "entries",
    "promotions",
    "demotions",
    "lapses",
    "welcome-backs",
];
