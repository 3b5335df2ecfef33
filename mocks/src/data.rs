//! The fake store's facts: customers and orders as Shopify holds them.
//!
//! Money is exact decimal. `shop_*` amounts are in the shop currency (what Shopify calls
//! `shopMoney`); `presentment_*` amounts are in the currency the customer paid in.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A Shopify customer. Its GraphQL id is `gid://shopify/Customer/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: u64,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tags: Vec<String>,
}

impl Customer {
    pub fn gid(&self) -> String {
        format!("gid://shopify/Customer/{}", self.id)
    }
}

/// A Shopify order. Its GraphQL id is `gid://shopify/Order/{id}`.
///
/// Which totals each kind of change moves (Shopify's Admin GraphQL reference for `Order`,
/// `Refund`, `OrderAdjustment` and the order-editing guide):
///
/// | change | `originalTotalPriceSet` | `totalPriceSet` | `currentTotalPriceSet` | `totalRefundedSet` |
/// |---|---|---|---|---|
/// | line items refunded, with or without a return (`shop_refunded`) | – | – | − value | + money |
/// | shipping refunded ([`Change::ShippingRefund`]) | – | – | – (see below) | + money |
/// | custom amount refunded ([`Change::CustomRefund`]) | – | – | – | + money |
/// | edit ([`Change::Edit`]) | – | ± difference | ± difference | + difference if refunded |
/// | cancellation (`cancelled_at`, usually with every line item refunded) | – | – | as refunded | as refunded |
///
/// `currentTotalPriceSet` is documented as the total "after returns" (the Storefront API:
/// "minus amounts for line items that have been removed"); whether Shopify also lowers it for
/// a shipping refund is not documented (`currentShippingPriceSet` is "after applying refunds",
/// but the total's description does not say so). The fake takes the reading that breaks a
/// naive net spend — the current total keeps the refunded shipping — and tiersync's formula is
/// exact under either reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    /// Display name, e.g. `#1001`.
    pub name: String,
    /// `None` for guest checkouts.
    pub customer_id: Option<u64>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub test: bool,
    /// Order total at checkout in the shop currency (`originalTotalPriceSet`).
    pub shop_total: Decimal,
    /// Refunds of line items (with or without a return), tax included, in the shop currency:
    /// they lower the current total and add to the refunded total.
    pub shop_refunded: Decimal,
    pub presentment_currency: String,
    /// Order total at checkout in the presentment currency.
    pub presentment_total: Decimal,
    /// Refunds of line items in the presentment currency.
    pub presentment_refunded: Decimal,
    /// Everything else that changed the order's money after checkout, oldest first.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// A change to an order's money other than a refund of line items. Amounts are
/// `(shop, presentment)`, tax included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// An order edit (items added or removed, quantities changed) that moved the total by
    /// `delta` (negative when it went down). `refunded`: the order was paid and the merchant
    /// refunded the difference (Shopify asks them to; the refund is tied to no line item, as
    /// the edit already removed them). An edit that raises the total of a paid order is paid
    /// through a new invoice, which no refund total shows.
    Edit {
        delta: (Decimal, Decimal),
        refunded: bool,
    },
    /// A refund of shipping (`Refund.refundShippingLines`).
    ShippingRefund((Decimal, Decimal)),
    /// A refund of an amount tied to no line item or shipping line (goodwill, a price
    /// adjustment): Shopify records the difference from the calculated refund, zero here, as
    /// an `OrderAdjustment` of the refund.
    CustomRefund((Decimal, Decimal)),
}

/// Which currency of an order's amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Shop,
    Presentment,
}

fn pick(amounts: (Decimal, Decimal), side: Side) -> Decimal {
    match side {
        Side::Shop => amounts.0,
        Side::Presentment => amounts.1,
    }
}

impl Order {
    pub fn gid(&self) -> String {
        format!("gid://shopify/Order/{}", self.id)
    }

    /// `originalTotalPriceSet`: the total at checkout.
    pub fn original_total(&self, side: Side) -> Decimal {
        pick((self.shop_total, self.presentment_total), side)
    }

    /// `totalPriceSet`: the total "before returns", after edits.
    pub fn edited_total(&self, side: Side) -> Decimal {
        let edits: Decimal = self
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Edit { delta, .. } => Some(pick(*delta, side)),
                _ => None,
            })
            .sum();
        self.original_total(side) + edits
    }

    /// `currentTotalPriceSet`: after edits and refunded or returned line items (a cancelled
    /// order whose line items were all refunded is therefore 0).
    pub fn current_total(&self, side: Side) -> Decimal {
        self.edited_total(side) - pick((self.shop_refunded, self.presentment_refunded), side)
    }

    /// `totalRefundedSet`: the money of every refund.
    pub fn total_refunded(&self, side: Side) -> Decimal {
        let others: Decimal = self
            .changes
            .iter()
            .map(|c| match c {
                Change::Edit { delta, refunded } if *refunded => -pick(*delta, side),
                Change::Edit { .. } => Decimal::ZERO,
                Change::ShippingRefund(amount) | Change::CustomRefund(amount) => {
                    pick(*amount, side)
                }
            })
            .sum();
        pick((self.shop_refunded, self.presentment_refunded), side) + others
    }

    /// `totalRefundedShippingSet`: the refunded shipping.
    pub fn refunded_shipping(&self, side: Side) -> Decimal {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::ShippingRefund(amount) => Some(pick(*amount, side)),
                _ => None,
            })
            .sum()
    }

    /// `currentTotalPriceSet.shopMoney.amount`.
    pub fn shop_current_total(&self) -> Decimal {
        self.current_total(Side::Shop)
    }

    pub fn presentment_current_total(&self) -> Decimal {
        self.current_total(Side::Presentment)
    }
}

/// A whole store: its currency and time zone, customers and orders.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoreData {
    /// ISO 4217 shop currency, e.g. `USD`.
    pub currency: String,
    /// IANA time zone, e.g. `America/New_York`.
    pub timezone: String,
    pub customers: Vec<Customer>,
    pub orders: Vec<Order>,
}

impl StoreData {
    /// The customers that have an email, by that email lower-cased (as the loyalty fakes match
    /// their members to the store's customers).
    pub(crate) fn customers_by_email(&self) -> HashMap<String, &Customer> {
        self.customers
            .iter()
            .filter_map(|c| Some((c.email.as_deref()?.to_lowercase(), c)))
            .collect()
    }
}
