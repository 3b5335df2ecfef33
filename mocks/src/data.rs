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
    /// Original order total in the shop currency.
    pub shop_total: Decimal,
    /// Sum of refunds in the shop currency.
    pub shop_refunded: Decimal,
    pub presentment_currency: String,
    /// Original order total in the presentment currency.
    pub presentment_total: Decimal,
    /// Sum of refunds in the presentment currency.
    pub presentment_refunded: Decimal,
}

impl Order {
    pub fn gid(&self) -> String {
        format!("gid://shopify/Order/{}", self.id)
    }

    /// `currentTotalPriceSet.shopMoney.amount`: the total after refunds (a cancelled order
    /// that was fully refunded is therefore 0).
    pub fn shop_current_total(&self) -> Decimal {
        self.shop_total - self.shop_refunded
    }

    pub fn presentment_current_total(&self) -> Decimal {
        self.presentment_total - self.presentment_refunded
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
