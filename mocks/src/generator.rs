//! A deterministic, realistic store history for tests and the demo.
//!
//! Customers join uniformly over the period and buy like the BG/NBD model assumes: each has a
//! purchase rate drawn from a heavy-tailed Gamma and, after every purchase, a chance to drop
//! out for good (Beta-distributed per customer). Order values are log-normal around a
//! per-customer mean, so most spend is modest and a few customers spend a lot. On top come
//! the messy parts a tier engine must handle: refunds (partial and full), cancellations,
//! test orders, guest checkouts, several presentment currencies and customers without email.
//!
//! Everything is drawn from one `ChaCha8Rng` seeded with [`GenConfig::seed`], so the same
//! configuration always yields the same store.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma, LogNormal};
use rust_decimal::Decimal;

use crate::data::{Customer, Order, StoreData};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub customers: usize,
    pub seed: u64,
    /// Length of the history, ending at `now`.
    pub years: u32,
    /// The end of the history (fixed by default so runs are reproducible).
    pub now: DateTime<Utc>,
    /// Shop currency (ISO 4217).
    pub currency: String,
    /// Shop IANA time zone.
    pub timezone: String,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            customers: 10_000,
            seed: 42,
            years: 3,
            now: Utc
                .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            currency: "USD".to_owned(),
            timezone: "America/New_York".to_owned(),
        }
    }
}

/// Gamma shape and scale (per year) of customers' purchase rates while active: mean 14
/// orders/year, most customers far below, a few far above.
const RATE_SHAPE: f64 = 0.7;
const RATE_SCALE_PER_YEAR: f64 = 20.0;
/// Beta parameters of the per-purchase dropout probability (mean ≈ 0.44, U-shaped: many
/// customers leave after one order, some almost never leave). With the rates above this gives
/// ≈ 6 orders per customer and ≈ 51% one-timers.
const DROPOUT_A: f64 = 0.35;
const DROPOUT_B: f64 = 0.45;
/// Median order value in USD and the spread of per-customer and per-order values.
const MEDIAN_ORDER_USD: f64 = 60.0;
const CUSTOMER_VALUE_SIGMA: f64 = 0.45;
const ORDER_VALUE_SIGMA: f64 = 0.5;
const GUEST_SHARE: f64 = 0.03;
const REFUND_SHARE: f64 = 0.05;
const CANCEL_SHARE: f64 = 0.02;
const TEST_SHARE: f64 = 0.005;
const NO_EMAIL_SHARE: f64 = 0.01;
/// Presentment currencies, their share of customers and their value in USD.
const CURRENCIES: [(&str, f64, f64); 4] = [
    ("USD", 0.70, 1.0),
    ("EUR", 0.15, 1.08),
    ("GBP", 0.10, 1.27),
    ("CAD", 0.05, 0.73),
];
const FIRST_NAMES: [&str; 16] = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sofia", "Lucas", "Mia", "Ethan", "Chloé",
    "José", "Zoë", "Łukasz", "Søren", "Ana",
];
const LAST_NAMES: [&str; 16] = [
    "Smith",
    "Johnson",
    "Garcia",
    "Brown",
    "Lee",
    "Martin",
    "Nguyen",
    "Patel",
    "Kim",
    "Lopez",
    "Müller",
    "Ødegaard",
    "Nuñez",
    "Dubois",
    "O'Brien",
    "Rossi",
];
/// First customer and order ids (Shopify ids are large and increase over time).
const FIRST_CUSTOMER_ID: u64 = 7_000_000_001;
const FIRST_ORDER_ID: u64 = 5_000_000_001;
const FIRST_ORDER_NUMBER: u64 = 1001;

/// An order before ids are assigned (ids follow creation time).
struct Draft {
    customer: Option<usize>,
    email: Option<String>,
    created_at: DateTime<Utc>,
    currency: usize,
    shop_usd: f64,
}

/// Generates the store described by `cfg`.
pub fn generate(cfg: &GenConfig) -> StoreData {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let start = cfg.now - Duration::days(365 * i64::from(cfg.years));
    let span = (cfg.now - start).num_seconds().max(1);

    let mut joins: Vec<DateTime<Utc>> = (0..cfg.customers)
        .map(|_| start + Duration::seconds(rng.random_range(0..span)))
        .collect();
    joins.sort_unstable();

    let mut customers = Vec::with_capacity(cfg.customers);
    let mut drafts = Vec::with_capacity(cfg.customers * 6);
    for (index, joined) in joins.into_iter().enumerate() {
        let customer = new_customer(&mut rng, index, joined);
        let currency = pick_currency(&mut rng);
        for (created_at, shop_usd) in purchases(&mut rng, joined, cfg.now) {
            drafts.push(Draft {
                customer: Some(index),
                email: customer.email.clone(),
                created_at,
                currency,
                shop_usd,
            });
        }
        customers.push(customer);
    }
    let guests = (drafts.len() as f64 * GUEST_SHARE / (1.0 - GUEST_SHARE)).round() as usize;
    for n in 0..guests {
        let created_at = start + Duration::seconds(rng.random_range(0..span));
        let email = rng
            .random_bool(0.7)
            .then(|| format!("guest{n}@example.net"));
        let currency = pick_currency(&mut rng);
        let shop_usd = order_value(&mut rng, MEDIAN_ORDER_USD);
        drafts.push(Draft {
            customer: None,
            email,
            created_at,
            currency,
            shop_usd,
        });
    }
    drafts.sort_by_key(|d| d.created_at);

    let shop_rate = usd_rate(&cfg.currency);
    let orders: Vec<Order> = drafts
        .into_iter()
        .enumerate()
        .map(|(n, draft)| finish_order(&mut rng, n as u64, draft, &customers, shop_rate, cfg.now))
        .collect();
    for order in &orders {
        if let Some(customer) = order
            .customer_id
            .and_then(|id| id.checked_sub(FIRST_CUSTOMER_ID))
        {
            let customer = &mut customers[customer as usize];
            customer.updated_at = customer.updated_at.max(order.created_at);
        }
    }
    StoreData {
        currency: cfg.currency.clone(),
        timezone: cfg.timezone.clone(),
        customers,
        orders,
    }
}

fn new_customer(rng: &mut ChaCha8Rng, index: usize, joined: DateTime<Utc>) -> Customer {
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
    let id = FIRST_CUSTOMER_ID + index as u64;
    let email = (!rng.random_bool(NO_EMAIL_SHARE)).then(|| {
        format!(
            "{}.{}.{id}@example.com",
            ascii_slug(first),
            ascii_slug(last)
        )
    });
    Customer {
        id,
        email,
        first_name: first.to_owned(),
        last_name: last.to_owned(),
        created_at: joined,
        updated_at: joined,
        tags: Vec::new(),
    }
}

/// Lower-case ASCII letters of `name` (accents dropped), for email addresses.
fn ascii_slug(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Purchase times and values (USD) of one customer: the first at joining, then Poisson
/// arrivals at the customer's rate until a dropout after some purchase, or `now`.
fn purchases(
    rng: &mut ChaCha8Rng,
    joined: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, f64)> {
    let rate_per_year = sample(rng, Gamma::new(RATE_SHAPE, RATE_SCALE_PER_YEAR)).max(1e-3);
    let dropout = sample(rng, Beta::new(DROPOUT_A, DROPOUT_B));
    let customer_median = MEDIAN_ORDER_USD * sample(rng, LogNormal::new(0.0, CUSTOMER_VALUE_SIGMA));
    let gap = Exp::new(rate_per_year / (365.25 * 86_400.0));
    let mut at = joined;
    let mut result = vec![(at, order_value(rng, customer_median))];
    while !rng.random_bool(dropout.clamp(0.0, 1.0)) {
        at += Duration::seconds(sample(rng, gap) as i64);
        if at >= now {
            break;
        }
        result.push((at, order_value(rng, customer_median)));
    }
    result
}

fn order_value(rng: &mut ChaCha8Rng, median: f64) -> f64 {
    (median * sample(rng, LogNormal::new(0.0, ORDER_VALUE_SIGMA))).max(1.0)
}

/// A draw from a distribution whose parameters are compile-time constants (always valid).
fn sample<D: Distribution<f64>, E>(rng: &mut ChaCha8Rng, distribution: Result<D, E>) -> f64 {
    distribution.map_or(0.0, |d| d.sample(rng))
}

fn pick_currency(rng: &mut ChaCha8Rng) -> usize {
    let mut roll: f64 = rng.random();
    CURRENCIES
        .iter()
        .position(|(_, share, _)| {
            roll -= share;
            roll < 0.0
        })
        .unwrap_or(0)
}

/// Value of one unit of `currency` in USD (unknown currencies count as USD).
fn usd_rate(currency: &str) -> f64 {
    CURRENCIES
        .iter()
        .find(|(code, _, _)| *code == currency)
        .map_or(1.0, |(_, _, rate)| *rate)
}

fn money(value: f64) -> Decimal {
    Decimal::from_f64_retain(value)
        .unwrap_or_default()
        .round_dp(2)
}

/// Assigns ids in creation order and draws the order's fate (refunds, cancellation, test).
fn finish_order(
    rng: &mut ChaCha8Rng,
    n: u64,
    draft: Draft,
    customers: &[Customer],
    shop_rate: f64,
    now: DateTime<Utc>,
) -> Order {
    let (currency, _, presentment_rate) = CURRENCIES[draft.currency];
    let shop_total = money(draft.shop_usd / shop_rate);
    let presentment_total = money(draft.shop_usd / presentment_rate);
    // A change drawn past `now` folds back into the time since the order: clamping it to
    // `now` would give the last days' orders one shared `updated_at`, which no shop has, and
    // every incremental poll's overlap window would re-read them all.
    let later = |rng: &mut ChaCha8Rng, max_days: i64| {
        let delay = rng.random_range(60..max_days * 86_400);
        let since = (now - draft.created_at).num_seconds().max(1);
        draft.created_at + Duration::seconds(if delay < since { delay } else { delay % since })
    };
    let mut updated_at = later(rng, 3);
    let mut cancelled_at = None;
    let roll: f64 = rng.random();
    let refunded_share = if roll < CANCEL_SHARE {
        let at = later(rng, 3);
        cancelled_at = Some(at);
        updated_at = at;
        Some(Decimal::ONE)
    } else if roll < CANCEL_SHARE + REFUND_SHARE {
        updated_at = later(rng, 30);
        Some(if rng.random_bool(0.5) {
            Decimal::ONE
        } else {
            money(rng.random_range(0.1..0.9))
        })
    } else {
        None
    };
    let refund = |total: Decimal| refunded_share.map_or(Decimal::ZERO, |s| (total * s).round_dp(2));
    Order {
        id: FIRST_ORDER_ID + n,
        name: format!("#{}", FIRST_ORDER_NUMBER + n),
        customer_id: draft.customer.map(|i| customers[i].id),
        email: draft.email,
        created_at: draft.created_at,
        updated_at,
        cancelled_at,
        test: rng.random_bool(TEST_SHARE),
        shop_total,
        shop_refunded: refund(shop_total),
        presentment_currency: currency.to_owned(),
        presentment_total,
        presentment_refunded: refund(presentment_total),
        changes: Vec::new(),
    }
}

/// Share of customers with an email who joined the loyalty program.
const LOYALTY_MEMBER_SHARE: f64 = 0.6;
/// VIP tiers by net spend in the shop currency, highest first.
const LOYALTY_TIERS: [(&str, f64); 3] = [("Gold", 1000.0), ("Silver", 500.0), ("Bronze", 150.0)];

/// Loyalty-program members for `store`, as the fake Smile.io and LoyaltyLion `load` them:
/// `(email, points balance, VIP tier name)`. About 60% of customers with an email are members;
/// points are roughly one per unit of net spend (refunds, cancellations and test orders left
/// out) less a random share already redeemed; tiers are "Bronze" (150+), "Silver" (500+) and
/// "Gold" (1000+) by net spend. Deterministic for a given store and seed; in customer order.
pub fn loyalty_members(store: &StoreData, seed: u64) -> Vec<(String, i64, Option<String>)> {
    use rust_decimal::prelude::ToPrimitive;
    use std::collections::HashMap;

    let mut spend: HashMap<u64, Decimal> = HashMap::new();
    for order in store.orders.iter().filter(|o| !o.test) {
        if let Some(id) = order.customer_id {
            *spend.entry(id).or_default() += order.shop_current_total();
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut members = Vec::new();
    for customer in &store.customers {
        let Some(email) = &customer.email else {
            continue;
        };
        let joined = rng.random_bool(LOYALTY_MEMBER_SHARE);
        let kept: f64 = rng.random_range(0.5..=1.0);
        if !joined {
            continue;
        }
        let spent = spend
            .get(&customer.id)
            .and_then(ToPrimitive::to_f64)
            .unwrap_or(0.0)
            .max(0.0);
        let tier = LOYALTY_TIERS
            .iter()
            .find(|(_, floor)| spent >= *floor)
            .map(|(name, _)| (*name).to_owned());
        members.push((email.to_lowercase(), (spent * kept).round() as i64, tier));
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refunds_never_exceed_totals_and_times_are_ordered() {
        let store = generate(&GenConfig {
            customers: 500,
            ..GenConfig::default()
        });
        for order in &store.orders {
            assert!(order.shop_refunded <= order.shop_total, "{order:?}");
            assert!(order.updated_at >= order.created_at, "{order:?}");
            assert!(order.shop_total > Decimal::ZERO);
        }
        assert!(store
            .orders
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].created_at <= w[1].created_at));
    }

    #[test]
    fn loyalty_members_are_deterministic_and_follow_spend() {
        let store = generate(&GenConfig {
            customers: 400,
            ..GenConfig::default()
        });
        let members = loyalty_members(&store, 7);
        assert_eq!(members, loyalty_members(&store, 7));
        assert_ne!(members, loyalty_members(&store, 8));
        let with_email = store.customers.iter().filter(|c| c.email.is_some()).count();
        let share = members.len() as f64 / with_email as f64;
        assert!((0.5..0.7).contains(&share), "{share}");
        assert!(members.iter().all(|(_, points, _)| *points >= 0));
        for tier in ["Bronze", "Silver", "Gold"] {
            assert!(
                members.iter().any(|m| m.2.as_deref() == Some(tier)),
                "{tier}"
            );
        }
        let mean = |tier: Option<&str>| {
            let points: Vec<i64> = members
                .iter()
                .filter(|m| m.2.as_deref() == tier)
                .map(|m| m.1)
                .collect();
            points.iter().sum::<i64>() as f64 / points.len().max(1) as f64
        };
        assert!(mean(Some("Gold")) > mean(Some("Silver")));
        assert!(mean(Some("Silver")) > mean(None));
    }
}
