//! The numbers `tiersync report` shows, computed in one walk of the store: the customers
//! (record and order facts side by side) and then the transition log, one entry at a time.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::config::Settings;
use crate::model::{OrderFacts, TransitionKind, VipState};
use crate::store::{CustomerRecord, Store};
use crate::sync::{LoyaltyComparison, LoyaltyDisagreements};

/// Days back from now whose orders the revenue share counts.
pub const REVENUE_DAYS: i64 = 365;
/// Calendar months of tier movement shown, the current one included.
pub const MONTHS: usize = 12;

/// The VIP program's health as of one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// When it was computed.
    pub now: DateTime<Utc>,
    /// The shop's time zone: month boundaries and the date shown.
    pub timezone: Tz,
    /// One row per level, highest configured first, then levels no longer configured that
    /// customers still hold, then the customers without a level.
    pub levels: Vec<LevelStats>,
    /// Customers whose orders were read but who were not evaluated yet (no record): in the
    /// revenue total, in no row.
    pub unevaluated: usize,
    /// VIP share of the last [`REVENUE_DAYS`] days' revenue.
    pub revenue: RevenueShare,
    /// Tier movement per calendar month, oldest first, [`MONTHS`] of them.
    pub months: Vec<MonthMovement>,
    /// Where the loyalty app's tier differs from ours (`None`: no loyalty app configured).
    pub loyalty: Option<LoyaltyDisagreements>,
}

/// The customers holding one level (`level: None`: no level).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelStats {
    pub level: Option<String>,
    pub active: usize,
    pub grace: usize,
    pub lapsed: usize,
    /// Customers without a level (state `none`); only the no-level row has them.
    pub none: usize,
    /// Customers with two or more counted orders (cancelled and test orders do not count).
    pub repeat_buyers: usize,
    /// The sum of their blended CLVs, for the average.
    pub clv_total: Decimal,
}

impl LevelStats {
    pub fn customers(&self) -> usize {
        self.active + self.grace + self.lapsed + self.none
    }

    /// Percent of the row's customers with two or more counted orders.
    pub fn repeat_rate(&self) -> Option<Decimal> {
        percent(self.repeat_buyers, self.customers())
    }

    /// The row's average blended CLV, exact to the cent (half-even rounding).
    pub fn average_clv(&self) -> Option<Decimal> {
        (self.customers() > 0)
            .then(|| (self.clv_total / Decimal::from(self.customers())).round_dp(2))
    }
}

/// Net spend of the orders placed in the window: by VIPs, and by every customer.
#[derive(Debug, Clone, PartialEq)]
pub struct RevenueShare {
    /// The window's start (`now` less [`REVENUE_DAYS`] days).
    pub since: DateTime<Utc>,
    /// Net spend of those orders whose customer is a VIP now (holds a level, active or in
    /// grace).
    pub vip: Decimal,
    /// Net spend of every customer's orders in the window (guest checkouts, which belong to
    /// no customer, are not in the store).
    pub all: Decimal,
}

impl RevenueShare {
    pub fn percent(&self) -> Option<Decimal> {
        (!self.all.is_zero()).then(|| (self.vip * Decimal::ONE_HUNDRED / self.all).round_dp(1))
    }
}

/// Recorded transitions of one calendar month (shop time zone).
#[derive(Debug, Clone, PartialEq)]
pub struct MonthMovement {
    /// The month's first day.
    pub month: NaiveDate,
    /// From no level to a level.
    pub entries: usize,
    /// Up from one level to a higher one.
    pub promotions: usize,
    /// Down after the grace period, or moved off a level removed from the configuration.
    pub demotions: usize,
    /// No counted order for `tiers.lapse_after_days`.
    pub lapses: usize,
    /// A lapsed customer who ordered and requalified (a re-activation).
    pub welcome_backs: usize,
}

impl MonthMovement {
    fn new(month: NaiveDate) -> MonthMovement {
        MonthMovement {
            month,
            entries: 0,
            promotions: 0,
            demotions: 0,
            lapses: 0,
            welcome_backs: 0,
        }
    }

    /// The five counts in the order they are shown.
    pub fn counts(&self) -> [usize; 5] {
        [
            self.entries,
            self.promotions,
            self.demotions,
            self.lapses,
            self.welcome_backs,
        ]
    }
}

impl Report {
    /// Customers holding a level (active, in grace or lapsed).
    pub fn holding_a_level(&self) -> usize {
        self.levels
            .iter()
            .map(|l| l.active + l.grace + l.lapsed)
            .sum()
    }

    pub fn lapsed(&self) -> usize {
        self.levels.iter().map(|l| l.lapsed).sum()
    }

    /// Lapsed customers in percent of the customers holding a level.
    pub fn lapse_rate(&self) -> Option<Decimal> {
        percent(self.lapsed(), self.holding_a_level())
    }

    /// Every customer with a record.
    pub fn customers(&self) -> usize {
        self.levels.iter().map(LevelStats::customers).sum()
    }
}

/// `part` in percent of `whole`, to one decimal.
pub fn percent(part: usize, whole: usize) -> Option<Decimal> {
    (whole > 0)
        .then(|| (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole)).round_dp(1))
}

/// Computes the report as of `now`.
pub fn compute(store: &Store, settings: &Settings, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let timezone = store
        .shop_timezone()?
        .and_then(|name| name.parse::<Tz>().ok())
        .or(settings.shopify.timezone)
        .unwrap_or(chrono_tz::UTC);
    let mut levels = Levels::new(settings);
    let mut revenue = RevenueShare {
        since: now - Duration::days(REVENUE_DAYS),
        vip: Decimal::ZERO,
        all: Decimal::ZERO,
    };
    let mut unevaluated = 0;
    let mut loyalty = LoyaltyComparison::new(store, settings)?;
    store.scan_records_with_orders(|_, record, orders| {
        let spent: Decimal = orders
            .iter()
            .filter(|o| o.created_at > revenue.since && o.created_at <= now)
            .map(|o| o.net)
            .sum();
        revenue.all += spent;
        let Some(record) = record else {
            unevaluated += 1;
            return Ok(());
        };
        if is_vip(record) {
            revenue.vip += spent;
        }
        levels.add(record, orders);
        if let Some(loyalty) = &mut loyalty {
            loyalty.customer(record);
        }
        Ok(())
    })?;
    let mut months = month_buckets(now.with_timezone(&timezone).date_naive());
    store.scan_audit(|entry| {
        let on = entry.transition.on;
        if let Some(month) = months
            .iter_mut()
            .find(|m| m.month.year() == on.year() && m.month.month() == on.month())
        {
            match entry.transition.kind {
                TransitionKind::Entered => month.entries += 1,
                TransitionKind::Promoted => month.promotions += 1,
                TransitionKind::Demoted | TransitionKind::Removed => month.demotions += 1,
                TransitionKind::Lapsed => month.lapses += 1,
                TransitionKind::Reactivated => month.welcome_backs += 1,
                TransitionKind::GraceStarted | TransitionKind::GraceCleared => {}
            }
        }
        Ok(())
    })?;
    Ok(Report {
        now,
        timezone,
        levels: levels.finish(),
        unevaluated,
        revenue,
        months,
        loyalty: loyalty.map(LoyaltyComparison::finish),
    })
}

/// A VIP now: holds a level and its perks (active or in grace; a lapsed customer keeps the
/// level for win-back, without the perks).
fn is_vip(record: &CustomerRecord) -> bool {
    record.tier.level.is_some() && matches!(record.tier.state, VipState::Active | VipState::Grace)
}

/// The rows being counted: the levels by name, and the customers without one.
struct Levels {
    rows: Vec<LevelStats>,
    by_name: HashMap<String, usize>,
    no_level: LevelStats,
}

impl Levels {
    /// The configured levels, highest first, so that every one shows even when empty.
    fn new(settings: &Settings) -> Levels {
        let mut levels = Levels {
            rows: Vec::new(),
            by_name: HashMap::new(),
            no_level: LevelStats::default(),
        };
        for name in settings.tiers.level_names().into_iter().rev() {
            levels.row(Some(name));
        }
        levels
    }

    /// The row of `level`; a level no longer configured gets a row after the others.
    fn row(&mut self, level: Option<&str>) -> &mut LevelStats {
        let Some(name) = level else {
            return &mut self.no_level;
        };
        let at = match self.by_name.get(name) {
            Some(&at) => at,
            None => {
                self.rows.push(LevelStats {
                    level: Some(name.to_string()),
                    ..LevelStats::default()
                });
                self.by_name.insert(name.to_string(), self.rows.len() - 1);
                self.rows.len() - 1
            }
        };
        &mut self.rows[at]
    }

    fn add(&mut self, record: &CustomerRecord, orders: &[OrderFacts]) {
        let row = self.row(record.tier.level.as_deref());
        match record.tier.state {
            VipState::Active => row.active += 1,
            VipState::Grace => row.grace += 1,
            VipState::Lapsed => row.lapsed += 1,
            VipState::None => row.none += 1,
        }
        if orders.iter().filter(|o| o.counts).count() >= 2 {
            row.repeat_buyers += 1;
        }
        row.clv_total += record.inputs.blended;
    }

    /// Every row, the customers without a level last.
    fn finish(mut self) -> Vec<LevelStats> {
        self.rows.push(self.no_level);
        self.rows
    }
}

/// The [`MONTHS`] calendar months ending with the one holding `today`, oldest first.
fn month_buckets(today: NaiveDate) -> Vec<MonthMovement> {
    let index = today.year() * 12 + today.month0() as i32;
    (0..MONTHS as i32)
        .rev()
        .map(|back| {
            let i = index - back;
            let first = NaiveDate::from_ymd_opt(i.div_euclid(12), i.rem_euclid(12) as u32 + 1, 1)
                .expect("the first of a month exists");
            MonthMovement::new(first)
        })
        .collect()
}
