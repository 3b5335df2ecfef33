//! Net spend: every kind of refund or change lowers a customer's spend exactly once — on the
//! backfill, and when it arrives later through the incremental read.
//!
//! Each customer holds one $100.00 order changed in one way (as the fake Shopify records it,
//! see `tiersync_mocks::data::Order`), and what the user sees is the `clv_historic` property
//! (lifetime net spend) of their Klaviyo profile.

use crate::common::{self, customer, order, spawn, store};
use chrono::Utc;
use rust_decimal::Decimal;
use tiersync_mocks::data::{Change, Order};

fn d(amount: &str) -> Decimal {
    amount.parse().expect("decimal")
}

/// The same amount in the shop and presentment currencies (the hand-built store is USD).
fn both(amount: &str) -> (Decimal, Decimal) {
    (d(amount), d(amount))
}

fn changed(mut o: Order, change: Change) -> Order {
    o.changes.push(change);
    o
}

/// The customer's lifetime net spend as their Klaviyo profile shows it.
fn net_spend(env: &common::TestEnv, email: &str) -> Decimal {
    let profile = env
        .servers
        .klaviyo
        .profile_by_email(email)
        .unwrap_or_else(|| panic!("no profile for {email}"));
    let value = profile
        .properties
        .get("clv_historic")
        .unwrap_or_else(|| panic!("{email}: no clv_historic"));
    value.to_string().parse().expect("a decimal number")
}

struct Case {
    kind: &'static str,
    orders: Vec<Order>,
    expected: &'static str,
}

fn cases() -> Vec<(u64, String, Case)> {
    let base = |id: u64| order(id, Some((id, &email(id))), 10, "100.00");
    let small = |id: u64| order(id + 100, Some((id, &email(id))), 20, "10.00").build();
    let kinds = vec![
        Case {
            kind: "line items refunded, no return",
            orders: vec![base(1).refunded("30.00").build()],
            expected: "70.00",
        },
        Case {
            kind: "return with refund",
            orders: vec![base(2).refunded("45.50").build()],
            expected: "54.50",
        },
        Case {
            kind: "shipping refunded",
            orders: vec![changed(
                base(3).build(),
                Change::ShippingRefund(both("8.00")),
            )],
            expected: "92.00",
        },
        Case {
            kind: "custom amount refunded (goodwill)",
            orders: vec![changed(
                base(4).build(),
                Change::CustomRefund(both("15.00")),
            )],
            expected: "85.00",
        },
        Case {
            kind: "item removed by an edit of a paid order, difference refunded",
            orders: vec![changed(
                base(5).build(),
                Change::Edit {
                    delta: both("-20.00"),
                    refunded: true,
                },
            )],
            expected: "80.00",
        },
        Case {
            kind: "quantity lowered by an edit of an unpaid order",
            orders: vec![changed(
                base(6).build(),
                Change::Edit {
                    delta: both("-12.50"),
                    refunded: false,
                },
            )],
            expected: "87.50",
        },
        Case {
            kind: "items added by an edit",
            orders: vec![changed(
                base(7).build(),
                Change::Edit {
                    delta: both("25.00"),
                    refunded: false,
                },
            )],
            expected: "125.00",
        },
        Case {
            kind: "cancelled and fully refunded",
            orders: vec![base(8).cancelled().build(), small(8)],
            expected: "10.00",
        },
        Case {
            kind: "cancelled, not refunded",
            orders: vec![
                {
                    let mut o = base(9).build();
                    o.cancelled_at = Some(o.created_at + chrono::Duration::hours(1));
                    o
                },
                small(9),
            ],
            expected: "10.00",
        },
        Case {
            kind: "shipping and a custom amount refunded with line items",
            orders: vec![changed(
                changed(
                    base(10).refunded("20.00").build(),
                    Change::ShippingRefund(both("7.25")),
                ),
                Change::CustomRefund(both("12.40")),
            )],
            expected: "60.35",
        },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, case)| (i as u64 + 1, email(i as u64 + 1), case))
        .collect()
}

fn email(id: u64) -> String {
    format!("kind{id}@example.com")
}

#[tokio::test]
async fn every_kind_of_refund_lowers_net_spend_exactly_once() {
    let cases = cases();
    let customers = cases.iter().map(|(id, e, _)| customer(*id, e)).collect();
    let orders = cases
        .iter()
        .flat_map(|(_, _, c)| c.orders.iter().cloned())
        .collect();
    let env = spawn(store(customers, orders)).await;
    let report = env.pass().await;
    assert!(
        report.ingest.backfill,
        "the first pass reads the bulk result"
    );

    let wrong: Vec<String> = cases
        .iter()
        .filter(|(_, email, case)| net_spend(&env, email) != d(case.expected))
        .map(|(_, email, case)| {
            format!(
                "{}: net spend {} (expected {})",
                case.kind,
                net_spend(&env, email),
                case.expected
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn a_refund_after_the_first_pass_lowers_spend_once_across_passes() {
    const ANN: (u64, &str) = (1, "ann@example.com");
    let first = order(1, Some(ANN), 10, "100.00").build();
    let env = spawn(store(vec![customer(ANN.0, ANN.1)], vec![first.clone()])).await;
    env.pass().await;
    assert_eq!(net_spend(&env, ANN.1), d("100.00"));

    // Shipping, a goodwill amount and a line item are refunded: Shopify moves `updatedAt`.
    let mut refunded = changed(
        changed(first, Change::ShippingRefund(both("7.25"))),
        Change::CustomRefund(both("12.40")),
    );
    refunded.shop_refunded = d("20.00");
    refunded.presentment_refunded = d("20.00");
    refunded.updated_at = Utc::now();
    env.servers.shopify.upsert_order(refunded);

    let second = env.pass().await;
    assert!(
        !second.ingest.backfill,
        "the refund comes through the pages"
    );
    assert_eq!(second.ingest.orders_changed, 1);
    assert_eq!(net_spend(&env, ANN.1), d("60.35"));

    // The next poll reads the order again (the overlap window): nothing moves.
    let third = env.pass().await;
    assert!(
        third.ingest.orders_read >= 1,
        "the overlap re-reads the order"
    );
    assert_eq!(third.ingest.orders_changed, 0);
    assert_eq!(net_spend(&env, ANN.1), d("60.35"));
}
